"""Rounds and spreads of the benchmark figures, and their targets: pure functions, no codex, no pytest run.

Every figure is measured in rounds (ours and the baseline alternately in each round); a ratio is taken per round
(ours / baseline of the same round), and a figure is kept as {median, min, max, rounds}. A target is checked on
the median; the spread is printed beside it.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

MIN_ROUNDS = 5

# summary key → (comparison, goal); checked on the median
TARGETS: dict[str, tuple[str, float]] = {
    "overhead_ratio": ("<=", 1.05),
    "parallel_efficiency_n4": (">=", 0.90),
    "collect_ratio_10k": ("<=", 1.5),
    "collect_ratio_10k_cold": ("<=", 1.5),
    "inflight_vs_bare_16": (">=", 0.95),
    "mb_per_inflight_16": ("<=", 50),
    "speedup_wall_16": (">=", 6),
    "inflight_vs_bare_64": (">=", 0.90),
    "mb_per_inflight_64": ("<=", 25),
    "startup_first_request_s": ("<=", 1.0),
    "teardown_s": ("<=", 0.5),
    "make_run_overhead_s": ("<=", 2.0),
}


def rounds() -> int:
    """Rounds per figure: BENCH_ROUNDS (a smoke run uses fewer), else MIN_ROUNDS."""
    return int(os.environ.get("BENCH_ROUNDS", MIN_ROUNDS))


def scale() -> float:
    """BENCH_SCALE: the fraction of each benchmark's scenario counts a smoke run uses (1: all of them)."""
    return float(os.environ.get("BENCH_SCALE", "1"))


def scaled(count: int) -> int:
    """A scenario count times BENCH_SCALE, at least 1."""
    return max(1, round(count * scale()))


def smoke() -> bool:
    """Whether this is a smoke run (fewer rounds or scenarios than the real benchmark)."""
    return rounds() < MIN_ROUNDS or scale() != 1


def spread(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """A figure from its per-round values: median, min, max and the round count."""
    if not values:
        raise ValueError("a figure needs at least one round")
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "rounds": len(values),
    }


def per_round(ours: Sequence[float], base: Sequence[float]) -> list[float]:
    """ours / base of the same round, round by round (never median(ours) / median(base))."""
    if len(ours) != len(base):
        raise ValueError(f"{len(ours)} rounds of ours against {len(base)} of the baseline")
    return [o / b for o, b in zip(ours, base, strict=True)]


def text(figure: Mapping[str, Any], fmt: str = ".3f") -> str:
    """`median [min–max] (n rounds)`."""
    n = figure["rounds"]
    return (
        f"{format(figure['median'], fmt)} [{format(figure['min'], fmt)}–{format(figure['max'], fmt)}] "
        f"({n} round{'s' if n != 1 else ''})"
    )


def met(key: str, figure: Mapping[str, Any]) -> bool | None:
    """Whether the figure's median meets its target; None when it has no target."""
    goal = TARGETS.get(key)
    if goal is None:
        return None
    value = figure["median"]
    return bool(value <= goal[1] if goal[0] == "<=" else value >= goal[1])


def check(summary: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """One line per figure (spread and met/MISSED) and the keys of the missed targets."""
    lines, missed = [], []
    for key, figure in summary.items():
        if not isinstance(figure, dict):
            continue
        verdict = met(key, figure)
        goal = TARGETS.get(key)
        note = ""
        if verdict is True:
            note = f"  met (target {goal[0]} {goal[1]})" if goal else ""
        elif verdict is False and goal:
            note = f"  MISSED (target {goal[0]} {goal[1]})"
            missed.append(key)
        if figure["rounds"] < MIN_ROUNDS:
            note += f"  (only {figure['rounds']} of {MIN_ROUNDS} rounds: smoke)"
        lines.append(f"{key:28} {text(figure, '.1f' if key.startswith('mb_') else '.3f')}{note}")
    return lines, missed
