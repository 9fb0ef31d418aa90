"""Finding a codex binary that still speaks `codex mcp-server`."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


class CodexMissing(Exception):
    """No usable codex binary; the message lists every candidate tried and why it failed."""


@dataclass(frozen=True)
class CodexBinary:
    """A checked codex binary."""

    path: str
    version: str


def candidates(explicit: str | None) -> list[tuple[str, str]]:
    """Candidate binaries in order, each with where it came from."""
    if explicit:
        found = shutil.which(explicit) or explicit
        return [(found, f"--interllm-codex/INTERLLM_CODEX={explicit}")]
    out: list[tuple[str, str]] = []
    try:
        import codex_cli_bin

        out.append((str(codex_cli_bin.bundled_codex_path()), "openai-codex-cli-bin's bundled binary"))
    except Exception as exc:  # the wheel may be missing or broken; the next candidate is tried
        out.append(("", f"openai-codex-cli-bin ({type(exc).__name__}: {exc})"))
    on_path = shutil.which("codex")
    out.append((on_path or "", "codex on PATH" + ("" if on_path else " (not found)")))
    return out


def check(path: str, timeout: float = 30.0) -> CodexBinary:
    """Run `codex --version` and `codex mcp-server --help`; raise `CodexMissing` with the reason."""
    if not path or not Path(path).is_file():
        raise CodexMissing(f"{path or '(none)'}: no such file")
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=timeout)
        helped = subprocess.run([path, "mcp-server", "--help"], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CodexMissing(f"{path}: cannot run it ({exc})") from exc
    if version.returncode != 0:
        raise CodexMissing(f"{path}: `--version` exited {version.returncode}: {version.stderr.strip()[:200]}")
    if helped.returncode != 0:
        raise CodexMissing(
            f"{path} ({version.stdout.strip()}): has no `mcp-server` command "
            "(codex 0.154.0 and later removed it; install openai-codex-cli-bin==0.153.4)"
        )
    return CodexBinary(path=path, version=version.stdout.strip())


def locate(explicit: str | None) -> CodexBinary:
    """The first candidate that works, or `CodexMissing` naming all that were tried."""
    tried: list[str] = []
    for path, origin in candidates(explicit):
        try:
            return check(path)
        except CodexMissing as exc:
            tried.append(f"  - {origin}: {exc}")
    raise CodexMissing("no usable codex binary; tried:\n" + "\n".join(tried))
