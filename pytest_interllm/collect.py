"""Collection: a markdown list is a pytest File, each scenario a pytest Item."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_interllm import faults
from pytest_interllm.cost import FREE_REPLAYED, FREE_SCRIPTED, Budget, Prices
from pytest_interllm.errors import ScenarioFailure
from pytest_interllm.expectations import DEFAULT_CHECK_TIMEOUT, Expectations, load_expectations
from pytest_interllm.faults import not_for_executor, unavailable
from pytest_interllm.inputs import ListInputs, expectations_path
from pytest_interllm.list_cache import list_cache_dir
from pytest_interllm.outcome import ScenarioOutcome
from pytest_interllm.outputs import OutputPathError, output_target, protected_files
from pytest_interllm.prompt import PromptTemplate, TemplateError, find_template
from pytest_interllm.redact import Redactor
from pytest_interllm.run import Grader, InFlight, Request, Verdict, run_item
from pytest_interllm.scenarios import Scenario, ScenarioFormatError, ScenarioList, parse_scenarios
from pytest_interllm.settings import Settings
from pytest_interllm.workspace import Spec, inside_path

if TYPE_CHECKING:  # the executors pull in mcp and the SDKs: imported when the first scenario runs
    from pytest_interllm.compat import TerminalRepr
    from pytest_interllm.run.attempt import Executor

SETTINGS_KEY = pytest.StashKey[Settings]()
OUTCOME_KEY = pytest.StashKey[ScenarioOutcome]()
# The process's executor, started on first use. Annotated, not subscripted: the executor class is not imported here.
EXECUTOR_KEY: pytest.StashKey[Callable[[], Executor]] = pytest.StashKey()
REDACTOR_KEY = pytest.StashKey[Redactor]()
COST_KEY = pytest.StashKey[tuple[Prices, Budget]]()
VERDICT_KEY = pytest.StashKey[Verdict]()
IN_FLIGHT_KEY = pytest.StashKey[InFlight]()  # with --interllm-concurrency > 1
REFUSED_KEY = pytest.StashKey[str]()  # why the budget refused an item: its skip is reported at the item's line
PROTECTED_KEY = pytest.StashKey[dict[Path, str]]()  # files no output may replace
OUTPUTS_KEY = pytest.StashKey[dict[Path, str]]()  # each output path of the run → the item that writes it
RESOLVED_KEY = pytest.StashKey[dict[Path, Path]]()  # an output directory → where it resolved at collection
PARSED_KEY = pytest.StashKey[dict[Path, ScenarioList]]()  # lists the session start parsed, not parsed again


def _protected(config: pytest.Config, settings: Settings) -> dict[Path, str]:
    """The run's files that no output may replace (computed once per process)."""
    if PROTECTED_KEY not in config.stash:
        config.stash[PROTECTED_KEY] = protected_files(settings)
    return config.stash[PROTECTED_KEY]


class InterllmFile(pytest.File):
    """A markdown scenario list."""

    _shown: str | None = None  # the list as the run names it (relative to the rootdir)

    def collect(self) -> Iterator[pytest.Item]:
        settings = self.config.stash[SETTINGS_KEY]
        try:
            parsed = self.config.stash.get(PARSED_KEY, {}).pop(self.path.resolve(), None) or parse_scenarios(
                # With the session's redactor: an item whose title quotes a secret is named with it masked.
                self.path,
                list_cache_dir(self.config),
                self.config.stash.get(REDACTOR_KEY, None),
            )
            front = parsed.front_matter
            model, timeout, template_name = front.get("model"), front.get("timeout"), front.get("template")
            scenarios = parsed.scenarios[: settings.max_scenarios] if settings.max_scenarios else parsed.scenarios
            inputs = ListInputs(
                path=self.path,
                template=find_template(self.path, settings.template, template_name),
                expectations=expectations_path(settings.rootdir, self.path),
            )
            expectations = load_expectations(inputs.expectations, parsed.scenarios)
            template = PromptTemplate.load(inputs.template)
        except (ScenarioFormatError, TemplateError) as exc:
            raise self.CollectError(str(exc)) from None
        problems = {p.line: p for p in parsed.problems}
        self.add_marker(pytest.mark.interllm)  # once on the list: every scenario inherits it
        for scenario in scenarios:
            expect = expectations.for_scenario(scenario)
            # A model matrix: one item per model, named `…[model]`; a scenario's own YAML `model` pins it to one.
            matrix = len(settings.matrix) > 1 and not expect.model
            models = (
                settings.matrix
                if matrix
                else (expect.model or (settings.model if settings.model_explicit else model or settings.model),)
            )
            for each in models:
                yield self._item(settings, inputs, scenario, expect, template, each, timeout, matrix, problems)

    def _item(
        self,
        settings: Settings,
        inputs: ListInputs,
        scenario: Scenario,
        expect: Expectations,
        template: PromptTemplate,
        model: str,
        timeout: Any,
        matrix: bool,
        problems: dict[int, ScenarioFormatError],
    ) -> ScenarioItem:
        """One item of a scenario (one model of it, in a matrix), with its markers."""
        item = ScenarioItem.from_parent(
            self,
            name=f"{scenario.name}[{model}]" if matrix else scenario.name,
            scenario=scenario,
            expectations=expect,
            template=template,
            model=model,
            timeout=expect.timeout
            or (settings.timeout if settings.timeout_explicit or not timeout else float(timeout)),
            problem=problems.get(scenario.line),
            in_matrix=matrix,
        )
        if scenario.section:
            item.extra_keyword_matches.add(scenario.section)
        self._claim_output(settings, item, expect, inputs)
        self._check_workspace(settings, item, expect, inputs)
        absent = not_for_executor(expect.fault, settings.executor) if expect.fault else None
        if absent is not None:
            raise self.CollectError(f"{expect.source or inputs.expectations}:{expect.line_of('fault')}: {absent}")
        refused = unavailable(expect.fault, settings.provider, settings.executor) if expect.fault else None
        run_fault = faults.get(settings.fault) if settings.fault and not expect.fault else None
        if refused is None and run_fault is not None and item.workspace is None:
            refused = run_fault.without_workspace()  # --interllm-fault: acted out only where there is a workspace
        if expect.skip or refused:
            item.add_marker(pytest.mark.skip(reason=expect.skip or f"{refused}; skipped"))
        if expect.xfail:
            item.add_marker(pytest.mark.xfail(reason=expect.xfail))
        for marker in expect.markers:
            try:
                item.add_marker(marker)
            except (Exception, pytest.fail.Exception) as exc:  # --strict-markers, or its warning as an error
                raise self.CollectError(
                    f"{expect.source or inputs.expectations}:{expect.line_of('markers')}: marker {marker!r} is not "
                    f"registered: add it to `markers` in your pytest configuration ({exc})"
                ) from None
        return item

    def _check_workspace(
        self, settings: Settings, item: ScenarioItem, expect: Expectations, inputs: ListInputs
    ) -> None:
        """`workspace:` must name a directory beside the list (not the rootdir); `changes:`, `check:`, `solution:` and
        the faults that change files need one."""
        source = expect.source or inputs.expectations
        if expect.workspace is None:
            needs = [key for key in ("changes", "check", "solution") if getattr(expect, key) is not None]
            fault = faults.get(expect.fault) if expect.fault else None
            why = fault.without_workspace() if fault is not None else None
            if needs or why:
                key = needs[0] if needs else "fault"
                why = why or f"{key!r} needs the scenario's own workspace"
                raise self.CollectError(
                    f"{source}:{expect.line_of(key)}: {why}: add `workspace: <fixture dir>` (relative to the list's "
                    "directory)"
                )
            return
        fixture = (self.path.parent / expect.workspace).resolve()
        problem = None
        if not fixture.is_dir():
            problem = f"workspace {expect.workspace!r} is not a directory ({fixture})"
        elif fixture == settings.rootdir or settings.rootdir.is_relative_to(fixture):
            problem = f"workspace {expect.workspace!r} holds the rootdir: give it a fixture directory of its own"
        if problem is not None:
            raise self.CollectError(f"{source}:{expect.line_of('workspace')}: {problem}")
        solution = ""
        if expect.solution is not None:
            try:
                solution = (self.path.parent / expect.solution).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise self.CollectError(
                    f"{source}:{expect.line_of('solution')}: cannot read solution {expect.solution!r}: {exc}"
                ) from None
        item.workspace = Spec(
            fixture=fixture,
            check=expect.check,
            check_timeout=expect.check_timeout or DEFAULT_CHECK_TIMEOUT,
            solution=solution,
        )

    def _claim_output(self, settings: Settings, item: ScenarioItem, expect: Expectations, inputs: ListInputs) -> None:
        """The item's output path must be one the plugin may write, and no other scenario's of the run."""

        def where() -> str:
            return (
                f"{expect.source or inputs.expectations}:{expect.line_of('output_file')}: "
                if expect.output_file
                else ""
            )

        try:
            resolved = self.config.stash.setdefault(RESOLVED_KEY, {})
            target = output_target(settings, _protected(self.config, settings), item.output_file, resolved)
        except OutputPathError as exc:
            raise self.CollectError(f"{where() or f'{self.path}:{item.scenario.line}: '}{item.name}: {exc}") from None
        if self._shown is None:
            self._shown = settings.relative(self.path)
        mine = f"{self._shown}::{item.name}"
        other = self.config.stash.setdefault(OUTPUTS_KEY, {}).setdefault(target, mine)
        if other != mine:
            raise self.CollectError(
                f"{where()}{mine} and {other} would both write {settings.relative(target)}: give each scenario its "
                "own output_file"
            )


class ScenarioItem(pytest.Item):
    """One scenario: render the prompt, run it through codex, check model, file and expectations."""

    def __init__(
        self,
        *,
        scenario: Scenario,
        expectations: Expectations,
        template: PromptTemplate,
        model: str,
        timeout: float,
        problem: ScenarioFormatError | None = None,
        in_matrix: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.expectations = expectations
        self.template = template
        self.model = model
        self.timeout = timeout
        self.problem = problem
        self.in_matrix = in_matrix
        self.workspace: Spec | None = None  # `workspace:` set: each attempt runs in a fresh copy of the fixture

    @property
    def label(self) -> str:
        """`scenario_NNN`, and `@model` when the item is one model of a matrix: names its output and cassette."""
        return f"{self.scenario.label}@{self.model}" if self.in_matrix else self.scenario.label

    @property
    def output_file(self) -> Path:
        """Where the agent must write this scenario's file (one per model in a matrix)."""
        settings = self.config.stash[SETTINGS_KEY]
        if self.expectations.output_file:
            path = settings.rootdir / self.expectations.output_file
            return path.with_name(f"{path.stem}@{self.model}{path.suffix}") if self.in_matrix else path
        # Several lists in one run: each list's outputs in a directory of its own, so scenario_001 of one list
        # never overwrites scenario_001 of another.
        return settings.output_path(self.label, self.path.stem if len(settings.lists) > 1 else None)

    def output_path(self, settings: Settings) -> str:
        """The output path the prompt names: relative to the rootdir, or to the attempt's workspace."""
        shown = settings.relative(self.output_file)
        return inside_path(shown, self.output_file.name) if self.workspace is not None else shown

    def settings_for_run(self) -> tuple[str, float]:
        """Model and timeout after the `interllm` marker (set by hand or by a conftest) is applied."""
        marker = self.get_closest_marker("interllm")
        model = str(marker.kwargs.get("model") or self.model) if marker else self.model
        timeout = float(marker.kwargs.get("timeout") or self.timeout) if marker else self.timeout
        return model, timeout

    def prompt(self) -> str:
        """The rendered prompt of this scenario."""
        settings = self.config.stash[SETTINGS_KEY]
        model, _ = self.settings_for_run()
        return self.template.render(
            index=self.scenario.index,
            title=self.scenario.title,
            body=self.scenario.body,
            section=self.scenario.section,
            output_path=self.output_path(settings),
            model=model,
        )

    def runtest(self) -> None:
        if self.problem is not None:
            raise self.problem
        in_flight = self.config.stash.get(IN_FLIGHT_KEY, None)
        verdict = in_flight.result(self) if in_flight is not None else self.compute()
        if isinstance(verdict, str):
            # The budget refused it; the worker hooks report it at the scenario's own file and line, like a skip mark.
            self.stash[REFUSED_KEY] = verdict
            pytest.skip(verdict)
        self.stash[VERDICT_KEY] = verdict
        self.stash[OUTCOME_KEY] = verdict.shown.outcome
        failure = verdict.failure()
        if failure is not None:
            raise failure

    def compute(self) -> Verdict | str:
        """Run this scenario: its verdict, or why the budget refused it. Safe to call from a background thread
        (`--interllm-concurrency` runs items ahead of pytest's turn)."""
        settings = self.config.stash[SETTINGS_KEY]
        prices, budget = self.config.stash[COST_KEY]
        refusal, reserved = budget.start()
        if refusal is not None:
            return str(refusal)
        model, timeout = self.settings_for_run()
        request = Request(
            prompt=self.prompt(),
            output_file=self.output_file,
            model=model,
            timeout=timeout,
            label=f"{self.path.stem}/{self.label}",
            expectations=self.expectations,
            fault=self.expectations.fault or settings.fault,
            workspace=self.workspace,
        )
        min_pass = self.expectations.min_pass or settings.min_pass
        try:
            executor = self.config.stash[EXECUTOR_KEY]()
            kind = {FREE_SCRIPTED: "scripted", FREE_REPLAYED: "replayed"}.get(prices.free or "", "model")
            grader = Grader(settings.grader_model, settings.grader_votes, kind)
            return run_item(
                executor,
                request,
                settings.repeat,
                settings.retries,
                min_pass,
                prices,
                budget,
                grader,
                settings.retry_infra,
            )
        finally:
            budget.finish(reserved)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, ScenarioFailure):
            text = excinfo.value.render()
            outcome = self.stash.get(OUTCOME_KEY, None)
            if outcome is not None:
                final = outcome.final_output.strip() or "(empty)"
                text += "\nfinal_output:\n" + "\n".join(f"  {line}" for line in final.splitlines()[:20])
            redactor = self.config.stash.get(REDACTOR_KEY, None)
            return redactor.text(text) if redactor is not None else text
        if isinstance(excinfo.value, ScenarioFormatError | OutputPathError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        label = f"scenario {self.scenario.index}: {self.scenario.title}"
        redactor = self.config.stash.get(REDACTOR_KEY, None)  # the label heads the failure in terminal and report
        return self.path, self.scenario.line - 1, redactor.text(label) if redactor is not None else label
