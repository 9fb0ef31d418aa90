"""Options → one frozen `Settings` (precedence: CLI > environment > ini > list front matter > default)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_interllm.codex.catalog import user_model
from pytest_interllm.codex.locate import mcp_default_available
from pytest_interllm.faults import known, names, unavailable
from pytest_interllm.option import Option
from pytest_interllm.options import OPTIONS


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
    model_source: str = "default"  # the flag, variable or ini key; "your codex config PATH"; codex's catalog
    executor_reason: str = ""  # why this executor, when it was not chosen explicitly
    models: tuple[str, ...] = ()  # more than one: a model matrix
    repeat: int = 1
    min_pass: float = 1.0
    baseline: Path | None = None
    alpha: float = 0.05  # significance level of the baseline comparison
    fail_under: float | None = None  # the gate's pass rate threshold
    gate: str = "point"  # what the threshold is compared with: the pass rate, or its interval's lower bound
    fail_on: str | None = None  # "regressed": a significant regression against the baseline fails the session
    retry_infra: int = 0  # re-runs of an attempt that failed for infrastructure
    grader_model: str | None = None
    grader_votes: int = 1
    concurrency: int = 1
    agent: str | None = None  # --interllm-agent module:attr
    auth: str = "auto"
    auth_file: Path | None = None
    preflight: bool = True
    login_margin: float = 300.0  # seconds before a login's expiry at which codex refreshes it
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
    if fault and not known(fault):
        raise pytest.UsageError(f"{fault_source}: unknown value {fault!r} (choose from {names()})")
    refused = unavailable(fault, str(provider), str(executor)) if fault else None
    if refused is not None:
        raise pytest.UsageError(f"{fault_source}: {refused}")
    model, model_source = picked["interllm_model"]
    if model_source == "default":  # the user's codex config's model; else the codex catalog's, once codex is found
        mine = user_model(env)
        model, model_source = (mine[0], f"your codex config {mine[1]}") if mine else ("", "default")
    models = tuple(dict.fromkeys(m.strip() for m in str(model or "").split(","))) if model else ()
    if model_source != "default" and (not models or any(not m for m in models)):
        raise pytest.UsageError(f"{model_source}: the expected model is empty ({model!r})")
    timeout_source = picked["interllm_timeout"][1]
    fail_on, fail_on_source = picked["interllm_fail_on"]
    if fail_on and picked["interllm_baseline"][0] is None:
        raise pytest.UsageError(f"{fail_on_source}: {fail_on} needs a baseline to compare with (--interllm-baseline)")

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
        model=models[0] if models else "",
        models=models,
        model_source=model_source,
        repeat=numbers["interllm_repeat"],
        min_pass=numbers["interllm_min_pass"],
        baseline=path_of("interllm_baseline"),
        alpha=numbers["interllm_alpha"],
        fail_under=numbers["interllm_fail_under"],
        gate=str(picked["interllm_gate"][0]),
        fail_on=fail_on,
        retry_infra=numbers["interllm_retry_infra"],
        agent=agent,
        concurrency=numbers["interllm_concurrency"],
        grader_model=picked["interllm_grader_model"][0],
        grader_votes=numbers["interllm_grader_votes"],
        model_explicit=model_source != "default" and not model_source.startswith("your codex config"),
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
        login_margin=float(numbers["interllm_login_margin"]),
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
