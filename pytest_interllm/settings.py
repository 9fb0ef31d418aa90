"""Options → one frozen `Settings` (precedence: CLI > environment > ini > list front matter > default)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_interllm.bounds import COUNT, SECONDS, SHARE, TIMES, USD, Number
from pytest_interllm.codex.locate import mcp_default_available
from pytest_interllm.executors import NAMES
from pytest_interllm.faults import FAULTS, unavailable
from pytest_interllm.providers.credentials import AUTH_MODES

DEFAULT_MODEL = "gpt-5-codex"
DEFAULT_TIMEOUT = 300.0
PROVIDERS = ("offline", "openai", "record", "replay")
AVAILABLE_PROVIDERS = PROVIDERS
RECORD_MODES = ("once", "new_episodes", "none", "all")
EXECUTORS = NAMES  # the executor registry (transports/__init__.py)
SANDBOXES = ("read-only", "workspace-write", "danger-full-access")


@dataclass(frozen=True)
class Option:
    """One setting: its CLI flag, ini key, environment variable, help and default."""

    dest: str
    flag: str
    help: str
    default: str | None = None
    env: str | None = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    repeatable: bool = False  # the flag may be given several times; env and ini take a comma-separated list
    number: Number | None = None  # the kind of number the value must be

    @property
    def ini(self) -> str:
        return self.dest

    @property
    def is_path(self) -> bool:
        return self.metavar in ("PATH", "DIR")


OPTIONS = (
    Option(
        "interllm_model",
        "--interllm-model",
        f"model the agent must run (default {DEFAULT_MODEL}); several (repeat the flag, or a comma-separated "
        "list) make a model matrix: one item per scenario and model.",
        DEFAULT_MODEL,
        "INTERLLM_MODEL",
        "MODEL",
        repeatable=True,
    ),
    Option(
        "interllm_concurrency",
        "--interllm-concurrency",
        "scenarios in flight at once in each pytest process, on its one codex server (default 1; with -n N, N times "
        "as many in all). Items are still reported one by one, in order.",
        "1",
        "INTERLLM_CONCURRENCY",
        "N",
        number=COUNT,
    ),
    Option(
        "interllm_repeat",
        "--interllm-repeat",
        "attempts of each item, one verdict per item: it passes when passes/attempts >= the min pass (default 1).",
        "1",
        "INTERLLM_REPEAT",
        "N",
        number=COUNT,
    ),
    Option(
        "interllm_min_pass",
        "--interllm-min-pass",
        "share of an item's repeated attempts that must pass, 0 < F <= 1 (default 1.0: all; YAML min_pass wins).",
        "1.0",
        "INTERLLM_MIN_PASS",
        "F",
        number=SHARE,
    ),
    Option(
        "interllm_grader_model",
        "--interllm-grader-model",
        "model that grades a scenario's rubric (YAML `rubric:`) with a real provider (default: the expected model).",
        None,
        "INTERLLM_GRADER_MODEL",
        "MODEL",
    ),
    Option(
        "interllm_grader_votes",
        "--interllm-grader-votes",
        "ask the grader N times; each criterion takes the majority verdict (default 1).",
        "1",
        "INTERLLM_GRADER_VOTES",
        "N",
        number=COUNT,
    ),
    Option(
        "interllm_baseline",
        "--interllm-baseline",
        "an earlier run's JSONL log (or a merged one): show what regressed, was fixed, is new or removed.",
        None,
        "INTERLLM_BASELINE",
        "PATH",
    ),
    Option(
        "interllm_provider",
        "--interllm-provider",
        "model provider: offline (built-in scripted model), openai (real API or --interllm-base-url), record, "
        "replay (cassettes). Default: openai when OPENAI_API_KEY is set, else offline.",
        "offline",
        "INTERLLM_PROVIDER",
        "NAME",
        PROVIDERS,
    ),
    Option(
        "interllm_base_url",
        "--interllm-base-url",
        "upstream root of the openai/record providers (the proxy posts to <root>/responses): an OpenAI-compatible "
        "server (vLLM, Ollama, ...) or another endpoint for your credential.",
        None,
        "OPENAI_BASE_URL",
        "URL",
    ),
    Option(
        "interllm_auth",
        "--interllm-auth",
        "whose credential real runs use: auto (OPENAI_API_KEY, else your codex login), api-key or codex-login. "
        "Codex never holds it: the audit proxy adds it upstream.",
        "auto",
        "INTERLLM_AUTH",
        "KIND",
        AUTH_MODES,
    ),
    Option(
        "interllm_auth_file",
        "--interllm-auth-file",
        "codex login to use (default $CODEX_HOME/auth.json, then ~/.codex/auth.json); only ever read.",
        None,
        "INTERLLM_AUTH_FILE",
        "PATH",
    ),
    Option(
        "interllm_preflight",
        "--interllm-preflight",
        "on (default): one minimal request with the expected model before any scenario of a real run, to check "
        "the credential and the model; off skips it.",
        "on",
        "INTERLLM_PREFLIGHT",
        "on|off",
        ("on", "off"),
    ),
    Option(
        "interllm_record_mode",
        "--interllm-record-mode",
        "record provider: once (default), new_episodes, none or all, as in vcrpy.",
        "once",
        "INTERLLM_RECORD_MODE",
        "MODE",
        RECORD_MODES,
    ),
    Option(
        "interllm_cassette_dir",
        "--interllm-cassette-dir",
        "where record/replay keep cassettes (default cassettes).",
        "cassettes",
        "INTERLLM_CASSETTE_DIR",
        "DIR",
    ),
    Option(
        "interllm_max_concurrency",
        "--interllm-max-concurrency",
        "most upstream requests in flight at once across all workers (openai/record providers).",
        None,
        "INTERLLM_MAX_CONCURRENCY",
        "N",
        number=COUNT,
    ),
    Option(
        "interllm_prices",
        "--interllm-prices",
        "YAML price table (USD per 1M input/output tokens per model) over the packaged one.",
        None,
        "INTERLLM_PRICES",
        "PATH",
    ),
    Option(
        "interllm_budget",
        "--interllm-budget",
        "stop starting scenarios once the run's estimated spend would exceed this many USD.",
        None,
        "INTERLLM_BUDGET",
        "USD",
        number=USD,
    ),
    Option(
        "interllm_executor",
        "--interllm-executor",
        "how scenarios reach codex: codex (one MCP call each; codex ≤ 0.153.4), agents (an OpenAI Agents SDK "
        "orchestrator over MCP), app-server (today's codex through OpenAI's SDK). Default: codex when a codex with "
        "mcp-server is installed, else app-server.",
        "codex",
        "INTERLLM_EXECUTOR",
        "NAME",
        EXECUTORS,
    ),
    Option(
        "interllm_agent",
        "--interllm-agent",
        "your own orchestrator for the agents executor: module:attr, a factory (codex, model) -> agents.Agent "
        "(imported with the rootdir on sys.path).",
        None,
        "INTERLLM_AGENT",
        "MODULE:ATTR",
    ),
    Option(
        "interllm_orchestrator_model",
        "--interllm-orchestrator-model",
        "model of the Agents SDK orchestrator (agents executor; default: the expected model).",
        None,
        "INTERLLM_ORCHESTRATOR_MODEL",
        "MODEL",
    ),
    Option(
        "interllm_timeout",
        "--interllm-timeout",
        f"seconds per scenario (default {DEFAULT_TIMEOUT:g}).",
        str(DEFAULT_TIMEOUT),
        "INTERLLM_TIMEOUT",
        "SECONDS",
        number=SECONDS,
    ),
    Option(
        "interllm_max_scenarios",
        "--interllm-max-scenarios",
        "collect only the first N scenarios of each list.",
        None,
        "INTERLLM_MAX_SCENARIOS",
        "N",
        number=COUNT,
    ),
    Option(
        "interllm_codex",
        "--interllm-codex",
        "codex binary (default: the bundled openai-codex-cli-bin, then PATH).",
        None,
        "INTERLLM_CODEX",
        "PATH",
    ),
    Option(
        "interllm_codex_home",
        "--interllm-codex-home",
        "use this CODEX_HOME instead of an isolated temporary one.",
        None,
        "INTERLLM_CODEX_HOME",
        "PATH",
    ),
    Option(
        "interllm_sandbox",
        "--interllm-sandbox",
        "codex sandbox mode (default workspace-write).",
        "workspace-write",
        "INTERLLM_SANDBOX",
        "MODE",
        SANDBOXES,
    ),
    Option(
        "interllm_template",
        "--interllm-template",
        "prompt template (default: prompt_template.txt beside the list, else the packaged one).",
        None,
        "INTERLLM_TEMPLATE",
        "PATH",
    ),
    Option(
        "interllm_retries",
        "--interllm-retries",
        "rerun a failed scenario up to N times; a pass on a rerun is reported as flaky (default 0).",
        "0",
        "INTERLLM_RETRIES",
        "N",
        number=TIMES,
    ),
    Option(
        "interllm_provider_retries",
        "--interllm-provider-retries",
        "retries of a codex call after a transient provider error (429, 5xx, stall), with backoff (default 2).",
        "2",
        "INTERLLM_PROVIDER_RETRIES",
        "N",
        number=TIMES,
    ),
    Option(
        "interllm_fault",
        "--interllm-fault",
        "inject this fault into every scenario (offline provider only; see the README's fault table).",
        None,
        "INTERLLM_FAULT",
        "NAME",
        FAULTS,
    ),
    Option(
        "interllm_log_dir",
        "--interllm-log-dir",
        "where run logs go: run-YYYYMMDD-HHMMSS.log and .jsonl (default logs; 'none' disables them).",
        "logs",
        "INTERLLM_LOG_DIR",
        "DIR",
    ),
    Option(
        "interllm_summary",
        "--interllm-summary",
        "append a markdown summary table to this file (e.g. $GITHUB_STEP_SUMMARY).",
        None,
        "INTERLLM_SUMMARY",
        "PATH",
    ),
    Option(
        "interllm_output_dir",
        "--interllm-output-dir",
        "where scenarios write their files (default outputs).",
        "outputs",
        "INTERLLM_OUTPUT_DIR",
        "DIR",
    ),
)


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one run."""

    rootdir: Path
    lists: tuple[Path, ...]
    model: str
    model_explicit: bool
    provider: str
    executor: str
    timeout: float
    timeout_explicit: bool
    max_scenarios: int | None
    codex: str | None
    codex_home: Path | None
    sandbox: str
    template: Path | None
    output_dir: Path
    retries: int = 0
    provider_retries: int = 2
    fault: str | None = None
    log_dir: Path | None = None
    summary: Path | None = None
    orchestrator_model: str | None = None
    upload_traces: bool = False
    base_url: str | None = None
    record_mode: str = "once"
    cassette_dir: Path | None = None
    max_concurrency: int | None = None
    prices: Path | None = None
    budget: float | None = None
    provider_source: str = "default"
    executor_reason: str = ""  # why this executor, when it was not chosen explicitly
    models: tuple[str, ...] = ()  # more than one: a model matrix
    repeat: int = 1
    min_pass: float = 1.0
    baseline: Path | None = None
    grader_model: str | None = None
    grader_votes: int = 1
    concurrency: int = 1
    agent: str | None = None  # --interllm-agent module:attr
    auth: str = "auto"
    auth_file: Path | None = None
    preflight: bool = True
    output_dir_given: tuple[str, str] | None = field(default=None, compare=False)  # as typed, and where
    inifile: Path | None = None  # pytest's configuration file: an input no output may replace

    @property
    def matrix(self) -> tuple[str, ...]:
        """The models every scenario runs on (one unless a model matrix was asked for)."""
        return self.models or (self.model,)

    def output_path(self, label: str, group: str | None = None) -> Path:
        """Absolute path of a scenario's output file (`group`: a subdirectory, one per list when there are several)."""
        return (self.output_dir / group if group else self.output_dir) / f"{label}.md"

    def relative(self, path: Path) -> str:
        """`path` relative to the rootdir when inside it, as codex and the prompt see it."""
        try:
            return path.relative_to(self.rootdir).as_posix()
        except ValueError:
            return str(path)


def add_options(parser: pytest.Parser) -> None:
    """Register the `interllm` option group and the ini twins."""
    group = parser.getgroup("interllm", "pytest-interllm: markdown scenarios through the real codex agent")
    group.addoption(
        "--interllm-strict-provider",
        action="store_true",
        default=None,
        dest="interllm_strict_provider",
        help="never fall back to the offline provider when OPENAI_API_KEY is missing. Ini interllm_strict_provider.",
    )
    parser.addini("interllm_strict_provider", "never fall back to the offline provider.", type="bool", default=False)
    group.addoption(
        "--interllm-upload-traces",
        action="store_true",
        default=None,
        dest="interllm_upload_traces",
        help="agents executor: also upload SDK traces to the OpenAI dashboard (needs OPENAI_API_KEY). "
        "Ini interllm_upload_traces.",
    )
    parser.addini("interllm_upload_traces", "agents executor: also upload SDK traces.", type="bool", default=False)
    group.addoption(
        "--interllm",
        action="append",
        dest="interllm",
        default=[],
        metavar="LIST.md",
        help="run each scenario of this markdown list as a test (repeatable).",
    )
    parser.addini("interllm_lists", "markdown scenario lists to collect, like --interllm.", type="paths", default=[])
    for opt in OPTIONS:
        kwargs: dict[str, Any] = {"dest": opt.dest, "default": None, "metavar": opt.metavar}
        if opt.repeatable:
            kwargs["action"] = "append"
        env = f" Env {opt.env}." if opt.env else ""
        group.addoption(opt.flag, help=f"{opt.help}{env} Ini {opt.ini}.", **kwargs)
        parser.addini(opt.ini, opt.help, default=None)  # None: not set, so an ini equal to the default still wins


def _pick(config: pytest.Config, opt: Option, environ: Mapping[str, str]) -> tuple[str | None, str]:
    """Value and where it came from: cli, env, ini or default."""
    cli = config.getoption(opt.dest)
    if cli is not None:
        return (",".join(cli) if isinstance(cli, list) else str(cli)), opt.flag
    if opt.env and environ.get(opt.env):
        return environ[opt.env], opt.env
    ini = config.getini(opt.ini)
    if ini is not None and str(ini) != "":
        return str(ini), f"ini {opt.ini}"
    return opt.default, "default"


def _number(opt: Option, value: str | None, source: str) -> Any:
    """The option's value as its kind of number (None when unset), or a usage error naming where it came from."""
    assert opt.number is not None
    if value is None:
        return None
    try:
        return opt.number.parse(value)
    except ValueError as exc:
        raise pytest.UsageError(f"{source}: {value!r} {exc}") from None


def resolve(config: pytest.Config, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve every option once; invalid values raise `pytest.UsageError` naming the flag and value."""
    env = os.environ if environ is None else environ
    root = Path(config.rootpath)
    picked = {opt.dest: _pick(config, opt, env) for opt in OPTIONS}
    for opt in OPTIONS:
        value, source = picked[opt.dest]
        if opt.choices and value is not None and value not in opt.choices:
            raise pytest.UsageError(f"{source}: unknown value {value!r} (choose from {', '.join(opt.choices)})")
        if opt.is_path and value == "":  # only a flag can be empty: an empty variable or ini value counts as unset
            raise pytest.UsageError(f"{source}: '' is not a path (leave the flag out for the default)")
    numbers = {opt.dest: _number(opt, *picked[opt.dest]) for opt in OPTIONS if opt.number is not None}
    provider, provider_from = picked["interllm_provider"]
    if provider_from == "default":
        strict_cli = config.getoption("interllm_strict_provider")
        strict = bool(strict_cli) if strict_cli is not None else bool(config.getini("interllm_strict_provider"))
        if env.get("OPENAI_API_KEY"):
            provider = "openai"
        elif strict:
            raise pytest.UsageError(
                "--interllm-strict-provider: no OPENAI_API_KEY, and the offline fallback is "
                "forbidden (set the key, or choose --interllm-provider offline)"
            )
    executor, source = picked["interllm_executor"]
    executor_reason = ""
    agent, agent_source = picked["interllm_agent"]
    if agent and source != "default" and executor != "agents":
        raise pytest.UsageError(f"{agent_source}: a user's orchestrator runs with the agents executor, not {executor}")
    if agent and source == "default":
        executor, executor_reason = "agents", f"{agent_source} {agent}: your orchestrator"
    elif source == "default":
        where = mcp_default_available(picked["interllm_codex"][0])
        executor, executor_reason = (
            ("codex", f"default: a codex with mcp-server is installed ({where})")
            if where
            else (
                "app-server",
                "default: no codex with mcp-server is installed; `python -m pytest_interllm install-codex` adds one",
            )
        )
    fault, fault_source = picked["interllm_fault"]
    refused = unavailable(fault, str(provider), str(executor)) if fault else None
    if refused is not None:
        raise pytest.UsageError(f"{fault_source}: {refused}")
    model, model_source = picked["interllm_model"]
    models = tuple(dict.fromkeys(m.strip() for m in str(model or "").split(",")))
    if not models or any(not m for m in models):
        raise pytest.UsageError(f"{model_source}: the expected model is empty ({model!r})")
    timeout_source = picked["interllm_timeout"][1]

    def path_of(dest: str) -> Path | None:
        value = picked[dest][0]
        return None if not value else (root / os.path.expanduser(value)).resolve()

    invoked = Path(config.invocation_params.dir)
    lists = [(invoked / p).resolve() for p in config.getoption("interllm") or []]
    if not lists:
        lists = [Path(p).resolve() for p in config.getini("interllm_lists")]
    output_dir = path_of("interllm_output_dir")
    assert output_dir is not None
    return Settings(
        rootdir=root,
        lists=tuple(dict.fromkeys(lists)),
        model=models[0],
        models=models,
        repeat=numbers["interllm_repeat"],
        min_pass=numbers["interllm_min_pass"],
        baseline=path_of("interllm_baseline"),
        agent=agent,
        concurrency=numbers["interllm_concurrency"],
        grader_model=picked["interllm_grader_model"][0],
        grader_votes=numbers["interllm_grader_votes"],
        model_explicit=model_source != "default",
        provider=str(provider),
        executor=str(executor),
        timeout=float(numbers["interllm_timeout"]),
        timeout_explicit=timeout_source != "default",
        max_scenarios=numbers["interllm_max_scenarios"],
        codex=picked["interllm_codex"][0],
        codex_home=path_of("interllm_codex_home"),
        sandbox=str(picked["interllm_sandbox"][0]),
        template=path_of("interllm_template"),
        output_dir=output_dir,
        retries=numbers["interllm_retries"],
        provider_retries=numbers["interllm_provider_retries"],
        fault=fault,
        log_dir=None if str(picked["interllm_log_dir"][0]).lower() == "none" else path_of("interllm_log_dir"),
        summary=path_of("interllm_summary"),
        orchestrator_model=picked["interllm_orchestrator_model"][0],
        upload_traces=_upload_traces(config, env),
        base_url=picked["interllm_base_url"][0],
        record_mode=str(picked["interllm_record_mode"][0]),
        cassette_dir=path_of("interllm_cassette_dir"),
        max_concurrency=numbers["interllm_max_concurrency"],
        prices=path_of("interllm_prices"),
        budget=numbers["interllm_budget"],
        provider_source=provider_from,
        executor_reason=executor_reason,
        auth=str(picked["interllm_auth"][0]),
        auth_file=path_of("interllm_auth_file"),
        preflight=picked["interllm_preflight"][0] == "on",
        output_dir_given=(str(picked["interllm_output_dir"][0]), picked["interllm_output_dir"][1]),
        inifile=Path(config.inipath).resolve() if config.inipath else None,
    )


def _upload_traces(config: pytest.Config, environ: Mapping[str, str]) -> bool:
    cli = config.getoption("interllm_upload_traces")
    wanted = bool(cli) if cli is not None else bool(config.getini("interllm_upload_traces"))
    if wanted and not environ.get("OPENAI_API_KEY"):
        raise pytest.UsageError(
            "--interllm-upload-traces: traces go to the OpenAI dashboard only with OPENAI_API_KEY "
            "set (in the environment or .env)"
        )
    return wanted
