"""The markdown summary table (`--interllm-summary PATH`, e.g. `$GITHUB_STEP_SUMMARY`) and result counts."""

from __future__ import annotations

from collections import Counter
from typing import Any


def counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """`passed`, `failed`, … and `failed: <class>` counts, in a stable order."""
    tally: Counter[str] = Counter()
    for record in records:
        tally[record["result"]] += 1
        if record["failure_class"]:
            tally[f"{record['result']}: {record['failure_class']}"] += 1
    return dict(sorted(tally.items()))


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def dollars(cost: float | None) -> str:
    """A scenario's estimated cost, or "—" when its run spends nothing."""
    return "—" if cost is None else f"${cost:.4f}"


def spend(records: list[dict[str, Any]], free: str | None = None, extra: float = 0.0) -> str:
    """The run's spend: an estimate in USD, or why there is none ("no spend: scripted model")."""
    costs = [r["cost_usd"] for r in records if r["cost_usd"] is not None]
    if free or (records and not costs):
        return free or "no spend"
    return f"estimated cost ${sum(costs) + extra:.4f}"


def markdown(records: list[dict[str, Any]], info: dict[str, str], free: str | None = None) -> str:
    """A GitHub-flavoured markdown report of the run."""
    ordered = sorted(records, key=lambda r: (r["nodeid"].split("::")[0], r["index"]))
    icon = {"passed": "✅", "failed": "❌", "skipped": "⏭️", "xfailed": "⚠️", "xpassed": "⚠️"}
    lines = ["## pytest-interllm", "", " · ".join(f"**{k}** {_cell(v)}" for k, v in info.items()), ""]
    tally = counts(records)
    lines.append(" · ".join(f"{k}: {v}" for k, v in tally.items()) or "no scenarios ran")
    tin = sum(r["tokens_in"] for r in records)
    tout = sum(r["tokens_out"] for r in records)
    lines += [
        "",
        f"tokens {tin} in / {tout} out · {spend(records, free)}",
        "",
        "| # | scenario | result | class | model | tokens in/out | est. cost | duration |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ordered:
        lines.append(
            f"| {r['index']} | {_cell(r['title'])} | {icon.get(r['result'], '')} {r['result']} | "
            f"{_cell(r['failure_class'] or '')} | {_cell(r['session_model'] or '—')} | "
            f"{r['tokens_in']}/{r['tokens_out']} | {dollars(r['cost_usd'])} | {r['duration']:.1f}s |"
        )
    return "\n".join(lines) + "\n"
