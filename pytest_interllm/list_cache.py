"""Parsed scenario lists kept in pytest's cache (`.pytest_cache/d/interllm-lists/`), one JSON file per list,
valid while its key (the list's bytes, the parser's and markdown-it's versions) is unchanged."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any


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
    try:
        data = json.loads(_file(cache_dir, path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("key") == key else None


def keep(cache_dir: Path, path: Path, key: str, data: dict[str, Any]) -> None:
    """Keep `data` for the list under `key`; what JSON cannot carry (e.g. YAML dates) is not kept."""
    try:
        payload = json.dumps({"key": key, **data}, ensure_ascii=False)
    except (TypeError, ValueError):
        forget(cache_dir, path)
        return
    target = _file(cache_dir, path)
    # A private temporary name and an atomic rename: xdist workers may write the same list at once.
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(payload, encoding="utf-8")
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
