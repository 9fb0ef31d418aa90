"""The models the installed codex knows, and the one a user's codex would pick.

`codex debug models --bundled` prints the catalog shipped in the binary (codex-rs/cli, `debug models`; the same
models app-server's `model/list` lists for a custom provider, which never refreshes it). The default is the listed
model of the lowest `priority`, as app-server marks it `isDefault`. For a model not in it codex warns "Model
metadata for `…` not found" and runs on fallback metadata (other reasoning settings and tools).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pytest_interllm.codex import answers
from pytest_interllm.workdirs import Workdir

FALLBACK_MODEL = "gpt-5-codex"  # when no codex can be asked: the field report's model


@dataclass(frozen=True)
class Catalog:
    """One codex binary's bundled catalog: the models it lists (by priority), the hidden ones, its default."""

    version: str
    listed: tuple[str, ...]
    hidden: tuple[str, ...]
    default: str | None

    def knows(self, model: str) -> bool:
        return model in self.listed or model in self.hidden


@functools.lru_cache(maxsize=8)
def bundled_catalog(codex: str, version: str = "") -> Catalog | None:
    """The catalog of the codex at `codex` (None when it cannot tell: an older codex, a broken binary)."""
    known = answers.recall(codex, "debug models --bundled")
    if isinstance(known, dict) and isinstance(known.get("listed"), list) and isinstance(known.get("hidden"), list):
        listed, hidden = tuple(map(str, known["listed"])), tuple(map(str, known["hidden"]))  # asked in an earlier run
    else:
        asked = _ask(codex)
        if asked is None:
            return None
        listed, hidden = asked
        answers.keep(codex, "debug models --bundled", {"listed": listed, "hidden": hidden})
    return Catalog(version, listed, hidden, listed[0] if listed else None)


def _ask(codex: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """`codex debug models --bundled`: the listed models by priority, and the hidden ones."""
    workdir = Workdir("catalog")  # locked: a run killed meanwhile leaves it to the next run to remove
    home = str(workdir.path)
    env = {"HOME": home, "CODEX_HOME": home, "PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8"}
    try:
        done = subprocess.run(
            [codex, "debug", "models", "--bundled"],
            env=env,
            cwd=home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=False,
        )
        data = json.loads(done.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    finally:
        workdir.remove()
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        return None
    entries = sorted(
        (m for m in models if isinstance(m, dict) and isinstance(m.get("slug"), str)),
        key=lambda m: int(m["priority"]) if isinstance(m.get("priority"), int) else 1_000_000,
    )
    listed = tuple(str(m["slug"]) for m in entries if m.get("visibility", "list") == "list")
    hidden = tuple(str(m["slug"]) for m in entries if m.get("visibility", "list") != "list")
    return listed, hidden


def user_model(environ: Mapping[str, str]) -> tuple[str, Path] | None:
    """The model the user's own codex config names (its active profile's first), and the file; None if none."""
    path = codex_home(environ) / "config.toml"
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    profiles = config.get("profiles")
    profile = profiles.get(config.get("profile")) if isinstance(profiles, dict) else None
    model = profile.get("model") if isinstance(profile, dict) and profile.get("model") else config.get("model")
    return (model.strip(), path) if isinstance(model, str) and model.strip() else None


def codex_home(environ: Mapping[str, str]) -> Path:
    """The user's own CODEX_HOME, as their codex finds it."""
    if environ.get("CODEX_HOME"):
        return Path(environ["CODEX_HOME"]).expanduser()
    return Path(environ.get("HOME") or Path.home()) / ".codex"
