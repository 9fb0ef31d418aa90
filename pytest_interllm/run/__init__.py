"""The run layer: one attempt pipeline (`attempt.py`), an item's attempts, repeats and retries (`items.py`), and
the in-flight scheduler (`inflight.py`)."""

from __future__ import annotations

from pytest_interllm.run.inflight import InFlight
from pytest_interllm.run.items import Attempt, Grader, Request, Verdict, run_item

__all__ = ["Attempt", "Grader", "InFlight", "Request", "Verdict", "run_item"]
