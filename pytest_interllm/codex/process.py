"""Finding the codex processes this process started (Linux /proc), to kill them on crash faults and timeouts."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def children(pid: int | None = None) -> set[int]:
    """Direct children of `pid` (default: this process); empty where /proc is not available."""
    parent = os.getpid() if pid is None else pid
    found: set[int] = set()
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: fields start after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == parent:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`: its children, theirs, and so on."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children(todo.pop()) - found:
            found.add(child)
            todo.append(child)
    return found


def kill(pid: int) -> None:
    """SIGKILL the process and what it started (codex's sandbox helpers and the commands they run, which
    would otherwise outlive it), ignoring what is already gone."""
    below = descendants(pid)  # read before the kill: once it is gone, its children belong to init
    for target in (pid, *below):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, signal.SIGKILL)


def with_env(entry: str) -> set[int]:
    """Live processes whose environment holds `entry` (`NAME=value`), and their descendants: what a child started
    with that marker became, even once its parent is gone."""
    marker = entry.encode()
    found: set[int] = set()
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry_dir in proc.iterdir():
        if not entry_dir.name.isdigit():
            continue
        try:
            if marker in (entry_dir / "environ").read_bytes().split(b"\0"):
                found.add(int(entry_dir.name))
        except OSError:
            continue  # gone, or another user's
    todo = list(found)
    while todo:
        for child in children(todo.pop()) - found:
            found.add(child)
            todo.append(child)
    return {pid for pid in found if alive(pid)}
