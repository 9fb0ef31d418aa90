"""Run wiring: what one process of a run sets up at configure time and both role plugins share — the settings, the
codex binary, the redactor, the credential and provider (service or proxy), prices and budget, the in-flight
window, SIGTERM handling — and the executor built from them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_interllm import agent_factory, workdirs
from pytest_interllm.codex.locate import CodexBinary, CodexMissing, interface_of, locate
from pytest_interllm.collect import COST_KEY, IN_FLIGHT_KEY, REDACTOR_KEY, SETTINGS_KEY
from pytest_interllm.cost import FREE_PLAN, FREE_REPLAYED, FREE_SCRIPTED, Budget, PriceError, Prices
from pytest_interllm.providers.credentials import (
    CHATGPT_URL,
    Credential,
    CredentialError,
    for_run,
    login_secrets,
    login_shown,
)
from pytest_interllm.redact import Redactor
from pytest_interllm.settings import Settings, resolve
from pytest_interllm.signals import SigtermAsCtrlC

if TYPE_CHECKING:  # the executors and providers pull in uvicorn, starlette and httpx: imported when used
    from pytest_interllm.providers.service import ProviderPlan, ProviderService, ProxyClient
    from pytest_interllm.run import InFlight
    from pytest_interllm.run.attempt import Executor


def make_executor(settings: Settings, codex: CodexBinary, label: str, proxy: ProxyClient | None = None) -> Executor:
    """The configured executor on a new event loop, with its provider endpoint: the run's proxy if there is one,
    else the worker's own scripted model. A transport's heavy SDK is imported only when it is chosen."""
    from pytest_interllm.runtime import LoopRunner, collector_paused

    with collector_paused():
        from pytest_interllm import executors
        from pytest_interllm.providers.endpoints import endpoint_for
        from pytest_interllm.run.attempt import Executor

    runner = LoopRunner()
    endpoint = endpoint_for(runner, proxy)
    factory = (
        agent_factory.load(
            settings.agent, settings.rootdir, settings.orchestrator_model or settings.model, settings.timeout
        )
        if settings.agent
        else None
    )
    return Executor(settings, codex, endpoint, runner, executors.load(settings.executor), label, agent_factory=factory)


class Run:
    """One process's share of the run. The process that starts the run (the xdist controller, or the only process)
    reads the credential and starts the provider service; an xdist worker takes codex, the proxy, the budget
    ledger and the secrets to mask from its `workerinput`."""

    def __init__(self, config: pytest.Config, settings: Settings, codex: CodexBinary | None) -> None:
        self.config = config
        self.settings = settings
        self.codex = codex
        self.workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        self.label: str = (self.workerinput or {}).get("workerid", "main")
        self.redactor = Redactor.from_environ()
        self.credential: Credential | None = None  # the controller's: the user's key or codex login
        self.login: tuple[list[str], dict[str, str]] = ([], {})  # its secrets and shown forms, for the redactor
        self.plan: ProviderPlan | None = None
        self.service: ProviderService | None = None  # the controller's
        self.proxy: ProxyClient | None = None
        self.in_flight: InFlight | None = None  # with --interllm-concurrency > 1
        self.cancelled = 0  # scenarios still in flight when the session stopped (-x, Ctrl-C, budget)
        self.sigterm = SigtermAsCtrlC()
        config.stash[REDACTOR_KEY] = self.redactor

    @property
    def prices(self) -> Prices:
        return self.config.stash[COST_KEY][0]

    @property
    def budget(self) -> Budget:
        return self.config.stash[COST_KEY][1]

    def credential_text(self) -> str:
        """Whose credential the run uses, never the secret ("ChatGPT login (plan plus, account …c0de) from …")."""
        return self.redactor.text(self.credential.describe()) if self.credential is not None else "no credential"

    @pytest.hookimpl(trylast=True)  # after the worker hooks closed the executor that uses the proxy
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.in_flight is not None:
            self.in_flight.cancel()  # already done at session finish, unless the session never got there
        if self.proxy is not None:
            self.proxy.close()
        if self.service is not None:
            self.service.close()
            self.service = None
        self.sigterm.uninstall()


def configure(config: pytest.Config) -> Run | None:
    """Settings from the options (after `.env`), stashed; with lists to run, this process's `Run`."""
    from_dotenv = _load_dotenv(Path(config.rootpath))
    settings = resolve(config)
    config.stash[SETTINGS_KEY] = settings
    if not settings.lists:
        return None
    _add_list_args(config, settings)
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    codex: CodexBinary | None = None
    if workerinput is not None and "interllm_codex" in workerinput:
        codex = CodexBinary(*workerinput["interllm_codex"])
    elif not config.option.collectonly and not config.option.help:
        try:
            codex = locate(settings.codex, interface_of(settings.executor))
        except CodexMissing as exc:
            raise pytest.UsageError(f"pytest-interllm: --interllm-executor {settings.executor}: {exc}") from None
    if not settings.model:  # nothing given, no codex config of the user's: the installed codex's own default
        settings = default_model(settings, codex or _quietly_located(settings))
        config.stash[SETTINGS_KEY] = settings
    if settings.agent:  # a module that does not import, or a factory that builds no Agent: one usage error
        try:
            agent_factory.load(
                settings.agent, settings.rootdir, settings.orchestrator_model or settings.model, settings.timeout
            )
        except agent_factory.AgentFactoryError as exc:
            raise pytest.UsageError(f"pytest-interllm: {exc}") from None
    if workerinput is None and not config.option.collectonly:
        workdirs.remove_stale()  # the temporary dirs of earlier runs that died (kill -9): their prompts, codex's homes
    run = Run(config, settings, codex)
    if workerinput is not None and "interllm_redact" in workerinput:
        run.redactor.add(*workerinput["interllm_redact"])  # the controller's login: masked here too
    if settings.concurrency > 1:
        from pytest_interllm.run import InFlight

        config.stash[IN_FLIGHT_KEY] = run.in_flight = InFlight(settings.concurrency)
    if settings.provider != "offline":
        from pytest_interllm.providers.service import plan_for

        if workerinput is None:  # only the controller reads the credential: workers talk to its proxy
            try:
                run.credential = for_run(settings, os.environ, from_dotenv, refresher(codex))
            except CredentialError as exc:
                if not config.option.collectonly:
                    raise pytest.UsageError(f"pytest-interllm: {exc}") from None
            run.login = (login_secrets(run.credential), login_shown(run.credential))
            run.redactor.add(*run.login)
        run.plan = plan_for(settings, run.credential)
    config.stash[COST_KEY] = (
        replace(prices_of(settings), free=free_of(run.plan, workerinput)),
        _budget(settings, workerinput),
    )
    if run.plan is not None and not config.option.collectonly:
        if workerinput is not None and "interllm_proxy" in workerinput:
            from pytest_interllm.providers.service import ProxyClient

            run.proxy = ProxyClient(*workerinput["interllm_proxy"])
        elif workerinput is None:
            run.service, run.proxy = serve(run.plan, run.redactor, codex)
    return run


def default_model(settings: Settings, codex: CodexBinary | None) -> Settings:
    """The expected model when none was given and the user's codex config names none: the one the installed codex
    would pick, its catalog's default (the plugin's fallback when there is no codex to ask)."""
    if settings.model:
        return settings
    from pytest_interllm.codex.catalog import FALLBACK_MODEL, bundled_catalog

    catalog = bundled_catalog(codex.path, codex.version) if codex is not None else None
    if catalog is not None and catalog.default:
        model, source = catalog.default, f"the default of {codex.version if codex else 'codex'}'s catalog"
    else:
        model, source = FALLBACK_MODEL, "no codex to ask for its default: the plugin's fallback"
    return replace(settings, model=model, models=(model,), model_source=source)


def _quietly_located(settings: Settings) -> CodexBinary | None:
    """The codex an executor would use, without a usage error when there is none (collect-only asks for a model)."""
    try:
        return locate(settings.codex, interface_of(settings.executor))
    except CodexMissing:
        return None


def _load_dotenv(rootdir: Path) -> frozenset[str]:
    """Load `.env` without overriding the real environment; the names it set."""
    from dotenv import load_dotenv

    env_file = rootdir / ".env"
    if not env_file.is_file():
        return frozenset()
    before = set(os.environ)
    load_dotenv(env_file, override=False)
    return frozenset(set(os.environ) - before)


def free_of(plan: ProviderPlan | None, workerinput: dict[str, Any] | None) -> str | None:
    """Why the run spends nothing (no dollar estimate is shown), or None when requests reach a real model."""
    if workerinput is not None and "interllm_free" in workerinput:
        return workerinput["interllm_free"]  # type: ignore[no-any-return]  # the controller knows the credential
    if plan is None or plan.upstream == "scripted":
        return FREE_SCRIPTED
    if plan.provider == "replay":
        return FREE_REPLAYED
    if plan.credential is not None and plan.credential.default_upstream == CHATGPT_URL:
        return FREE_PLAN  # a ChatGPT login
    return None


def _directory_given(path: Path, invoked: Path) -> str:
    """Why a directory is no list, naming a markdown file inside it to give instead."""

    def shown(each: Path) -> str:
        return each.relative_to(invoked).as_posix() if each.is_relative_to(invoked) else str(each)

    found = sorted(p for p in path.glob("*.md") if p.is_file())
    if not found:
        return f"--interllm: {shown(path)} is a directory, with no markdown list in it: give a list file"
    others = [p.name for p in found[1:4]] + (["..."] if len(found) > 4 else [])
    also = f" (also there: {', '.join(others)})" if others else ""
    return f"--interllm: {shown(path)} is a directory: give a list file, e.g. --interllm {shown(found[0])}{also}"


def _add_list_args(config: pytest.Config, settings: Settings) -> None:
    """Make pytest collect the lists: they replace the default args, or join explicit ones."""
    for path in settings.lists:
        if path.is_dir():
            raise pytest.UsageError(_directory_given(path, Path(config.invocation_params.dir)))
        if not path.is_file():
            raise pytest.UsageError(f"--interllm: {path}: no such file")
    lists = [str(p) for p in settings.lists]
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args = lists
        return
    present = {str(Path(a.split("::")[0]).resolve()) for a in config.args}
    config.args = list(config.args) + [p for p in lists if p not in present]


def prices_of(settings: Settings) -> Prices:
    """The price table the settings name (the packaged one, or the user's on top of it)."""
    try:
        return Prices.load(settings.prices)
    except PriceError as exc:
        raise pytest.UsageError(f"--interllm-prices: {exc}") from None


def refresher(codex: CodexBinary | None) -> Callable[[Path], str | None] | None:
    """How a login close to its expiry is refreshed at start: by the user's own codex (codex/login.py)."""
    if codex is None:
        return None
    from pytest_interllm.codex.login import refresh_login

    return lambda auth_file: refresh_login(codex.path, auth_file)


def serve(
    plan: ProviderPlan, redactor: Redactor, codex: CodexBinary | None = None
) -> tuple[ProviderService, ProxyClient]:
    """The run's provider service (the audit proxy, with the scripted model it may front) and a client of it."""
    from pytest_interllm.providers.service import ProviderService, ProxyClient

    latency = float(os.environ.get("INTERLLM_SCRIPTED_LATENCY") or 0)
    service = ProviderService(plan, redactor, latency=latency, codex_path=codex.path if codex else None)
    return service, ProxyClient(service.root, service.proxy.token)


def _budget(settings: Settings, workerinput: dict[str, Any] | None) -> Budget:
    """The run's budget. xdist workers share the controller's ledger file; a worker that cannot see it (another
    host) keeps to its share, budget / number of workers."""
    if workerinput is None:
        return Budget(settings.budget)
    ledger = workerinput.get("interllm_budget_ledger")
    if ledger is not None and Path(ledger).is_file():
        return Budget(settings.budget, ledger=Path(ledger))
    if settings.budget is None:
        return Budget(None)
    return Budget(settings.budget / int(workerinput.get("workercount", 1) or 1))
