"""The private parts of other libraries the plugin still uses, each behind one function here.

Each has no public equivalent (said below); tests/test_compat.py checks each against the installed version and
fails naming the library and its version the day one changes. Nothing else in the plugin touches them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    # pytest: the type `Item.repr_failure` returns besides str. Never imported at run time; pytest exports no name.
    from _pytest._code.code import TerminalRepr as TerminalRepr

XDIST_WORKER_CLASS = "WorkerInteractor"


def xdist_queue(config: pytest.Config) -> list[int] | None:
    """Indices (into `session.items`) of the items xdist has sent this worker and it has not run yet, in order;
    None where that is not known (not an xdist worker, or an xdist whose worker looks otherwise).

    pytest-xdist ≥ 3.7 (`remote.py`): the worker's `WorkerInteractor` plugin holds its next item in
    `nextitem_index` and the rest in `torun`, a `TestQueue` read under `torun.lock()`. xdist offers no public way
    to see them; the class is found by name, since the worker runs remote.py as `__channelexec__`, not as
    `xdist.remote`."""
    worker = next((p for p in config.pluginmanager.get_plugins() if type(p).__name__ == XDIST_WORKER_CLASS), None)
    lock = getattr(getattr(worker, "torun", None), "lock", None)
    if worker is None or not callable(lock) or not hasattr(worker, "nextitem_index"):
        return None
    with lock() as queued:
        indices = [worker.nextitem_index, *queued]
    return [i for i in indices if isinstance(i, int)]


def write_line_in_progress(reporter: pytest.TerminalReporter, fspath: Path, line: str, **markup: bool) -> None:
    """Write a whole line amid pytest's progress output, then tell pytest its progress line for `fspath` is
    current, so it neither breaks the line before it nor prints the file's path again after it.

    pytest (`terminal.py`): `TerminalReporter.currentfspath`, the file whose progress line is open. The public
    `write_line` always ends an open progress line, and nothing public sets one."""
    if getattr(reporter, "currentfspath", None) == fspath:
        reporter.currentfspath = None
    reporter.write_line(line, **markup)
    if reporter.verbosity <= 0 and hasattr(reporter, "currentfspath"):
        reporter.currentfspath = fspath
