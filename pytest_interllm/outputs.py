"""The plugin's own output files: where they may go, which ones it wrote, and removing those at the next run.

A test tool must never delete a file it did not write. The controller keeps a manifest in the output dir
(`.interllm-manifest.jsonl`: path and SHA-256 of each output file a scenario left), and at the start of the
next run removes exactly those files that still hold what the agent wrote. A file the user put there, or
edited since, stays.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pytest_interllm.settings import Settings

MANIFEST = ".interllm-manifest.jsonl"


class OutputDirError(Exception):
    """An output dir that would mix the plugin's files with the run's inputs."""


def check_output_dir(settings: Settings, inputs: Mapping[Path, str]) -> None:
    """Refuse an output dir that is or holds the rootdir, or holds a list, a template or an expectations file."""
    out = settings.output_dir
    value, source = settings.output_dir_given or (settings.relative(out), "--interllm-output-dir")
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


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


@dataclass
class Cleanup:
    """What the start of a run removed from the output dir, and what it kept."""

    removed: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)


class Manifest:
    """The output files this plugin wrote into or for one output dir (controller only)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = settings.output_dir / MANIFEST

    def _entries(self) -> dict[str, str]:
        entries: dict[str, str] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return entries
        for line in lines:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                data = json.loads(line)
                entries[str(data["path"])] = str(data["sha256"])
        return entries

    def clear(self, inputs: Mapping[Path, str]) -> Cleanup:
        """Remove the earlier outputs that still hold what the agent wrote; start a new manifest."""
        self.settings.output_dir.mkdir(parents=True, exist_ok=True)
        done = Cleanup()
        for name, digest in self._entries().items():
            path = (self.settings.rootdir / name).resolve()
            if path in inputs or not path.is_file():
                continue
            if _digest(path) != digest:
                done.kept.append((name, "changed since the plugin wrote it"))
                continue
            path.unlink()
            done.removed.append(name)
        self.path.unlink(missing_ok=True)
        return done

    def add(self, output_path: str) -> None:
        """Record an output file a scenario left (its content now), so the next run may remove it."""
        path = self.settings.rootdir / output_path
        digest = _digest(path)
        if digest is None:
            return
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"path": self.settings.relative(path.resolve()), "sha256": digest}) + "\n")
