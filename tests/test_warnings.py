"""A passing run exits 0 in a project with `filterwarnings = error`: no resource left open, whatever the executor
or the provider (a ResourceWarning raised at exit used to turn a green run into exit 1)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import StandIn, chatgpt_login, run

STRICT = ("-W", "error::ResourceWarning", "-W", "error")


@pytest.fixture
def strict(project: pytest.Pytester) -> pytest.Pytester:
    project.makeini("[pytest]\nfilterwarnings = error\n")
    return project


@pytest.mark.parametrize("executor", ["codex", "app-server", "agents"])
@pytest.mark.parametrize("parallel", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_every_executor_leaves_nothing_open(strict: pytest.Pytester, executor: str, parallel: tuple[str, ...]) -> None:
    result = run(strict, "--interllm", "input/list.md", "--interllm-executor", executor, *parallel, *STRICT)
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    assert "ResourceWarning" not in result.stdout.str() + result.stderr.str()


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
