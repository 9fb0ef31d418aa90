"""pytest-html: the scenario extras of each report (where the item ran) and, in the controller, the extra columns
and the run summary. pytest-html is imported only when a report is asked for (`--html`)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

import pytest

from pytest_interllm import terminal
from pytest_interllm.report import gate
from pytest_interllm.report.baseline import html as baseline_html
from pytest_interllm.report.html import render as render_html
from pytest_interllm.report.html import summary as render_summary
from pytest_interllm.report.summary import counts as summary_counts

if TYPE_CHECKING:
    from pytest_interllm.controller import Controller


def add_extras(config: pytest.Config, report: pytest.TestReport, record: dict[str, Any]) -> None:
    """Attach the scenario's HTML (prompt, final_output, models, timeline, output preview) to its report."""
    if not config.getoption("--html", None):  # None too where pytest-html is not loaded (`-p no:html`)
        return
    from pytest_html import extras

    extra = extras.extra(render_html(record), extras.FORMAT_HTML, name="interllm")
    setattr(report, "extras", [*getattr(report, "extras", []), extra])  # noqa: B010


class HtmlHooks:
    """pytest-html's hooks: extra columns and the run summary (registered with the controller, when pytest-html
    is there)."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        c = self.controller
        changes = c.comparison()
        extra = baseline_html(changes, c.baseline_name(), c.settings.alpha) if changes is not None else ""
        extra += gate.html(c.judgement) if c.judgement is not None else ""
        prefix.append(render_summary(terminal.info(c.run, c.models), summary_counts(c.records), c.records, extra))

    def pytest_html_duration_format(self, duration: float) -> str:
        """The results table's durations as the extras write them (`1.23s`), not pytest-html's `00:00:01`."""
        return f"{duration:.2f}s"

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(2, '<th class="sortable" data-column-type="interllmIndex">Scenario</th>')
        cells.insert(3, "<th>Model</th>")
        cells.insert(4, "<th>Failure class</th>")
        cells.insert(5, "<th>Tokens</th>")
        cells.insert(6, "<th>Attempts</th>")
        cells.insert(7, "<th>Caused by</th>")

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        props = dict(report.user_properties)
        values = [
            props.get("interllm_index", ""),
            props.get("interllm_session_model", ""),
            props.get("interllm_failure_class", ""),
            props.get("interllm_tokens", ""),
            props.get("interllm_repeat", ""),
            props.get("interllm_failure_group", ""),
        ]
        for offset, value in enumerate(values):
            cells.insert(2 + offset, f"<td>{escape(str(value))}</td>")
