"""pytest-interllm: options, markers, fixtures, and the plugins of each process role. It wires; the modules compute.

As pytest-xdist does, each process registers only the hooks of its roles: the controller's (`controller.py`:
inputs, outputs, records, run log, summaries; with `xdist_hooks.py` and `html_hooks.py`) where the session is
owned, the worker's (`worker.py`: collection, executor, in-flight, reports) where items run. Without xdist one
process has both. `wiring.py` sets up what they share.
"""

from __future__ import annotations

import atexit
import gc

import pytest

from pytest_interllm import controller, wiring, worker, xdist_hooks
from pytest_interllm.fixtures import _interllm_agents_executor, interllm_agents, interllm_codex, interllm_executor
from pytest_interllm.html_hooks import HtmlHooks
from pytest_interllm.options import add_options

__all__ = ["_interllm_agents_executor", "interllm_agents", "interllm_codex", "interllm_executor"]

MARKER = "interllm(model=None, timeout=None): expected model and timeout of an interllm scenario item."


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    run = wiring.configure(config)
    if run is None:  # no --interllm lists: the fixtures alone
        return
    _skip_the_last_collection_at_exit()
    plugins = config.pluginmanager
    plugins.register(run, "interllm-run")
    run.sigterm.install()  # given back at unconfigure, which only a registered plugin gets
    if not hasattr(config, "workerinput"):
        owner = controller.Controller(run)
        plugins.register(owner, controller.NAME)
        if plugins.hasplugin("html"):
            plugins.register(HtmlHooks(owner), "interllm-html")
        if plugins.hasplugin("xdist"):
            plugins.register(xdist_hooks.XdistHooks(owner), "interllm-xdist")
    if xdist_hooks.runs_items(config):
        plugins.register(worker.Worker(run), worker.NAME)


_AT_EXIT: list[bool] = []


def _skip_the_last_collection_at_exit() -> None:
    """At interpreter exit only, freeze what is alive (`gc.freeze`): the cyclic collector's last passes over the
    models mcp, pydantic and the SDKs built cost a run ~0.2-0.3 s after its last line (benchmarks/startup.py).
    Objects are freed by reference counting as usual; a process that goes on after pytest returns is untouched."""
    if not _AT_EXIT:
        _AT_EXIT.append(True)
        atexit.register(gc.freeze)
