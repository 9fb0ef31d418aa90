"""Secrets never reach anything the run writes: logs, HTML report, JUnit XML, summary, terminal, cassettes.

Two kinds are planted: key-shaped strings (`sk-…`) and the value of a secret-named variable that looks like
nothing in particular (`WAREHOUSE_PASSWORD`). They are put where the run would carry them everywhere: in
scenario titles and steps, so the prompt, the agent's reply, failure messages and the report all hold them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run, write

OPENAI_KEY = "sk-planted-openai-6f1d0c9a2b7e4f38"
PROVIDER_TOKEN = "planted-provider-token-91ac33e0d54b7f02"  # sent by codex as `Authorization: Bearer …`
PASSWORD = "Hunter2_Xq9-Lm7zP"  # not key-shaped: only its variable's name marks it
PARTNER_KEY = "sk-partner-planted-77aa01bb02cc"  # in the list only, in no variable: masked by its shape
SECRETS = (OPENAI_KEY, PROVIDER_TOKEN, PASSWORD, PARTNER_KEY)
LIST = f"""\
- Rotate the warehouse password {PASSWORD} on the SFTP host
  - Use the partner key {PARTNER_KEY} for the upload
- Copy the nightly dump protected by {PASSWORD}
  - Verify the checksum with {PARTNER_KEY}
- Move the archive to cold storage
"""
MASK = "[REDACTED]"


@pytest.fixture
def planted(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("INTERLLM_PROVIDER_TOKEN", PROVIDER_TOKEN)
    monkeypatch.setenv("WAREHOUSE_PASSWORD", PASSWORD)
    write(project.path / "input" / "list.md", LIST)
    return project


def written_by_the_run(root: Path) -> dict[str, str]:
    """Every file of the run but the user's list, the agent's own output files and pytest's cache of the list."""
    skip = ("input", "outputs", ".pytest_cache")
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8", errors="replace")
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).parts[0] not in skip
    }


def assert_masked(name: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} in {name}"
    assert MASK in text, f"{name} never carried a secret: this check would prove nothing"


def test_planted_secrets_are_masked_in_every_artifact(planted: pytest.Pytester) -> None:
    write(planted.path / "scenarios" / "list.yaml", "2:\n  fault: no-write\n3:\n  fault: http-401\n")
    result = run(
        planted,
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
    files = written_by_the_run(planted.path)
    [log] = [n for n in files if n.endswith(".log")]
    [jsonl] = [n for n in files if n.endswith(".jsonl")]
    for name in (log, jsonl, "reports/report.html", "reports/junit.xml", "reports/summary.md"):
        assert_masked(name, files[name])
    for name, text in files.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} in {name}"
    assert_masked("the terminal", result.stdout.str() + result.stderr.str())
    result.stdout.fnmatch_lines(["*START scenario 1/3: Rotate the warehouse password [[]REDACTED[]] on the SFTP host"])
    assert "Incorrect API key provided" in result.stdout.str()  # the 401 is reported, without the key
    # The agent still got the scenario as written: the secret is the user's to give, and the file holds it.
    assert PASSWORD in (planted.path / "outputs" / "scenario_001.md").read_text()


def test_planted_secrets_are_masked_in_cassettes(planted: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")  # record from the built-in scripted model: there is no real upstream here
    result = run(planted, "--interllm", "input/list.md", "--interllm-provider", "record", "--interllm-log-dir", "none")
    result.assert_outcomes(passed=3)
    files = written_by_the_run(planted.path)
    cassettes = sorted(n for n in files if n.startswith("cassettes/"))
    assert len(cassettes) == 3
    for name in cassettes[:2]:
        assert_masked(name, files[name])
    assert "authorization" not in "".join(files[n].lower() for n in cassettes)
