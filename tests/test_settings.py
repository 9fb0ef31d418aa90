"""Settings: precedence CLI > environment > ini > front matter > default, .env, invalid values."""

from __future__ import annotations

import pytest

from tests.conftest import write

SHOW = (
    "def pytest_collection_modifyitems(items):\n"
    "    for item in items:\n"
    "        print('RESOLVED', item.name.split('-')[0], item.model, item.timeout)\n"
)


@pytest.fixture
def shown(project: pytest.Pytester) -> pytest.Pytester:
    project.makeconftest(SHOW)
    write(project.path / "input" / "list.md", "---\nmodel: from-front-matter\ntimeout: 42\n---\n- One\n")
    return project


def resolved(pytester: pytest.Pytester, *args: str) -> str:
    result = pytester.runpytest("--interllm", "input/list.md", "--collect-only", "-q", "-s", *args)
    lines = [line for line in result.outlines if line.startswith("RESOLVED")]
    assert lines, result.stdout.str()
    return lines[0]


def test_default_model_without_front_matter(project: pytest.Pytester) -> None:
    project.makeconftest(SHOW)
    assert resolved(project) == "RESOLVED scenario_001 gpt-5-codex 300.0"


def test_front_matter_over_default(shown: pytest.Pytester) -> None:
    assert resolved(shown) == "RESOLVED scenario_001 from-front-matter 42.0"


def test_ini_over_front_matter(shown: pytest.Pytester) -> None:
    shown.makeini("[pytest]\naddopts = -p no:cacheprovider\ninterllm_model = from-ini\ninterllm_timeout = 7\n")
    assert resolved(shown) == "RESOLVED scenario_001 from-ini 7.0"


def test_an_ini_value_equal_to_the_default_still_beats_front_matter(shown: pytest.Pytester) -> None:
    shown.makeini("[pytest]\naddopts = -p no:cacheprovider\ninterllm_model = gpt-5-codex\ninterllm_timeout = 300\n")
    assert resolved(shown) == "RESOLVED scenario_001 gpt-5-codex 300.0"


def test_env_over_ini(shown: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    shown.makeini("[pytest]\naddopts = -p no:cacheprovider\ninterllm_model = from-ini\n")
    monkeypatch.setenv("INTERLLM_MODEL", "from-env")
    assert resolved(shown) == "RESOLVED scenario_001 from-env 42.0"


def test_cli_over_env(shown: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLLM_MODEL", "from-env")
    assert resolved(shown, "--interllm-model", "from-cli", "--interllm-timeout", "9") == (
        "RESOLVED scenario_001 from-cli 9.0"
    )


def test_yaml_expectation_is_most_specific(shown: pytest.Pytester) -> None:
    write(shown.path / "scenarios" / "list.yaml", "1:\n  model: per-scenario\n  timeout: 3\n")
    assert resolved(shown, "--interllm-model", "from-cli") == "RESOLVED scenario_001 per-scenario 3.0"


def test_dotenv_is_loaded_without_overriding_the_environment(
    shown: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(shown.path / ".env", "INTERLLM_MODEL=from-dotenv\nINTERLLM_TIMEOUT=11\n")
    assert resolved(shown) == "RESOLVED scenario_001 from-dotenv 11.0"
    monkeypatch.setenv("INTERLLM_MODEL", "from-real-env")
    assert resolved(shown) == "RESOLVED scenario_001 from-real-env 11.0"


def test_header_names_provider_model_and_codex(project: pytest.Pytester) -> None:
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", "--interllm-model", "gpt-5.2-codex")
    result.stdout.fnmatch_lines(
        [
            "interllm: provider offline (built-in scripted model on 127.0.0.1, not a real LLM, no OPENAI_API_KEY), "
            "expected model gpt-5.2-codex, executor codex (default: *)",
            "interllm: codex *",
        ]
    )


@pytest.mark.parametrize(
    ("args", "key", "provider"),
    [
        (
            ["--interllm-executor", "agents"],
            None,
            "offline (built-in scripted model on 127.0.0.1, not a real LLM, no "
            "OPENAI_API_KEY), expected model gpt-5-codex (your codex config */.codex/config.toml), executor agents",
        ),
        (
            [],
            "sk-header-test-0123456789abcdef",
            "openai (audit proxy in front of https://api.openai.com/v1 with API key sk-…cdef from the environment) "
            "(OPENAI_API_KEY is set), expected*",
        ),
        (
            ["--interllm-provider", "openai"],
            "sk-header-test-0123456789abcdef",
            "openai (audit proxy in front of https://api.openai.com/v1 with API key sk-…cdef from the environment), "
            "expected*",
        ),
        (
            ["--interllm-provider", "offline"],
            "sk-header-test-0123456789abcdef",
            "offline (built-in scripted model on 127.0.0.1, not a real LLM), expected*",
        ),
    ],
)
def test_header_says_why_this_provider(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, args: list[str], key: str | None, provider: str
) -> None:
    if key:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", *args)
    result.stdout.fnmatch_lines([f"interllm: provider {provider}"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interllm-timeout", "soon"], "--interllm-timeout: 'soon' is not a number of seconds"),
        (["--interllm-timeout", "-1"], "--interllm-timeout: '-1' must be greater than 0"),
        (["--interllm-max-scenarios", "two"], "--interllm-max-scenarios: 'two' is not a whole number"),
        (
            ["--interllm-provider", "bogus"],
            "--interllm-provider: unknown value 'bogus' (choose from offline, openai, record, replay)",
        ),
        (
            ["--interllm-executor", "langchain"],
            "--interllm-executor: unknown value 'langchain' (choose from codex, agents, app-server)",
        ),
        (["--interllm-sandbox", "yolo"], "--interllm-sandbox: unknown value 'yolo'*"),
        (["--interllm-model", " "], "--interllm-model: the expected model is empty (' ')"),
    ],
)
def test_invalid_values_are_usage_errors(project: pytest.Pytester, args: list[str], message: str) -> None:
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_invalid_env_value_names_the_variable(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLLM_PROVIDER", "cloud")
    result = project.runpytest("--interllm", "input/list.md", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: INTERLLM_PROVIDER: unknown value 'cloud'*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interllm-timeout", "nan"], "--interllm-timeout: 'nan' must be a finite number"),
        (["--interllm-timeout", "inf"], "--interllm-timeout: 'inf' must be a finite number"),
        (["--interllm-timeout", "0"], "--interllm-timeout: '0' must be greater than 0"),
        # Longer waits overflow the thread and event-loop timers that enforce the timeout.
        (["--interllm-timeout", "1e12"], "--interllm-timeout: '1e12' must be at most 31536000 (a year)"),
        (["--interllm-min-pass", "nan"], "--interllm-min-pass: 'nan' must be a finite number"),
        (["--interllm-min-pass", "0"], "--interllm-min-pass: '0' must be greater than 0"),
        (["--interllm-budget", "inf"], "--interllm-budget: 'inf' must be a finite number"),
        (["--interllm-budget", "nan"], "--interllm-budget: 'nan' must be a finite number"),
        (["--interllm-budget", "-0.5"], "--interllm-budget: '-0.5' must be greater than 0"),
        (["--interllm-concurrency", "0"], "--interllm-concurrency: '0' must be greater than 0"),
        (["--interllm-concurrency", "inf"], "--interllm-concurrency: 'inf' is not a whole number"),
        (["--interllm-repeat", "-2"], "--interllm-repeat: '-2' must be greater than 0"),
        (["--interllm-grader-votes", "0"], "--interllm-grader-votes: '0' must be greater than 0"),
        (["--interllm-max-scenarios", "-1"], "--interllm-max-scenarios: '-1' must be greater than 0"),
        (["--interllm-max-concurrency", "0"], "--interllm-max-concurrency: '0' must be greater than 0"),
        (["--interllm-retries", "-1"], "--interllm-retries: '-1' must be at least 0"),
        (["--interllm-provider-retries", "nan"], "--interllm-provider-retries: 'nan' is not a whole number"),
        # The gate's numbers and choices (issue 25)
        (["--interllm-alpha", "0.7"], "--interllm-alpha: '0.7' must be at most 0.5 (the usual is 0.05)"),
        (["--interllm-alpha", "0"], "--interllm-alpha: '0' must be greater than 0"),
        (["--interllm-fail-under", "1.5"], "--interllm-fail-under: '1.5' must be at most 1"),
        (["--interllm-fail-under", "most"], "--interllm-fail-under: 'most' is not a pass rate between 0 and 1"),
        (["--interllm-gate", "median"], "--interllm-gate: unknown value 'median' (choose from point, lower-bound)"),
        (["--interllm-fail-on", "fixed"], "--interllm-fail-on: unknown value 'fixed' (choose from regressed)"),
        (["--interllm-fail-on", "regressed"], "--interllm-fail-on: regressed needs a baseline to compare with*"),
        (["--interllm-retry-infra", "-1"], "--interllm-retry-infra: '-1' must be at least 0"),
        (["--interllm-alpha", "nan"], "--interllm-alpha: 'nan' must be a finite number"),
        (["--interllm-fail-under", "inf"], "--interllm-fail-under: 'inf' must be a finite number"),
        (["--interllm-fail-under", "nan"], "--interllm-fail-under: 'nan' must be a finite number"),
        (["--interllm-fail-under", "-0.1"], "--interllm-fail-under: '-0.1' must be at least 0"),
        (["--interllm-retry-infra", "inf"], "--interllm-retry-infra: 'inf' is not a whole number"),
    ],
)
def test_numbers_out_of_bounds_are_usage_errors(project: pytest.Pytester, args: list[str], message: str) -> None:
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


@pytest.mark.parametrize(
    ("env", "ini", "message"),
    [
        ({"INTERLLM_TIMEOUT": "inf"}, "", "INTERLLM_TIMEOUT: 'inf' must be a finite number"),
        ({}, "interllm_min_pass = nan", "ini interllm_min_pass: 'nan' must be a finite number"),
        ({}, "interllm_budget = -1", "ini interllm_budget: '-1' must be greater than 0"),
    ],
)
def test_numbers_from_env_and_ini_name_their_source(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], ini: str, message: str
) -> None:
    project.makeini(f"[pytest]\n{ini}\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = project.runpytest("--interllm", "input/list.md", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_numbers_at_their_bounds_are_accepted(project: pytest.Pytester) -> None:
    project.makeconftest(
        "def pytest_configure(config):\n"
        "    from pytest_interllm.collect import SETTINGS_KEY\n"
        "    s = config.stash[SETTINGS_KEY]\n"
        "    print('NUMBERS', s.retries, s.provider_retries, s.min_pass, s.timeout, s.budget, s.concurrency)\n"
    )
    result = project.runpytest(
        "--interllm", "input/list.md", "--collect-only", "-s",
        *("--interllm-retries", "0", "--interllm-provider-retries", "0", "--interllm-min-pass", "1"),
        *("--interllm-timeout", "0.5", "--interllm-budget", "0.01", "--interllm-concurrency", "1"),
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    result.stdout.fnmatch_lines(["NUMBERS 0 0 1.0 0.5 0.01 1"])


@pytest.mark.parametrize(
    "flag",
    [
        "--interllm-output-dir",
        "--interllm-template",
        "--interllm-log-dir",
        "--interllm-summary",
        "--interllm-baseline",
        "--interllm-cassette-dir",
        "--interllm-prices",
        "--interllm-codex-home",
        "--interllm-auth-file",
        "--interllm-codex",
    ],
)
def test_an_empty_path_is_a_usage_error_naming_the_flag(project: pytest.Pytester, flag: str) -> None:
    result = project.runpytest("--interllm", "input/list.md", "--collect-only", flag, "")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {flag}: '' is not a path (leave the flag out for the default)"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
