"""A passing run exits 0 in a project with `filterwarnings = error`: no resource left open, whatever the executor
or the provider (a ResourceWarning raised at exit used to turn a green run into exit 1).

Every executor's own end-to-end run checks it, serially and under xdist (`strict` in tests/conftest.py):
codex in test_run.py and test_matrix.py, app-server in test_appserver.py, agents in test_agents.py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.conftest import STRICT, StandIn, chatgpt_login, run, write
from tests.conftest import strict as make_strict


@pytest.fixture
def strict(project: pytest.Pytester) -> pytest.Pytester:
    make_strict(project)
    return project


def test_record_and_replay_leave_nothing_open(strict: pytest.Pytester) -> None:
    for provider in ("record", "replay"):
        result = run(strict, "--interllm", "input/list.md", "--interllm-provider", provider, *STRICT, fresh=True)
        result.assert_outcomes(passed=3)
        assert result.ret == pytest.ExitCode.OK, provider
        assert "ResourceWarning" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize("executor", ["codex", "app-server"])
def test_a_real_run_with_a_login_leaves_nothing_open(
    strict: pytest.Pytester, upstream: Callable[..., StandIn], executor: str
) -> None:
    tokens = chatgpt_login(strict.path / ".codex" / "auth.json")
    server = upstream((tokens["access_token"],), account_id=tokens["account_id"])
    args = ("--interllm-provider", "openai", "--interllm-base-url", f"http://127.0.0.1:{server.port}")
    result = run(strict, "--interllm", "input/list.md", *args, "--interllm-executor", executor, *STRICT, fresh=True)
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    assert "ResourceWarning" not in result.stdout.str() + result.stderr.str()


def test_the_collector_is_frozen_only_as_the_process_exits(project: pytest.Pytester) -> None:
    """The plugin skips the garbage collector's last passes at interpreter exit (`gc.freeze` in an atexit handler,
    which runs before one registered ahead of the run): a program that calls pytest in-process and goes on keeps a
    collector that frees everything, and an object it leaves unclosed is still reported."""
    write(
        project.path / "driver.py",
        "import atexit, gc, sys, pytest\n"
        "atexit.register(lambda: print('at exit, frozen:', gc.get_freeze_count() > 0))\n"
        "for _ in range(2):\n"
        "    assert pytest.main(['-q', '-p', 'no:cacheprovider', '--interllm', 'input/list.md']) == 0\n"
        "print('after the runs, frozen:', gc.get_freeze_count() > 0)\n"
        "class Cycle:\n"
        "    def __init__(self): self.me = self; self.file = open('driver.py')\n"
        "Cycle()\n"
        "gc.collect()\n",
    )
    done = subprocess.run(
        [sys.executable, "-W", "always::ResourceWarning", "driver.py"],
        cwd=project.path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "after the runs, frozen: False" in done.stdout and "at exit, frozen: True" in done.stdout, done.stdout
    assert "ResourceWarning: unclosed file" in done.stderr, done.stderr
