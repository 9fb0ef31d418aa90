"""Shared helpers: small scenario projects run by pytester against the real codex and scripted model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_interllm.outputs import MANIFEST

THREE = """\
# Replication

1. Copy the `orders` table to the warehouse
   - Use updated_at as the watermark
2. Stream CDC events to Kafka

## Files

- Pick up CSV drops from SFTP
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own INTERLLM_* variables must not change what a test sees."""
    for name in list(os.environ):
        if name.startswith("INTERLLM_") or name in ("OPENAI_API_KEY", "OPENAI_DEFAULT_MODEL", "CODEX_HOME"):
            monkeypatch.delenv(name)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A rootdir with `input/list.md` (three scenarios in two sections) and an ini that pins the rootdir."""
    pytester.makeini("[pytest]\n")
    write(pytester.path / "input" / "list.md", THREE)
    return pytester


def write(path: Path, text: str) -> Path:
    """Write `text` to `path`, creating parent directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in a child process (codex is a real child process of it), with a generous timeout."""
    return pytester.runpytest_subprocess(*args, timeout=300)


def outputs(pytester: pytest.Pytester) -> list[str]:
    """Names of the files in `outputs/` (but the plugin's manifest of what it wrote)."""
    out = pytester.path / "outputs"
    return sorted(p.name for p in out.iterdir() if p.name != MANIFEST) if out.is_dir() else []
