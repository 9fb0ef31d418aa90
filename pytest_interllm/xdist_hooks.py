"""pytest-xdist, controller side: what each worker is handed at its start, SIGTERM passed on to local workers,
and which process runs the items."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_interllm import workdirs
from pytest_interllm.cost import Budget

if TYPE_CHECKING:
    from pytest_interllm.controller import Controller

PID_TIMEOUT = 10.0  # seconds for a new worker to say its pid; it is idle then, waiting for xdist's first command


def runs_items(config: pytest.Config) -> bool:
    """Whether items run in this process: an xdist worker, or a process that hands none to workers. The latter is
    xdist's own rule for starting its controller session: a distribution mode with workers, and not collect-only."""
    if hasattr(config, "workerinput"):
        return True
    distributes = config.getoption("--dist", "no") != "no" and bool(config.getoption("--tx", None))
    return not distributes or bool(config.option.collectonly)


def _worker_pid(node: Any) -> int | None:
    """The pid of a worker on this host, asked through its gateway (execnet's public `remote_exec`)."""
    spec = node.gateway.spec
    if not spec.popen or spec.via:
        return None
    channel = node.gateway.remote_exec("import os; channel.send(os.getpid())")
    try:
        pid = channel.receive(PID_TIMEOUT)
        channel.waitclose(PID_TIMEOUT)
    except (channel.RemoteError, channel.TimeoutError, EOFError, OSError):
        return None  # nothing forwarded to it: xdist's shutdown still ends it, uncleaned
    return pid if isinstance(pid, int) else None


class XdistHooks:
    """Hands the checked codex binary, the shared proxy, the budget ledger and the secrets to mask to every worker;
    parses the lists before the first worker starts, so workers read them from pytest's cache."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.run = controller.run
        self.budget_ledger: Path | None = None  # shared by the workers and the controller

    def pytest_configure_node(self, node: Any) -> None:
        run = self.run
        self.controller.status.load()
        # A SIGTERM to the controller reaches its local workers at once: each stops as on Ctrl-C and cleans up,
        # before xdist's own shutdown would kill it with nothing cleaned.
        pid = _worker_pid(node)
        if pid is not None:
            run.sigterm.forward.add(pid)
        # One ledger for the run, budget or not: the spend, and why the run stopped starting scenarios (a plan's
        # usage limit met on one worker stops them all). The controller reads it too, for its summary.
        if self.budget_ledger is None:
            spent = sum(answer["cost_usd"] for answer in self.controller.preflights)
            self.budget_ledger = Budget.create_ledger(spent=spent)
            run.budget.ledger = self.budget_ledger
        node.workerinput["interllm_budget_ledger"] = str(self.budget_ledger)
        if run.codex is not None:
            node.workerinput["interllm_codex"] = (run.codex.path, run.codex.version)
        if run.proxy is not None:
            node.workerinput["interllm_proxy"] = (run.proxy.root, run.proxy.token)
        node.workerinput["interllm_free"] = run.prices.free
        # Workers name items from masked titles and write failures: they mask what the controller masks.
        node.workerinput["interllm_redact"] = run.login

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.run.sigterm.received and self.run.sigterm.forward:
            # Before xdist shuts its workers down (it kills what has not exited 10 s later): they clean up first.
            workdirs.wait_released(self.run.sigterm.forward, 20.0)  # an executor stops within 15 s

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.budget_ledger is not None:
            self.run.budget.ledger = None
            self.budget_ledger.unlink(missing_ok=True)
            self.budget_ledger = None
