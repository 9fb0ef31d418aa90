"""What changed since a baseline run (`--interllm-baseline PATH`: an earlier run's JSONL log, or a merged one).

Per scenario and model: regressed (passed before, failed now), fixed, new, removed or unchanged, with the
token, cost and duration deltas and a diff of the output file against the baseline's.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cached_property
from html import escape
from pathlib import Path
from typing import Any

from pytest_interllm.report.merge import load

ORDER = ("regressed", "fixed", "new", "removed", "unchanged")
DIFF_LINES = 60


@dataclass(frozen=True)
class Change:
    """One scenario (on one model) now against the baseline."""

    status: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def record(self) -> dict[str, Any]:
        return self.after or self.before or {}

    @property
    def name(self) -> str:
        return str(self.record.get("name", "?"))

    def results(self) -> str:
        """`passed → failed [no-output-file]`."""

        def one(record: dict[str, Any] | None) -> str:
            if record is None:
                return "absent"
            cls = f" [{record['failure_class']}]" if record.get("failure_class") else ""
            return f"{record['result']}{cls}"

        return f"{one(self.before)} → {one(self.after)}"

    @cached_property
    def deltas(self) -> str:
        """Tokens, cost and duration now minus before."""
        if self.before is None or self.after is None:
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
        if self.before is None or self.after is None:
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

    def compare(self, records: list[dict[str, Any]]) -> list[Change]:
        now = {str(r["nodeid"]): r for r in records}
        changes = []
        for nodeid in dict.fromkeys([*self.records, *now]):
            before, after = self.records.get(nodeid), now.get(nodeid)
            if before is None:
                status = "new"
            elif after is None:
                status = "removed"
            elif before["result"] == "passed" and after["result"] == "failed":
                status = "regressed"
            elif before["result"] == "failed" and after["result"] == "passed":
                status = "fixed"
            else:
                status = "unchanged"
            changes.append(Change(status, before, after))
        return sorted(changes, key=lambda c: (ORDER.index(c.status), c.name))


def tally(changes: list[Change]) -> str:
    """`1 regressed, 0 fixed, 0 new, 0 removed, 16 unchanged`."""
    return ", ".join(f"{sum(1 for c in changes if c.status == s)} {s}" for s in ORDER)


def terminal_lines(changes: list[Change], path: str) -> list[str]:
    """The terminal summary's account: the tally, then each scenario that changed."""
    lines = [f"interllm: baseline {path}: {tally(changes)}"]
    for change in changes:
        if change.status != "unchanged":
            deltas = f" ({change.deltas})" if change.deltas else ""
            lines.append(f"interllm: {change.status} {change.name}: {change.results()}{deltas}")
    return lines


def markdown(changes: list[Change], path: str) -> str:
    """A markdown section for `--interllm-summary`: what changed since the baseline."""
    lines = [f"### Changes since the baseline (`{path}`)", "", tally(changes), ""]
    changed = [c for c in changes if c.status != "unchanged"]
    if changed:
        lines += ["| change | scenario | result | deltas |", "|---|---|---|---|"]
        lines += [f"| **{c.status}** | {c.name.replace('|', '/')} | {c.results()} | {c.deltas} |" for c in changed]
    for change in changes:
        diff = change.diff if change.status in ("regressed", "fixed") else []
        if diff:
            lines += ["", f"<details><summary>{change.name}: output file diff</summary>", "", "```diff"]
            lines += [*diff, "```", "", "</details>"]
    return "\n".join(lines) + "\n"


def html(changes: list[Change], path: str) -> str:
    """The report's section: the tally, every scenario that changed, and the output diffs."""
    rows = "".join(
        f'<tr><td class="{"bad" if c.status == "regressed" else "ok" if c.status == "fixed" else ""}">'
        f"{escape(c.status)}</td><td>{escape(c.name)}</td><td>{escape(c.results())}</td>"
        f"<td>{escape(c.deltas)}</td><td>{'<pre>' + escape(chr(10).join(c.diff)) + '</pre>' if c.diff else ''}"
        "</td></tr>"
        for c in changes
        if c.status != "unchanged" or c.diff
    )
    head = "<tr><th>change</th><th>scenario</th><th>result</th><th>deltas</th><th>output file diff</th></tr>"
    table = f"<table>{head}{rows}</table>" if rows else ""
    return f"<h3>Changes since the baseline ({escape(path)})</h3><p>{escape(tally(changes))}</p>{table}"
