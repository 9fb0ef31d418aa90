"""The in-flight scheduler (`--interllm-concurrency`): items of this process run ahead of pytest's turn."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from pytest_interllm.faults import USAGE_LIMIT
from pytest_interllm.outcome import AuditRecord
from pytest_interllm.run.items import Verdict


def _rate_limited(record: AuditRecord) -> bool:
    """A rate limit (HTTP 429, or one inside a 200 stream) slows the window down; a spent plan does not: it stops."""
    if record.error_code == USAGE_LIMIT:
        return False
    return record.status == 429 or bool(record.throttled) or record.error_code == "rate_limit_exceeded"


class Scheduled(Protocol):
    """An item the scheduler can run ahead of pytest's turn (`collect.ScenarioItem` is one)."""

    @property
    def nodeid(self) -> str: ...

    def compute(self) -> Verdict | str: ...


class InFlight:
    """Up to `limit` items of this process running at once on its one codex server, ahead of pytest: when pytest
    reaches an item, the next ones of this process have started already, and each item waits for its own
    verdict. pytest still runs and reports items one by one in order, with every hook.

    The window halves when a scenario met rate limits (HTTP 429) and grows back by one after as many clean
    scenarios as the limit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.window = limit
        self.lowest = limit
        self.halvings = 0
        self._clean = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="interllm-scenario")
        self._futures: dict[str, Future[Verdict | str]] = {}
        self.started: dict[str, float] = {}  # nodeid → wall-clock start and end of each scenario
        self.ended: dict[str, float] = {}
        self.items: list[Scheduled] = []  # every item started, in order
        self.peak = 0

    def ahead(self, items: list[Scheduled]) -> None:
        """Start the first items of `items` (this process's next ones, in order) up to the window."""
        with self._lock:
            for item in items[: self.window]:
                if item.nodeid not in self._futures and item.nodeid not in self.started:
                    self._futures[item.nodeid] = self._pool.submit(self._run, item)
                    self.items.append(item)
            self.peak = max(self.peak, sum(1 for f in self._futures.values() if not f.done()))

    def _run(self, item: Scheduled) -> Verdict | str:
        self.started[item.nodeid] = time.time()
        try:
            verdict: Verdict | str = item.compute()
        finally:
            self.ended[item.nodeid] = time.time()
        if not isinstance(verdict, str):
            self._adapt(verdict)
        return verdict

    def _adapt(self, verdict: Verdict) -> None:
        limited = any(
            any(_rate_limited(r) for r in [*a.outcome.requests, *a.outcome.orchestrator_requests])
            or any("429" in error for error in a.outcome.retry_errors)  # a 429 that a provider retry got past
            for a in verdict.attempts
        )
        with self._lock:
            if limited and self.window > 1:
                self.window = max(1, self.window // 2)
                self.lowest = min(self.lowest, self.window)
                self.halvings += 1
                self._clean = 0
            elif not limited:
                self._clean += 1
                if self._clean >= self.limit and self.window < self.limit:
                    self.window += 1
                    self._clean = 0

    def result(self, item: Scheduled) -> Verdict | str:
        """This item's verdict, started now if it was not already."""
        with self._lock:
            if item.nodeid not in self._futures:
                self._futures[item.nodeid] = self._pool.submit(self._run, item)
                self.items.append(item)
            future = self._futures[item.nodeid]
        try:
            return future.result()
        finally:
            with self._lock:
                self._futures.pop(item.nodeid, None)

    def report(self) -> str:
        """For the terminal summary."""
        limited = (
            f"; rate limits halved it {self.halvings}× (lowest {self.lowest}), now {self.window}"
            if self.halvings
            else ""
        )
        peak = f" (peak {self.peak})" if self.peak else ""
        return f"up to {self.limit} scenarios in flight per process{peak}{limited}"

    def cancel(self) -> int:
        """Drop what has not started; what runs ends when the executor closes. How many were dropped or stopped."""
        with self._lock:
            pending = [f for f in self._futures.values() if not f.done()]
            self._futures.clear()
        for future in pending:
            future.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        return len(pending)
