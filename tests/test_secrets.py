"""Secrets never reach anything the run writes: outputs, HTML report, JUnit XML, terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run, write

OPENAI_KEY = "sk-planted-openai-6f1d0c9a2b7e4f38"
BEARER = "sk-planted-bearer-91ac33e0d54b7f02"


def test_planted_secrets_appear_in_no_file_and_no_output(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("INTERLLM_PROVIDER_TOKEN", BEARER)  # sent by codex as `Authorization: Bearer …`
    write(project.path / "scenarios" / "list.yaml", "2:\n  fault: http-401\n3:\n  fault: no-write\n")
    result = run(
        project,
        "--interllm",
        "input/list.md",
        "--interllm-provider",
        "offline",
        "-rA",
        "--html=reports/report.html",
        "--self-contained-html",
        "--junitxml=reports/junit.xml",
        "--interllm-summary=reports/summary.md",
    )
    result.assert_outcomes(passed=1, failed=2)
    written = [p for p in Path(project.path).rglob("*") if p.is_file()]
    assert any(p.name == "report.html" for p in written) and any(p.name == "junit.xml" for p in written)
    assert any(p.name == "scenario_001.md" for p in written)
    assert any(p.suffix == ".jsonl" for p in written) and any(p.name == "summary.md" for p in written)
    for path in written:
        data = path.read_bytes()
        assert OPENAI_KEY.encode() not in data, path
        assert BEARER.encode() not in data, path
    everything = result.stdout.str() + result.stderr.str()
    assert OPENAI_KEY not in everything and BEARER not in everything
    assert "Incorrect API key provided" in everything  # the 401 is reported, without the key
