"""The options of the `interllm` group: one declared `Option` per setting (flag, ini twin, environment variable,
help, default, kind), registered with pytest. `settings.resolve` turns them into the frozen `Settings`."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_interllm.bounds import ALPHA, COUNT, RATE, SECONDS, SHARE, TIMES
from pytest_interllm.executors import NAMES
from pytest_interllm.option import Option
from pytest_interllm.provider_options import PROVIDER_OPTIONS

DEFAULT_TIMEOUT = 300.0
EXECUTORS = NAMES  # the executor registry (transports/__init__.py)
SANDBOXES = ("read-only", "workspace-write", "danger-full-access")
GATES = ("point", "lower-bound")
FAIL_ON = ("regressed",)


OPTIONS = (
    Option(
        "interllm_model",
        "--interllm-model",
        "model the agent must run (default: the one your codex would pick: your codex config's, else the installed "
        "codex's catalog default); several (repeat the flag, or a comma-separated list) make a model matrix: one "
        "item per scenario and model.",
        None,
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
        "interllm_alpha",
        "--interllm-alpha",
        "significance level of the comparison with the baseline: a scenario regressed or was fixed only when "
        "Fisher's exact test on its pass/fail counts gives p < ALPHA, else it is within noise (default 0.05).",
        "0.05",
        "INTERLLM_ALPHA",
        "ALPHA",
        number=ALPHA,
    ),
    Option(
        "interllm_fail_under",
        "--interllm-fail-under",
        "the CI gate: end the session with exit code 6 when the run's pass rate (agent-attributable attempts) is "
        "below RATE (0 to 1); agent failures no longer fail the session one by one.",
        None,
        "INTERLLM_FAIL_UNDER",
        "RATE",
        number=RATE,
    ),
    Option(
        "interllm_gate",
        "--interllm-gate",
        "what --interllm-fail-under compares: point (the pass rate, default) or lower-bound (the lower end of its "
        "95% Wilson interval).",
        "point",
        "INTERLLM_GATE",
        "point|lower-bound",
        GATES,
    ),
    Option(
        "interllm_fail_on",
        "--interllm-fail-on",
        "regressed: end the session with exit code 6 when a scenario regressed significantly against "
        "--interllm-baseline; agent failures no longer fail the session one by one.",
        None,
        "INTERLLM_FAIL_ON",
        "regressed",
        FAIL_ON,
    ),
    Option(
        "interllm_retry_infra",
        "--interllm-retry-infra",
        "run an attempt that failed for infrastructure (provider error, timeout, codex crash, ...) again up to N "
        "times, in its place: it is not counted (default 0).",
        "0",
        "INTERLLM_RETRY_INFRA",
        "N",
        number=TIMES,
    ),
    *PROVIDER_OPTIONS,
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
        # argparse %-formats a flag's help (not an ini's): a literal "95%" must reach it as "95%%".
        group.addoption(opt.flag, help=f"{opt.help}{env} Ini {opt.ini}.".replace("%", "%%"), **kwargs)
        parser.addini(opt.ini, opt.help, default=None)  # None: not set, so an ini equal to the default still wins
