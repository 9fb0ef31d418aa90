"""Token cost estimates from a price table, and the run's budget."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from pytest_interllm.providers.audit import AuditRecord


class PriceError(Exception):
    """A price table that cannot be used, naming the file and the entry."""


@dataclass(frozen=True)
class Prices:
    """USD per 1M input and output tokens, per model (`default` for the rest)."""

    table: dict[str, tuple[float, float]]
    source: str

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

    def cost(self, model: str | None, tokens_in: int, tokens_out: int) -> float:
        price_in, price_out = self.table.get(model or "", self.table.get("default", (0.0, 0.0)))
        return (tokens_in * price_in + tokens_out * price_out) / 1_000_000

    def of_requests(self, requests: Iterable[AuditRecord]) -> float:
        return sum(self.cost(r.model, r.input_tokens, r.output_tokens) for r in requests)


def _parse(text: str, source: str) -> dict[str, tuple[float, float]]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PriceError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise PriceError(f"{source}: a price table maps model names to {{input: USD, output: USD}}")
    table: dict[str, tuple[float, float]] = {}
    for model, entry in data.items():
        if (
            not isinstance(entry, dict)
            or set(entry) != {"input", "output"}
            or not all(isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in entry.values())
        ):
            raise PriceError(f"{source}: {model!r} must be {{input: USD per 1M tokens, output: USD per 1M tokens}}")
        table[str(model)] = (float(entry["input"]), float(entry["output"]))
    return table


@dataclass
class Budget:
    """Estimated spend of this process's scenarios against `--interllm-budget`."""

    limit: float | None
    spent: float = 0.0
    scenarios: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, cost: float) -> None:
        with self._lock:
            self.spent += cost
            self.scenarios += 1

    def refusal(self) -> str | None:
        """Why the next scenario must not start, or None: spent plus an average scenario would pass the limit."""
        if self.limit is None:
            return None
        with self._lock:
            average = self.spent / self.scenarios if self.scenarios else 0.0
            if self.spent + average > self.limit:
                return (
                    f"interllm budget of ${self.limit:.4f} reached: ${self.spent:.4f} spent on "
                    f"{self.scenarios} scenarios, the next would cost about ${average:.4f}"
                )
        return None
