"""Token cost estimates from a price table, and the run's budget."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pytest_interllm.outcome import AuditRecord

FREE_SCRIPTED = "no spend: scripted model"
FREE_REPLAYED = "no spend: replayed from cassettes"
# A ChatGPT login's requests count against the user's plan (its usage windows), not dollars.
FREE_PLAN = "no API spend: a ChatGPT plan (its usage counts against the plan's windows, not in dollars)"
CACHED_SHARE = 0.1  # cached input's price as a share of the input price, where the table names none


class PriceError(Exception):
    """A price table that cannot be used, naming the file and the entry."""


@dataclass(frozen=True)
class Prices:
    """USD per 1M input, output and cached input tokens, per model (`default` for the rest). Reasoning tokens are
    output tokens (the usage counts them in `output_tokens`)."""

    table: dict[str, tuple[float, float, float]]
    source: str
    free: str | None = None  # why the run spends nothing (scripted model, replay): then every cost is 0

    @classmethod
    def load(cls, override: Path | None = None) -> Prices:
        text = resources.files("pytest_interllm").joinpath("prices.yaml").read_text("utf-8")
        table = _parse(text, "<packaged prices.yaml>")
        source = "packaged estimates"
        if override is not None:
            try:
                extra = override.read_text(encoding="utf-8")
            except OSError as exc:
                raise PriceError(f"{override}: cannot read the price table: {exc.strerror or exc}") from exc
            table.update(_parse(extra, str(override)))
            source = str(override)
        return cls(table=table, source=source)

    def cost(self, model: str | None, tokens_in: int, tokens_out: int, cached: int = 0) -> float:
        """USD for the tokens; `cached` of the input tokens at the cached input price."""
        price_in, price_out, price_cached = self.table.get(model or "", self.table.get("default", (0.0, 0.0, 0.0)))
        cached = min(max(cached, 0), tokens_in)
        return ((tokens_in - cached) * price_in + cached * price_cached + tokens_out * price_out) / 1_000_000

    def of_requests(self, requests: Iterable[AuditRecord]) -> float:
        """What these requests cost: nothing in a run that spends nothing, nothing for a replayed request."""
        if self.free:
            return 0.0
        return sum(
            self.cost(r.model, r.input_tokens, r.output_tokens, r.cached_tokens) for r in requests if not r.replayed
        )


def _parse(text: str, source: str) -> dict[str, tuple[float, float, float]]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PriceError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PriceError(f"{source}: a price table maps model names to {{input: USD, output: USD}}")
    table: dict[str, tuple[float, float, float]] = {}
    for model, entry in data.items():
        if (
            not isinstance(entry, dict)
            or not {"input", "output"} <= set(entry) <= {"input", "output", "cached_input"}
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in entry.values())
        ):
            raise PriceError(
                f"{source}: {model!r} must be {{input: USD per 1M tokens, output: USD per 1M tokens}}, optionally "
                "with cached_input: USD per 1M cached input tokens"
            )
        price_in = float(entry["input"])
        table[str(model)] = (
            price_in,
            float(entry["output"]),
            float(entry.get("cached_input", price_in * CACHED_SHARE)),
        )
    return table


@dataclass
class Budget:
    """Estimated spend of the run's scenarios against `--interllm-budget`.

    A scenario starts only if the spend so far, the average cost of the scenarios still running (reserved
    when they started) and one more average scenario stay within the limit. In one process the tally lives
    in memory; under xdist it lives in one small ledger file the controller created (`ledger`), read and
    written under an exclusive `flock`, so all workers stop as one run.
    """

    limit: float | None
    ledger: Path | None = None
    _state: dict[str, Any] = field(default_factory=lambda: {"spent": 0.0, "scenarios": 0, "reserved": 0.0})
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def create_ledger(directory: Path | None = None, spent: float = 0.0) -> Path:
        """A fresh ledger file for the workers of one run (`spent`: what the run spent before any scenario)."""
        handle, name = tempfile.mkstemp(prefix="interllm-budget-", suffix=".json", dir=directory)
        with os.fdopen(handle, "w") as fh:
            json.dump({"spent": spent, "scenarios": 0, "reserved": 0.0}, fh)
        return Path(name)

    @contextmanager
    def _tally(self) -> Iterator[dict[str, Any]]:
        """The shared tally, locked; changes made to it are written back."""
        with self._lock:
            if self.ledger is None:
                yield self._state
                return
            with open(self.ledger, "r+", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                state = json.load(fh)
                yield state
                fh.seek(0)
                fh.truncate()
                json.dump(state, fh)

    def halt(self, reason: str) -> None:
        """No scenario may start from now on (the first reason given stays): a spent plan, a login gone."""
        with self._tally() as tally:
            tally.setdefault("halted", reason)

    def halted(self) -> str | None:
        """Why the run stopped starting scenarios, or None."""
        with self._tally() as tally:
            reason = tally.get("halted")
        return str(reason) if reason else None

    def start(self) -> tuple[str | None, float]:
        """Why the next scenario must not start (or None), and the amount reserved for it if it may."""
        halted = self.halted()
        if halted is not None:
            return halted, 0.0
        if self.limit is None:
            return None, 0.0
        with self._tally() as tally:
            spent, scenarios, reserved = tally["spent"], int(tally["scenarios"]), tally["reserved"]
            average = spent / scenarios if scenarios else 0.0
            if spent + reserved + average > self.limit:
                running = f", ${reserved:.4f} reserved for scenarios still running" if reserved > 0 else ""
                return (
                    f"interllm budget of ${self.limit:.4f} reached: ${spent:.4f} spent on {scenarios} scenarios"
                    f"{running}, the next would cost about ${average:.4f}",
                    0.0,
                )
            tally["reserved"] = reserved + average
        return None, average

    def known(self) -> bool:
        """Whether a scenario has finished, so an average scenario's cost is known."""
        with self._tally() as tally:
            return int(tally["scenarios"]) > 0

    def add(self, cost: float, scenarios: int = 1) -> None:
        """One attempt's cost (`scenarios=0` for spend that is not a scenario's, e.g. the preflight)."""
        with self._tally() as tally:
            tally["spent"] += cost
            tally["scenarios"] += scenarios

    def finish(self, reserved: float) -> None:
        """Release what `start` reserved for a scenario that has ended."""
        if self.limit is None or reserved == 0.0:
            return
        with self._tally() as tally:
            tally["reserved"] = max(0.0, tally["reserved"] - reserved)
