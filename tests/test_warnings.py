"""A passing run exits 0 in a project with `filterwarnings = error`: no resource left open, whatever the executor
or the provider (a ResourceWarning raised at exit used to turn a green run into exit 1).

Every executor's own end-to-end run checks it, serially and under xdist (`strict` in tests/conftest.py):
codex in test_run.py and test_matrix.py, app-server in test_appserver.py, agents in test_agents.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import STRICT, StandIn, chatgpt_login, run
from tests.conftest import strict as make_strict


@pytest.fixture
def strict(project: pytest.Pytester) -> pytest.Pytester:
    make_strict(project)
    return project


def test_record_and_replay_leave_nothing_open(strict: pytest.Pytester) -> None:
    for provider in ("record", "replay"):
        result = run(strict, "--interllm", "input/list.md", "--interllm-provider", provider, *STRICT)
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
    result = run(strict, "--interllm", "input/list.md", *args, "--interllm-executor", executor, *STRICT)
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    assert "ResourceWarning" not in result.stdout.str() + result.stderr.str()
