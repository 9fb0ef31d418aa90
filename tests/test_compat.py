"""compat.py's private parts of other libraries hold on the installed versions: each test fails naming the library,
its version and what changed, the day one does."""

from __future__ import annotations

import importlib
import io
from importlib.metadata import version

import pytest

from pytest_interllm import compat
from tests.conftest import write

XDIST = f"pytest-xdist {version('pytest-xdist')}"
PYTEST = f"pytest {version('pytest')}"

QUEUE_SEEN = """\
import json
from pytest_interllm import compat

def test_first(request):
    with open("queue.json", "w") as fh:
        json.dump(compat.xdist_queue(request.config), fh)

def test_second():
    pass

def test_third():
    pass
"""


def test_an_xdist_worker_shows_its_queue(pytester: pytest.Pytester) -> None:
    """The in-flight window of a worker starts what xdist sent it (--interllm-concurrency under -n)."""
    write(pytester.path / "test_queue.py", QUEUE_SEEN)
    # `--dist each` sends a worker every item at once: while the first runs, the next two are its queue.
    result = pytester.runpytest_subprocess("-n", "1", "--dist", "each", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    seen = (pytester.path / "queue.json").read_text()
    assert seen in ("[1, 2]", "[1]"), (
        f"{XDIST}: a worker's WorkerInteractor (nextitem_index, torun.lock()) is not what compat.xdist_queue reads: "
        f"it saw {seen} while the first of three items ran; the in-flight window under xdist needs another way"
    )


def test_no_queue_outside_an_xdist_worker(pytester: pytest.Pytester) -> None:
    assert compat.xdist_queue(pytester.parseconfigure()) is None


def test_a_whole_line_amid_progress_output(pytester: pytest.Pytester) -> None:
    """A START/END line in pytest's progress output: no broken line before it, no path printed again after it."""
    config = pytester.parseconfigure()
    out = io.StringIO()
    # pytest's own reporter class (exported as pytest.TerminalReporter only since pytest 8.4)
    running = config.pluginmanager.get_plugin("terminalreporter")
    assert running is not None
    reporter = type(running)(config, out)
    nodeid = "input/list.md::scenario_001"
    reporter.write_fspath_result(nodeid, "")  # pytest opens the file's progress line
    compat.write_line_in_progress(reporter, config.rootpath / "input" / "list.md", "END   scenario 1/1")
    reporter.write_fspath_result(nodeid, ".")
    assert out.getvalue() == "\ninput/list.md END   scenario 1/1\n.", (
        f"{PYTEST}: TerminalReporter.currentfspath no longer marks the open progress line as compat.py expects "
        f"(output {out.getvalue()!r}); report/status.py's START/END lines need another way"
    )


def test_terminal_repr_is_where_compat_names_it() -> None:
    """`Item.repr_failure` returns str or pytest's TerminalRepr, which pytest does not export: compat.py names it."""
    try:
        terminal_repr = importlib.import_module("_pytest._code.code").TerminalRepr
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{PYTEST}: _pytest._code.code.TerminalRepr is gone ({exc}): fix compat.py's type import")
    try:
        raise ValueError("boom")
    except ValueError:
        shown = pytest.ExceptionInfo.from_current().getrepr()
    assert isinstance(shown, terminal_repr), f"{PYTEST}: a failure's repr is no longer a TerminalRepr"
