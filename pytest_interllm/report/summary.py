"""The markdown summary table (`--interllm-summary PATH`, e.g. `$GITHUB_STEP_SUMMARY`) and result counts."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pytest_interllm.report.numbers import run_tally, tally


def counts(records: list[dict[str, Any]]) -> dict[str, int]:
    """`passed`, `failed`, … and `failed: <class>` counts, in a stable order."""
    seen: Counter[str] = Counter()
    for record in records:
        seen[record["result"]] += 1
        if record["failure_class"]:
            seen[f"{record['result']}: {record['failure_class']}"] += 1
    return dict(sorted(seen.items()))


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


ICON = {"passed": "✅", "failed": "❌", "skipped": "⏭️", "xfailed": "⚠️", "xpassed": "⚠️"}


def result_text(record: dict[str, Any], icons: bool = True) -> str:
    """`✅ passed`, or with repeats `❌ failed 2/3 — no-output-file ×1` (the agent's attempts; the others apart);
    without `icons` (the HTML report: a headless browser may lack the emoji font) `passed`, `failed 2/3 …`."""
    text = f"{ICON.get(record['result'], '')} {record['result']}" if icons else str(record["result"])
    repeat = record.get("repeat")
    if repeat:
        counted = tally(record)
        text += f" {counted.passed}/{counted.measured}"
        classes = ", ".join(f"{name} ×{count}" for name, count in repeat["classes"].items())
        text += f" — {classes}" if classes else ""
        text += f" ({counted.apart()})" if counted.apart() else ""
    return text


def pass_rates(record: dict[str, Any]) -> str:
    """`67% (95% CI 21–94%) · pass@1 0.67 · pass@3 1.00 · pass^3 0.00` for repeated attempts, else ""."""
    repeat = record.get("repeat")
    if not repeat:
        return ""
    counted = tally(record)
    n = counted.measured
    if not n:
        return "no attempt measured the agent"
    low, high = counted.interval
    return (
        f"{counted.passed / n:.0%} (95% CI {low * 100:.0f}–{high:.0%}) · pass@1 {repeat['pass_at_1']:.2f} · "
        f"pass@{n} {repeat['pass_at_n']:.2f} · pass^{n} {repeat['pass_hat_n']:.2f}"
    )


def rubric_text(record: dict[str, Any]) -> str:
    """`✅ 2/2`, or `❌ 1/2: Uses "quantum key distribution" for the keys`."""
    rubric = record.get("rubric") or []
    if not rubric:
        return ""
    failed = [c["criterion"] for c in rubric if c["verdict"] != "pass"]
    text = f"{'❌' if failed else '✅'} {len(rubric) - len(failed)}/{len(rubric)}"
    return f"{text}: {'; '.join(failed)}" if failed else text


def models_of(records: list[dict[str, Any]]) -> list[str]:
    """The run's models, in order of appearance."""
    return list(dict.fromkeys(r["expected_model"] for r in records))


def matrix(records: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, dict[str, Any]]]]:
    """Scenarios × models: (index, title, {model: record}) per scenario, for runs on several models."""
    rows: dict[tuple[str, int], tuple[str, str, dict[str, dict[str, Any]]]] = {}
    for r in sorted(records, key=lambda r: (r["nodeid"].split("::")[0], r["index"])):
        key = (r["nodeid"].split("::")[0], r["index"])
        rows.setdefault(key, (str(r["index"]), r["title"], {}))[2][r["expected_model"]] = r
    return list(rows.values())


def matrix_cell(record: dict[str, Any] | None, icons: bool = True) -> str:
    """One scenario on one model: result (with repeats, the 95% interval of its pass rate), tokens, cost, duration."""
    if record is None:
        return "—"
    tokens = record["tokens_in"] + record["tokens_out"]
    counted = tally(record)
    low, high = counted.interval
    ci = f" · 95% CI {low * 100:.0f}–{high:.0%}" if record.get("repeat") and counted.measured else ""
    return (
        f"{result_text(record, icons)}{ci} · {tokens} tok · {dollars(record['cost_usd'])} · {record['duration']:.1f}s"
    )


def model_totals(records: list[dict[str, Any]], model: str) -> str:
    """One model over the run: pass rate of the agent's attempts with its interval, tokens, cost and duration."""
    mine = [r for r in records if r["expected_model"] == model and r["result"] != "skipped"]
    tokens = sum(r["tokens_in"] + r["tokens_out"] for r in mine)
    costs = [r["cost_usd"] for r in mine if r["cost_usd"] is not None]
    cost = f"${sum(costs):.4f}" if costs else "no spend"
    counted = run_tally(records, model)
    rate = counted.text() + (f", {counted.apart()}" if counted.apart() else "") if mine else "none ran"
    return f"{rate} · {tokens} tok · {cost} · {sum(r['duration'] for r in mine):.1f}s"


def rate_line(records: list[dict[str, Any]]) -> str:
    """The run's pass rate: `pass rate 16/17 passed = 94.1% (95% CI 73.0–99.0%) on the agent's attempts; …`."""
    counted = run_tally(records)
    apart = counted.apart()
    rate = (
        f"pass rate {counted.text()} on the agent's attempts"
        if counted.measured
        else "no pass rate: no attempt measured the agent"
    )
    return rate + (f"; {apart}, not counted" if apart else "")


def markdown(
    records: list[dict[str, Any]], info: dict[str, str], free: str | None = None, extra: list[str] | None = None
) -> str:
    """A GitHub-flavoured markdown report of the run (`extra`: more sections, e.g. the baseline comparison)."""
    ordered = sorted(records, key=lambda r: (r["nodeid"].split("::")[0], r["index"]))
    lines = ["## pytest-interllm", "", " · ".join(f"**{k}** {_cell(v)}" for k, v in info.items()), ""]
    tallied = counts(records)
    lines.append(" · ".join(f"{k}: {v}" for k, v in tallied.items()) or "no scenarios ran")
    lines += ["", f"**{rate_line(records)}**"]
    tin = sum(r["tokens_in"] for r in records)
    tout = sum(r["tokens_out"] for r in records)
    repeats = any(r.get("repeat") for r in records)
    graded = any(r.get("rubric") for r in records)
    lines += [
        "",
        f"tokens {tin} in / {tout} out · {spend(records, free)}",
        "",
        "| # | scenario | result | class | model | tokens in/out | est. cost | duration |"
        + (" pass rates |" if repeats else "")
        + (" rubric |" if graded else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if repeats else "") + ("---|" if graded else ""),
    ]
    for r in ordered:
        lines.append(
            f"| {r['index']} | {_cell(r['title'])} | {_cell(result_text(r))} | "
            f"{_cell(r['failure_class'] or '')} | {_cell(r['session_model'] or '—')} | "
            f"{r['tokens_in']}/{r['tokens_out']} | {dollars(r['cost_usd'])} | {r['duration']:.1f}s |"
            + (f" {pass_rates(r)} |" if repeats else "")
            + (f" {_cell(rubric_text(r))} |" if graded else "")
        )
    models = models_of(records)
    if len(models) > 1:
        lines += ["", "### Models compared", "", "| # | scenario | " + " | ".join(map(_cell, models)) + " |"]
        lines.append("|---|---|" + "---|" * len(models))
        for index, title, by_model in matrix(records):
            cells = " | ".join(_cell(matrix_cell(by_model.get(m))) for m in models)
            lines.append(f"| {index} | {_cell(title)} | {cells} |")
        lines.append("| | **all scenarios** | " + " | ".join(_cell(model_totals(records, m)) for m in models) + " |")
    for section in extra or []:
        lines += ["", section.rstrip("\n")]
    return "\n".join(lines) + "\n"
