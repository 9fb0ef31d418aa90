"""pytest-html integration: per-scenario extras, extra table columns and a run summary (all escaped)."""

from __future__ import annotations

import time
from html import escape
from typing import Any

from pytest_interllm.errors import CONFIGURATION, INFRASTRUCTURE
from pytest_interllm.report.summary import (
    matrix,
    matrix_cell,
    model_totals,
    models_of,
    pass_rates,
    rate_line,
    result_text,
)

STYLE = (
    "<style>.interllm{font:13px/1.4 sans-serif;margin:6px 0}.interllm details{margin:4px 0}"
    ".interllm summary{cursor:pointer;font-weight:600}.interllm pre{white-space:pre-wrap;background:#f6f8fa;"
    "padding:6px;max-height:420px;overflow:auto;margin:4px 0}.interllm table{border-collapse:collapse}"
    ".interllm td,.interllm th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}"
    ".interllm .bad{color:#b00020;font-weight:600}.interllm .ok{color:#1b5e20}"
    ".interllm .diff .add{color:#1b5e20;background:#e6ffec}.interllm .diff .del{color:#b00020;background:#ffebe9}"
    ".interllm .diff .hunk{color:#0550ae}.interllm .diff .head{color:#57606a;font-weight:600}"
    ".interllm .diff span{display:block}</style>"
)


def _clock(when: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when)) if when else ""


def _pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def _section(title: str, body: str, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{escape(title)}</summary>{body}</details>"


def _models(record: dict[str, Any]) -> str:
    expected = record["expected_model"]
    rows = [("expected", expected, True), ("codex session (session_configured)", record["session_model"], None)]
    rows += [(f"provider request {n}", m, None) for n, m in enumerate(record["provider_models"], 1)]
    cells = []
    for label, model, _ in rows:
        ok = model == expected
        mark = "" if label == "expected" else (' class="ok"' if ok else ' class="bad"')
        cells.append(
            f"<tr><th>{escape(label)}</th><td{mark}>{escape(repr(model) if model is not None else '—')}</td></tr>"
        )
    asked, ran = record.get("expected_config") or {}, record.get("session_config") or {}
    for key, want in asked.items():
        got = ran.get(key)
        mark = "" if got is None else (' class="ok"' if got == want else ' class="bad"')
        shown = "not reported" if got is None else repr(got)
        cells.append(f"<tr><th>{escape(key)} (asked {escape(repr(want))})</th><td{mark}>{escape(shown)}</td></tr>")
    return f"<table>{''.join(cells)}</table>"


def _timeline(record: dict[str, Any]) -> str:
    rows = []
    for call in record["tool_calls"]:
        first = call["command"].splitlines()[0] if call["command"] else ""
        klass = "ok" if call["exit_code"] == 0 else "bad"
        took = _seconds(call["duration"])
        rows.append(
            f"<tr><td>tool call</td><td><code>{escape(first[:200])}</code></td>"
            f'<td class="{klass}">exit {escape(str(call["exit_code"]))}</td><td>{took}</td>'
            f"<td>{escape(call['output'][-400:])}</td></tr>"
        )
    for req in record["requests"]:
        klass = "ok" if req["status"] < 400 else "bad"
        who = "grader request" if req.get("grader") else "request"
        rows.append(
            f"<tr><td>{_clock(req['time'])} {who}</td>"
            f"<td>POST {escape(req['path'])} model={escape(repr(req['model']))}"
            f"{' sandbox=' + escape(str(req['sandbox_mode'])) if req.get('sandbox_mode') else ''}"
            f"{' (replayed from the cassette)' if req.get('replayed') else ''}"
            f'</td><td class="{klass}">HTTP {req["status"]}</td><td>{_seconds(req["latency"])}</td>'
            f"<td>{req['input_tokens']} in / {req['output_tokens']} out</td></tr>"
        )
    events = ", ".join(f"{_clock(e['time'])} {e['type']}" for e in record["events"])
    table = (
        f"<table><tr><th>step</th><th>what</th><th>result</th><th>time</th><th>detail</th></tr>{''.join(rows)}</table>"
    )
    return table + f"<p>codex events: {escape(events) or '—'}</p>"


def _seconds(value: float | None) -> str:
    """Every duration of the report in one format."""
    return f"{value:.2f}s" if value is not None else "—"


def _diff(text: str) -> str:
    """A unified diff, its lines coloured by what they are (no script, no network)."""
    lines = []
    for line in text.splitlines():
        klass = (
            "head"
            if line.startswith(("+++", "---"))
            else "add"
            if line.startswith("+")
            else "del"
            if line.startswith("-")
            else "hunk"
            if line.startswith("@@")
            else ""
        )
        lines.append(
            f'<span class="{klass}">{escape(line) or " "}</span>' if klass else f"<span>{escape(line) or ' '}</span>"
        )
    return f'<pre class="diff">{"".join(lines)}</pre>'


def _trajectory(record: dict[str, Any]) -> str:
    """What the agent did, one row per step: commands, file changes, MCP tool calls, web searches."""
    rows = []
    for n, step in enumerate(record.get("trajectory") or [], 1):
        kind = step["kind"]
        if kind == "command":
            code = step.get("exit_code")
            result = f'<td class="{"ok" if code == 0 else "bad"}">exit {escape(str(code))}</td>'
            what = f"<code>{escape(str(step['command']).splitlines()[0][:200] if step['command'] else '')}</code>"
            detail = escape(str(step.get("output") or "")[-400:]) + (
                f" (in {escape(step['cwd'])})" if step.get("cwd") not in (None, "", ".") else ""
            )
            took = _seconds(step.get("duration"))
        elif kind == "file_change":
            moved = f" → {step['move_path']}" if step.get("move_path") else ""
            what = f"{escape(step['change'])} <code>{escape(step['path'] + moved)}</code>"
            applied = step.get("ok", True)
            result = f'<td class="{"ok" if applied else "bad"}">{"applied" if applied else "failed"}</td>'
            detail, took = "", "—"
        elif kind == "mcp_tool_call":
            what = f"<code>{escape(step['server'])}.{escape(step['tool'])}</code> {escape(step.get('arguments', ''))}"
            result = f'<td class="{"ok" if step.get("ok") else "bad"}">{"ok" if step.get("ok") else "error"}</td>'
            detail, took = escape(str(step.get("output") or "")), _seconds(step.get("duration"))
        else:
            what, result, detail, took = escape(str(step.get("query", ""))), "<td></td>", "", "—"
        name = escape(kind.replace("_", " "))
        rows.append(f"<tr><td>{n}</td><td>{name}</td><td>{what}</td>{result}<td>{took}</td><td>{detail}</td></tr>")
    if not rows:
        return "<p>codex reported no command, file change, tool call or web search.</p>"
    return (
        "<table><tr><th>#</th><th>step</th><th>what</th><th>result</th><th>time</th><th>detail</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _workspace(record: dict[str, Any]) -> str:
    """The workspace diff (ours) and the check's result."""
    diff = record.get("workspace_diff") or []
    parts = []
    where = record.get("workspace")
    if where:
        kept = "kept for inspection" if record.get("workspace_kept") else "removed (the attempt passed)"
        parts.append(f"<p>workspace <code>{escape(where)}</code>: {kept}</p>")
    check = record.get("check")
    if check is not None:
        ok = check["exit_code"] == 0 and not check["timed_out"]
        state = "timed out (killed)" if check["timed_out"] else f"exit {check['exit_code']}"
        parts.append(
            f'<p>check <code>{escape(check["command"])}</code>: <span class="{"ok" if ok else "bad"}">{escape(state)}'
            f"</span> in {_seconds(check['duration'])}</p>"
        )
        parts.append(_section("check output", _pre(check["output"] or "(no output)"), open_=not ok))
    if not diff:
        parts.append("<p>no file changed in the workspace.</p>")
    for change in diff:
        title = f"{change['kind']} {change['path']}" + (" (binary)" if change.get("binary") else "")
        parts.append(f"<p><b>{escape(title)}</b></p>" + (_diff(change["diff"]) if change["diff"] else ""))
    return "".join(parts)


def _spans(record: dict[str, Any]) -> str:
    """The Agents SDK span tree, indented by parent."""
    spans = record.get("spans") or []
    depth: dict[Any, int] = {}
    rows = []
    for span in sorted(spans, key=lambda s: str(s.get("started_at") or "")):
        level = depth.get(span.get("parent_id"), -1) + 1
        depth[span.get("id")] = level
        label = f"{'  ' * level}{span['type']} {span['name']}".rstrip()
        detail = span["input"][:300] + (f" → {span['output'][:300]}" if span["output"] else "")
        error = f" ERROR {span['error']}" if span.get("error") else ""
        rows.append(f"<tr><td><pre>{escape(label)}</pre></td><td>{escape(detail + error)}</td></tr>")
    models = ", ".join(repr(m) for m in record.get("orchestrator_models") or [])
    agent = record.get("orchestrator") or {}
    head = ""
    if agent:
        named = "no model (the SDK's default)" if agent.get("model") is None else f"model {agent.get('model')!r}"
        head += f"<p>orchestrator <b>{escape(str(agent.get('name')))}</b>, {escape(named)}</p>"
        head += _section("instructions", _pre(str(agent.get("instructions") or "")))
    head += f"<p>orchestrator requests: {escape(models) or '—'}; codex call arguments: "
    head += f"{escape(str(record.get('codex_arguments') or {}))}</p>"
    return head + f"<table><tr><th>span</th><th>input → output</th></tr>{''.join(rows)}</table>"


def _apart(run: dict[str, Any]) -> str:
    """` (infrastructure: not counted)` for an attempt that failed for someone else than the agent."""
    group = run.get("failure_group")
    return f" ({escape(group)}: not counted)" if group in (INFRASTRUCTURE, CONFIGURATION) else ""


def render(record: dict[str, Any]) -> str:
    """The HTML extra of one scenario: failure, prompt, final_output, models, timeline, output file."""
    parts = [STYLE, '<div class="interllm">']
    head = f"Scenario {record['index']}: {record['title']}"
    if record["section"]:
        head += f" — {record['section']}"
    parts.append(f"<p><b>{escape(head)}</b></p>")
    if record["failure"]:  # its headline; the whole failure is pytest-html's log below, once
        parts.append(f'<p class="bad">{escape(record["failure"].splitlines()[0])}</p>')
    facts = (
        f"duration {_seconds(record['duration'])} · tokens {record['tokens_in']} in / {record['tokens_out']} out"
        + (" · no spend" if record["cost_usd"] is None else f" · estimated cost ${record['cost_usd']:.4f}")
        + f" · attempts {record['attempts']} · provider retries {record['provider_retries']}"
        + (f" · fault {record['fault']}" if record["fault"] else "")
    )
    parts.append(f"<p>{escape(facts)}</p>")
    repeat = record.get("repeat")
    if repeat:
        parts.append(
            f"<p><b{_mark(record)}>{escape(result_text(record, icons=False))}</b> · {escape(pass_rates(record))}</p>"
        )
        runs = "".join(
            f'<tr><td>{run["attempt"]}</td><td class="{"ok" if run["result"] == "passed" else "bad"}">'
            f"{escape(run['result'])}</td><td>{escape(run.get('failure') or '')}{_apart(run)}</td>"
            f"<td>{_pre(run.get('final_output') or '(empty)')}</td></tr>"
            for run in record.get("runs") or []
        )
        table = f"<table><tr><th>attempt</th><th>result</th><th>failure</th><th>final_output</th></tr>{runs}</table>"
        parts.append(_section(f"attempts ({repeat['attempts']})", table, open_=bool(record["failure"])))
    parts.append(_section("final_output", _pre(record["final_output"] or "(empty)"), open_=True))
    parts.append(_section("prompt", _pre(record["prompt"])))
    parts.append(_section("models and configuration: asked vs actual", _models(record), open_=bool(record["failure"])))
    steps = record.get("trajectory") or []
    failed = bool(record["failure"])
    parts.append(_section(f"what the agent did ({len(steps)} steps)", _trajectory(record), open_=failed))
    if record.get("workspace_diff") is not None:
        files = len(record["workspace_diff"])
        parts.append(_section(f"workspace diff ({files} files)", _workspace(record), open_=failed))
    parts.append(_section("timeline: tool calls, requests, events", _timeline(record)))
    if "spans" in record:
        parts.append(_section(f"Agents SDK spans ({len(record['spans'])})", _spans(record)))
    if record.get("rubric") or record.get("grader"):
        rubric_rows = "".join(
            f'<tr><td>{escape(c["criterion"])}</td><td class="{"ok" if c["verdict"] == "pass" else "bad"}">'
            f"{escape(c['verdict'])}</td><td>{escape(c['reason'])}</td><td>{escape(c['votes'])}</td></tr>"
            for c in record.get("rubric") or []
        )
        table = (
            f"<p>graded by {escape(str(record.get('grader')))}</p><table><tr><th>criterion</th><th>verdict</th>"
            f"<th>reason</th><th>votes</th></tr>{rubric_rows}</table>"
        )
        failed = any(c["verdict"] != "pass" for c in record.get("rubric") or [])
        parts.append(_section(f"rubric ({len(record.get('rubric') or [])} criteria)", table, open_=failed))
    state = "exists" if record["output_exists"] else "missing"
    preview = _pre(record["output_preview"]) if record["output_preview"] else ""
    parts += [f"<p>re-run: {escape(why)}</p>" for why in record.get("reruns") or []]
    parts += [f"<p>re-run in its place, not counted: {escape(why)}</p>" for why in record.get("infra_reruns") or []]
    notes = "".join(f"<p>{escape(note)}</p>" for note in record.get("output_notes") or [])
    parts.append(_section(f"output file: {record['output_path']} ({state})", notes + preview, open_=bool(notes)))
    parts.append("</div>")
    return "".join(parts)


def _mark(record: dict[str, Any] | None) -> str:
    """A result's colour in a table cell (CSS, not an emoji: a headless browser may lack the font)."""
    result = record["result"] if record is not None else None
    return ' class="ok"' if result == "passed" else ' class="bad"' if result == "failed" else ""


def summary(
    info: dict[str, str], counts: dict[str, int], records: list[dict[str, Any]] | None = None, extra: str = ""
) -> str:
    """The run summary above the results table; with several models, the scenarios × models comparison."""
    facts = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in info.items())
    tally = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in counts.items()) or (
        "<tr><td>no scenarios ran</td></tr>"
    )
    compared = ""
    models = models_of(records or [])
    if len(models) > 1:
        assert records is not None
        head = "".join(f"<th>{escape(m)}</th>" for m in models)
        rows = "".join(
            f"<tr><td>{escape(index)}</td><td>{escape(title)}</td>"
            + "".join(
                f"<td{_mark(by_model.get(m))}>{escape(matrix_cell(by_model.get(m), icons=False))}</td>" for m in models
            )
            + "</tr>"
            for index, title, by_model in matrix(records)
        )
        totals = "".join(f"<td><b>{escape(model_totals(records, m))}</b></td>" for m in models)
        compared = (
            f"<h3>Models compared</h3><table><tr><th>#</th><th>scenario</th>{head}</tr>{rows}"
            f"<tr><td></td><td><b>all scenarios</b></td>{totals}</tr></table>"
        )
    rate = f"<p><b>{escape(rate_line(records or []))}</b></p>"
    return (
        f'{STYLE}<div class="interllm"><h2>pytest-interllm</h2><table>{facts}</table>{rate}'
        f"<h3>Scenarios by result and failure class</h3><table>{tally}</table>{compared}{extra}</div>"
    )
