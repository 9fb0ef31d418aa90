"""Controller hooks: the process that owns the session and the terminal (the xdist controller, or the only
process). It checks the inputs and clears earlier outputs before any worker starts, sends the preflight, keeps
the records, the run log and the status lines, and writes the summaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_interllm import terminal
from pytest_interllm.collect import PARSED_KEY
from pytest_interllm.errors import AGENT
from pytest_interllm.inputs import check_templates, input_files, list_inputs
from pytest_interllm.list_cache import list_cache_dir
from pytest_interllm.outputs import Cleanup, Manifest, OutputDirError, check_output_dir
from pytest_interllm.prompt import TemplateError
from pytest_interllm.report import gate
from pytest_interllm.report.baseline import Baseline, Change
from pytest_interllm.report.baseline import markdown as baseline_markdown
from pytest_interllm.report.baseline import summary as baseline_summary
from pytest_interllm.report.merge import MergeError
from pytest_interllm.report.numbers import run_tally, summary_record
from pytest_interllm.report.runlog import RunLog
from pytest_interllm.report.status import StatusLines, ends_test, result_of
from pytest_interllm.report.summary import counts as summary_counts
from pytest_interllm.report.summary import markdown as summary_markdown
from pytest_interllm.report.summary import rate_line
from pytest_interllm.scenarios import ScenarioFormatError, parse_scenarios, same_titles
from pytest_interllm.settings import Settings
from pytest_interllm.wiring import Run

NAME = "interllm-controller"


def run_models(settings: Settings, parsed_lists: dict[Path, Any]) -> dict[str, str]:
    """The models the run's items expect, and where each came from: the options, a list's front matter, or the
    default (the user's codex config, codex's catalog)."""
    if settings.model_explicit:
        return {model: settings.model_source for model in settings.matrix}
    models: dict[str, str] = {}
    for path in settings.lists:
        parsed = parsed_lists.get(path)
        given = parsed.front_matter.get("model") if parsed is not None else None
        if given:
            models.setdefault(str(given), f"the front matter of {settings.relative(path)}")
        else:
            models.setdefault(settings.model, settings.model_source)
    return models or {settings.model: settings.model_source}


class Controller:
    """The session's records, run log, status lines and summaries (registered only where the session is owned)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.config = run.config
        self.settings = run.settings
        self.status = StatusLines(run.settings.lists, run.settings.rootdir, list_cache_dir(run.config), run.redactor)
        self.records: list[dict[str, Any]] = []
        self.runlog: RunLog | None = None
        self.manifest: Manifest | None = None  # the record of the output files scenarios left
        self.preflights: list[dict[str, Any]] = []  # one per model the run expects
        self.models: dict[str, str] = {}  # the models the run's items expect → where each came from
        self.baseline: Baseline | None = None  # an earlier run to compare with
        self.notes: list[str] = []  # what the run should know about its inputs (header, log)
        self.cleanup = Cleanup()
        self.gate = gate.Gate(run.settings.fail_under, run.settings.gate, run.settings.fail_on)
        self.judgement: gate.Judgement | None = None  # the gate's, at session finish
        self.not_agents: list[str] = []  # failed tests the agent did not cause: a gate cannot forgive them
        self._compared: tuple[int, list[Change]] | None = None

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Before any scenario and before xdist starts its workers: inputs checked once, then earlier outputs removed.
        s = self.settings
        inputs = list_inputs(s)
        files = input_files(inputs)
        try:
            check_templates(inputs)
            check_output_dir(s, files)
        except (TemplateError, OutputDirError) as exc:
            raise pytest.UsageError(str(exc)) from None
        if s.baseline is not None:
            try:
                self.baseline = Baseline(s.baseline)
            except MergeError as exc:
                raise pytest.UsageError(f"--interllm-baseline: {exc}") from None
        self.notes = self._read_lists()
        if self.config.option.collectonly:
            return
        self._preflight()
        self.manifest = Manifest(s)
        self.cleanup = self.manifest.clear()
        if s.log_dir is not None:
            notes = [f"note: {note}" for note in self.notes]
            self.runlog = RunLog(
                s.log_dir,
                self.run.redactor,
                terminal.info(self.run, self.models),
                notes + terminal.cleanup_lines(self.run, self.cleanup),
            )

    def _read_lists(self) -> list[str]:
        """Parse the lists once (for collection here, and pytest's cache for xdist workers); notes on shared titles."""
        s, redactor, notes = self.settings, self.run.redactor, []
        parsed_lists = self.config.stash.setdefault(PARSED_KEY, {})
        for path in s.lists:
            try:
                parsed = parsed_lists[path] = parse_scenarios(path, list_cache_dir(self.config), redactor)
            except ScenarioFormatError:
                continue  # collection reports it, at its line
            scenarios = parsed.scenarios[: s.max_scenarios] if s.max_scenarios else parsed.scenarios
            # Legal, but easy to mistake for one another. A note, not a warning: `filterwarnings = error` would fail
            # the run.
            notes += [redactor.text(f"{s.relative(path)}: {note}") for note in same_titles(scenarios)]
        self.models = run_models(s, parsed_lists)
        return notes + self._unknown_models()

    def _unknown_models(self) -> list[str]:
        """A model the installed codex's catalog does not hold runs on fallback metadata: named at the start."""
        codex = self.run.codex
        if codex is None:
            return []
        from pytest_interllm.codex.catalog import bundled_catalog

        catalog = bundled_catalog(codex.path, codex.version)
        if catalog is None:
            return []
        shown = ", ".join(catalog.listed[:8]) + (", …" if len(catalog.listed) > 8 else "")
        real = self.run.plan is not None and self.run.plan.real
        return [
            f"{codex.version} does not know the model {model} (its catalog: {shown}; default {catalog.default}): "
            "codex runs it on fallback metadata (other reasoning settings and tools)"
            + ("; the preflight asks the backend whether it serves it" if real else "")
            for model in self.models
            if not catalog.knows(model)
        ]

    def _preflight(self) -> None:
        """A real run first sends one minimal request with the expected model; a refusal stops it (exit 4)."""
        run, s = self.run, self.settings
        if run.plan is None or not run.plan.real or not s.preflight or run.proxy is None:
            return
        from pytest_interllm.codex.capture import capture_request
        from pytest_interllm.providers.preflight import PROMPT
        from pytest_interllm.providers.service import preflight_problem

        for model in self.models or {s.model: s.model_source}:
            # The request the installed codex itself sends (body, headers, originator), with the model.
            shape = capture_request(run.codex.path, model, PROMPT) if run.codex is not None else None
            answer = run.proxy.preflight(model, shape)
            problem = preflight_problem(answer, run.credential_text())
            if problem is not None:
                raise pytest.UsageError(f"pytest-interllm: {run.redactor.text(problem)}")
            prices = run.prices
            answer["cost_usd"] = (
                0.0 if prices.free else prices.cost(model, answer["input_tokens"], answer["output_tokens"])
            )
            run.budget.add(answer["cost_usd"], scenarios=0)
            self.preflights.append(answer)

    def comparison(self) -> list[Change] | None:
        """This run's records against the baseline (None without one), computed once for all its readers."""
        if self.baseline is None:
            return None
        if self._compared is None or self._compared[0] != len(self.records):
            self._compared = (len(self.records), self.baseline.compare(self.records, self.settings.alpha))
        return self._compared[1]

    def baseline_name(self) -> str:
        return self.settings.relative(self.baseline.path) if self.baseline is not None else ""

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return terminal.header(self.run, self.cleanup, self.notes, self.models)

    def _reporter(self) -> pytest.TerminalReporter | None:
        if self.config.get_verbosity() <= -2:
            return None
        reporter: pytest.TerminalReporter | None = self.config.pluginmanager.get_plugin("terminalreporter")
        return reporter

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        # The END line shows the result; a progress letter after it would only add noise.
        if self._reporter() is None or self.config.get_verbosity() > 0 or not self.status.owns(report.nodeid):
            return None
        if ends_test(report):
            category = result_of(report)
            return category, "", category.upper()
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        reporter, in_flight = self._reporter(), self.run.in_flight
        if reporter is not None:  # when the scenario really started: it may have run ahead of pytest's turn
            self.status.start(reporter, nodeid, in_flight.started.get(nodeid) if in_flight else None)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        reporter = self._reporter()
        record = getattr(report, "interllm_record", None)  # made where the item ran (a worker, or here)
        if reporter is not None:  # the scenario's real start and end (it may have run ahead of pytest's turn)
            times = (record["started_at"], record["ended_at"]) if record is not None else (None, None)
            self.status.end(reporter, report, *times)
        if record is not None:
            self.records.append(record)
            if self.runlog is not None:
                self.runlog.write(record)
        if report.failed and (record is None or record.get("failure_group") != AGENT):
            why = f" ({record['failure_group']}: {record['failure_class']})" if record is not None else ""
            self.not_agents.append(f"{record['name'] if record is not None else report.nodeid}{why}")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.not_agents.append(f"{report.nodeid or 'collection'} (collection error)")

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.records:
            return
        terminalreporter.write_sep("-", "interllm")
        for line in terminal.summary(self):
            terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # After the worker hooks' (tryfirst) of this process: they count the scenarios they cancelled. Before the
        # terminal summary, which shows the gate's judgement.
        collecting = self.config.option.collectonly
        changes = self.comparison()
        if self.gate.active and not collecting:
            stopped = bool(session.shouldfail or session.shouldstop)
            self.judgement = gate.judge(
                self.gate, run_tally(self.records), changes, self.not_agents, int(session.exitstatus), stopped
            )
            if self.judgement.exit_status is not None:
                session.exitstatus = self.judgement.exit_status
        if self.runlog is not None:
            halted = terminal.stopped(self.run)
            if halted is not None:
                self.runlog.note(f"run stopped: {halted}")
            if self.run.cancelled:
                self.runlog.note(
                    f"stopped with {self.run.cancelled} scenarios still in flight: cancelled, not reported"
                )
            self.runlog.note(rate_line(self.records))
            for line in gate.lines(self.judgement) if self.judgement is not None else []:
                self.runlog.note(line.removeprefix("interllm: "))
            counts = summary_counts(self.records)
            comparison = baseline_summary(changes, self.baseline_name()) if changes is not None else None
            judged = self.judgement.record(self.gate) if self.judgement is not None else None
            self.runlog.close(counts, summary_record(self.records, counts, self.settings.alpha, comparison, judged))
        path = self.settings.summary
        if path is not None and not collecting:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                extra = [baseline_markdown(changes, self.baseline_name(), self.settings.alpha)] if changes else []
                extra += [gate.markdown(self.judgement)] if self.judgement is not None else []
                text = summary_markdown(self.records, terminal.info(self.run, self.models), self.run.prices.free, extra)
                fh.write(self.run.redactor.text(text))
