"""Small JSON files the plugin keeps between runs (parsed lists, codex's answers): read as an object or not at all,
written whole under a private temporary name and renamed, so that processes writing at once never leave half a
file and a reader sees the old file or the new one."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def read_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`; None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_whole(path: Path, text: str) -> None:
    """Replace `path` with `text` at once (its folder made if need be); on any OS error nothing is left behind and
    `path` is as it was."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # our own temporary file, never what another process wrote
