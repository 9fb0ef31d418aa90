"""A missing or broken codex: one clear usage error when the run starts, no per-scenario noise."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pytest_interllm.codex.install import CACHE_ENV
from tests.conftest import outputs, write


def _script(pytester: pytest.Pytester, name: str, body: str) -> str:
    path = write(pytester.path / "bin" / name, "#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return str(path)


def test_missing_codex_is_one_usage_error(project: pytest.Pytester) -> None:
    # In process: refused at start-up, before any codex would run.
    result = project.runpytest("--interllm", "input/list.md", "--interllm-codex", "/nonexistent/codex")
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
    result = project.runpytest("--interllm", "input/list.md")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*INTERLLM_CODEX={newer}: {newer} (codex-cli 0.160.0): has no `mcp-server` command*"])


def test_broken_codex_names_its_exit_status(project: pytest.Pytester) -> None:
    broken = _script(project, "codex", "echo 'error while loading shared libraries' >&2\nexit 127\n")
    result = project.runpytest("--interllm", "input/list.md", "--interllm-codex", broken)
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


def _codex_wheel(folder: Path, version: str) -> Path:
    """A wheel of openai-codex-cli-bin whose codex is a shell script: what install-codex fetches, made here."""
    dist = f"openai_codex_cli_bin-{version}"
    files = {
        "codex_cli_bin/__init__.py": b"",
        "codex_cli_bin/bin/codex": f'#!/bin/sh\necho "codex-cli {version}"\n'.encode(),
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: openai-codex-cli-bin\nVersion: {version}\n".encode()
        ),
        f"{dist}.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [
        f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip('=')},{len(data)}"
        for name, data in files.items()
    ]
    files[f"{dist}.dist-info/RECORD"] = "\n".join([*record, f"{dist}.dist-info/RECORD,,", ""]).encode()
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100755 if name.endswith("/codex") else 0o100644) << 16  # regular file, mode
            archive.writestr(info, data)
    return wheel


def test_install_codex_reports_no_conflict_for_its_own_directory(tmp_path: Path) -> None:
    """The environment's openai-codex pins another openai-codex-cli-bin; the cache is no part of the environment,
    so pip has nothing to object to and the command prints one line."""
    wheels, cache = tmp_path / "wheels", tmp_path / "cache"
    _codex_wheel(wheels, "0.0.1")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), CACHE_ENV: str(cache)}
    done = subprocess.run(
        [sys.executable, "-m", "pytest_interllm", "install-codex", "0.0.1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    codex = cache / "0.0.1" / "codex_cli_bin" / "bin" / "codex"
    assert done.returncode == 0, done.stderr
    assert "ERROR" not in done.stderr and "conflict" not in done.stderr, done.stderr
    assert done.stdout == f"codex 0.0.1 is at {codex} (cache: {cache}; ${CACHE_ENV} moves it)\n"
    assert subprocess.run([codex, "--version"], capture_output=True, text=True).stdout == "codex-cli 0.0.1\n"


def test_the_version_and_help_checks_run_at_the_same_time(tmp_path: Path) -> None:
    """Start-up waits on the slower of `codex --version` and `codex mcp-server --help`, not on both in turn: the
    second starts before the first ends."""
    from pytest_interllm.codex.locate import check

    log = tmp_path / "calls.log"
    fake = tmp_path / "codex"
    write(
        fake,
        "#!/bin/sh\n"
        f'echo "start $1" >> {log}\n'
        "sleep 0.5\n"
        f'echo "end $1" >> {log}\n'
        'if [ "$1" = "--version" ]; then echo "codex-cli 0.153.4"; else echo "Usage: codex mcp-server [OPTIONS]"; fi\n',
    )
    fake.chmod(0o755)
    assert check(str(fake)).version == "codex-cli 0.153.4"
    events = [line.split()[0] for line in log.read_text().splitlines()]
    assert events == ["start", "start", "end", "end"], log.read_text()


ASKED_CODEX = (
    "#!/bin/sh\n"
    'echo "$*" >> "$(dirname "$0")/calls.log"\n'
    'case "$1" in\n'
    '  --version) echo "codex-cli {version}" ;;\n'
    '  debug) echo \'{{"models": [{{"slug": "gpt-b", "priority": 2}}, {{"slug": "gpt-a", "priority": 1}}]}}\' ;;\n'
    '  *) echo "{help}" ;;\n'
    "esac\n"
)


def test_a_binary_that_passed_is_not_asked_again_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every run checks codex and reads its catalog; the same binary's passing answers are kept for the next run,
    and a changed binary (or one that failed) is asked again."""
    from pytest_interllm.codex.catalog import bundled_catalog
    from pytest_interllm.codex.locate import CodexMissing, check

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    fake = tmp_path / "codex_cli_bin" / "bin" / "codex"  # where OpenAI's wheel keeps its codex
    log = fake.parent / "calls.log"
    fake.parent.mkdir(parents=True)

    def asked() -> list[str]:
        return log.read_text().splitlines() if log.exists() else []

    def catalog() -> tuple[str, ...] | None:
        bundled_catalog.cache_clear()  # the in-process cache: this is about the next run
        found = bundled_catalog(str(fake), "v")
        return found.listed if found is not None else None

    write(fake, ASKED_CODEX.format(version="0.153.4", help="Usage: codex mcp-server [OPTIONS]"))
    fake.chmod(0o755)
    for _ in range(3):
        assert check(str(fake)).version == "codex-cli 0.153.4"
        assert catalog() == ("gpt-a", "gpt-b")
    assert sorted(asked()) == ["--version", "debug models --bundled", "mcp-server --help"]  # once each

    write(fake, ASKED_CODEX.format(version="0.153.3", help="Usage: codex mcp-server [OPTIONS]"))  # upgraded in place
    assert check(str(fake)).version == "codex-cli 0.153.3"
    assert len(asked()) == 5

    (tmp_path / "cache" / "answers.json").write_text("{not json")  # a broken file: as if there were none
    assert check(str(fake)).version == "codex-cli 0.153.3"
    assert len(asked()) == 7
    assert check(str(fake)).version == "codex-cli 0.153.3"
    assert len(asked()) == 7

    write(fake, ASKED_CODEX.format(version="0.153.3", help="no such command"))  # fails: never kept
    for _ in range(2):
        with pytest.raises(CodexMissing, match="has no `mcp-server` command"):
            check(str(fake))
    assert len(asked()) == 11


def test_a_codex_outside_openais_wheel_is_asked_every_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A codex named by --interllm-codex or found on PATH may be a wrapper or a version manager's shim that runs
    another codex tomorrow: its answers are never kept."""
    from pytest_interllm.codex.locate import check

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    shim = tmp_path / "shims" / "codex"
    shim.parent.mkdir()
    write(shim, ASKED_CODEX.format(version="0.153.4", help="Usage: codex mcp-server [OPTIONS]"))
    shim.chmod(0o755)
    for _ in range(2):
        assert check(str(shim)).version == "codex-cli 0.153.4"
    assert len((shim.parent / "calls.log").read_text().splitlines()) == 4
    assert not (tmp_path / "cache" / "answers.json").exists()
