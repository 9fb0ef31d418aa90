"""The audit proxy: record/replay cassettes, the run token, the real key kept inside, concurrency limits."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from pytest_interllm.cost import Budget, Prices
from pytest_interllm.providers.proxy import AuditProxy, Cassettes
from pytest_interllm.providers.scripted import ScriptedModel
from pytest_interllm.redact import Redactor
from pytest_interllm.runtime import LoopRunner
from tests.conftest import StandIn, fresh_python, jsonl, run, write

EXAMPLE = Path(__file__).resolve().parents[1] / "input" / "DataTransferScenarioList.md"


def outputs_of(project: pytest.Pytester) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((project.path / "outputs").glob("*.md"))}


@pytest.mark.long
def test_record_then_replay_the_example_list_offline(project: pytest.Pytester) -> None:
    shutil.copy(EXAMPLE, project.path / "input" / "list.md")
    recorded = run(project, "--interllm", "input/list.md", "--interllm-provider", "record", "-n", "2")
    recorded.assert_outcomes(passed=17)
    recorded.stdout.fnmatch_lines(
        [
            "interllm: provider record (from the built-in scripted model into cassettes/*",
            "interllm: proxy: 34 requests, 34 sent upstream, 0 replayed*",
        ]
    )
    cassettes = sorted((project.path / "cassettes" / "list").glob("scenario_*.yaml"))
    assert len(cassettes) == 17
    first = outputs_of(project)
    assert len(first) == 17
    # Replay has no upstream at all: the scripted model is not even started.
    replayed = run(project, "--interllm", "input/list.md", "--interllm-provider", "replay")
    replayed.assert_outcomes(passed=17)
    replayed.stdout.fnmatch_lines(
        [
            "interllm: provider replay (cassettes in cassettes/, nothing sent upstream)*",
            "interllm: proxy: 34 requests, 0 sent upstream, 34 replayed*",
        ]
    )
    assert outputs_of(project) == first  # byte for byte
    # A changed scenario asks for something the cassette does not hold.
    text = (project.path / "input" / "list.md").read_text()
    write(project.path / "input" / "list.md", text.replace("Debezium", "Debezium and Kafka Connect"))
    # (Only the changed scenario and its neighbour: the run above replayed the other 16 already.)
    changed = run(project, "--interllm", "input/list.md", "--interllm-provider", "replay", "-k", "003 or 004")
    changed.assert_outcomes(passed=1, failed=1, deselected=15)
    changed.stdout.fnmatch_lines(
        [
            "*END   scenario 3/17: Stream change data capture from SQL Server to Kafka with Debezium and Kafka Connect "
            "— FAILED [[]cassette-mismatch[]]*",
        ]
    )
    changed.stdout.fnmatch_lines(
        [
            "[[]cassette-mismatch[]] list/scenario_003: prompt_sha256: recorded *",
            "*-Scenario 3: Stream change data capture from SQL Server to Kafka with Debezium",
            "*+Scenario 3: Stream change data capture from SQL Server to Kafka with Debezium and*",
        ]
    )


def test_the_record_mode_flag_reaches_the_proxy(project: pytest.Pytester) -> None:
    """Each mode's rules are tested in process (test_cassettes.py); here the flag drives a real run: under `none`
    a recorded scenario replays and one without a cassette fails, nothing sent upstream."""
    run(project, "--interllm", "input/list.md", "--interllm-provider", "record", "-k", "scenario_001")
    none = run(
        project, "--interllm", "input/list.md", "--interllm-provider", "record", "--interllm-record-mode", "none",
        "-k", "scenario_001 or scenario_003",
    )  # fmt: skip
    none.assert_outcomes(passed=1, failed=1, deselected=1)
    none.stdout.fnmatch_lines(["[[]cassette-mismatch[]] list/scenario_003: not recorded (no cassette in *)"])
    none.stdout.fnmatch_lines(["interllm: proxy: * requests, 0 sent upstream, 2 replayed*"])
    assert sorted(p.name for p in (project.path / "cassettes" / "list").iterdir()) == ["scenario_001.yaml"]


def test_no_secret_reaches_a_cassette(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-planted-cassette-0c1d2e3f4a5b6c7d"
    monkeypatch.setenv("INTERLLM_PROVIDER_TOKEN", "planted-provider-token-5e6f7a8b")
    monkeypatch.setenv("MY_SERVICE_API_KEY", secret)
    write(project.path / "input" / "list.md", f"- Rotate the key {secret} on the SFTP server\n")
    result = run(project, "--interllm", "input/list.md", "--interllm-provider", "record")
    result.assert_outcomes(passed=1)
    [cassette] = (project.path / "cassettes" / "list").glob("*.yaml")
    text = cassette.read_text()
    assert secret not in text and "[REDACTED]" in text
    assert "planted-provider-token" not in text and "authorization" not in text.lower()


def test_proxy_refuses_requests_without_the_run_token(loop: LoopRunner, tmp_path: Path) -> None:
    upstream = ScriptedModel(token="sk-upstream-real-key-1234567890")
    loop.run(upstream.start())
    proxy = AuditProxy(
        upstream_url=upstream.url,
        upstream_key=upstream.token,
        cassettes=Cassettes(tmp_path, Redactor()),
        record_mode="all",
    )
    loop.run(proxy.start())
    try:
        body = {"model": "gpt-5-codex", "input": [{"role": "user", "content": "hi `outputs/x.md`"}], "stream": True}
        url = proxy.scenario_url("list", "scenario_001") + "/responses"
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Bearer {upstream.token}"}):
            refused = httpx.post(url, json=body, headers=headers)
            assert refused.status_code == 401
        assert upstream.audit == [] and proxy.upstream_requests == 0
        ok = httpx.post(url, json=body, headers={"authorization": f"Bearer {proxy.token}"})
        assert ok.status_code == 200 and "response.completed" in ok.text
        # The upstream saw its own key, which codex never had; the cassette has neither.
        assert [r.status for r in upstream.audit] == [200]
        saved = (tmp_path / "list" / "scenario_001.yaml").read_text()
        assert upstream.token not in saved and proxy.token not in saved
    finally:
        loop.run(proxy.stop())
        loop.run(upstream.stop())


@pytest.mark.long
def test_max_concurrency_holds_across_workers(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project.path / "input" / "list.md", "".join(f"- Copy bucket {n} to the archive\n" for n in range(1, 9)))
    monkeypatch.setenv("INTERLLM_SCRIPTED_LATENCY", "0.4")
    # Two workers with two scenarios in flight each: up to four requests at once without the limit.
    record_two_by_two = (
        "--interllm",
        "input/list.md",
        "--interllm-provider",
        "record",
        "-n",
        "2",
        "--interllm-concurrency",
        "2",
    )
    result = run(project, *record_two_by_two, "--interllm-max-concurrency", "2")
    result.assert_outcomes(passed=8)
    line = next(line for line in result.outlines if line.startswith("interllm: proxy:"))
    assert line.endswith("peak upstream concurrency 2"), line
    unlimited = run(project, *record_two_by_two, "--interllm-record-mode", "all")
    peak = int(next(x for x in unlimited.outlines if x.startswith("interllm: proxy:")).rsplit(" ", 1)[1])
    assert peak > 2  # without the limit the same run does overlap more: the limit is what held it


def log_of(result: pytest.RunResult, project: pytest.Pytester) -> list[dict[str, Any]]:
    """The scenario records of the run whose terminal summary named the log (not the newest file: two runs may
    share a second); its last line, the run's summary record, left out."""
    line = next(x for x in result.outlines if x.startswith("interllm: log "))
    path = project.path / line.split(" and ")[1]
    records = [json.loads(x) for x in path.read_text().splitlines()]
    return [r for r in records if r.get("record") != "summary"]


def test_replay_records_show_in_the_jsonl(project: pytest.Pytester) -> None:
    tapes = ("--interllm-cassette-dir", "tapes", "-k", "scenario_001")
    recorded = run(project, "--interllm", "input/list.md", "--interllm-provider", "record", *tapes)
    recorded.assert_outcomes(passed=1, deselected=2)
    assert [p.name for p in (project.path / "tapes" / "list").iterdir()] == ["scenario_001.yaml"]
    assert not (project.path / "cassettes").exists()
    replayed = run(project, "--interllm", "input/list.md", "--interllm-provider", "replay", *tapes)
    replayed.assert_outcomes(passed=1, deselected=2)
    [first] = log_of(recorded, project)
    [record] = log_of(replayed, project)
    assert record["result"] == "passed" and record["session_model"] == "gpt-5-codex"
    assert [(r["model"], r["status"], r["replayed"]) for r in record["requests"]] == [("gpt-5-codex", 200, True)] * 2
    assert [r["replayed"] for r in first["requests"]] == [False, False]
    assert record["tokens_in"] == first["tokens_in"] > 0  # the recorded usage, served back
    # A replay spends nothing, and says why.
    replayed.stdout.fnmatch_lines(["interllm: tokens * in / * out, no spend: replayed from cassettes"])
    assert "$" not in "".join(line for line in replayed.outlines if line.startswith("interllm:"))


@pytest.fixture
def paid(project: pytest.Pytester, upstream: Callable[..., StandIn], monkeypatch: pytest.MonkeyPatch) -> StandIn:
    """A run that spends: OPENAI_API_KEY and OPENAI_BASE_URL point at a local OpenAI-compatible stand-in
    (as a vLLM or Ollama server would), so the default provider is `openai`."""
    key = "sk-local-server-key-9f8e7d6c5b4a"
    server = upstream((key,))
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    return server


def test_openai_provider_against_a_local_compatible_server(project: pytest.Pytester, paid: StandIn) -> None:
    result = run(project, "--interllm", "input/list.md", "-rA")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            f"interllm: provider openai (audit proxy in front of {paid.url} with API key sk-…5b4a from the "
            "environment) (OPENAI_API_KEY is set)*"
        ]
    )
    assert len(paid.audit) == 7 and {r.status for r in paid.audit} == {200}  # the preflight, 2 per scenario
    assert paid.token not in result.stdout.str()


def test_strict_provider_refuses_the_offline_fallback(project: pytest.Pytester) -> None:
    result = project.runpytest("--interllm", "input/list.md", "--interllm-strict-provider", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --interllm-strict-provider: no OPENAI_API_KEY*"])
    fallback = project.runpytest("--interllm", "input/list.md", "--collect-only")
    fallback.stdout.fnmatch_lines(
        ["interllm: provider offline (built-in scripted model on 127.0.0.1, not a real LLM, no OPENAI_API_KEY)*"]
    )


def test_cost_per_scenario_and_in_total_from_the_price_table(project: pytest.Pytester, paid: StandIn) -> None:
    # One dollar per input token that was not cached makes the estimate equal to those audited tokens.
    write(project.path / "prices.yaml", "gpt-5-codex: {input: 1000000, output: 0, cached_input: 0}\n")
    result = run(
        project, "--interllm", "input/list.md", "--interllm-prices", "prices.yaml", "--interllm-summary", "summary.md"
    )
    result.assert_outcomes(passed=3)
    records = jsonl(project)
    for record in records:
        assert record["cost_usd"] == sum(r["input_tokens"] - r["cached_tokens"] for r in record["requests"]) > 0
        assert sum(r["cached_tokens"] for r in record["requests"]) > 0  # the turn's second request: its prefix cached
    preflight = re.search(
        r"interllm: preflight: gpt-5-codex answered HTTP 200 in .*s \((\d+) in /", result.stdout.str()
    )
    assert preflight
    total = sum(r["cost_usd"] for r in records) + int(preflight.group(1))  # the preflight is spend too
    result.stdout.fnmatch_lines([f"interllm: tokens * in / * out, estimated cost ${total:.4f} (prices: */prices.yaml)"])
    assert f"| ${records[0]['cost_usd']:.4f} |" in (project.path / "summary.md").read_text()


def test_a_run_on_the_scripted_model_or_cassettes_spends_nothing(project: pytest.Pytester) -> None:
    offline = run(project, "--interllm", "input/list.md", "--interllm-summary", "summary.md", "-k", "scenario_001")
    offline.assert_outcomes(passed=1, deselected=2)
    offline.stdout.fnmatch_lines(["interllm: tokens * in / * out, no spend: scripted model"])
    summary = (project.path / "summary.md").read_text()
    assert "no spend: scripted model" in summary and "$" not in summary and "| — |" in summary
    [record] = log_of(offline, project)
    assert record["cost_usd"] is None and record["tokens_in"] > 0
    # A replay spends nothing either: test_replay_records_show_in_the_jsonl.


def test_budget_exhaustion_skips_the_rest_with_the_reason(project: pytest.Pytester, paid: StandIn) -> None:
    result = run(
        project, "--interllm", "input/list.md", "--interllm-budget", "0.001", "-rs", "--interllm-preflight", "off"
    )
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] input/list.md:5: interllm budget of $0.0010 reached: $0.00* spent on 1 scenarios, "
            "the next would cost about $0.00*",
        ]
    )
    assert (project.path / "outputs" / "scenario_001.md").exists()
    assert not (project.path / "outputs" / "scenario_002.md").exists()


def test_budget_ledger_is_one_tally_for_all_workers(tmp_path: Path) -> None:
    ledger = Budget.create_ledger(tmp_path)
    first, second = Budget(0.025, ledger=ledger), Budget(0.025, ledger=ledger)
    assert first.start() == (None, 0.0)
    first.add(0.01)
    first.finish(0.0)
    assert second.start() == (None, 0.01)  # reserves one average scenario while it runs
    refusal, reserved = first.start()
    assert reserved == 0.0
    assert refusal == (
        "interllm budget of $0.0250 reached: $0.0100 spent on 1 scenarios, $0.0100 reserved for scenarios "
        "still running, the next would cost about $0.0100"
    )
    second.add(0.004)
    second.finish(0.01)
    assert first.start() == (None, 0.007)  # 0.014 spent + 0.007 average ≤ 0.025
    assert json.loads(ledger.read_text()) == {"spent": pytest.approx(0.014), "scenarios": 2, "reserved": 0.007}


def test_budget_under_xdist_is_shared_not_split(project: pytest.Pytester, paid: StandIn) -> None:
    """Six scenarios of equal cost c on two workers with a budget of 3.5c: shared, three run. Split per worker
    (1.75c each), only two would."""
    write(project.path / "input" / "list.md", "".join(f"- Copy partner bucket {n} to the archive\n" for n in range(6)))
    no_preflight = ("--interllm-preflight", "off")
    run(project, "--interllm", "input/list.md", "-k", "scenario_001", *no_preflight).assert_outcomes(
        passed=1, deselected=5
    )
    cost = jsonl(project)[0]["cost_usd"]
    assert cost > 0
    shutil.rmtree(project.path / "logs")
    budget = ("--interllm-budget", f"{3.5 * cost:.6f}")
    result = run(project, "--interllm", "input/list.md", *budget, "-n", "2", "-rs", *no_preflight)
    result.assert_outcomes(passed=3, skipped=3)
    result.stdout.fnmatch_lines(["*interllm budget of $0.0* reached: $0.0* spent on * scenarios*"])
    assert len(list((project.path / "outputs").glob("scenario_*.md"))) == 3


def test_cached_input_is_priced_at_its_own_rate_and_reasoning_as_output() -> None:
    prices = Prices.load()
    assert prices.cost("gpt-5-codex", 1_000_000, 0) == 1.25
    assert prices.cost("gpt-5-codex", 1_000_000, 0, cached=1_000_000) == pytest.approx(0.125)  # a tenth, by default
    assert prices.cost("gpt-5-codex", 0, 1_000_000) == 10.0  # reasoning tokens are counted in the output tokens


def test_bad_price_table_is_a_usage_error(project: pytest.Pytester) -> None:
    write(project.path / "prices.yaml", "gpt-5-codex: {input: cheap}\n")
    result = project.runpytest("--interllm", "input/list.md", "--interllm-prices", "prices.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --interllm-prices: */prices.yaml: 'gpt-5-codex' must be {input: USD*"])


def test_proxy_backs_off_on_429_honouring_retry_after(loop: LoopRunner) -> None:
    from pytest_interllm.providers.scripted import CallContext

    upstream = ScriptedModel()
    loop.run(upstream.start())
    upstream.current = CallContext(label="x", fault="http-429", fault_requests=1)
    proxy = AuditProxy(upstream_url=upstream.url, upstream_key=upstream.token, cassettes=None, record_mode=None)
    loop.run(proxy.start())
    try:
        body = {"model": "gpt-5-codex", "input": [{"role": "user", "content": "`outputs/x.md`"}], "stream": True}
        reply = httpx.post(
            proxy.scenario_url("list", "s1") + "/responses",
            json=body,
            headers={"authorization": f"Bearer {proxy.token}"},
            timeout=30,
        )
        assert reply.status_code == 200
        statuses = [r.status for r in upstream.audit]
        assert statuses == [429, 200]
        assert upstream.audit[1].time - upstream.audit[0].time >= 0.9  # waited for Retry-After: 1
        # A 429 that does not clear: retried at most three times, then passed on to codex.
        upstream.audit.clear()
        upstream.current = CallContext(label="y", fault="http-429")
        reply = httpx.post(
            proxy.scenario_url("list", "s2") + "/responses",
            json=body,
            headers={"authorization": f"Bearer {proxy.token}"},
            timeout=30,
        )
        assert reply.status_code == 429 and [r.status for r in upstream.audit] == [429] * 4
    finally:
        loop.run(proxy.stop())
        loop.run(upstream.stop())


def test_cassettes_recorded_from_lf_files_replay_from_a_crlf_checkout(project: pytest.Pytester) -> None:
    """The prompt is the same bytes whatever the checkout: a Windows copy (BOM, CRLF) replays a Unix recording."""
    template = "Scenario {index}: {title}\nSection: {section}\n\n{body}\n\nWrite it to the file `{output_path}`.\n"
    write(project.path / "input" / "prompt_template.txt", template)
    write(project.path / "scenarios" / "list.yaml", "defaults:\n  min_words: 5\n")
    run(project, "--interllm", "input/list.md", "--interllm-provider", "record").assert_outcomes(passed=3)
    for name in ("input/list.md", "input/prompt_template.txt", "scenarios/list.yaml"):
        path = project.path / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    replayed = run(project, "--interllm", "input/list.md", "--interllm-provider", "replay")
    replayed.assert_outcomes(passed=3)
    replayed.stdout.fnmatch_lines(["interllm: proxy: 6 requests, 0 sent upstream, 6 replayed*"])


def test_a_fixed_provider_token_reaches_codex_through_the_proxy(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLLM_PROVIDER_TOKEN", "debug-token-for-curl-0123456789")
    project.makeconftest(
        "def pytest_runtest_logreport(report):\n"
        "    pid = dict(report.user_properties).get('interllm_codex_pid')\n"
        "    if report.when == 'call' and pid:\n"
        "        with open(f'/proc/{pid}/environ', 'rb') as fh, open('seen.txt', 'ab') as out:\n"
        "            out.write(b'token ok\\n' if b'INTERLLM_PROVIDER_KEY=debug-token-for-curl-0123456789' in fh.read()"
        " else b'other token\\n')\n"
    )
    result = run(project, "--interllm", "input/list.md", "--interllm-provider", "record", "-k", "scenario_001")
    result.assert_outcomes(passed=1, deselected=2)
    assert (project.path / "seen.txt").read_text() == "token ok\n"


def test_a_local_model_server_listens_when_its_start_returns_without_websockets() -> None:
    """The server says when it listens (no polling): a connection right after `start` is accepted, and uvicorn's
    websockets protocol is never imported (a fresh interpreter: this one may have it)."""
    code = (
        "import asyncio, socket, sys\n"
        "from pytest_interllm.providers.scripted import ScriptedModel\n"
        "async def main():\n"
        "    model = ScriptedModel()\n"
        "    await model.start()\n"
        "    socket.create_connection(('127.0.0.1', model.port), timeout=1).close()\n"
        "    await model.stop()\n"
        "    print(model.port > 0, any(m == 'websockets' or m.startswith('websockets.') for m in sys.modules))\n"
        "asyncio.run(main())\n"
    )
    done = fresh_python(code, timeout=60)
    assert done.stdout.split() == ["True", "False"], done.stderr
