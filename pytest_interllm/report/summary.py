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


def markdown(records: list[dict[str, Any]], info: dict[str, str]) -> str:
    """A GitHub-flavoured markdown report of the run."""
    ordered = sorted(records, key=lambda r: (r["nodeid"].split("::")[0], r["index"]))
    icon = {"passed": "✅", "failed": "❌", "skipped": "⏭️", "xfailed": "⚠️", "xpassed": "⚠️"}
    lines = ["## pytest-interllm", "", " · ".join(f"**{k}** {_cell(v)}" for k, v in info.items()), ""]
    tally = counts(records)
    lines.append(" · ".join(f"{k}: {v}" for k, v in tally.items()) or "no scenarios ran")
    tin = sum(r["tokens_in"] for r in records)
    tout = sum(r["tokens_out"] for r in records)
    cost = sum(r["cost_usd"] for r in records)
    lines += [
        "",
        f"tokens {tin} in / {tout} out · estimated cost ${cost:.4f}",
        "",
        "| # | scenario | result | class | model | tokens in/out | est. cost | duration |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ordered:
        lines.append(
            f"| {r['index']} | {_cell(r['title'])} | {icon.get(r['result'], '')} {r['result']} | "
            f"{_cell(r['failure_class'] or '')} | {_cell(r['session_model'] or '—')} | "
            f"{r['tokens_in']}/{r['tokens_out']} | ${r['cost_usd']:.4f} | {r['duration']:.1f}s |"
        )
    return "\n".join(lines) + "\n"
