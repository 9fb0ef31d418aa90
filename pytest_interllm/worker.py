"""Worker hooks: the process where items run (an xdist worker, or the only process). It collects the lists, starts
the executor before the first scenario, runs the next items ahead of pytest (`--interllm-concurrency`), and turns
each scenario's verdict into report properties, a final_output section and the record the controller keeps."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

import pytest

from pytest_interllm import compat, html_hooks
from pytest_interllm.codex.locate import interface_of, locate
from pytest_interllm.collect import EXECUTOR_KEY, OUTCOME_KEY, REFUSED_KEY, VERDICT_KEY, InterllmFile, ScenarioItem
from pytest_interllm.errors import ScenarioFailure
from pytest_interllm.report.record import build as build_record
from pytest_interllm.report.status import ends_test, result_of
from pytest_interllm.wiring import Run, make_executor

if TYPE_CHECKING:
    from pytest_interllm.run.attempt import Executor

NAME = "interllm-worker"


def _can_run_ahead(item: pytest.Item) -> TypeGuard[ScenarioItem]:
    """A scenario pytest will surely run (no skip marker, no item-level problem), so it may start early."""
    return (
        isinstance(item, ScenarioItem)
        and item.problem is None
        and item.get_closest_marker("skip") is None
        and item.get_closest_marker("skipif") is None
    )


class Worker:
    """The process's executor (started lazily, reused by every scenario and test) and its item hooks."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.config = run.config
        self.settings = run.settings
        self.executor: Executor | None = None
        self._order: dict[str, int] = {}  # nodeid → position in session.items, for what comes next
        # Under xdist every worker collects every item: a worker may start early only what it was sent.
        self._upcoming = self._sent_here if run.workerinput is not None else self._next_collected
        run.config.stash[EXECUTOR_KEY] = self.get_executor

    def get_executor(self) -> Executor:
        """The process's executor, started on first use."""
        if self.executor is None:
            run = self.run
            if run.codex is None:
                run.codex = locate(self.settings.codex, interface_of(self.settings.executor))
            self.executor = make_executor(self.settings, run.codex, run.label, run.proxy)
        return self.executor

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if file_path.resolve() in self.settings.lists:
            return InterllmFile.from_parent(parent, path=file_path)
        return None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Start the provider and codex before the first scenario, so no scenario's time includes start-up.
        if self.config.option.collectonly or not any(isinstance(i, ScenarioItem) for i in session.items):
            return
        from pytest_interllm.codex.server import CodexServerError

        try:
            self.get_executor().start()
        except CodexServerError as exc:
            raise pytest.UsageError(f"pytest-interllm: {exc}") from None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        # Before pytest runs an item, the next ones of this process start too, up to --interllm-concurrency.
        session, in_flight = item.session, self.run.in_flight
        if in_flight is None or not isinstance(item, ScenarioItem) or session.shouldstop or session.shouldfail:
            return
        budget = self.run.budget
        if budget.limit is not None and not budget.known():
            return  # no scenario has cost anything yet: the first runs alone, so the next ones can be reserved
        in_flight.ahead([i for i in self._upcoming(item) if _can_run_ahead(i)])

    def _next_collected(self, item: pytest.Item) -> list[pytest.Item]:
        """`item` and the items after it in the collection, as many as may be in flight."""
        items = item.session.items
        if not self._order:
            self._order = {each.nodeid: n for n, each in enumerate(items)}
        start = self._order.get(item.nodeid, 0)
        return items[start : start + self.settings.concurrency]

    def _sent_here(self, item: pytest.Item) -> list[pytest.Item]:
        """`item` and what the xdist controller has sent this worker so far (never another worker's items)."""
        items = item.session.items
        return [item] + [items[i] for i in compat.xdist_queue(self.config) or []]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if not isinstance(item, ScenarioItem) or not ends_test(report):
            return report
        if report.skipped and call.when == "call" and REFUSED_KEY in item.stash:
            # Reported at the scenario's own file and line, like a skip mark, not at the line that raised it.
            path, line = item.reportinfo()[:2]
            if isinstance(report.longrepr, tuple) and line is not None:
                report.longrepr = (os.fspath(path), line + 1, report.longrepr[2])
        redactor = self.run.redactor
        outcome = item.stash.get(OUTCOME_KEY, None) if call.when == "call" else None
        verdict = item.stash.get(VERDICT_KEY, None) if call.when == "call" else None
        failure = call.excinfo.value if call.excinfo is not None else None
        failure_class = failure.failure_class if isinstance(failure, ScenarioFailure) else None
        failure_group = failure.group if isinstance(failure, ScenarioFailure) else None
        props: list[tuple[str, object]] = [
            ("interllm_index", item.scenario.index),
            ("interllm_expected_model", item.model),
        ]
        if verdict is not None and len(verdict.attempts) > 1:
            props.append(("interllm_repeat", verdict.summary()))
        replaced = sum(len(a.replaced) for a in verdict.attempts) if verdict is not None else 0
        if replaced:
            props.append(("interllm_infra_reruns", replaced))
        if outcome is not None:
            props += [
                ("interllm_session_model", outcome.session_model or ""),
                ("interllm_output", outcome.output_path),
                ("interllm_failure_class", failure_class or ""),
                ("interllm_failure_group", failure_group or ""),
                ("interllm_fault", outcome.fault or ""),
                ("interllm_attempts", outcome.attempts),
                ("interllm_provider_retries", outcome.provider_retries),
                ("interllm_tokens", outcome.tokens_in + outcome.tokens_out),
                ("interllm_final_output_chars", len(outcome.final_output)),
                ("interllm_agent_replied", outcome.agent_replied),
                ("interllm_codex_pid", outcome.codex_pid or 0),
            ]
            if not report.failed:  # a failure's own text ends with it already: shown once
                report.sections.append(("interllm final_output", redactor.text(outcome.final_output or "(empty)")))
        # On the item too: JUnit XML writes properties from the teardown report, which copies them.
        item.user_properties.extend(props)
        report.user_properties.extend(props)
        record = redactor.data(
            build_record(
                index=item.scenario.index,
                name=item.name,
                title=item.scenario.title,
                section=item.scenario.section,
                nodeid=report.nodeid,
                outcome=outcome,
                result=result_of(report),
                failure=report.longreprtext if report.failed else None,
                expected_model=item.model,
                executor=self.settings.executor,
                free=bool(self.run.prices.free),
                failure_class=failure_class,
                failure_group=failure_group,
                verdict=verdict,
            )
        )
        in_flight = self.run.in_flight
        record["started_at"] = in_flight.started.get(item.nodeid) if in_flight else getattr(report, "start", None)
        record["ended_at"] = in_flight.ended.get(item.nodeid) if in_flight else getattr(report, "stop", None)
        report.interllm_record = record  # type: ignore[attr-defined]  # travels to the xdist controller
        html_hooks.add_extras(self.config, report, record)
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.run.in_flight is None:
            return
        # -x, Ctrl-C or the budget stopped the run: what still runs ahead of pytest stops here, codex with it.
        self.run.cancelled = self.run.in_flight.cancel()
        if self.run.cancelled and self.executor is not None:
            self.executor.close()  # records in the manifest what the cancelled scenarios wrote
            self.executor = None

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.run.in_flight is not None:
            self.run.in_flight.cancel()  # already done at session finish, unless the session never got there
        if self.executor is not None:
            self.executor.close()
            self.executor = None
