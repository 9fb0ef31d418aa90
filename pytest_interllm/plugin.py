"""pytest-interllm: options, hooks and fixtures. It wires; the modules compute."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import replace
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_interllm import agent_factory, workdirs
from pytest_interllm.codex.locate import CodexBinary, CodexMissing, interface_of, locate
from pytest_interllm.collect import (
    COST_KEY,
    EXECUTOR_KEY,
    IN_FLIGHT_KEY,
    OUTCOME_KEY,
    PARSED_KEY,
    REDACTOR_KEY,
    SETTINGS_KEY,
    VERDICT_KEY,
    InterllmFile,
    ScenarioItem,
)
from pytest_interllm.cost import FREE_REPLAYED, FREE_SCRIPTED, Budget, PriceError, Prices
from pytest_interllm.errors import ScenarioFailure
from pytest_interllm.expectations import Expectations
from pytest_interllm.inputs import check_templates, input_files, list_inputs
from pytest_interllm.outcome import ScenarioOutcome
from pytest_interllm.outputs import Cleanup, Manifest, OutputDirError, check_output_dir
from pytest_interllm.prompt import TemplateError
from pytest_interllm.providers.credentials import Credential, CredentialError, for_run, login_secrets, login_shown
from pytest_interllm.redact import Redactor
from pytest_interllm.report.baseline import Baseline
from pytest_interllm.report.baseline import html as baseline_html
from pytest_interllm.report.baseline import markdown as baseline_markdown
from pytest_interllm.report.baseline import terminal_lines as baseline_lines
from pytest_interllm.report.html import render as render_html
from pytest_interllm.report.html import summary as render_summary
from pytest_interllm.report.merge import MergeError
from pytest_interllm.report.record import build as build_record
from pytest_interllm.report.runlog import RunLog
from pytest_interllm.report.status import StatusLines, ends_test, result_of
from pytest_interllm.report.summary import counts as summary_counts
from pytest_interllm.report.summary import markdown as summary_markdown
from pytest_interllm.report.summary import spend as summary_spend
from pytest_interllm.scenarios import ScenarioFormatError, list_cache_dir, parse_scenarios, same_titles
from pytest_interllm.settings import Settings, add_options, resolve
from pytest_interllm.signals import SigtermAsCtrlC

if TYPE_CHECKING:  # the executors and providers pull in uvicorn, starlette and httpx: imported when used
    from pytest_interllm.providers.service import ProviderPlan, ProviderService, ProxyClient
    from pytest_interllm.run import InFlight
    from pytest_interllm.run.attempt import Executor

PLUGIN_NAME = "interllm-session"


def make_executor(settings: Settings, codex: CodexBinary, label: str, proxy: ProxyClient | None = None) -> Executor:
    """The configured executor on a new event loop, with its provider endpoint: the run's proxy if there is one,
    else the worker's own scripted model. A transport's heavy SDK is imported only when it is chosen."""
    from pytest_interllm import executors
    from pytest_interllm.providers.endpoints import endpoint_for
    from pytest_interllm.run.attempt import Executor
    from pytest_interllm.runtime import LoopRunner

    runner = LoopRunner()
    endpoint = endpoint_for(runner, proxy)
    factory = (
        agent_factory.load(
            settings.agent, settings.rootdir, settings.orchestrator_model or settings.model, settings.timeout
        )
        if settings.agent
        else None
    )
    transport = executors.load(settings.executor)
    return Executor(settings, codex, endpoint, runner, transport, label, agent_factory=factory)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _load_dotenv(rootdir: Path) -> frozenset[str]:
    """Load `.env` without overriding the real environment; the names it set."""
    from dotenv import load_dotenv

    env_file = rootdir / ".env"
    if not env_file.is_file():
        return frozenset()
    before = set(os.environ)
    load_dotenv(env_file, override=False)
    return frozenset(set(os.environ) - before)


def _free(plan: ProviderPlan | None, workerinput: dict[str, Any] | None) -> str | None:
    """Why the run spends nothing (no dollar estimate is shown), or None when requests reach a real model."""
    if workerinput is not None and "interllm_free" in workerinput:
        return workerinput["interllm_free"]  # type: ignore[no-any-return]  # the controller knows the credential
    if plan is None or plan.upstream == "scripted":
        return FREE_SCRIPTED
    if plan.provider == "replay":
        return FREE_REPLAYED
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


def _prices(settings: Settings) -> Prices:
    try:
        return Prices.load(settings.prices)
    except PriceError as exc:
        raise pytest.UsageError(f"--interllm-prices: {exc}") from None


def _serve(plan: ProviderPlan, redactor: Redactor) -> tuple[ProviderService, ProxyClient]:
    """The run's provider service (the audit proxy, with the scripted model it may front) and a client of it."""
    from pytest_interllm.providers.service import ProviderService, ProxyClient

    service = ProviderService(plan, redactor, latency=float(os.environ.get("INTERLLM_SCRIPTED_LATENCY") or 0))
    return service, ProxyClient(service.root, service.proxy.token)


def _budget(settings: Settings, workerinput: dict[str, Any] | None) -> Budget:
    """The run's budget. xdist workers share the controller's ledger file; a worker that cannot see it (another
    host) keeps to its share, budget / number of workers."""
    if settings.budget is None or workerinput is None:
        return Budget(settings.budget)
    ledger = workerinput.get("interllm_budget_ledger")
    if ledger is not None and Path(ledger).is_file():
        return Budget(settings.budget, ledger=Path(ledger))
    return Budget(settings.budget / int(workerinput.get("workercount", 1) or 1))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "interllm(model=None, timeout=None): expected model and timeout of an interllm scenario item."
    )
    from_dotenv = _load_dotenv(Path(config.rootpath))
    settings = resolve(config)
    config.stash[SETTINGS_KEY] = settings
    if not settings.lists:
        return
    _add_list_args(config, settings)
    codex: CodexBinary | None = None
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None and "interllm_codex" in workerinput:
        codex = CodexBinary(*workerinput["interllm_codex"])
    elif not config.option.collectonly and not config.option.help:
        try:
            codex = locate(settings.codex, interface_of(settings.executor))
        except CodexMissing as exc:
            raise pytest.UsageError(f"pytest-interllm: --interllm-executor {settings.executor}: {exc}") from None
    if settings.agent:  # a module that does not import, or a factory that builds no Agent: one usage error
        try:
            agent_factory.load(
                settings.agent, settings.rootdir, settings.orchestrator_model or settings.model, settings.timeout
            )
        except agent_factory.AgentFactoryError as exc:
            raise pytest.UsageError(f"pytest-interllm: {exc}") from None
    if workerinput is None and not config.option.collectonly:
        workdirs.remove_stale()  # the temporary dirs of earlier runs that died (kill -9): their prompts, codex's homes
    session = InterllmSession(config, settings, codex)
    if workerinput is not None and "interllm_redact" in workerinput:
        session.redactor.add(*workerinput["interllm_redact"])  # the controller's login: masked here too
    if settings.concurrency > 1:
        from pytest_interllm.run import InFlight

        config.stash[IN_FLIGHT_KEY] = session.in_flight = InFlight(settings.concurrency)
    plan = None
    if settings.provider != "offline":
        from pytest_interllm.providers.service import plan_for

        if workerinput is None:  # only the controller reads the credential: workers talk to its proxy
            try:
                session.credential = for_run(settings, os.environ, from_dotenv)
            except CredentialError as exc:
                if not config.option.collectonly:
                    raise pytest.UsageError(f"pytest-interllm: {exc}") from None
            session.login = (login_secrets(session.credential), login_shown(session.credential))
            session.redactor.add(*session.login)
        plan = plan_for(settings, session.credential)
    config.stash[COST_KEY] = (replace(_prices(settings), free=_free(plan, workerinput)), _budget(settings, workerinput))
    if plan is not None and not config.option.collectonly:
        if workerinput is not None and "interllm_proxy" in workerinput:
            from pytest_interllm.providers.service import ProxyClient

            session.proxy = ProxyClient(*workerinput["interllm_proxy"])
        elif workerinput is None:
            session.service, session.proxy = _serve(plan, session.redactor)
    session.plan = plan
    config.pluginmanager.register(session, PLUGIN_NAME)
    session.sigterm.install()  # given back at unconfigure, which only a registered session gets
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlHooks(session), f"{PLUGIN_NAME}-html")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(session), f"{PLUGIN_NAME}-xdist")


def _can_run_ahead(item: pytest.Item) -> bool:
    """A scenario pytest will surely run (no skip marker, no item-level problem), so it may start early."""
    return (
        isinstance(item, ScenarioItem)
        and item.problem is None
        and item.get_closest_marker("skip") is None
        and item.get_closest_marker("skipif") is None
    )


class BoundCodex:
    """The executor as one test sees it: the test's marker gives the default model and timeout."""

    def __init__(
        self, executor: Executor, model: str | None, timeout: float | None, label: str, prices: Prices
    ) -> None:
        self.executor = executor
        self.model = model
        self.timeout = timeout
        self.label = label
        self.prices = prices

    def run(self, prompt: str, *, output_file: Path | str, **kwargs: Any) -> ScenarioOutcome:
        """`Executor.run` with the marker's model and timeout unless given here."""
        if "model" not in kwargs and self.model is not None:
            kwargs["model"] = self.model
        if kwargs.get("timeout") is None and self.timeout is not None:
            kwargs["timeout"] = float(self.timeout)
        kwargs.setdefault("label", self.label)
        outcome = self.executor.run(prompt, output_file=output_file, **kwargs)
        outcome.cost_usd = self.prices.of_requests(outcome.every_request)
        return outcome

    def check(self, outcome: ScenarioOutcome, expectations: Expectations | None = None) -> None:
        """Raise `ScenarioFailure` unless the model, the output file and the expectations hold."""
        self.executor.check(outcome, expectations)


class HtmlHooks:
    """pytest-html hooks: extra columns and the run summary (registered only when pytest-html is there)."""

    def __init__(self, session: InterllmSession) -> None:
        self.session = session

    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str]) -> None:
        session = self.session
        changes = session.baseline.compare(session.records) if session.baseline is not None else None
        extra = baseline_html(changes, session.baseline_name()) if changes is not None else ""
        prefix.append(render_summary(session.info(), summary_counts(session.records), session.records, extra))

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(2, '<th class="sortable" data-column-type="interllmIndex">Scenario</th>')
        cells.insert(3, "<th>Model</th>")
        cells.insert(4, "<th>Failure class</th>")
        cells.insert(5, "<th>Tokens</th>")
        cells.insert(6, "<th>Attempts</th>")

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        props = dict(report.user_properties)
        values = [
            props.get("interllm_index", ""),
            props.get("interllm_session_model", ""),
            props.get("interllm_failure_class", ""),
            props.get("interllm_tokens", ""),
            props.get("interllm_repeat", ""),
        ]
        for offset, value in enumerate(values):
            cells.insert(2 + offset, f"<td>{escape(str(value))}</td>")


class XdistHooks:
    """Hands the checked codex binary and the shared proxy to every worker; parses the lists before the first
    worker starts, so workers read them from pytest's cache."""

    def __init__(self, session: InterllmSession) -> None:
        self.session = session

    def pytest_configure_node(self, node: Any) -> None:
        self.session.status.load()
        # A SIGTERM to the controller reaches its local workers at once: each stops as on Ctrl-C and cleans up,
        # before xdist's own shutdown would kill it with nothing cleaned. The pid is what xdist cached at setup.
        info, spec = getattr(node.gateway, "_cache_rinfo", None), node.gateway.spec
        pid = getattr(info, "pid", None)
        if spec.popen and not spec.via and isinstance(pid, int):
            self.session.sigterm.forward.add(pid)
        if self.session.settings.budget is not None:
            if self.session.budget_ledger is None:
                spent = self.session.preflight["cost_usd"] if self.session.preflight is not None else 0.0
                self.session.budget_ledger = Budget.create_ledger(spent=spent)
            node.workerinput["interllm_budget_ledger"] = str(self.session.budget_ledger)
        codex = self.session.codex
        if codex is not None:
            node.workerinput["interllm_codex"] = (codex.path, codex.version)
        proxy = self.session.proxy
        if proxy is not None:
            node.workerinput["interllm_proxy"] = (proxy.root, proxy.token)
        node.workerinput["interllm_free"] = self.session.config.stash[COST_KEY][0].free
        # Workers name items from masked titles and write failures: they mask what the controller masks.
        node.workerinput["interllm_redact"] = self.session.login


class InterllmSession:
    """State of one run in one process: the lazily started executor and the status lines."""

    def __init__(self, config: pytest.Config, settings: Settings, codex: CodexBinary | None) -> None:
        self.config = config
        self.settings = settings
        self.codex = codex
        self.executor: Executor | None = None
        self.redactor = Redactor.from_environ()
        self.status = StatusLines(settings.lists, settings.rootdir, list_cache_dir(config), self.redactor)
        self.records: list[dict[str, Any]] = []
        self.runlog: RunLog | None = None
        self.plan: ProviderPlan | None = None
        self.service: ProviderService | None = None
        self.proxy: ProxyClient | None = None
        self.budget_ledger: Path | None = None  # the controller's, shared by xdist workers
        self.manifest: Manifest | None = None  # the controller's record of the output files scenarios left
        self.credential: Credential | None = None  # the controller's: the user's key or codex login
        self.login: tuple[list[str], dict[str, str]] = ([], {})  # its secrets and shown forms, for the redactor
        self.preflight: dict[str, Any] | None = None
        self.baseline: Baseline | None = None  # the controller's: an earlier run to compare with
        self.in_flight: InFlight | None = None  # with --interllm-concurrency > 1
        self._order: dict[str, int] = {}  # nodeid → position in session.items, for what comes next
        self.notes: list[str] = []  # the controller's: what the run should know about its inputs (header, log)
        self.sigterm = SigtermAsCtrlC()
        self.cleanup = Cleanup()
        config.stash[EXECUTOR_KEY] = self.get_executor
        config.stash[REDACTOR_KEY] = self.redactor

    def get_executor(self) -> Executor:
        """The worker's executor, started on first use."""
        if self.executor is None:
            if self.codex is None:
                self.codex = locate(self.settings.codex, interface_of(self.settings.executor))
            label = getattr(self.config, "workerinput", {}).get("workerid", "main")
            self.executor = make_executor(self.settings, self.codex, label, self.proxy)
        return self.executor

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        # Start the provider and codex before the first scenario, so no scenario's time includes start-up.
        if self.config.option.collectonly or not any(isinstance(i, ScenarioItem) for i in session.items):
            return
        from pytest_interllm.codex.server import CodexServerError

        try:
            self.get_executor().start()
        except CodexServerError as exc:
            raise pytest.UsageError(f"pytest-interllm: {exc}") from None

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        if file_path.resolve() in self.settings.lists:
            return InterllmFile.from_parent(parent, path=file_path)
        return None

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        s = self.settings
        codex = f"{self.codex.path} ({self.codex.version})" if self.codex else "not checked (collect only)"
        home = str(s.codex_home) if s.codex_home else "isolated temporary CODEX_HOME"
        return (
            [
                f"interllm: provider {self.provider_text()}, expected model {s.model}, executor {s.executor}"
                + (f" ({s.executor_reason})" if s.executor_reason else ""),
                f"interllm: codex {codex}, sandbox {s.sandbox}, {home}",
                f"interllm: outputs {s.relative(s.output_dir)}/{self.cleanup_text()}, "
                f"timeout {s.timeout:g}s per scenario",
            ]
            + (
                [
                    f"interllm: OPENAI_DEFAULT_MODEL={os.environ['OPENAI_DEFAULT_MODEL']} is set and ignored: "
                    "every model of the run is explicit"
                    if not s.agent
                    else f"interllm: OPENAI_DEFAULT_MODEL={os.environ['OPENAI_DEFAULT_MODEL']} is set: an Agent of "
                    "yours that names no model runs it"
                ]
                if os.environ.get("OPENAI_DEFAULT_MODEL")
                else []
            )
            + (
                [
                    "interllm: orchestrator (OpenAI Agents SDK) "
                    + (f"yours ({s.agent}), expected model" if s.agent else "model")
                    + f" {s.orchestrator_model or s.model}, tracing kept local (no upload)"
                ]
                if s.executor == "agents"
                else []
            )
            + [f"interllm: note: {note}" for note in self.notes]
        )

    def cleanup_text(self) -> str:
        """What the start of the run removed from the output dir, for the header."""
        done = self.cleanup
        parts = [f"{len(done.removed)} earlier outputs of the plugin removed"] if done.removed else []
        parts += [f"{len(done.kept)} kept (see the run log)"] if done.kept else []
        parts += [f"manifest set aside: {p}" for p in done.problems]
        return f" ({', '.join(parts)})" if parts else ""

    def provider_text(self) -> str:
        """The provider, what is behind it, and why it was chosen."""
        s, plan = self.settings, self.plan
        why = " (OPENAI_API_KEY is set)" if s.provider_source == "default" and s.provider == "openai" else ""
        if plan is None:
            fallback = ", no OPENAI_API_KEY" if s.provider_source == "default" else ""
            return f"offline (built-in scripted model on 127.0.0.1, not a real LLM{fallback})"
        cassettes = s.relative(plan.cassette_dir) if plan.cassette_dir else ""
        if plan.provider == "replay":
            return f"replay (cassettes in {cassettes}/, nothing sent upstream)"
        upstream = "the built-in scripted model" if plan.upstream == "scripted" else plan.upstream
        who = f" with {self.credential_text()}" if self.credential is not None else ""
        limit = f", at most {plan.max_concurrency} upstream requests at once" if plan.max_concurrency else ""
        if plan.provider == "record":
            return f"record (from {upstream}{who} into {cassettes}/, mode {plan.record_mode}{limit})"
        return f"openai (audit proxy in front of {upstream}{who}{limit}){why}"

    def credential_text(self) -> str:
        """Whose credential the run uses, never the secret ("ChatGPT login (plan plus, account …c0de) from …")."""
        return self.redactor.text(self.credential.describe()) if self.credential is not None else "no credential"

    def _reporter(self) -> pytest.TerminalReporter | None:
        if self.config.get_verbosity() <= -2:
            return None
        reporter: pytest.TerminalReporter | None = self.config.pluginmanager.get_plugin("terminalreporter")
        return reporter

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        # The END line shows the result; a progress letter after it would only add noise.
        if self._reporter() is None or self.config.get_verbosity() > 0 or not self.status.owns(report.nodeid):
            return None
        if ends_test(report):
            category = result_of(report)
            return category, "", category.upper()
        return None

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        # Before pytest runs an item, the next ones of this process start too, up to --interllm-concurrency.
        session = item.session
        if self.in_flight is None or not isinstance(item, ScenarioItem) or session.shouldstop or session.shouldfail:
            return
        budget = self.config.stash[COST_KEY][1]
        if budget.limit is not None and not budget.known():
            return  # no scenario has cost anything yet: the first runs alone, so the next ones can be reserved
        self.in_flight.ahead([i for i in self._upcoming(item) if _can_run_ahead(i)])

    def _upcoming(self, item: pytest.Item) -> list[pytest.Item]:
        """This process's items from `item` on: the rest of the collection, or under xdist what the controller
        has sent this worker so far."""
        items = item.session.items
        if _is_worker(self.config):
            # Only what xdist has sent this worker: its next item and its queue (never another worker's items).
            worker = next(
                (p for p in self.config.pluginmanager.get_plugins() if type(p).__name__ == "WorkerInteractor"), None
            )
            if worker is None:
                return [item]
            with worker.torun.lock() as queued:
                indices = [worker.nextitem_index, *queued]
            return [item] + [items[i] for i in indices if isinstance(i, int)]
        if not self._order:
            self._order = {each.nodeid: n for n, each in enumerate(items)}
        start = self._order.get(item.nodeid, 0)
        return items[start : start + self.settings.concurrency]

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        reporter = self._reporter()
        if reporter is not None:
            self.status.start(reporter, nodeid, self.in_flight.started.get(nodeid) if self.in_flight else None)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        reporter = self._reporter()
        record = getattr(report, "interllm_record", None)
        if reporter is not None:  # the scenario's real start and end (it may have run ahead of pytest's turn)
            times = (record["started_at"], record["ended_at"]) if record is not None else (None, None)
            self.status.end(reporter, report, *times)
        if record is not None and not _is_worker(self.config):
            self.records.append(record)
            if self.runlog is not None:
                self.runlog.write(record)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if not isinstance(item, ScenarioItem) or not ends_test(report):
            return report
        outcome = item.stash.get(OUTCOME_KEY, None) if call.when == "call" else None
        verdict = item.stash.get(VERDICT_KEY, None) if call.when == "call" else None
        failure = call.excinfo.value if call.excinfo is not None else None
        failure_class = failure.failure_class if isinstance(failure, ScenarioFailure) else None
        props: list[tuple[str, object]] = [
            ("interllm_index", item.scenario.index),
            ("interllm_expected_model", item.model),
        ]
        if verdict is not None and len(verdict.attempts) > 1:
            props.append(("interllm_repeat", verdict.summary()))
        if outcome is not None:
            props += [
                ("interllm_session_model", outcome.session_model or ""),
                ("interllm_output", outcome.output_path),
                ("interllm_failure_class", failure_class or ""),
                ("interllm_fault", outcome.fault or ""),
                ("interllm_attempts", outcome.attempts),
                ("interllm_provider_retries", outcome.provider_retries),
                ("interllm_tokens", outcome.tokens_in + outcome.tokens_out),
                ("interllm_final_output_chars", len(outcome.final_output)),
                ("interllm_agent_replied", outcome.agent_replied),
                ("interllm_codex_pid", outcome.codex_pid or 0),
            ]
            report.sections.append(("interllm final_output", self.redactor.text(outcome.final_output or "(empty)")))
        # On the item too: JUnit XML writes properties from the teardown report, which copies them.
        item.user_properties.extend(props)
        report.user_properties.extend(props)
        record = self.redactor.data(
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
                free=bool(self.config.stash[COST_KEY][0].free),
                failure_class=failure_class,
                verdict=verdict,
            )
        )
        in_flight = self.in_flight
        record["started_at"] = in_flight.started.get(item.nodeid) if in_flight else getattr(report, "start", None)
        record["ended_at"] = in_flight.ended.get(item.nodeid) if in_flight else getattr(report, "stop", None)
        report.interllm_record = record  # type: ignore[attr-defined]  # travels to the xdist controller
        if getattr(self.config.option, "htmlpath", None):
            # The dict pytest_html.extras.html() builds, without importing pytest-html where it is absent.
            extra = {
                "name": "interllm",
                "format_type": "html",
                "content": render_html(record),
                "mime_type": None,
                "extension": None,
            }
            setattr(report, "extras", [*getattr(report, "extras", []), extra])  # noqa: B010
        return report

    def info(self) -> dict[str, str]:
        """What the run was: shown in the log header, the HTML summary and the markdown summary."""
        s = self.settings
        return {
            "provider": f"{s.provider} (built-in scripted model, not a real LLM)"
            if s.provider == "offline"
            else s.provider + (f", {self.credential_text()}" if self.credential is not None else ""),
            "spend": self.config.stash[COST_KEY][0].free or f"estimated from {self.config.stash[COST_KEY][0].source}",
            "executor": s.executor,
            "codex": self.codex.version if self.codex else "unknown",
            "expected model": s.model,
            "sandbox": s.sandbox,
            "lists": ", ".join(s.relative(p) for p in s.lists),
        }

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # Before any scenario and before xdist starts its workers: inputs checked once, then earlier outputs removed.
        if _is_worker(self.config):
            return
        s = self.settings
        inputs = list_inputs(s)
        files = input_files(inputs)
        try:
            check_templates(inputs)
            check_output_dir(s, files)
        except (TemplateError, OutputDirError) as exc:
            raise pytest.UsageError(str(exc)) from None
        if s.baseline is not None:
            try:
                self.baseline = Baseline(s.baseline)
            except MergeError as exc:
                raise pytest.UsageError(f"--interllm-baseline: {exc}") from None
        self.notes = self._read_lists()
        if self.config.option.collectonly:
            return
        self._preflight()
        self.manifest = Manifest(s)
        self.cleanup = self.manifest.clear()
        if s.log_dir is not None:
            notes = [f"note: {note}" for note in self.notes]
            self.runlog = RunLog(s.log_dir, self.redactor, self.info(), notes + self.cleanup_lines())

    def _read_lists(self) -> list[str]:
        """Parse the lists once (for collection here, and pytest's cache for xdist workers); notes on shared titles."""
        s, notes = self.settings, []
        parsed_lists = self.config.stash.setdefault(PARSED_KEY, {})
        for path in s.lists:
            try:
                parsed = parsed_lists[path] = parse_scenarios(path, list_cache_dir(self.config), self.redactor)
            except ScenarioFormatError:
                continue  # collection reports it, at its line
            scenarios = parsed.scenarios[: s.max_scenarios] if s.max_scenarios else parsed.scenarios
            # Legal, but easy to mistake for one another. A note, not a warning: `filterwarnings = error` would fail
            # the run.
            notes += [self.redactor.text(f"{s.relative(path)}: {note}") for note in same_titles(scenarios)]
        return notes

    def _preflight(self) -> None:
        """A real run first sends one minimal request with the expected model; a refusal stops it (exit 4)."""
        plan, s = self.plan, self.settings
        if plan is None or not plan.real or not s.preflight or self.proxy is None:
            return
        from pytest_interllm.providers.service import preflight_problem

        answer = self.proxy.preflight(s.model)
        problem = preflight_problem(answer, self.credential_text())
        if problem is not None:
            raise pytest.UsageError(f"pytest-interllm: {self.redactor.text(problem)}")
        prices, budget = self.config.stash[COST_KEY]
        answer["cost_usd"] = (
            0.0 if prices.free else prices.cost(s.model, answer["input_tokens"], answer["output_tokens"])
        )
        budget.add(answer["cost_usd"], scenarios=0)
        self.preflight = answer

    def baseline_name(self) -> str:
        return self.settings.relative(self.baseline.path) if self.baseline is not None else ""

    def cleanup_lines(self) -> list[str]:
        """The log's account of the earlier outputs removed (and kept) at the start of the run."""
        done, where = self.cleanup, self.settings.relative(self.settings.output_dir)
        lines = [f"earlier outputs of the plugin removed from {where}/: {len(done.removed)}"]
        lines += [f"  removed {name}" for name in done.removed]
        lines += [f"  kept {name}: {why}" for name, why in done.kept]
        lines += [f"  note: {problem}" for problem in done.problems]
        return lines

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.records:
            return
        tally = summary_counts(self.records)
        terminalreporter.write_sep("-", "interllm")
        terminalreporter.write_line("interllm: " + ", ".join(f"{k} {v}" for k, v in tally.items()))
        tin = sum(r["tokens_in"] for r in self.records)
        tout = sum(r["tokens_out"] for r in self.records)
        prices = self.config.stash[COST_KEY][0]
        terminalreporter.write_line(f"interllm: provider {self.provider_text()}")
        if self.preflight is not None:
            p = self.preflight
            terminalreporter.write_line(
                f"interllm: preflight: {p['model']} answered HTTP {p['status']} in {p['latency']:.2f}s "
                f"({p['input_tokens']} in / {p['output_tokens']} out tokens)"
            )
        extra = self.preflight["cost_usd"] if self.preflight is not None else 0.0
        budget = f" of a ${self.settings.budget:.4f} budget" if self.settings.budget is not None else ""
        costs = f"{summary_spend(self.records, prices.free, extra)}{budget} (prices: {prices.source})"
        terminalreporter.write_line(f"interllm: tokens {tin} in / {tout} out, {prices.free or costs}")
        if self.in_flight is not None:
            terminalreporter.write_line(f"interllm: concurrency: {self.in_flight.report()}")
        for note in dict.fromkeys(n for r in self.records for n in r.get("output_notes") or []):
            terminalreporter.write_line(self.redactor.text(f"interllm: output: {note}"))
        if self.baseline is not None:
            for line in baseline_lines(self.baseline.compare(self.records), self.baseline_name()):
                terminalreporter.write_line(self.redactor.text(line))
        if self.service is not None:
            st = self.service.stats()
            terminalreporter.write_line(
                f"interllm: proxy: {st['requests']} requests, {st['upstream']} sent upstream, {st['replayed']} "
                f"replayed, peak upstream concurrency {st['peak_concurrency']}"
            )
        if self.runlog is not None:
            terminalreporter.write_line(
                f"interllm: log {self.settings.relative(self.runlog.text_path)} "
                f"and {self.settings.relative(self.runlog.jsonl_path)}"
            )

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.sigterm.received and self.sigterm.forward:
            # Before xdist shuts its workers down (it kills what has not exited 10 s later): they clean up first.
            workdirs.wait_released(self.sigterm.forward, 20.0)  # an executor stops within 15 s
        cancelled = 0  # scenarios still in flight when the run stopped (-x, Ctrl-C, budget)
        if self.in_flight is not None:
            # -x, Ctrl-C or the budget stopped the run: what still runs ahead of pytest stops here, codex with it.
            cancelled = self.in_flight.cancel()
            if cancelled and self.executor is not None:
                self.executor.close()  # records in the manifest what the cancelled scenarios wrote
                self.executor = None
        if _is_worker(self.config):
            return
        if self.runlog is not None:
            if cancelled:
                self.runlog.note(f"stopped with {cancelled} scenarios still in flight: cancelled, not reported")
            self.runlog.close(summary_counts(self.records))
        path = self.settings.summary
        if path is not None and not self.config.option.collectonly:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as fh:
                free = self.config.stash[COST_KEY][0].free
                extra = (
                    [baseline_markdown(self.baseline.compare(self.records), self.baseline_name())]
                    if self.baseline is not None
                    else []
                )
                fh.write(self.redactor.text(summary_markdown(self.records, self.info(), free, extra)))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.in_flight is not None:
            self.in_flight.cancel()  # already done at session finish, unless the session never got there
        if self.executor is not None:
            self.executor.close()
            self.executor = None
        if self.proxy is not None:
            self.proxy.close()
        if self.service is not None:
            self.service.close()
            self.service = None
        if self.budget_ledger is not None:
            self.budget_ledger.unlink(missing_ok=True)
            self.budget_ledger = None
        self.sigterm.uninstall()


@contextlib.contextmanager
def _standalone(config: pytest.Config, settings: Settings) -> Iterator[Executor]:
    """An executor of its own for hand-written tests, with the configured provider set up here (the audit proxy
    with the user's credential for a real provider), so they run for real too."""
    try:
        codex = locate(settings.codex, interface_of(settings.executor))
        credential = for_run(settings, os.environ)
    except (CodexMissing, CredentialError) as exc:
        pytest.fail(f"pytest-interllm: {exc}", pytrace=False)
    label = getattr(config, "workerinput", {}).get("workerid", "main")
    service = proxy = None
    if settings.provider != "offline":
        from pytest_interllm.providers.service import plan_for

        plan = plan_for(settings, credential)
        assert plan is not None
        redactor = Redactor.from_environ()
        redactor.add(login_secrets(credential), login_shown(credential))
        service, proxy = _serve(plan, redactor)
        config.stash[COST_KEY] = (replace(_prices(settings), free=_free(plan, None)), Budget(None))
    executor = make_executor(settings, codex, label, proxy)
    try:
        yield executor
    finally:
        executor.close()
        if proxy is not None and service is not None:
            proxy.close()
            service.close()


@pytest.fixture(scope="session")
def interllm_executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    """The worker's codex executor (one reused codex server), shared by every test of the session."""
    session: InterllmSession | None = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    if session is not None:
        yield session.get_executor()
        return
    with _standalone(request.config, request.config.stash[SETTINGS_KEY]) as executor:
        yield executor


@pytest.fixture(scope="session")
def _interllm_agents_executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    """An agents executor for `interllm_agents`: the session's, else one of its own (whatever --interllm-executor)."""
    from pytest_interllm.transports.agents import AgentsTransport

    session: InterllmSession | None = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    if session is not None and session.executor is not None and isinstance(session.executor.transport, AgentsTransport):
        yield session.executor
        return
    settings = replace(request.config.stash[SETTINGS_KEY], executor="agents", agent=None)
    with _standalone(request.config, settings) as executor:
        assert isinstance(executor.transport, AgentsTransport)
        yield executor


class AgentsHarness:
    """`interllm_agents`: test your own Agents SDK orchestrator with the plugin's codex, provider and evidence."""

    def __init__(self, executor: Executor, label: str, prices: Prices) -> None:
        from pytest_interllm.transports.agents import AgentsTransport

        assert isinstance(executor.transport, AgentsTransport)
        self.executor = executor
        self.transport = executor.transport
        self.label = label
        self.prices = prices
        executor.start()  # the provider's token goes into codex's environment below
        home = Path(tempfile.mkdtemp(prefix="codex-home-", dir=executor.workdir))
        self.codex = self.transport.codex_server(home, executor.settings.timeout)  # for your Agent's mcp_servers

    def run(
        self, agent: Any, prompt: str, *, output_file: Path | str, model: str | None = None, **kwargs: Any
    ) -> ScenarioOutcome:
        """Run `agent` on `prompt` (it must call `self.codex`); the outcome carries the same evidence as a
        scenario's: codex's session and requests, the orchestrator's requests, spans, final_output."""
        self.transport.give(self.label, agent, self.codex)
        try:
            kwargs.setdefault("label", self.label)
            outcome = self.executor.run(prompt, output_file=output_file, model=model, **kwargs)
        finally:
            self.transport.give(self.label, None, None)
        outcome.cost_usd = self.prices.of_requests(outcome.every_request)
        return outcome

    def check(self, outcome: ScenarioOutcome, expectations: Expectations | None = None) -> None:
        """Raise `ScenarioFailure` unless the models (codex's and the orchestrator's), the output file and the
        expectations hold."""
        self.executor.check(outcome, expectations)


@pytest.fixture
def interllm_agents(request: pytest.FixtureRequest, _interllm_agents_executor: Executor) -> AgentsHarness:
    """Your own Agents SDK orchestrator against the real codex: `codex`, `run(agent, prompt, output_file=...)`,
    `check(outcome)`."""
    cost = request.config.stash.get(COST_KEY, None)
    prices = cost[0] if cost is not None else replace(_prices(request.config.stash[SETTINGS_KEY]), free=FREE_SCRIPTED)
    return AgentsHarness(_interllm_agents_executor, request.node.name, prices)


@pytest.fixture
def interllm_codex(request: pytest.FixtureRequest, interllm_executor: Executor) -> BoundCodex:
    """The real codex behind MCP: `run(prompt, output_file=...)`, then `check(outcome)`.

    `@pytest.mark.interllm(model=..., timeout=...)` on the test sets the defaults of `run`.
    """
    marker = request.node.get_closest_marker("interllm")
    kwargs = marker.kwargs if marker else {}
    cost = request.config.stash.get(COST_KEY, None)
    prices = (
        cost[0] if cost is not None else replace(_prices(request.config.stash[SETTINGS_KEY]), free=_free(None, None))
    )
    return BoundCodex(interllm_executor, kwargs.get("model"), kwargs.get("timeout"), request.node.name, prices)
