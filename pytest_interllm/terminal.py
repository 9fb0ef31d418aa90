"""What the run says about itself: the header, the terminal summary, the run's description for the log and the
summaries, and the account of the outputs removed at its start."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pytest_interllm.cost import FREE_PLAN
from pytest_interllm.outputs import Cleanup
from pytest_interllm.report import gate
from pytest_interllm.report.baseline import terminal_lines as baseline_lines
from pytest_interllm.report.summary import counts as summary_counts
from pytest_interllm.report.summary import model_totals, models_of, rate_line
from pytest_interllm.report.summary import spend as summary_spend

if TYPE_CHECKING:
    from pytest_interllm.controller import Controller
    from pytest_interllm.wiring import Run


def header(run: Run, cleanup: Cleanup, notes: list[str], models: dict[str, str] | None = None) -> list[str]:
    """pytest's header lines: provider, model, executor, codex, sandbox, outputs, and notes on the inputs."""
    s = run.settings
    codex = f"{run.codex.path} ({run.codex.version})" if run.codex else "not checked (collect only)"
    home = str(s.codex_home) if s.codex_home else "isolated temporary CODEX_HOME"
    expected = ", ".join(
        model if s.model_explicit else f"{model} ({source})" for model, source in (models or {s.model: ""}).items()
    )
    return (
        [
            f"interllm: provider {provider_text(run)}, expected model {expected}, executor {s.executor}"
            + (f" ({s.executor_reason})" if s.executor_reason else ""),
            f"interllm: codex {codex}, sandbox {s.sandbox}, {home}",
            f"interllm: outputs {s.relative(s.output_dir)}/{cleanup_text(cleanup)}, "
            f"timeout {s.timeout:g}s per scenario",
        ]
        + (
            [
                f"interllm: OPENAI_DEFAULT_MODEL={os.environ['OPENAI_DEFAULT_MODEL']} is set and ignored: "
                "every model of the run is explicit"
                if not s.agent
                else f"interllm: OPENAI_DEFAULT_MODEL={os.environ['OPENAI_DEFAULT_MODEL']} is set: an Agent of "
                "yours that names no model runs it"
            ]
            if os.environ.get("OPENAI_DEFAULT_MODEL")
            else []
        )
        + (
            [
                "interllm: orchestrator (OpenAI Agents SDK) "
                + (f"yours ({s.agent}), expected model" if s.agent else "model")
                + f" {s.orchestrator_model or s.model}, tracing kept local (no upload)"
            ]
            if s.executor == "agents"
            else []
        )
        + [f"interllm: note: {note}" for note in notes]
    )


def cleanup_text(done: Cleanup) -> str:
    """What the start of the run removed from the output dir, for the header."""
    parts = [f"{len(done.removed)} earlier outputs of the plugin removed"] if done.removed else []
    parts += [f"{len(done.kept)} kept (see the run log)"] if done.kept else []
    parts += [f"manifest set aside: {p}" for p in done.problems]
    return f" ({', '.join(parts)})" if parts else ""


def cleanup_lines(run: Run, done: Cleanup) -> list[str]:
    """The log's account of the earlier outputs removed (and kept) at the start of the run."""
    where = run.settings.relative(run.settings.output_dir)
    lines = [f"earlier outputs of the plugin removed from {where}/: {len(done.removed)}"]
    lines += [f"  removed {name}" for name in done.removed]
    lines += [f"  kept {name}: {why}" for name, why in done.kept]
    lines += [f"  note: {problem}" for problem in done.problems]
    return lines


def provider_text(run: Run) -> str:
    """The provider, what is behind it, and why it was chosen."""
    s, plan = run.settings, run.plan
    why = " (OPENAI_API_KEY is set)" if s.provider_source == "default" and s.provider == "openai" else ""
    if plan is None:
        fallback = ", no OPENAI_API_KEY" if s.provider_source == "default" else ""
        return f"offline (built-in scripted model on 127.0.0.1, not a real LLM{fallback})"
    cassettes = s.relative(plan.cassette_dir) if plan.cassette_dir else ""
    if plan.provider == "replay":
        return f"replay (cassettes in {cassettes}/, nothing sent upstream)"
    upstream = "the built-in scripted model" if plan.upstream == "scripted" else plan.upstream
    who = f" with {run.credential_text()}" if run.credential is not None else ""
    limit = f", at most {plan.max_concurrency} upstream requests at once" if plan.max_concurrency else ""
    if plan.provider == "record":
        return f"record (from {upstream}{who} into {cassettes}/, mode {plan.record_mode}{limit})"
    return f"openai (audit proxy in front of {upstream}{who}{limit}){why}"


def token_lines(records: list[dict[str, Any]], plan: bool) -> list[str]:
    """How much of the input was cached and of the output reasoning; for a ChatGPT plan, its usage windows as the
    backend's `x-codex-*` headers of the last answer gave them."""
    requests = [r for record in records for r in record.get("requests") or [] if not r.get("replayed")]
    cached = sum(r.get("cached_tokens") or 0 for r in requests)
    reasoning = sum(r.get("reasoning_tokens") or 0 for r in requests)
    lines = [f"interllm: tokens: {cached} of the input cached, {reasoning} of the output reasoning"] if requests else []
    usage: dict[str, str] = next((r["plan_usage"] for r in reversed(requests) if r.get("plan_usage")), {})
    if plan:
        windows = [_window(usage, name) for name in ("primary", "secondary") if f"x-codex-{name}-used-percent" in usage]
        told = "; ".join(windows) if windows else "the backend sent no usage headers"
        lines.append(f"interllm: plan usage (the backend's x-codex-* headers, last answer): {told}")
    return lines


def _window(usage: dict[str, str], name: str) -> str:
    minutes = usage.get(f"x-codex-{name}-window-minutes")
    return f"{name} window {usage[f'x-codex-{name}-used-percent']}% used" + (f" (of {minutes} min)" if minutes else "")


def stopped(run: Run) -> str | None:
    """Why the run stopped starting scenarios (a plan's usage limit, a login gone), or None."""
    halted = run.budget.halted()
    return halted.removesuffix(": scenario not started") if halted else None


def info(run: Run, models: dict[str, str] | None = None) -> dict[str, str]:
    """What the run was: shown in the log header, the HTML summary and the markdown summary. `models`: the models the
    run's items expect (a list's front matter may name its own), as the header shows them."""
    s = run.settings
    halted = stopped(run)
    return ({"stopped": halted} if halted else {}) | {
        "provider": f"{s.provider} (built-in scripted model, not a real LLM)"
        if s.provider == "offline"
        else s.provider + (f", {run.credential_text()}" if run.credential is not None else ""),
        "spend": run.prices.free or f"estimated from {run.prices.source}",
        "executor": s.executor,
        "codex": run.codex.version if run.codex else "unknown",
        "expected model": ", ".join(models or (s.model,)),
        "sandbox": s.sandbox,
        "lists": ", ".join(s.relative(p) for p in s.lists),
    }


def summary(controller: Controller) -> list[str]:
    """The lines of the terminal summary's `interllm` section: tally, provider, tokens and spend, and more."""
    run, records = controller.run, controller.records
    tally = summary_counts(records)
    lines = ["interllm: " + ", ".join(f"{k} {v}" for k, v in tally.items())]
    halted = stopped(run)
    if halted is not None:
        skipped = sum(1 for r in records if r["result"] == "skipped")
        lines.append(run.redactor.text(f"interllm: run stopped: {halted} ({skipped} skipped)"))
    lines.append(f"interllm: {rate_line(records)}")
    models = models_of(records)
    if len(models) > 1:
        lines += [f"interllm: {model}: {model_totals(records, model)}" for model in models]
    tin = sum(r["tokens_in"] for r in records)
    tout = sum(r["tokens_out"] for r in records)
    prices = run.prices
    lines.append(f"interllm: provider {provider_text(run)}")
    for preflight in controller.preflights:
        served = preflight.get("served_model")
        lines.append(
            f"interllm: preflight: {preflight['model']} answered HTTP {preflight['status']} in "
            f"{preflight['latency']:.2f}s ({preflight['input_tokens']} in / {preflight['output_tokens']} out tokens)"
            + (f", served by {served}" if served and served != preflight["model"] else "")
        )
    extra = sum(preflight["cost_usd"] for preflight in controller.preflights)
    budget = f" of a ${run.settings.budget:.4f} budget" if run.settings.budget is not None else ""
    costs = f"{summary_spend(records, prices.free, extra)}{budget} (prices: {prices.source})"
    lines.append(f"interllm: tokens {tin} in / {tout} out, {prices.free or costs}")
    lines += token_lines(records, prices.free == FREE_PLAN)
    if run.in_flight is not None:
        lines.append(f"interllm: concurrency: {run.in_flight.report()}")
    for note in dict.fromkeys(n for r in records for n in r.get("output_notes") or []):
        lines.append(run.redactor.text(f"interllm: output: {note}"))
    changes = controller.comparison()
    if changes is not None:
        for line in baseline_lines(changes, controller.baseline_name(), run.settings.alpha):
            lines.append(run.redactor.text(line))
    if controller.judgement is not None:
        lines += [run.redactor.text(line) for line in gate.lines(controller.judgement)]
    if run.service is not None:
        st = run.service.stats()
        lines.append(
            f"interllm: proxy: {st['requests']} requests, {st['upstream']} sent upstream, {st['replayed']} "
            f"replayed, peak upstream concurrency {st['peak_concurrency']}"
        )
    if controller.runlog is not None:
        lines.append(
            f"interllm: log {run.settings.relative(controller.runlog.text_path)} "
            f"and {run.settings.relative(controller.runlog.jsonl_path)}"
        )
    return lines
