"""Parsed scenario lists kept in pytest's cache (`.pytest_cache/d/interllm-lists/`), one JSON file per list,
valid while its key (the list's bytes, the parser's and markdown-it's versions) is unchanged."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from pytest_interllm.jsonfile import read_object, write_whole


def list_cache_dir(config: Any) -> Path | None:
    """Where parsed lists are kept: pytest's cache, unless the cache provider is off (`-p no:cacheprovider`)."""
    cache = getattr(config, "cache", None)
    if cache is None:
        return None
    try:
        return Path(cache.mkdir("interllm-lists"))
    except OSError:
        return None


def _file(cache_dir: Path, path: Path) -> Path:
    return cache_dir / (hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24] + ".json")


def forget(cache_dir: Path, path: Path) -> None:
    """Remove what the cache holds of this list (an earlier run may have kept it before its secret was known)."""
    with contextlib.suppress(OSError):
        _file(cache_dir, path).unlink(missing_ok=True)


def read(cache_dir: Path, path: Path, key: str) -> dict[str, Any] | None:
    """What was kept of the list under `key`; None when missing, stale or unreadable (parse again)."""
    data = read_object(_file(cache_dir, path))
    return data if data is not None and data.get("key") == key else None


def keep(cache_dir: Path, path: Path, key: str, data: dict[str, Any]) -> None:
    """Keep `data` for the list under `key`; what JSON cannot carry (e.g. YAML dates) is not kept."""
    try:
        payload = json.dumps({"key": key, **data}, ensure_ascii=False)
    except (TypeError, ValueError):
        forget(cache_dir, path)
        return
    write_whole(_file(cache_dir, path), payload)  # xdist workers may write the same list at once
