"""One start and one end line per scenario, written by the process that owns the terminal."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_interllm.compat import write_line_in_progress
from pytest_interllm.redact import Redactor
from pytest_interllm.scenarios import ScenarioFormatError, parse_scenarios


def _clock(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


def result_of(report: pytest.TestReport) -> str:
    """passed, failed, skipped, xfailed or xpassed."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


def ends_test(report: pytest.TestReport) -> bool:
    """Whether this report is the one that decides the test (its call, or a setup that did not pass)."""
    return report.when == "call" or (report.when == "setup" and not report.passed)


def _write(reporter: pytest.TerminalReporter, nodeid: str, line: str, **markup: bool) -> None:
    """Write a whole line amid pytest's progress output for this item's file (no reprinted path)."""
    write_line_in_progress(reporter, reporter.config.rootpath / nodeid.split("::")[0], line, **markup)


@dataclass
class StatusLines:
    """Writes `START`/`END` lines for scenario items; titles come from the lists (also under xdist)."""

    lists: tuple[Path, ...]
    rootdir: Path
    cache_dir: Path | None = None
    redactor: Redactor = field(default_factory=Redactor)
    titles: dict[str, tuple[int, int, str]] | None = None
    started: dict[str, float] = field(default_factory=dict)  # nodeid → wall-clock start

    def load(self) -> dict[str, tuple[int, int, str]]:
        """Parse the lists now (once). Under xdist the controller does it before the first worker starts,
        so the workers find every list in pytest's cache instead of each parsing it."""
        if self.titles is None:
            self.titles = {}
            for path in self.lists:
                try:
                    parsed = parse_scenarios(path, self.cache_dir, self.redactor)  # names as collection gives them
                except ScenarioFormatError:
                    continue
                prefix = path.relative_to(self.rootdir).as_posix() if path.is_relative_to(self.rootdir) else ""
                total = len(parsed.scenarios)
                for s in parsed.scenarios:  # a title may quote a secret: the terminal gets it masked
                    self.titles[f"{prefix}::{s.name}"] = (s.index, total, self.redactor.text(s.title))
        return self.titles

    def _lookup(self, nodeid: str) -> tuple[int, int, str] | None:
        """Index, list size and title of a scenario item; one model of a matrix shows its model too."""
        if "::scenario_" not in nodeid:
            return None
        base, bracket, model = nodeid.partition("[")
        found = self.load().get(base)
        if found is None or not bracket:
            return found
        index, total, title = found
        return index, total, f"[{model.rstrip(']')}] {title}"

    def owns(self, nodeid: str) -> bool:
        """Whether `nodeid` is a scenario whose result these lines show."""
        return self._lookup(nodeid) is not None

    def start(self, reporter: pytest.TerminalReporter, nodeid: str, began: float | None = None) -> None:
        """The START line; `began`: when the scenario really started (run ahead of pytest's turn)."""
        found = self._lookup(nodeid)
        if found is None:
            return
        index, total, title = found
        self.started[nodeid] = began or time.time()
        _write(reporter, nodeid, f"[{_clock(self.started[nodeid])}] START scenario {index}/{total}: {title}")

    def end(
        self,
        reporter: pytest.TerminalReporter,
        report: pytest.TestReport,
        began: float | None = None,
        ended: float | None = None,
    ) -> None:
        """The END line; `began`/`ended`: when the scenario really started and ended, where known."""
        found = self._lookup(report.nodeid)
        if found is None or report.nodeid not in self.started:
            return
        if not ends_test(report):
            return
        index, total, title = found
        shown = self.started.pop(report.nodeid)
        ended = ended or time.time()
        elapsed = ended - (began or shown)
        result = result_of(report)
        props = dict(report.user_properties)
        failure = props.get("interllm_failure_class")
        reason = f" [{failure}]" if failure else ""
        if props.get("interllm_repeat"):
            reason += f" ({props['interllm_repeat']})"
        attempts = int(str(props.get("interllm_attempts", 1) or 1))
        if attempts > 1:
            reason += f" (flaky: attempt {attempts})" if result == "passed" else f" (after {attempts} attempts)"
        replaced = int(str(props.get("interllm_infra_reruns", 0) or 0))
        if replaced:
            reason += f" ({replaced} infrastructure re-run{'s' if replaced > 1 else ''}, not counted)"
        retries = int(str(props.get("interllm_provider_retries", 0) or 0))
        if retries:
            reason += f" ({retries} provider {'retry' if retries == 1 else 'retries'})"
        markup = {"green": True} if result == "passed" else {"red": True} if result == "failed" else {"yellow": True}
        _write(
            reporter,
            report.nodeid,
            f"[{_clock(ended)}] END   scenario {index}/{total}: {title} — {result.upper()}{reason} in {elapsed:.1f}s",
            **markup,
        )
