"""Finding the codex processes this process started (Linux /proc), to kill them on crash faults and timeouts."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from collections.abc import Callable
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


_GONE_WITHIN = 2.0  # seconds a SIGKILLed process may take to be gone (a write in progress ends first)


def _state(pid: int) -> str:
    """The state letter of each thread of `pid` joined ('' when it is gone)."""
    states = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return ""
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        states.append(stat[stat.rfind(")") + 2 : stat.rfind(")") + 3])
    return "".join(states)


def _stopped(pid: int) -> bool:
    return set(_state(pid)) <= {"T", "t", "Z", "X"}


def _until(done: Callable[[], bool], limit: float) -> bool:
    deadline = time.monotonic() + limit
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.002)
    return True


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def freeze(pid: int) -> list[int]:
    """SIGSTOP `pid` and everything below it, top down, each seen stopped before its children are read: a stopped
    process cannot start another, so nothing it is starting right now escapes. The frozen processes, `pid` first."""
    frozen: list[int] = []
    todo = [pid]
    while todo:
        target = todo.pop(0)
        if target in frozen:
            continue
        _signal(target, signal.SIGSTOP)
        # Every thread stopped (T), or gone (Z, X, ''): a fork in progress has finished and its child is listed.
        _until(functools.partial(_stopped, target), 0.5)
        frozen.append(target)
        todo.extend(sorted(children(target) - set(frozen)))
    return frozen


def kill(pid: int, *, below_only: bool = False) -> None:
    """SIGKILL the process and what it started (codex's sandbox helpers and the commands they run, which would
    otherwise outlive it), and wait until they are gone: once this returns, none of them writes another byte.
    The tree is frozen first, so a command codex starts at this very moment is caught too. `below_only` kills
    only what `pid` started and lets `pid` go on."""
    frozen = freeze(pid)
    doomed = frozen[1:] if below_only else frozen
    for target in doomed:
        _signal(target, signal.SIGKILL)
    for target in doomed:
        _signal(target, signal.SIGCONT)  # a stopped process dies of SIGKILL anyway; this only makes it prompt
    if below_only:
        _signal(pid, signal.SIGCONT)
    _until(lambda: not any(alive(target) for target in doomed), _GONE_WITHIN)


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
