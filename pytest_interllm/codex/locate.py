"""Finding a codex binary with the interface an executor speaks: `mcp-server` (codex ≤ 0.153.4, the codex and
agents executors) or `app-server` (codex ≥ 0.151, the app-server executor through OpenAI's SDK)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from pytest_interllm.codex import answers
from pytest_interllm.codex.install import MCP_VERSION, cache_root, installed

APP_SERVER_MINIMUM = (0, 151, 0)  # the oldest runtime OpenAI's SDK drives
FIX = {
    "mcp-server": "python -m pytest_interllm install-codex  (installs codex 0.153.4, the newest with mcp-server)",
    "app-server": "pip install openai-codex  (OpenAI's SDK, which brings today's codex)",
}


class CodexMissing(Exception):
    """No usable codex binary; the message lists every candidate tried, why it failed, and the fix."""


@dataclass(frozen=True)
class CodexBinary:
    """A checked codex binary."""

    path: str
    version: str


def interface_of(executor: str) -> str:
    """The codex subcommand an executor drives."""
    from pytest_interllm.executors import interface_of as registered

    return registered(executor)


def version_tuple(text: str) -> tuple[int, ...]:
    """`codex-cli 0.153.4` → (0, 153, 4); () when there is no version in it."""
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(g) for g in found.groups()) if found else ()


def _bundled() -> tuple[str, str]:
    """The codex the environment's `openai-codex-cli-bin` brings (the SDK's pinned runtime)."""
    try:
        import codex_cli_bin

        return str(codex_cli_bin.bundled_codex_path()), "the SDK's runtime (openai-codex-cli-bin)"
    except Exception as exc:  # the wheel may be missing or broken; the next candidate is tried
        return "", f"openai-codex-cli-bin ({type(exc).__name__}: {exc})"


def _mcp_capable(version: tuple[int, ...]) -> bool:
    """Whether a codex of this version still has `mcp-server` (≤ MCP_VERSION)."""
    return bool(version) and version <= version_tuple(MCP_VERSION)


def candidates(explicit: str | None, interface: str = "mcp-server") -> list[tuple[str, str]]:
    """Candidate binaries in order, each with where it came from."""
    if explicit:
        found = shutil.which(explicit) or explicit
        return [(found, f"--interllm-codex/INTERLLM_CODEX={explicit}")]
    usable = [(v, path) for v, path in installed() if interface == "app-server" or _mcp_capable(v)]
    cached = [(str(path), f"codex {'.'.join(map(str, v))} in {cache_root()}") for v, path in usable] or [
        ("", f"the cache {cache_root()} (no codex{' ≤ ' + MCP_VERSION if interface == 'mcp-server' else ''} there)")
    ]
    ordered = [*cached, _bundled()] if interface == "mcp-server" else [_bundled(), *cached]
    on_path = shutil.which("codex")
    return [*ordered, (on_path or "", "codex on PATH" + ("" if on_path else " (not found)"))]


def mcp_default_available(explicit: str | None) -> str | None:
    """Without running anything: where an MCP-capable codex seems to be (for the default executor), or None."""
    if explicit:
        return f"--interllm-codex {explicit}"
    for version, path in installed():
        if _mcp_capable(version):
            return f"codex {'.'.join(map(str, version))} in {path.parents[3]}"
    try:
        bundled = version_tuple(metadata.version("openai-codex-cli-bin"))
    except metadata.PackageNotFoundError:
        return None
    return f"the environment's codex {'.'.join(map(str, bundled))}" if _mcp_capable(bundled) else None


def check(path: str, interface: str = "mcp-server", timeout: float = 30.0) -> CodexBinary:
    """Run `codex --version` and `codex <interface> --help` (unless this binary passed before); raise `CodexMissing`
    with the reason."""
    if not path or not Path(path).is_file():
        raise CodexMissing(f"{path or '(none)'}: no such file")
    known = answers.recall(path, f"check {interface}")
    if isinstance(known, str):
        return CodexBinary(path=path, version=known)  # this very binary passed in an earlier run (codex/answers.py)
    try:
        version, helped = _run_together([[path, "--version"], [path, interface, "--help"]], timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CodexMissing(f"{path}: cannot run it ({exc})") from exc
    if version.returncode != 0:
        raise CodexMissing(f"{path}: `--version` exited {version.returncode}: {version.stderr.strip()[:200]}")
    name = version.stdout.strip()
    # codex ≥ 0.154 answers `mcp-server --help` with its top-level help (it takes `mcp-server` for a prompt).
    if helped.returncode != 0 or not re.search(rf"Usage: \S+ {interface}\b", helped.stdout):
        why = "codex 0.154.0 and later removed it" if interface == "mcp-server" else "it needs codex 0.151 or newer"
        raise CodexMissing(f"{path} ({name}): has no `{interface}` command ({why})")
    if interface == "app-server" and version_tuple(name) and version_tuple(name) < APP_SERVER_MINIMUM:
        raise CodexMissing(f"{path} ({name}): too old for the SDK (app-server needs codex 0.151 or newer)")
    answers.keep(path, f"check {interface}", name)
    return CodexBinary(path=path, version=name)


def _run_together(commands: list[list[str]], timeout: float) -> list[subprocess.CompletedProcess[str]]:
    """The commands run at the same time (each start-up waits on the slowest, not on their sum); on a failure or a
    timeout none is left running."""
    procs: list[subprocess.Popen[str]] = []
    try:
        for command in commands:
            procs.append(
                subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                )
            )
        done = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        return done
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                proc.communicate()


def locate(explicit: str | None, interface: str = "mcp-server") -> CodexBinary:
    """The first candidate that works, or `CodexMissing` naming all that were tried and the command that fixes it."""
    tried: list[str] = []
    for path, origin in candidates(explicit, interface):
        try:
            return check(path, interface)
        except CodexMissing as exc:
            tried.append(f"  - {origin}: {exc}")
    raise CodexMissing(
        f"no usable codex binary with `{interface}`; tried:\n" + "\n".join(tried) + f"\nfix: {FIX[interface]}"
    )
