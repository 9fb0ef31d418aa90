"""The plugin's own output files: where they may go, which ones it wrote, and removing those at the next run.

A test tool must never delete or overwrite a file it did not write. Three rules keep that promise:

- every output path is resolved (symlinked directories too) and must stay inside the rootdir or the output
  dir, and never be an input of the run (a list, its template or expectations, `.env`, a pytest config file);
- before an attempt, a file at the output path that the plugin did not write (by this process's record or a
  signed manifest entry) is moved aside into `<output dir>/.interllm-kept/<time>/`, never deleted;
- the manifest (`<output dir>/.interllm-manifest.jsonl`: path, SHA-256 and an HMAC of each file an attempt
  left) is read with suspicion: at the next run the controller removes only signed entries inside the output
  dir that still hold what the agent wrote and are regular files and no input; a manifest that cannot be read
  is set aside, one that cannot be written is noted — never fatal.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pytest_interllm.inputs import input_files, list_inputs
from pytest_interllm.settings import Settings

MANIFEST = ".interllm-manifest.jsonl"
KEPT = ".interllm-kept"
# Files of a project that configure or feed the run: never an output, whatever the YAML says.
CONFIG_FILES = (".env", "pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg", "conftest.py")
_MAX_MANIFEST = 16 * 1024 * 1024  # a manifest is a few lines per scenario; anything huge is not ours


class OutputDirError(Exception):
    """An output dir that cannot hold the plugin's files, or would mix them with the run's inputs."""


class OutputPathError(Exception):
    """An output path the plugin must not write: outside the rootdir, an input of the run, or unclearable."""


def _inside(path: Path, *roots: Path) -> bool:
    """Whether `path` is one of `roots` or below one (by parts: `is_relative_to` raises inside, which is slow)."""
    parts = path.parts
    return any(parts[: len(root.parts)] == root.parts for root in roots)


def protected_files(settings: Settings) -> dict[Path, str]:
    """Every file of the run that no output may replace, resolved, with what it is."""
    found = {path.resolve(): what for path, what in input_files(list_inputs(settings)).items()}
    extra = {
        settings.inifile: "the pytest configuration file",
        settings.auth_file: "the login file",
        settings.prices: "the price table",
        settings.baseline: "the baseline log",
        settings.template: "the prompt template",
    }
    for path, what in extra.items():
        if path is not None:
            found.setdefault(path.resolve(), what)
    for name in CONFIG_FILES:
        found.setdefault((settings.rootdir / name).resolve(), "a file that configures the run")
    for path in settings.lists:
        found.setdefault(path.resolve(), "the scenario list")
    return found


def check_output_dir(settings: Settings, inputs: Mapping[Path, str]) -> None:
    """Refuse an output dir that is or holds the rootdir, holds an input of the run, is not a directory, or cannot
    be written; create it when it does not exist."""
    out = settings.output_dir
    value, source = settings.output_dir_given or (settings.relative(out), "--interllm-output-dir")
    source = "--interllm-output-dir" if source == "default" else source
    problem = None
    if out == settings.rootdir:
        problem = "is the rootdir"
    elif settings.rootdir.is_relative_to(out):
        problem = "holds the rootdir"
    else:
        for path, what in sorted(inputs.items()):
            if path.is_relative_to(out):
                problem = f"holds {what} {settings.relative(path)}"
                break
    if problem is not None:
        raise OutputDirError(
            f"{source}: {value!r} {problem}: scenarios write their files there and the plugin removes its earlier "
            "ones at each run; choose a directory of its own (default outputs)"
        )
    if out.exists() and not out.is_dir():
        raise OutputDirError(f"{source}: {value!r} is a file, not a directory: choose a directory for the outputs")
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".interllm-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputDirError(
            f"{source}: {value!r} cannot be written ({exc.strerror or exc}): scenarios write their files there; "
            "make it writable or choose another directory"
        ) from None


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass
class Cleanup:
    """What the start of a run removed from the output dir, what it kept, and what it could not use."""

    removed: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def signing_key() -> bytes:
    """This user's key for manifest entries (`~/.cache/pytest-interllm/manifest.key`, made once, mode 0600): an
    entry the plugin did not write on this machine — a forged or copied manifest — is never trusted."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pytest-interllm"
    path = base / "manifest.key"
    try:
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    except FileExistsError:
        pass
    except OSError:
        return _PROCESS_KEY  # no cache to keep a key in: this process's entries only (nothing older is removed)
    try:
        return path.read_bytes().strip() or _PROCESS_KEY
    except OSError:
        return _PROCESS_KEY


_PROCESS_KEY = secrets.token_hex(32).encode()


class Manifest:
    """The output files this plugin wrote into or for one output dir, each entry signed with the user's key.
    The controller compacts it at the start of a run; every process appends what its attempts wrote."""

    def __init__(self, settings: Settings, protected: Mapping[Path, str] | None = None) -> None:
        self.settings = settings
        self.path = settings.output_dir / MANIFEST
        self.protected = protected if protected is not None else protected_files(settings)
        self.problems: list[str] = []  # what could not be read or written, for the log and the summary
        self._key = signing_key()
        self._lock = threading.Lock()

    def _sign(self, name: str, digest: str) -> str:
        return hmac.new(self._key, f"{name}\0{digest}".encode(), hashlib.sha256).hexdigest()

    def _set_aside(self, why: str) -> None:
        """A manifest we cannot read is renamed, never deleted and never fatal."""
        aside = self.path.with_name(f"{MANIFEST}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        try:
            os.rename(self.path, aside)
            where = f"set aside as {self.settings.relative(aside)}"
        except OSError as exc:
            where = f"left as it is ({exc.strerror or exc})"
        problem = f"{self.settings.relative(self.path)} {why}: {where}; no earlier output was removed"
        if problem not in self.problems:
            self.problems.append(problem)

    def _read(self) -> list[tuple[str, str, bool]]:
        """The entries as written (path text, sha256, whether this user's plugin signed it); a manifest that is not
        a plain readable UTF-8 file is set aside."""
        if not os.path.lexists(self.path):
            return []
        if self.path.is_symlink() or not self.path.is_file():
            self._set_aside("is not a regular file")
            return []
        try:
            if self.path.stat().st_size > _MAX_MANIFEST:
                self._set_aside("is too large to be the plugin's")
                return []
            text = self.path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            self._set_aside("is not UTF-8 text")
            return []
        except OSError as exc:
            self._set_aside(f"cannot be read ({exc.strerror or exc})")
            return []
        entries = []
        for line in text.splitlines():
            with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
                data = json.loads(line)
                name, digest = str(data["path"]), str(data["sha256"])
                signed = hmac.compare_digest(str(data.get("sig", "")), self._sign(name, digest))
                entries.append((name, digest, signed))
        return entries

    def _where(self, name: str) -> Path | None:
        """The file an entry names, if the plugin may ever remove it: a relative path (or one inside the output
        dir), resolving inside the rootdir or the output dir, not an input, not a link, not in the kept dir."""
        out, root = self.settings.output_dir, self.settings.rootdir
        entry = Path(name)
        path = entry if entry.is_absolute() else root / entry
        if path.is_symlink():
            return None
        real = path.resolve()
        if not _inside(real, root, out) or _inside(real, out / KEPT) or real == self.path or real in self.protected:
            return None
        if _inside(real, root) and ".git" in real.relative_to(root).parts:
            return None
        return real

    def knows(self, path: Path, digest: str) -> bool:
        """Whether a signed entry says the plugin left exactly this content at `path` (any process, any run)."""
        shown = self._name(path)
        return any(name == shown and sha == digest and signed for name, sha, signed in self._read())

    def clear(self) -> Cleanup:
        """Remove the earlier outputs in the output dir that still hold what the agent wrote; keep the signed
        entries elsewhere in the rootdir (such a file is replaced only when its scenario writes it again)."""
        done = Cleanup()
        carried: dict[str, str] = {}
        for name, digest, signed in self._read():
            path = self._where(name) if signed else None
            if path is None:
                why = "a place the plugin never writes" if signed else "not signed by the plugin on this machine"
                done.kept.append((name, f"manifest entry ignored: {why}"))
                continue
            if not path.is_file():
                continue
            if _digest(path) != digest:
                done.kept.append((name, "changed since the plugin wrote it"))
                continue
            if not _inside(path, self.settings.output_dir):
                carried[name] = digest
                continue
            try:
                path.unlink()
            except OSError as exc:
                done.kept.append((name, f"could not be removed ({exc.strerror or exc})"))
                continue
            done.removed.append(name)
        if self.path.is_file() and not self.path.is_symlink():
            try:
                self.path.unlink()
            except OSError as exc:
                self.problems.append(f"{self.settings.relative(self.path)} could not be reset ({exc.strerror or exc})")
        for name, digest in carried.items():
            self._append(name, digest)
        done.problems = self.problems
        return done

    def _name(self, path: Path) -> str:
        return self.settings.relative(path)

    def _append(self, name: str, digest: str) -> str | None:
        line = json.dumps({"path": name, "sha256": digest, "sig": self._sign(name, digest)}) + "\n"
        try:
            if os.path.lexists(self.path) and (self.path.is_symlink() or not self.path.is_file()):
                raise OSError(f"{self.settings.relative(self.path)} is not a regular file")
            # One writer at a time: xdist workers and scenarios in flight append to the same file.
            with self._lock, self.path.open("a", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                fh.write(line)
                fh.flush()
        except OSError as exc:
            problem = (
                f"could not record {name} in {self.settings.relative(self.path)} ({exc.strerror or exc}): "
                "the next run will leave it in place"
            )
            if problem not in self.problems:
                self.problems.append(problem)
            return problem
        return None

    def add(self, path: Path, digest: str) -> str | None:
        """Record an output file an attempt left (its content now), so the next run may remove it; a manifest
        that cannot be written (a full disk, a read-only dir) is noted and returned, never fatal."""
        return self._append(self._name(path), digest)


def output_target(
    settings: Settings,
    protected: Mapping[Path, str],
    output_file: Path | str,
    resolved: dict[Path, Path] | None = None,
) -> Path:
    """Where an output file really goes (its directory resolved through symlinks), or `OutputPathError` when the
    plugin must not write there: outside the rootdir and the output dir, an input of the run, its bookkeeping.
    `resolved` (directory → where it resolves) spares collection resolving one directory once per scenario."""
    s = settings
    given = Path(output_file)
    path = given if given.is_absolute() else s.rootdir / given
    if path.name in ("", ".", ".."):
        raise OutputPathError(f"output file {str(output_file)!r} is not a file name")
    parent = resolved.get(path.parent) if resolved is not None else None
    if parent is None:
        parent = path.parent.resolve()
        if resolved is not None:
            resolved[path.parent] = parent
    real = parent / path.name
    if not _inside(real, s.rootdir, s.output_dir):
        raise OutputPathError(
            f"output file {s.relative(path)} resolves to {real}, outside the rootdir {s.rootdir} and the output dir "
            f"{s.relative(s.output_dir)}/ (through a symlinked directory?): the plugin writes only inside them"
        )
    if _inside(real, s.output_dir / KEPT) or real == s.output_dir / MANIFEST:
        raise OutputPathError(f"output file {s.relative(path)} is the plugin's own bookkeeping ({KEPT}/ or {MANIFEST})")
    if _inside(real, s.rootdir) and ".git" in real.parts[len(s.rootdir.parts) :]:
        raise OutputPathError(f"output file {s.relative(path)} is inside .git/")
    if real in protected:  # a link standing there is moved aside before an attempt, never written through
        raise OutputPathError(
            f"output file {s.relative(path)} would overwrite {protected[real]} ({s.relative(real)}): an input of the "
            "run is never an output"
        )
    return real


class OutputGuard:
    """One process's guard over the output paths of its attempts: checks each path, clears it without losing a
    user's file, and records what each attempt wrote in the manifest."""

    def __init__(self, settings: Settings, protected: Mapping[Path, str] | None = None) -> None:
        self.settings = settings
        self.protected = protected if protected is not None else protected_files(settings)
        self.manifest = Manifest(settings, self.protected)
        self.moved: list[tuple[str, str]] = []  # (the user's file, where it went)
        self._ours: dict[Path, str] = {}  # output path → SHA-256 of what an attempt of this process left there
        self._cleared: set[Path] = set()  # every path an attempt of this process was given
        self._lock = threading.Lock()

    def target(self, output_file: Path | str) -> Path:
        """The absolute output path, or `OutputPathError` when the plugin must not write there."""
        return output_target(self.settings, self.protected, output_file)

    def prepare(self, output_file: Path | str) -> tuple[Path, str | None]:
        """Check the path and clear it for an attempt: the plugin's own earlier file is removed, anything else
        (a user's file, a link, a directory) is moved aside into the kept dir. The path, and a note saying where a
        user's file went, if one stood there."""
        target = self.target(output_file)
        with self._lock:
            self._cleared.add(target)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputPathError(f"cannot create {self.settings.relative(target.parent)}/: {exc}") from None
        if not os.path.lexists(target):
            return target, None
        digest = None if target.is_symlink() or not target.is_file() else _digest(target)
        if digest is not None and (self._ours.get(target) == digest or self.manifest.knows(target, digest)):
            try:
                target.unlink()  # the plugin's own earlier output: it must not count as written by this attempt
                return target, None
            except OSError as exc:
                raise OutputPathError(
                    f"cannot remove the earlier output {self.settings.relative(target)}: {exc}"
                ) from None
        return target, self._move_aside(target)

    def _move_aside(self, target: Path) -> str:
        s = self.settings
        # Under the output dir as it stands there (`scenario_001.md`), else as it stands under the rootdir.
        relative = target.relative_to(s.output_dir) if _inside(target, s.output_dir) else Path(s.relative(target))
        kept = s.output_dir / KEPT / time.strftime("%Y%m%d-%H%M%S") / relative
        n = 1
        while os.path.lexists(kept):
            n += 1
            kept = kept.with_name(f"{relative.stem}~{n}{relative.suffix}")
        try:
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(target), str(kept))  # a rename; moves a link itself, never what it points to
        except OSError as exc:
            raise OutputPathError(
                f"{s.relative(target)} is not the plugin's and could not be moved aside to {s.relative(kept)}: {exc}; "
                "the agent was not started"
            ) from None
        with self._lock:
            self.moved.append((s.relative(target), s.relative(kept)))
        return f"{s.relative(target)} was not written by the plugin: moved aside to {s.relative(kept)}"

    def settle(self, target: Path) -> str | None:
        """An attempt is over: what it left at `target` is the plugin's, recorded in the manifest; a problem
        recording it, if any."""
        if target.is_symlink() or not target.is_file():
            return None
        digest = _digest(target)
        if digest is None or self._ours.get(target) == digest:
            return None
        with self._lock:
            self._ours[target] = digest
        return self.manifest.add(target, digest)

    def close(self) -> None:
        """Record what attempts cut short wrote after their verdict (-x, Ctrl-C: codex may finish a command while it
        shuts down). Called once codex has stopped; every path here was cleared for an attempt, so what stands
        there now is the agent's."""
        with self._lock:
            cleared = list(self._cleared)
        for target in cleared:
            self.settle(target)

    @property
    def problems(self) -> list[str]:
        return self.manifest.problems
