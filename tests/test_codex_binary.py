"""A missing or broken codex: one clear usage error when the run starts, no per-scenario noise."""

from __future__ import annotations

import os

import pytest

from tests.conftest import outputs, run, write


def _script(pytester: pytest.Pytester, name: str, body: str) -> str:
    path = write(pytester.path / "bin" / name, "#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return str(path)


def test_missing_codex_is_one_usage_error(project: pytest.Pytester) -> None:
    result = run(project, "--interllm", "input/list.md", "--interllm-codex", "/nonexistent/codex")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-interllm: --interllm-executor codex: no usable codex binary with `mcp-server`; tried:",
            "  - --interllm-codex/INTERLLM_CODEX=/nonexistent/codex: /nonexistent/codex: no such file",
            "fix: python -m pytest_interllm install-codex  (installs codex 0.153.4, the newest with mcp-server)",
        ]
    )
    assert "scenario_00" not in result.stdout.str()
    assert outputs(project) == []


def test_codex_without_mcp_server_is_refused(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    newer = _script(project, "codex", 'case "$1" in --version) echo "codex-cli 0.160.0";; *) exit 2;; esac\n')
    monkeypatch.setenv("INTERLLM_CODEX", newer)
    result = run(project, "--interllm", "input/list.md")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*INTERLLM_CODEX={newer}: {newer} (codex-cli 0.160.0): has no `mcp-server` command*"])


def test_broken_codex_names_its_exit_status(project: pytest.Pytester) -> None:
    broken = _script(project, "codex", "echo 'error while loading shared libraries' >&2\nexit 127\n")
    result = run(project, "--interllm", "input/list.md", "--interllm-codex", broken)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{broken}: `--version` exited 127: error while loading shared libraries*"])


FAKE_CODEX = (
    'case "$1" in --version) echo "codex-cli 0.153.4";; mcp-server) echo "Usage: codex mcp-server [OPTIONS]";; '
    "*) exit 2;; esac\n"
)


def test_codex_on_path_is_found_when_the_cache_and_the_sdk_have_none(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codex_cli_bin

    from pytest_interllm.codex.locate import CodexMissing, locate

    def missing() -> str:
        raise FileNotFoundError("no bundled binary in this wheel")

    monkeypatch.setattr(codex_cli_bin, "bundled_codex_path", missing)
    monkeypatch.setenv("INTERLLM_CODEX_CACHE", str(pytester.path / "empty-cache"))
    monkeypatch.setenv("PATH", str(pytester.path / "bin"))
    with pytest.raises(CodexMissing) as info:
        locate(None)
    assert str(info.value).splitlines() == [
        "no usable codex binary with `mcp-server`; tried:",
        f"  - the cache {pytester.path / 'empty-cache'} (no codex ≤ 0.153.4 there): (none): no such file",
        "  - openai-codex-cli-bin (FileNotFoundError: no bundled binary in this wheel): (none): no such file",
        "  - codex on PATH (not found): (none): no such file",
        "fix: python -m pytest_interllm install-codex  (installs codex 0.153.4, the newest with mcp-server)",
    ]
    on_path = _script(pytester, "codex", FAKE_CODEX)
    found = locate(None)
    assert (found.path, found.version) == (on_path, "codex-cli 0.153.4")
