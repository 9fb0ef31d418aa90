"""What changed since a baseline run (`--interllm-baseline PATH`: an earlier run's JSONL log, or a merged one).

Per scenario and model, the pass/fail counts of the agent's attempts then and now go through Fisher's exact test:
`regressed` or `fixed` only when p < alpha, else `within noise` (with how many attempts would decide it), or
`unchanged`, `unmeasured` (no attempt of the agent's on one side), `new`, `removed` — with the token, cost and
duration deltas and a diff of the output file against the baseline's. Across the run, a sign test over the
scenarios measured on both sides, with the mean change of the pass rate and its 95% interval.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cached_property
from html import escape
from pathlib import Path
from typing import Any

from pytest_interllm.report.merge import load
from pytest_interllm.report.numbers import tally
from pytest_interllm.stats import DECIDE_LIMIT, attempts_to_decide, fisher_exact, mean_interval, sign_test

ORDER = ("regressed", "fixed", "within noise", "unmeasured", "new", "removed", "unchanged")
DIFF_LINES = 60


@dataclass(frozen=True)
class Change:
    """One scenario (on one model) now against the baseline: its status, and Fisher's p where both sides were
    measured; `decide_at`: the attempts per side at which a difference within noise would be significant."""

    status: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    p: float | None = None
    decide_at: int | None = None

    @property
    def record(self) -> dict[str, Any]:
        return self.after or self.before or {}

    @property
    def name(self) -> str:
        return str(self.record.get("name", "?"))

    def results(self) -> str:
        """`passed 3/3 → failed 0/3 [no-output-file]`."""

        def one(record: dict[str, Any] | None) -> str:
            if record is None:
                return "absent"
            counted = tally(record)
            cls = f" [{record['failure_class']}]" if record.get("failure_class") else ""
            counts = f" {counted.passed}/{counted.measured}" if counted.measured else ", not measured"
            return f"{record['result']}{counts if record['result'] in ('passed', 'failed') else ''}{cls}"

        return f"{one(self.before)} → {one(self.after)}"

    def significance(self) -> str:
        """`p = 0.10`, with how many more attempts would decide a difference within noise."""
        if self.p is None:
            return ""
        text = f"p = {self.p:.2g}" if self.p < 0.01 else f"p = {self.p:.2f}"
        if self.status != "within noise":
            return text
        if self.decide_at is None:
            return f"{text}; not decidable within {DECIDE_LIMIT} attempts a side"
        then, now = (max(0, self.decide_at - tally(r or {}).measured) for r in (self.before, self.after))
        return f"{text}; {self.decide_at} attempts a side would decide it (+{now} now, +{then} in the baseline)"

    def summary(self) -> dict[str, Any]:
        """The change for the JSONL summary record."""
        before, after = tally(self.before or {}), tally(self.after or {})
        return {
            "nodeid": self.record.get("nodeid"),
            "status": self.status,
            "before": [before.passed, before.measured] if self.before is not None else None,
            "after": [after.passed, after.measured] if self.after is not None else None,
            "p": float(f"{self.p:.6g}") if self.p is not None else None,
            "decide_at": self.decide_at,
        }

    @cached_property
    def deltas(self) -> str:
        """Tokens, cost and duration now minus before (where the baseline kept them)."""
        keys = ("tokens_in", "tokens_out", "duration")
        if self.before is None or self.after is None or not all(k in self.before for k in keys):
            return ""
        tokens = (self.after["tokens_in"] + self.after["tokens_out"]) - (
            self.before["tokens_in"] + self.before["tokens_out"]
        )
        parts = [f"tokens {tokens:+d}"]
        if self.after.get("cost_usd") is not None and self.before.get("cost_usd") is not None:
            parts.append(f"cost {self.after['cost_usd'] - self.before['cost_usd']:+.4f} USD")
        parts.append(f"duration {self.after['duration'] - self.before['duration']:+.1f}s")
        return ", ".join(parts)

    @cached_property
    def diff(self) -> list[str]:
        """The output file now against the baseline's (unified diff, clipped)."""
        if self.before is None or self.after is None or "output_text" not in self.before:
            return []
        old, new = self.before.get("output_text", ""), self.after.get("output_text", "")
        if old == new:
            return []
        lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), "baseline", "now", lineterm=""))
        return lines[:DIFF_LINES] + ([f"… ({len(lines) - DIFF_LINES} more lines)"] if len(lines) > DIFF_LINES else [])


class Baseline:
    """A loaded baseline log; `compare` sets this run's records against it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records = {str(r.get("nodeid")): r for r in load([path])}  # MergeError names the file and line

    def compare(self, records: list[dict[str, Any]], alpha: float) -> list[Change]:
        now = {str(r["nodeid"]): r for r in records}
        changes = [
            judge(self.records.get(nodeid), now.get(nodeid), alpha) for nodeid in dict.fromkeys([*self.records, *now])
        ]
        return sorted(changes, key=lambda c: (ORDER.index(c.status), c.name))


def judge(before: dict[str, Any] | None, after: dict[str, Any] | None, alpha: float) -> Change:
    """One scenario's change: Fisher's exact test on the agent's passes and failures then and now."""
    if before is None or after is None:
        return Change("new" if before is None else "removed", before, after)
    then, now = tally(before), tally(after)
    if not then.measured or not now.measured:
        return Change("unmeasured", before, after)
    p = fisher_exact(then.passed, then.failed, now.passed, now.failed)
    if then.passed * now.measured == now.passed * then.measured:
        return Change("unchanged", before, after, p)
    if p < alpha:
        return Change(
            "regressed" if now.passed * then.measured < then.passed * now.measured else "fixed", before, after, p
        )
    assert then.rate is not None and now.rate is not None
    return Change("within noise", before, after, p, attempts_to_decide(then.rate, now.rate, alpha))


@dataclass(frozen=True)
class Paired:
    """The run against the baseline over the scenarios measured on both sides: how many got better or worse, the
    sign test's p, and the mean change of the pass rate with its 95% interval (None for fewer than two)."""

    better: int
    worse: int
    same: int
    p: float
    change: float
    interval: tuple[float, float] | None

    def text(self) -> str:
        """`across 3 scenarios …: 0 better, 2 worse, 1 the same; pass rate −44.4 points (95% CI …), sign test p …`."""
        ci = (
            f" (95% CI {self.interval[0] * 100:+.1f} to {self.interval[1] * 100:+.1f})"
            if self.interval is not None
            else ""
        )
        return (
            f"across {self.better + self.worse + self.same} scenarios measured on both sides: {self.better} better, "
            f"{self.worse} worse, {self.same} the same; pass rate {self.change * 100:+.1f} points{ci}, "
            f"sign test p = {self.p:.2f}"
        )

    def record(self) -> dict[str, Any]:
        return {
            "better": self.better,
            "worse": self.worse,
            "same": self.same,
            "p": float(f"{self.p:.6g}"),
            "change": round(self.change, 4),
            "interval": [round(x, 4) for x in self.interval] if self.interval is not None else None,
        }


def paired(changes: list[Change]) -> Paired | None:
    """The paired comparison over scenarios: each one's change of pass rate, signed; None when none is comparable."""
    diffs = []
    for change in changes:
        if change.before is None or change.after is None:
            continue
        then, now = tally(change.before), tally(change.after)
        if then.rate is not None and now.rate is not None:
            diffs.append(now.rate - then.rate)
    if not diffs:
        return None
    better, worse = sum(1 for d in diffs if d > 0), sum(1 for d in diffs if d < 0)
    spread = mean_interval(diffs)
    interval = (max(-1.0, spread[1]), min(1.0, spread[2])) if spread is not None else None
    return Paired(
        better, worse, len(diffs) - better - worse, sign_test(better, worse), sum(diffs) / len(diffs), interval
    )


def summary(changes: list[Change], path: str) -> dict[str, Any]:
    """The comparison's part of the JSONL summary record."""
    across = paired(changes)
    return {
        "path": path,
        "tally": {status: sum(1 for c in changes if c.status == status) for status in ORDER},
        "paired": across.record() if across is not None else None,
        "changes": [c.summary() for c in changes],
    }


def tally_text(changes: list[Change]) -> str:
    """`1 regressed, 0 fixed, 2 within noise, 0 unmeasured, 0 new, 0 removed, 14 unchanged`."""
    return ", ".join(f"{sum(1 for c in changes if c.status == s)} {s}" for s in ORDER)


def _line(change: Change) -> str:
    """One changed scenario: results, significance and deltas."""
    extra = "; ".join(part for part in (change.significance(), change.deltas) if part)
    return f"{change.name}: {change.results()}" + (f" ({extra})" if extra else "")


def terminal_lines(changes: list[Change], path: str, alpha: float) -> list[str]:
    """The terminal summary's account: the tally, the paired comparison, then each scenario that changed."""
    lines = [f"interllm: baseline {path}: {tally_text(changes)} (Fisher's exact test per scenario, alpha {alpha:g})"]
    across = paired(changes)
    if across is not None:
        lines.append(f"interllm: {across.text()}")
    for change in changes:
        if change.status != "unchanged":
            lines.append(f"interllm: {change.status} {_line(change)}")
    return lines


def markdown(changes: list[Change], path: str, alpha: float) -> str:
    """A markdown section for `--interllm-summary`: what changed since the baseline, and how sure that is."""
    across = paired(changes)
    lines = [
        f"### Changes since the baseline (`{path}`)",
        "",
        tally_text(changes) + f" (Fisher's exact test, alpha {alpha:g})",
    ]
    lines += ["", across.text()] if across is not None else []
    lines.append("")
    changed = [c for c in changes if c.status != "unchanged"]
    if changed:
        lines += [
            "| change | scenario | then → now (agent's attempts) | significance | deltas |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| **{c.status}** | {c.name.replace('|', '/')} | {c.results()} | {c.significance()} | {c.deltas} |"
            for c in changed
        ]
    for change in changes:
        diff = change.diff if change.status in ("regressed", "fixed", "within noise") else []
        if diff:
            lines += ["", f"<details><summary>{change.name}: output file diff</summary>", "", "```diff"]
            lines += [*diff, "```", "", "</details>"]
    return "\n".join(lines) + "\n"


def html(changes: list[Change], path: str, alpha: float) -> str:
    """The report's section: the tally, the paired comparison, every scenario that changed, and the output diffs."""
    rows = "".join(
        f'<tr><td class="{"bad" if c.status == "regressed" else "ok" if c.status == "fixed" else ""}">'
        f"{escape(c.status)}</td><td>{escape(c.name)}</td><td>{escape(c.results())}</td>"
        f"<td>{escape(c.significance())}</td><td>{escape(c.deltas)}</td>"
        f"<td>{'<pre>' + escape(chr(10).join(c.diff)) + '</pre>' if c.diff else ''}</td></tr>"
        for c in changes
        if c.status != "unchanged" or c.diff
    )
    head = (
        "<tr><th>change</th><th>scenario</th><th>then → now (agent's attempts)</th><th>significance</th>"
        "<th>deltas</th><th>output file diff</th></tr>"
    )
    table = f"<table>{head}{rows}</table>" if rows else ""
    across = paired(changes)
    return (
        f"<h3>Changes since the baseline ({escape(path)})</h3>"
        f"<p>{escape(tally_text(changes))} (Fisher's exact test, alpha {alpha:g})</p>"
        + (f"<p>{escape(across.text())}</p>" if across is not None else "")
        + table
    )
