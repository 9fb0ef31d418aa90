"""In process, no codex: the in-flight scheduler (`--interllm-concurrency`) — its window, halving on rate limits and
growing back, cancel, and each item getting its own verdict in pytest's order.

The items are stand-ins for pytest items (a node id and `compute()`), each held until the test releases it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import CancelledError

import pytest

from pytest_interllm.errors import ScenarioFailure
from pytest_interllm.outcome import AuditRecord, ScenarioOutcome
from pytest_interllm.run import Attempt, InFlight, Verdict

WAIT = 10.0  # only a hung scheduler takes this long


def request(status: int, throttled: int = 0) -> AuditRecord:
    return AuditRecord(0.0, "POST", "/v1/responses", "gpt-5-codex", status, None, "codex", 0.1, throttled=throttled)


def clean() -> Verdict:
    return Verdict(1.0, [Attempt(1, ScenarioOutcome("p", "m", "o", requests=[request(200)]), None)])


def limited() -> Verdict:
    """A scenario that met HTTP 429 from the provider (and passed after codex's own retry)."""
    return Verdict(1.0, [Attempt(1, ScenarioOutcome("p", "m", "o", requests=[request(429), request(200)]), None)])


class Item:
    """A stand-in for a scenario item: `compute()` waits until released, then returns its verdict."""

    def __init__(self, nodeid: str, verdict: Verdict | str | None = None) -> None:
        self.nodeid = nodeid
        self.verdict = verdict if verdict is not None else clean()
        self.running = threading.Event()
        self.release = threading.Event()
        self.computed = 0

    def compute(self) -> Verdict | str:
        self.computed += 1
        self.running.set()
        assert self.release.wait(WAIT), f"{self.nodeid} never released"
        return self.verdict


def items(n: int, prefix: str = "s") -> list[Item]:
    return [Item(f"{prefix}{i}") for i in range(1, n + 1)]


@pytest.fixture
def in_flight() -> Iterator[InFlight]:
    """A scheduler with a limit of 4; whatever a test leaves running is released and dropped at the end."""
    scheduler = InFlight(4)
    yield scheduler
    for item in scheduler.items:
        item.release.set()
    scheduler.cancel()


def running(scheduler: InFlight, items: list[Item]) -> list[str]:
    """The items that have started, once each item the scheduler submitted has."""
    for item in scheduler.items:
        assert item.running.wait(WAIT), f"{item.nodeid} never started"
    return sorted(i.nodeid for i in items if i.running.is_set())


def finish(scheduler: InFlight, item: Item) -> Verdict | str:
    item.release.set()
    return scheduler.result(item)


def test_the_window_starts_the_next_items_ahead_and_no_more(in_flight: InFlight) -> None:
    queue = items(6)
    in_flight.ahead(queue)
    assert running(in_flight, queue) == ["s1", "s2", "s3", "s4"]
    assert in_flight.peak == 4 and set(in_flight.started) == {"s1", "s2", "s3", "s4"}
    in_flight.ahead(queue)  # asked again while they run: nothing starts twice
    assert [i.nodeid for i in in_flight.items] == ["s1", "s2", "s3", "s4"]
    assert finish(in_flight, queue[0]) is queue[0].verdict
    in_flight.ahead(queue[1:])  # pytest moved on: the next one of the window starts
    assert running(in_flight, queue) == ["s1", "s2", "s3", "s4", "s5"]
    assert all(i.computed <= 1 for i in queue)


def test_each_item_gets_its_own_verdict_whatever_order_they_end_in(in_flight: InFlight) -> None:
    queue = items(4)
    queue[1].verdict = "interllm budget of $1.0000 reached"  # a refused item's reason is its result too
    in_flight.ahead(queue)
    running(in_flight, queue)
    for item in reversed(queue):  # the last ends first
        item.release.set()
    assert [in_flight.result(i) for i in queue] == [i.verdict for i in queue]
    assert all(in_flight.started[i.nodeid] <= in_flight.ended[i.nodeid] for i in queue)


def test_an_item_not_started_ahead_starts_when_pytest_reaches_it(in_flight: InFlight) -> None:
    late = Item("late")
    late.release.set()
    assert in_flight.result(late) is late.verdict and late.computed == 1
    assert [i.nodeid for i in in_flight.items] == ["late"]


def test_a_rate_limited_scenario_halves_the_window_and_clean_ones_grow_it_back(in_flight: InFlight) -> None:
    hit = Item("429", limited())
    assert finish(in_flight, hit) is hit.verdict
    assert (in_flight.window, in_flight.lowest, in_flight.halvings) == (2, 2, 1)
    queue = items(4)
    in_flight.ahead(queue)
    assert running(in_flight, queue) == ["s1", "s2"]  # the halved window
    for item in queue[:3]:
        finish(in_flight, item)
    assert in_flight.window == 2  # three clean scenarios: not yet as many as the limit
    finish(in_flight, queue[3])
    assert in_flight.window == 3  # four: one more in flight
    for item in items(4, "t"):
        finish(in_flight, item)
    assert (in_flight.window, in_flight.lowest, in_flight.halvings) == (4, 2, 1)  # back to the limit, never past it
    for item in items(4, "u"):
        finish(in_flight, item)
    assert in_flight.window == 4
    assert in_flight.report() == (
        "up to 4 scenarios in flight per process (peak 2); rate limits halved it 1× (lowest 2), now 4"
    )


def test_a_second_rate_limit_halves_again_down_to_one_and_no_lower(in_flight: InFlight) -> None:
    for n in range(4):
        finish(in_flight, Item(f"429-{n}", limited()))
    assert (in_flight.window, in_flight.lowest, in_flight.halvings) == (1, 1, 2)
    assert in_flight.report().endswith("rate limits halved it 2× (lowest 1), now 1")


@pytest.mark.parametrize(
    "outcome",
    [
        ScenarioOutcome("p", "m", "o", requests=[request(200, throttled=2)]),  # the proxy waited 429s out
        ScenarioOutcome("p", "m", "o", orchestrator_requests=[request(429)]),  # the orchestrator's own request
        ScenarioOutcome("p", "m", "o", retry_errors=["codex returned HTTP 429: Too Many Requests"]),  # retried past
    ],
    ids=["throttled-by-the-proxy", "orchestrator", "provider-retry"],
)
def test_every_sign_of_a_rate_limit_counts(in_flight: InFlight, outcome: ScenarioOutcome) -> None:
    failed = ScenarioFailure("provider-error", "codex returned HTTP 429")
    finish(in_flight, Item("hit", Verdict(1.0, [Attempt(1, outcome, failed)])))
    assert in_flight.window == 2


def test_a_budget_refusal_and_other_failures_leave_the_window_alone(in_flight: InFlight) -> None:
    finish(in_flight, Item("refused", "interllm budget of $1.0000 reached"))
    failed = ScenarioOutcome("p", "m", "o", requests=[request(500)], retry_errors=["HTTP 500"])
    finish(in_flight, Item("500", Verdict(1.0, [Attempt(1, failed, ScenarioFailure("provider-error", "500"))])))
    assert (in_flight.window, in_flight.halvings) == (4, 0)


def test_cancel_drops_what_has_not_started_and_counts_what_was_in_flight() -> None:
    scheduler = InFlight(2)
    queue = items(2)
    scheduler.ahead(queue)
    running(scheduler, queue)
    waiting = Item("s3")  # pytest reached it, but both workers are busy
    outcome: list[BaseException | Verdict | str] = []

    def wait() -> None:
        try:
            outcome.append(scheduler.result(waiting))
        except CancelledError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    while "s3" not in {i.nodeid for i in scheduler.items}:
        thread.join(0.01)
    assert scheduler.cancel() == 3  # two running, one waiting
    for item in queue:
        item.release.set()
    thread.join(WAIT)
    assert isinstance(outcome[0], CancelledError) and waiting.computed == 0  # never started
    assert "s3" not in scheduler.started
