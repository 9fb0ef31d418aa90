"""Collection: a markdown list is a pytest File, each scenario a pytest Item."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _pytest._code.code import ExceptionInfo, TerminalRepr

from pytest_interllm.errors import ScenarioFailure
from pytest_interllm.expectations import ExpectationFile, Expectations, load_expectations
from pytest_interllm.faults import not_for_executor, unavailable
from pytest_interllm.inputs import ListInputs, expectations_path
from pytest_interllm.outcome import ScenarioOutcome
from pytest_interllm.prompt import PromptTemplate, TemplateError, find_template
from pytest_interllm.scenarios import Scenario, ScenarioFormatError, list_cache_dir, parse_scenarios
from pytest_interllm.settings import Settings

if TYPE_CHECKING:
    from pytest_interllm.cost import Budget, Prices

SETTINGS_KEY = pytest.StashKey[Settings]()
OUTCOME_KEY = pytest.StashKey[ScenarioOutcome]()
EXECUTOR_KEY = pytest.StashKey[Any]()
REDACTOR_KEY = pytest.StashKey[Any]()
COST_KEY = pytest.StashKey[Any]()  # (Prices, Budget)


def _front(path: Path, front: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = front.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
        raise ScenarioFormatError(path, 2, f"front matter {key!r} must be {what}, got {value!r}")
    return value


def _check_output_files(settings: Settings, inputs: ListInputs, expectations: ExpectationFile) -> None:
    """An `output_file` must not name an input of the run: the agent would overwrite it."""
    files = {path.resolve(): "the scenario list" for path in settings.lists} | inputs.files()
    for expect in expectations.by_index.values():
        target = (settings.rootdir / expect.output_file).resolve() if expect.output_file else None
        if target in files:
            raise ScenarioFormatError(
                expect.source or inputs.expectations,
                expect.line or 1,
                f"'output_file' would overwrite {files[target]} {settings.relative(target)}",
            )


class InterllmFile(pytest.File):
    """A markdown scenario list."""

    def collect(self) -> Iterator[pytest.Item]:
        settings = self.config.stash[SETTINGS_KEY]
        try:
            parsed = parse_scenarios(self.path, list_cache_dir(self.config))
            front = parsed.front_matter
            model = _front(self.path, front, "model", str, "a model name")
            timeout = _front(self.path, front, "timeout", (int, float), "a number of seconds")
            template_name = _front(self.path, front, "template", str, "a path")
            scenarios = parsed.scenarios[: settings.max_scenarios] if settings.max_scenarios else parsed.scenarios
            inputs = ListInputs(
                path=self.path,
                template=find_template(self.path, settings.template, template_name),
                expectations=expectations_path(settings.rootdir, self.path),
            )
            expectations = load_expectations(inputs.expectations, parsed.scenarios)
            _check_output_files(settings, inputs, expectations)
            template = PromptTemplate.load(inputs.template)
        except (ScenarioFormatError, TemplateError) as exc:
            raise self.CollectError(str(exc)) from None
        problems = {p.line: p for p in parsed.problems}
        self.add_marker(pytest.mark.interllm)  # once on the list: every scenario inherits it
        for scenario in scenarios:
            expect = expectations.for_scenario(scenario)
            item = ScenarioItem.from_parent(
                self,
                name=scenario.name,
                scenario=scenario,
                expectations=expect,
                template=template,
                model=expect.model or (settings.model if settings.model_explicit else model or settings.model),
                timeout=expect.timeout
                or (settings.timeout if settings.timeout_explicit or not timeout else float(timeout)),
                problem=problems.get(scenario.line),
            )
            if scenario.section:
                item.extra_keyword_matches.add(scenario.section)
            absent = not_for_executor(expect.fault, settings.executor) if expect.fault else None
            if absent is not None:
                raise self.CollectError(f"{expect.source or inputs.expectations}:{expect.line or 1}: {absent}")
            refused = unavailable(expect.fault, settings.provider, settings.executor) if expect.fault else None
            if expect.skip or refused:
                item.add_marker(pytest.mark.skip(reason=expect.skip or f"{refused}; skipped"))
            if expect.xfail:
                item.add_marker(pytest.mark.xfail(reason=expect.xfail))
            for marker in expect.markers:
                try:
                    item.add_marker(marker)
                except (Exception, pytest.fail.Exception) as exc:  # --strict-markers, or its warning as an error
                    raise self.CollectError(
                        f"{expect.source or inputs.expectations}:{expect.line or 1}: marker {marker!r} is not "
                        f"registered: add it to `markers` in your pytest configuration ({exc})"
                    ) from None
            yield item


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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.expectations = expectations
        self.template = template
        self.model = model
        self.timeout = timeout
        self.problem = problem

    @property
    def output_file(self) -> Path:
        """Where the agent must write this scenario's file."""
        settings = self.config.stash[SETTINGS_KEY]
        if self.expectations.output_file:
            return settings.rootdir / self.expectations.output_file
        return settings.output_path(self.scenario.label)

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
            output_path=settings.relative(self.output_file),
            model=model,
        )

    def runtest(self) -> None:
        if self.problem is not None:
            raise self.problem
        settings = self.config.stash[SETTINGS_KEY]
        prices, budget = self.config.stash[COST_KEY]
        refusal, reserved = budget.start()
        if refusal is not None:
            # Reported at the scenario's own file and line, like a skip mark.
            raise pytest.skip.Exception(refusal, _use_item_location=True)
        try:
            self._attempts(settings, prices, budget)
        finally:
            budget.finish(reserved)

    def _attempts(self, settings: Settings, prices: Prices, budget: Budget) -> None:
        """Run the scenario, again after a failure while `--interllm-retries` allows."""
        executor = self.config.stash[EXECUTOR_KEY]()
        model, timeout = self.settings_for_run()
        earlier: list[str] = []
        for attempt in range(1, settings.retries + 2):
            outcome = executor.run(
                self.prompt(),
                output_file=self.output_file,
                model=model,
                expected_model=model,
                timeout=timeout,
                fault=self.expectations.fault or settings.fault,
                fault_requests=self.expectations.fault_requests,
                label=f"{self.path.stem}/{self.scenario.label}",
            )
            outcome.attempts = attempt
            outcome.earlier_failures = earlier
            outcome.cost_usd = prices.of_requests([*outcome.requests, *outcome.orchestrator_requests])
            budget.add(outcome.cost_usd)
            self.stash[OUTCOME_KEY] = outcome
            try:
                executor.check(outcome, self.expectations)
            except ScenarioFailure as failure:
                if attempt > settings.retries:
                    raise
                earlier.append(str(failure))
            else:
                return

    def repr_failure(self, excinfo: ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, ScenarioFailure):
            text = excinfo.value.render()
            outcome = self.stash.get(OUTCOME_KEY, None)
            if outcome is not None:
                final = outcome.final_output.strip() or "(empty)"
                text += "\nfinal_output:\n" + "\n".join(f"  {line}" for line in final.splitlines()[:20])
            redactor = self.config.stash.get(REDACTOR_KEY, None)
            return redactor.text(text) if redactor is not None else text
        if isinstance(excinfo.value, ScenarioFormatError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        label = f"scenario {self.scenario.index}: {self.scenario.title}"
        redactor = self.config.stash.get(REDACTOR_KEY, None)  # the label heads the failure in terminal and report
        return self.path, self.scenario.line - 1, redactor.text(label) if redactor is not None else label
