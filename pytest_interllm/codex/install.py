"""A codex that still has `mcp-server`, installed beside the environment (like `playwright install`).

`codex mcp-server` exists only up to codex 0.153.4, while the environment's codex is the runtime pinned by
OpenAI's SDK (`openai-codex`, today's codex, for the app-server executor). pip installs
`openai-codex-cli-bin==VERSION` into a per-user cache outside site-packages, one directory per version, so
both codex lines live in one environment with nothing for `pip check` to object to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MCP_VERSION = "0.153.4"  # the newest codex with `codex mcp-server`
CACHE_ENV = "INTERLLM_CODEX_CACHE"


def cache_root() -> Path:
    """`$INTERLLM_CODEX_CACHE`, else `$XDG_CACHE_HOME/pytest-interllm/codex`, else `~/.cache/pytest-interllm/codex`."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "pytest-interllm" / "codex"


def binary(version_dir: Path) -> Path:
    """The native codex inside one installed version (the wheel's `codex_cli_bin/bin/codex`)."""
    return version_dir / "codex_cli_bin" / "bin" / ("codex.exe" if sys.platform == "win32" else "codex")


def installed() -> list[tuple[tuple[int, ...], Path]]:
    """Installed versions in the cache, newest first, with their binaries."""
    root = cache_root()
    found = []
    for entry in root.iterdir() if root.is_dir() else []:
        try:
            version = tuple(int(part) for part in entry.name.split("."))
        except ValueError:
            continue
        if binary(entry).is_file():
            found.append((version, binary(entry)))
    return sorted(found, reverse=True)


def install(version: str = MCP_VERSION) -> Path:
    """pip-install `openai-codex-cli-bin==version` into the cache (once); the path of its codex binary."""
    target = cache_root() / version
    if binary(target).is_file():
        return binary(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target.parent))
    try:
        # pip keeps the executable bits (a plain unzip loses them); --target keeps it out of site-packages. The
        # wheel needs nothing else, and pip's check of it against the environment's packages (openai-codex pins
        # its own openai-codex-cli-bin) would print a conflict for a directory that is no part of it: --no-deps.
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check"]
        command += ["--target", str(staging)]
        subprocess.run([*command, f"openai-codex-cli-bin=={version}"], check=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return binary(target)
