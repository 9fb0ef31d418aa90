"""In process, no codex: the audit proxy's record modes (`--interllm-record-mode` once, new_episodes, none, all)
with cassettes on disk, and what a replayed request must repeat (`match_key`).

Real HTTP on 127.0.0.1: requests shaped like codex's go to the real proxy, in front of the built-in scripted model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import yaml

from pytest_interllm.providers.cassettes import match_key
from pytest_interllm.providers.proxy import MISMATCH_STATUS, AuditProxy, Cassettes
from pytest_interllm.providers.scripted import ScriptedModel
from pytest_interllm.redact import Redactor
from pytest_interllm.runtime import LoopRunner

PROMPT = "Scenario 1: Copy the orders table\n\nWrite it to the file `outputs/scenario_001.md`."


def body(prompt: str = PROMPT, outputs: int = 0, model: str = "gpt-5-codex") -> dict[str, Any]:
    """A Responses request as codex sends it: its environment context, the prompt, and `outputs` tool results."""
    items: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "input_text", "text": "<environment_context>cwd</environment_context>"}]},
        {"role": "user", "content": [{"type": "input_text", "text": prompt}]},
    ]
    for n in range(outputs):
        items.append({"type": "function_call", "call_id": f"c{n}", "name": "shell", "arguments": '{"command": "ls"}'})
        items.append({"type": "function_call_output", "call_id": f"c{n}", "output": "Process exited with code 0"})
    return {"model": model, "input": items, "stream": True}


class Proxy:
    """One run's audit proxy in a record mode, over the cassettes in one directory."""

    def __init__(self, loop: LoopRunner, upstream: ScriptedModel, root: Path, mode: str) -> None:
        self.loop = loop
        self.proxy = AuditProxy(
            upstream_url=upstream.url,
            upstream_key=upstream.token,
            cassettes=Cassettes(root, Redactor()),
            record_mode=mode,
        )
        loop.run(self.proxy.start())
        self.auth = {"authorization": f"Bearer {self.proxy.token}"}
        self.base = f"http://127.0.0.1:{self.proxy.port}"

    def scenario(self, *requests: dict[str, Any], label: str = "scenario_001") -> list[httpx.Response]:
        """One run of a scenario: its start, then its requests in order."""
        assert httpx.post(f"{self.base}/_interllm/begin/list/{label}", headers=self.auth).status_code == 200
        url = self.proxy.scenario_url("list", label) + "/responses"
        return [httpx.post(url, json=r, headers=self.auth, timeout=30) for r in requests]

    @property
    def replayed(self) -> list[bool]:
        return [r.replayed for r in self.proxy.audit]

    def stop(self) -> None:
        self.loop.run(self.proxy.stop())


@pytest.fixture
def upstream(loop: LoopRunner) -> Iterator[ScriptedModel]:
    model = ScriptedModel()
    loop.run(model.start())
    yield model
    loop.run(model.stop())


@pytest.fixture
def proxy(loop: LoopRunner, upstream: ScriptedModel, tmp_path: Path) -> Iterator[Callable[[str], Proxy]]:
    """`proxy(mode)`: a new run's proxy (a new process would start one), sharing the cassettes in `tmp_path`."""
    started: list[Proxy] = []

    def start(mode: str) -> Proxy:
        started.append(Proxy(loop, upstream, tmp_path, mode))
        return started[-1]

    yield start
    for one in started:
        one.stop()


def cassette(root: Path, label: str = "scenario_001") -> list[dict[str, Any]]:
    data = yaml.safe_load((root / "list" / f"{label}.yaml").read_text(encoding="utf-8"))
    return list(data["interactions"])


TURN = (body(), body(outputs=1))  # the prompt, then the same turn with codex's tool result


def test_once_records_a_new_cassette_then_replays_it_and_refuses_what_it_lacks(
    proxy: Callable[[str], Proxy], tmp_path: Path
) -> None:
    first = proxy("once")
    assert [r.status_code for r in first.scenario(*TURN)] == [200, 200]
    assert first.proxy.upstream_requests == 2 and first.replayed == [False, False]
    recorded = cassette(tmp_path)
    assert [i["request"]["match"]["tool_outputs"] for i in recorded] == [0, 1]
    again = proxy("once")
    replies = again.scenario(*TURN)
    assert [r.text for r in replies] == [i["response"]["body"] for i in recorded]  # served back as recorded
    assert again.proxy.upstream_requests == 0 and again.replayed == [True, True]
    [beyond] = again.scenario(*TURN, body(outputs=2))[2:]
    assert beyond.status_code == MISMATCH_STATUS
    assert f"not recorded (only 2 recorded requests in {tmp_path / 'list' / 'scenario_001.yaml'})" in beyond.text
    assert again.proxy.upstream_requests == 0 and cassette(tmp_path) == recorded  # once: the cassette is kept as is


def test_a_changed_prompt_is_a_mismatch_naming_what_changed(proxy: Callable[[str], Proxy], tmp_path: Path) -> None:
    proxy("once").scenario(*TURN)
    changed = PROMPT.replace("orders table", "orders and invoices tables")
    [reply] = proxy("once").scenario(body(changed))
    assert reply.status_code == MISMATCH_STATUS
    message = reply.json()["error"]["message"]
    assert message.startswith("cassette-mismatch: list/scenario_001 request 1: prompt_sha256: recorded ")
    assert "-Scenario 1: Copy the orders table" in message and "+Scenario 1: Copy the orders and invoices" in message
    [model] = proxy("once").scenario(body(model="gpt-5.2-codex"))
    assert "model: recorded 'gpt-5-codex', now 'gpt-5.2-codex'" in model.text
    [streamed] = proxy("once").scenario({**body(), "stream": False})
    assert "stream: recorded True, now False" in streamed.text


def test_new_episodes_replays_what_matches_and_records_what_is_new(
    proxy: Callable[[str], Proxy], tmp_path: Path
) -> None:
    proxy("once").scenario(body())  # a cassette of the first request only
    episodes = proxy("new_episodes")
    assert [r.status_code for r in episodes.scenario(*TURN, body(outputs=2))] == [200, 200, 200]
    assert episodes.replayed == [True, False, False] and episodes.proxy.upstream_requests == 2
    assert [i["request"]["match"]["tool_outputs"] for i in cassette(tmp_path)] == [0, 1, 2]
    [changed] = proxy("new_episodes").scenario(body("Scenario 1: something else `outputs/scenario_001.md`"))
    assert changed.status_code == MISMATCH_STATUS  # a recorded request that changed is still a mismatch
    fresh = proxy("new_episodes")
    fresh.scenario(*TURN, label="scenario_002")  # no cassette yet: recorded whole
    assert fresh.replayed == [False, False] and len(cassette(tmp_path, "scenario_002")) == 2


def test_none_replays_and_never_records(proxy: Callable[[str], Proxy], tmp_path: Path) -> None:
    proxy("once").scenario(body())
    none = proxy("none")
    replayed, beyond = none.scenario(*TURN)
    assert replayed.status_code == 200 and none.replayed[0]
    assert beyond.status_code == MISMATCH_STATUS and "not recorded (only 1 recorded requests in " in beyond.text
    [missing] = none.scenario(body(), label="scenario_002")
    assert missing.status_code == MISMATCH_STATUS
    assert f"not recorded (no cassette in {tmp_path / 'list' / 'scenario_002.yaml'})" in missing.text
    assert none.proxy.upstream_requests == 0
    assert len(cassette(tmp_path)) == 1 and not (tmp_path / "list" / "scenario_002.yaml").exists()


def test_all_records_everything_anew(proxy: Callable[[str], Proxy], tmp_path: Path) -> None:
    proxy("once").scenario(*TURN, body(outputs=2))
    assert len(cassette(tmp_path)) == 3
    every = proxy("all")
    every.scenario(body("A new prompt for `outputs/scenario_001.md`"))
    assert every.replayed == [False] and every.proxy.upstream_requests == 1  # nothing replayed, nothing refused
    [only] = cassette(tmp_path)  # the old interactions are gone, not kept behind the new one
    assert only["request"]["prompt"] == "A new prompt for `outputs/scenario_001.md`"
    every.scenario(*TURN)  # the scenario run again in the same run (a retry): recorded from its start again
    assert [i["request"]["match"]["tool_outputs"] for i in cassette(tmp_path)] == [0, 1]


def test_a_retry_in_the_run_that_records_records_again_from_the_start(
    proxy: Callable[[str], Proxy], tmp_path: Path
) -> None:
    once = proxy("once")
    once.scenario(*TURN, body(outputs=2))
    once.scenario(*TURN)  # retried: the cassette is the retry's, whole
    assert once.replayed == [False] * 5
    assert [i["request"]["match"]["tool_outputs"] for i in cassette(tmp_path)] == [0, 1]


def test_the_match_key_is_the_model_the_prompt_the_tool_results_and_streaming() -> None:
    key = match_key(body())
    assert set(key) == {"model", "prompt_sha256", "tool_outputs", "stream"}
    assert (key["model"], key["tool_outputs"], key["stream"]) == ("gpt-5-codex", 0, True)
    assert match_key(body(outputs=3))["tool_outputs"] == 3
    assert match_key(body("other"))["prompt_sha256"] != key["prompt_sha256"]
    # codex's environment context (cwd, dates, shell) and other tagged messages are not the scenario's words.
    moved = body()
    moved["input"][0]["content"][0]["text"] = "<environment_context>/elsewhere, another day</environment_context>"
    moved["input"].insert(1, {"role": "user", "content": "<user_instructions>be brief</user_instructions>"})
    assert match_key(moved) == key
    assert match_key({"input": []}) == {
        "model": None,
        "prompt_sha256": match_key({"input": "", "stream": False})["prompt_sha256"],
        "tool_outputs": 0,
        "stream": False,
    }
