"""The temporary directory of each executor (`interllm-<label>-*`: codex's homes and sessions, prompts included).

Each holds a lock file, locked (`flock`) for as long as its process runs: a run killed where nothing can clean up
(`kill -9`) leaves its directory unlocked, and the next run removes it. A directory whose lock is held belongs to a
live run and is never touched; one without the lock file was not made this way and is left alone too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from pytest_interllm.codex import process

if sys.platform != "win32":
    import fcntl

PREFIX = "interllm-"
LOCK = ".interllm.lock"
REMOVE_WAIT = 2.0  # seconds a directory's removal is retried while a dying process still writes into it


class Workdir:
    """A new `interllm-<label>-*` directory, locked until `remove()`."""

    def __init__(self, label: str) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{label}-"))
        self._fd: int | None = None
        if sys.platform == "win32":  # no flock: such a dir is never taken for a dead run's
            return
        # Locked before it gets its name: another run never sees the lock file unlocked while this one lives.
        staging = self.path / f"{LOCK}.new"
        self._fd = os.open(staging, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.write(self._fd, f"{os.getpid()}\n".encode())
        os.rename(staging, self.path / LOCK)

    def remove(self) -> None:
        """Remove the directory, then let go of its lock. A codex killed a moment ago may still be writing into it
        (its sessions, its databases): removal is tried again until the directory is gone, for up to 2 s."""
        deadline = time.monotonic() + REMOVE_WAIT
        shutil.rmtree(self.path, ignore_errors=True)
        while self.path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
            shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def remove_stale() -> list[Path]:
    """Remove the `interllm-*` directories of runs that are gone (their lock free); the ones removed."""
    root = Path(tempfile.gettempdir())
    removed: list[Path] = []
    if sys.platform == "win32":
        return removed
    try:
        candidates = sorted(root.glob(f"{PREFIX}*"))
    except OSError:
        return removed
    for path in candidates:
        try:
            if path.is_symlink() or not path.is_dir() or path.stat().st_uid != os.getuid():
                continue
            fd = os.open(path / LOCK, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            continue  # not made this way, or not ours
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # held: its run is alive
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        finally:
            os.close(fd)
    return removed


def wait_released(pids: set[int], timeout: float) -> None:
    """Wait (at most `timeout` seconds) until none of the live processes `pids` holds an `interllm-*` directory."""
    root = Path(tempfile.gettempdir())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holders: set[int] = set()
        for lock in root.glob(f"{PREFIX}*/{LOCK}"):
            with contextlib.suppress(OSError, ValueError):
                holders.add(int(lock.read_text().strip()))
        if not any(pid in holders and process.alive(pid) for pid in pids):
            return
        time.sleep(0.1)
