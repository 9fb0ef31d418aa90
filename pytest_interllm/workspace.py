"""A scenario's own workspace: a fresh copy of its fixture directory per attempt (codex's cwd and sandbox root), the
diff between the copy before and after the attempt (computed here, never taken from the agent), and the scenario's
`check:` command run in it after the agent stopped.

Workspaces live under the system's temporary directory (`pytest-interllm-workspaces-<uid>/`), never in the rootdir: an
attempt that passed is removed, one that failed is kept for inspection and its path is shown in the report.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_interllm.redact import SECRET_NAME

# Left out of the diff: what running Python or its tests leaves behind, not the agent's work.
CACHE_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
CACHE_SUFFIXES = (".pyc", ".pyo")
SOLUTION = ".interllm-solution"  # beside a workspace: what the scripted model applies in it
MAX_TEXT = 512 * 1024  # a file larger than this is compared by its hash only, its diff not shown
NO_NEWLINE = "\\ No newline at end of file"
TAIL = 4000  # characters of a check's output kept as evidence


@dataclass(frozen=True)
class Spec:
    """A scenario's workspace: the fixture copied per attempt, its check, and the scripted model's solution."""

    fixture: Path
    check: str | None = None
    check_timeout: float = 60.0
    solution: str = ""


def inside_path(relative: str, name: str) -> str:
    """Where the output file goes inside a workspace: its path relative to the rootdir, or `outputs/<name>` when
    that path leaves the rootdir."""
    path = Path(relative)
    return relative if not path.is_absolute() and ".." not in path.parts else f"outputs/{name}"


def _root() -> Path:
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"pytest-interllm-workspaces-{uid}"


def workspaces_root() -> Path:
    """Where the run's attempt workspaces go (created on first use): one directory per user under the system's
    temporary directory."""
    root = _root()
    root.mkdir(mode=0o700, exist_ok=True)
    return root


def create(fixture: Path, label: str, solution: str = "") -> Path:
    """A fresh copy of `fixture` for one attempt (`<label>-XXXX`, its name unique across workers and runs), and beside
    it (outside the workspace) the solution the built-in scripted model applies there."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[-60:]
    path = Path(tempfile.mkdtemp(prefix=f"{safe}-", dir=workspaces_root()))
    shutil.copytree(fixture, path, symlinks=True, dirs_exist_ok=True)
    path.with_name(path.name + SOLUTION).write_text(solution, encoding="utf-8")
    return path


def solution_for(cwd: str) -> str | None:
    """The scripted model's solution for the attempt whose workspace is `cwd` (codex's environment context names it);
    None when `cwd` is no workspace of ours. Read from beside the workspace, so that the scripted model finds it
    whichever process it runs in (a worker's, or the record proxy's upstream)."""
    path = Path(cwd)
    if path.parent != _root():  # never creates the root: every request of every scenario asks
        return None
    try:
        return path.with_name(path.name + SOLUTION).read_text(encoding="utf-8")
    except OSError:
        return None


def remove(path: Path) -> None:
    """Remove a workspace of ours (only ever a directory under `workspaces_root()`) and its solution."""
    if path.parent == _root():
        shutil.rmtree(path, ignore_errors=True)
        path.with_name(path.name + SOLUTION).unlink(missing_ok=True)


@dataclass(frozen=True)
class Entry:
    """One file of a snapshot: its SHA-256, and its bytes when small enough to diff."""

    digest: str
    data: bytes | None


def snapshot(root: Path) -> dict[str, Entry]:
    """Every file under `root` (symlinks as their target text, not followed), by POSIX path relative to `root`;
    the caches running Python leaves behind (`CACHE_DIRS`, `CACHE_SUFFIXES`) left out."""
    found: dict[str, Entry] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in CACHE_DIRS)
        for name in sorted(files) + sorted(d for d in dirs if (Path(folder) / d).is_symlink()):
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if name.endswith(CACHE_SUFFIXES):
                continue
            try:
                if path.is_symlink():
                    data: bytes = f"symlink -> {os.readlink(path)}".encode()
                elif path.is_file():
                    data = path.read_bytes() if path.stat().st_size <= MAX_TEXT else b""
                    if not data and path.stat().st_size:
                        digest = _file_digest(path)
                        found[rel] = Entry(digest, None)
                        continue
                else:
                    continue
            except OSError:
                continue
            found[rel] = Entry(hashlib.sha256(data).hexdigest(), data)
    return found


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _text(data: bytes | None) -> list[str] | None:
    """The lines of a file, or None when it is binary (or too large to diff)."""
    if data is None or b"\0" in data[:8192]:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def diff(before: dict[str, Entry], after: dict[str, Entry]) -> list[dict[str, Any]]:
    """Files added, changed and deleted between two snapshots, each with its unified diff (or `binary: true`)."""
    changes: list[dict[str, Any]] = []
    for path in sorted(before.keys() | after.keys()):
        old, new = before.get(path), after.get(path)
        if old is not None and new is not None and old.digest == new.digest:
            continue
        kind = "added" if old is None else "deleted" if new is None else "changed"
        old_lines = [] if old is None else _text(old.data)
        new_lines = [] if new is None else _text(new.data)
        entry: dict[str, Any] = {"path": path, "kind": kind}
        if old_lines is None or new_lines is None:
            entry["binary"] = True
            entry["diff"] = ""
        else:
            lines = difflib.unified_diff(
                old_lines,
                new_lines,
                "/dev/null" if old is None else f"a/{path}",
                "/dev/null" if new is None else f"b/{path}",
            )
            entry["diff"] = "".join(
                line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
            )
        changes.append(entry)
    return changes


def matches(path: str, patterns: tuple[str, ...] | list[str]) -> str | None:
    """The first glob of `patterns` that `path` (relative, POSIX) matches; `dir/**` matches everything under dir."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(path, pattern):
            return pattern
        if pattern.endswith("/**") and (path == pattern[:-3] or path.startswith(pattern[:-2])):
            return pattern
    return None


@dataclass(frozen=True)
class CheckResult:
    """What the scenario's `check:` command did in the workspace."""

    command: str
    exit_code: int | None
    output: str
    duration: float
    timed_out: bool

    def record(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "exit_code": self.exit_code,
            "output": self.output,
            "duration": round(self.duration, 3),
            "timed_out": self.timed_out,
        }


def check_env(home: Path) -> dict[str, str]:
    """The check's environment: the user's, without credentials (it runs our user's shell, not the agent's)."""
    env = {k: v for k, v in os.environ.items() if not SECRET_NAME.search(k)}
    env.setdefault("HOME", str(home))
    return env


def run_check(command: str, cwd: Path, timeout: float) -> CheckResult:
    """`command` through `bash -c` in `cwd`, in a process group of its own: at `timeout` the whole group is killed,
    so nothing it started outlives the check."""
    start = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "-c", command],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=check_env(cwd),
    )
    timed_out = False
    try:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)
            out, _ = proc.communicate()
    finally:  # also on Ctrl-C: the check runs in a session of its own, which no signal of ours reaches
        _kill_group(proc.pid)  # what the command left running in the background goes with it
        proc.wait()
    text = out.decode("utf-8", "replace")
    return CheckResult(
        command=command,
        exit_code=None if timed_out else proc.returncode,
        output=text if len(text) <= TAIL else "…" + text[-TAIL:],
        duration=time.monotonic() - start,
        timed_out=timed_out,
    )


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
