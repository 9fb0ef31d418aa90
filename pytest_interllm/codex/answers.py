"""What a codex binary answered to the questions every run asks it before its first scenario (`--version` and
`<interface> --help` to check it, `debug models --bundled` for its catalog), kept per binary so that the next run
does not start three codex processes to ask again.

Only the native codex of OpenAI's wheel (`openai-codex-cli-bin`: `…/codex_cli_bin/bin/codex`, as `install-codex`
puts it in the cache and pip in an environment) is remembered: any other file named by `--interllm-codex` or found
on PATH may be a wrapper or a version manager's shim that runs another codex tomorrow, and is asked every run. A
binary is known by its resolved path, size, inode and modification time: reinstalled, upgraded or replaced, it is
a new binary and is asked again. Only answers that passed are kept (a binary that failed a check is checked every
time), in one small JSON file beside the installed codex versions (`$INTERLLM_CODEX_CACHE`), written whole by a
rename so that runs in parallel never read half of it; the newest `LIMIT` binaries are kept. A file that cannot be
read or written is ignored: every question is then asked, as without it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from pytest_interllm.codex.install import cache_root
from pytest_interllm.jsonfile import read_object, write_whole

FILE = "answers.json"
LIMIT = 32  # binaries remembered (tests and upgrades leave old ones behind)
WHEEL_DIRS = ("codex_cli_bin", "bin")  # where openai-codex-cli-bin keeps its native codex


def _identity(path: str) -> str | None:
    """The key of a binary of OpenAI's codex wheel; None for any other file (never remembered)."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    if Path(real).parts[-3:-1] != WHEEL_DIRS:
        return None
    return f"{real}|{st.st_size}|{st.st_ino}|{st.st_mtime_ns}"


def recall(path: str, question: str) -> Any | None:
    """The answer this binary gave to `question` in an earlier run, or None."""
    key = _identity(path)
    entry = (read_object(cache_root() / FILE) or {}).get(key) if key is not None else None
    return entry.get("answers", {}).get(question) if isinstance(entry, dict) else None


def keep(path: str, question: str, answer: Any) -> None:
    """Remember the binary's (passing) answer to `question` for the next runs."""
    key = _identity(path)
    if key is None:
        return
    file = cache_root() / FILE
    data = read_object(file) or {}
    entry = data.get(key)
    earlier = entry.get("answers") if isinstance(entry, dict) else None
    answers = dict(earlier) if isinstance(earlier, dict) else {}
    data[key] = {"answers": {**answers, question: answer}, "kept": time.time()}
    newest = sorted(data, key=lambda k: data[k].get("kept", 0) if isinstance(data[k], dict) else 0)[-LIMIT:]
    write_whole(file, json.dumps({k: data[k] for k in newest}))
