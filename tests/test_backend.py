"""What a real backend does that the plugin must see, through the audit proxy in front of a stand-in upstream on
127.0.0.1 (tests/conftest.py's StandIn: the scripted model's stream, headers and errors, acting out one of its
faults): a reroute, a plan's usage limit, failures inside a 200 stream, an answer that streams slowly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import StandIn, jsonl, outputs, run, write

KEY = "sk-standin-upstream-key-51d0"
OPENAI = ("--interllm", "input/list.md", "--interllm-provider", "openai")


@pytest.fixture
def backend(
    project: pytest.Pytester, upstream: Callable[..., StandIn], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., StandIn]:
    """`backend(fault=..., fault_from=N)`: a stand-in upstream behind the run's proxy (OPENAI_API_KEY for it)."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)

    def start(**kwargs: Any) -> StandIn:
        server = upstream((KEY,), **kwargs)
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        return server

    return start


def test_a_rerouting_upstream_fails_every_scenario_naming_both_models(
    project: pytest.Pytester, backend: Callable[..., StandIn]
) -> None:
    """The upstream serves gpt-5.2 (its `openai-model` header and completed response) for every request."""
    server = backend(fault="reroute")
    result = run(project, *OPENAI, "--junitxml=j.xml")
    result.assert_outcomes(failed=3)
    headline = "[model-mismatch] expected gpt-5-codex, the backend served gpt-5.2 (codex asked for gpt-5-codex"
    assert [line.startswith(headline) for line in result.outlines].count(True) == 3, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "  provider request 1: asked for 'gpt-5-codex', served by 'gpt-5.2' (openai-model header / completed "
            "response)"
        ]
    )
    result.stdout.fnmatch_lines(["interllm: preflight: gpt-5-codex answered HTTP 200 in *, served by gpt-5.2"])
    for record in jsonl(project):
        assert {(r["model"], r["served_model"]) for r in record["requests"]} == {("gpt-5-codex", "gpt-5.2")}
        assert record["failure_class"] == "model-mismatch"
    assert len(server.seen) == 7  # the preflight, and each scenario's two requests
    assert 'value="model-mismatch"' in (project.path / "j.xml").read_text()


def test_a_usage_limit_reaches_the_upstream_once_and_stops_the_run(
    project: pytest.Pytester, backend: Callable[..., StandIn]
) -> None:
    """The plan runs out on scenario 2's first request (the preflight and scenario 1 passed). No retry of the proxy,
    of codex or of the scenario sends it again; the rest of the run is skipped with the reset time, not failed."""
    server = backend(fault="usage-limit", fault_from=4)
    retries = ("--interllm-retries", "2", "--interllm-provider-retries", "2")
    result = run(project, *OPENAI, *retries, "-rs", "--junitxml=j.xml")
    assert len(server.seen) == 4, f"{len(server.seen) - 3} requests met the usage limit upstream"
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    reset = "the usage limit of the ChatGPT plan (plan plus) is reached until 20??-??-?? ??:?? UTC (in * min)"
    result.stdout.fnmatch_lines([f"[[]usage-limit[]] {reset}: HTTP 429 usage_limit_reached"])
    result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] input/list.md:9: {reset}: scenario not started"])
    stopped = [line for line in result.outlines if line.startswith("interllm: run stopped")]
    assert len(stopped) == 1
    result.stdout.fnmatch_lines([f"interllm: run stopped: {reset} (1 skipped)"])
    assert "provider-error" not in result.stdout.str() + (project.path / "j.xml").read_text()
    assert outputs(project) == ["scenario_001.md"]
    records = [(r["result"], r["failure_class"]) for r in jsonl(project)]
    assert records == [("passed", None), ("failed", "usage-limit"), ("skipped", None)]


def test_scenarios_in_flight_meet_the_usage_limit_the_proxy_remembers(
    project: pytest.Pytester, backend: Callable[..., StandIn]
) -> None:
    """Three scenarios in flight: the upstream's one usage-limit answer (to the first request after the three that
    started them) is the answer to every later request of the run, given by the proxy without sending it on."""
    server = backend(fault="usage-limit", fault_from=4)
    result = run(project, *OPENAI, "--interllm-concurrency", "3", "--interllm-retries", "1", "-rs")
    assert len(server.seen) == 4, f"{len(server.seen) - 3} requests met the usage limit upstream"
    result.assert_outcomes(failed=3)
    assert [line.startswith("[usage-limit] the usage limit of the ChatGPT plan") for line in result.outlines].count(
        True
    ) == 3
    result.stdout.fnmatch_lines(["*answered by the proxy, which remembers the limit: nothing more was sent upstream*"])
    assert "provider-error" not in result.stdout.str()
    assert [line for line in result.outlines if line.startswith("interllm: run stopped")] != []


@pytest.mark.parametrize(
    ("fault", "attempts", "headline"),
    [
        (
            "stream-failed",
            2,
            "the provider failed the response with server_is_overloaded inside its HTTP 200 stream after 1 retries "
            "(retried after backoff): Our servers are currently overloaded. Please try again later.",
        ),
        (
            "stream-failed:context_length_exceeded",
            1,
            "the provider failed the response with context_length_exceeded inside its HTTP 200 stream (not retried: "
            "it would fail the same way): Your input exceeds the context window of this model.*",
        ),
    ],
    ids=["overloaded-retried", "context-length-not-retried"],
)
def test_a_failure_inside_a_200_stream_is_classified_by_its_code(
    project: pytest.Pytester, backend: Callable[..., StandIn], fault: str, attempts: int, headline: str
) -> None:
    server = backend(fault=fault, fault_from=2)  # the preflight passes; every scenario request fails in-stream
    result = run(project, *OPENAI, "-k", "scenario_001", "--interllm-provider-retries", "1")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines([f"[[]provider-error[]] {headline}"])
    code = fault.partition(":")[2] or "server_is_overloaded"
    # The backend's request id of the failed answer, to quote to its support.
    result.stdout.fnmatch_lines([f"  provider request 1 at ??:??:??: POST * status=200 {code} x-request-id=req_*"])
    assert len(server.seen) == 1 + attempts  # the preflight, then one request per attempt
    [record] = jsonl(project)
    assert {(r["status"], r["error_code"]) for r in record["requests"]} == {
        (200, fault.partition(":")[2] or "server_is_overloaded")
    }


def test_a_slow_stream_reaches_codex_as_it_comes_and_its_cassette_replays_byte_identical(
    project: pytest.Pytester, backend: Callable[..., StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upstream spreads each answer's events over about a second: the proxy passes the first delta on long
    before the upstream has finished (the proxy's own clock), records the cassette as the bytes pass, and a replay
    serves codex exactly those bytes."""
    server = backend(fault="slow-stream")
    write(project.path / "input" / "list.md", "- Copy the orders table to the warehouse\n")
    recorded = run(project, *OPENAI[:2], "--interllm-provider", "record", "--interllm-preflight", "off")
    recorded.assert_outcomes(passed=1)
    [first] = jsonl(project)
    streamed = [r for r in first["requests"]]
    assert len(streamed) == 2 and len(server.seen) == 2
    for request in streamed:
        assert request["first_delta"] is not None and request["upstream_done"] is not None
        assert request["upstream_done"] - request["first_delta"] > 0.3, request  # passed on before the end came
    assert not any(r["replayed"] for r in streamed)
    (project.path / "logs").rename(project.path / "logs-recorded")
    (project.path / "outputs" / "scenario_001.md").unlink()
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    replayed = run(project, *OPENAI[:2], "--interllm-provider", "replay")
    replayed.assert_outcomes(passed=1)
    [again] = jsonl(project)
    assert [r["replayed"] for r in again["requests"]] == [True, True]
    assert [r["body_sha256"] for r in again["requests"]] == [r["body_sha256"] for r in streamed]
    assert len(server.seen) == 2  # nothing sent upstream


@pytest.mark.parametrize(
    ("executor", "version", "instructions"),
    [("codex", "0.153.4", True), ("app-server", "0.163.0", False)],
)
def test_the_preflight_is_the_request_the_installed_codex_sends(
    project: pytest.Pytester, backend: Callable[..., StandIn], executor: str, version: str, instructions: bool
) -> None:
    """Its body and headers are those codex itself sends (0.153 with `instructions`, 0.163 with a developer message
    instead), with the run's model."""
    server = backend()
    result = run(project, *OPENAI, "-k", "scenario_001", "--interllm-executor", executor)
    result.assert_outcomes(passed=1, deselected=2)
    preflight, first = server.bodies[0], server.bodies[1]
    assert preflight["model"] == "gpt-5-codex" and ("instructions" in preflight) is instructions
    assert set(preflight) == set(first)  # the same keys as the scenario's own first request
    assert preflight.get("instructions") == first.get("instructions")
    # (its tools are `codex exec`'s, which offers a few more than a server's turn: the goal tools)
    headers = server.seen[0]
    assert version in headers["user-agent"] and headers["originator"], headers


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            "usage-limit",
            "preflight: the usage limit of your ChatGPT plan (plan plus) is reached until 20??-??-?? ??:?? UTC: no "
            "scenario can run before then; run again after it, or with an API key (OPENAI_API_KEY) "
            "(--interllm-preflight off skips this check)",
        ),
        (
            "cloudflare",
            "preflight: http://127.0.0.1:*/v1 blocked the request at its edge (HTTP 403, a Cloudflare page, not an "
            "answer about your credential): this network or address is refused; try from another network, or check "
            "a proxy or VPN (--interllm-preflight off skips this check)",
        ),
    ],
)
def test_the_preflight_names_a_spent_plan_and_a_blocked_network_in_their_own_words(
    project: pytest.Pytester, backend: Callable[..., StandIn], setup: str, message: str
) -> None:
    server = backend(fault="usage-limit") if setup == "usage-limit" else backend()
    server.cloudflare = setup == "cloudflare"
    result = run(project, *OPENAI)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: pytest-interllm: {message}"])
    assert "refused the credential" not in result.stderr.str()
    assert "START scenario" not in result.stdout.str() and len(server.seen) == 1


def test_each_expected_model_of_a_matrix_gets_its_own_preflight(
    project: pytest.Pytester, upstream: Callable[..., StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server = upstream((KEY,), refuse=("gpt-5.5",))
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    result = run(project, *OPENAI, "--interllm-model", "gpt-5-codex,gpt-5.5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-interllm: preflight: * does not serve the model 'gpt-5.5': HTTP 400*"])
    assert [body["model"] for body in server.bodies] == ["gpt-5-codex", "gpt-5.5"]
    assert "START scenario" not in result.stdout.str()
