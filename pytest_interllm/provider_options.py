"""The provider's part of the option table: which model provider, whose credential, cassettes, prices, budget."""

from __future__ import annotations

from pytest_interllm.bounds import COUNT, SECONDS, USD
from pytest_interllm.option import Option
from pytest_interllm.providers.cassettes import RECORD_MODES
from pytest_interllm.providers.credentials import AUTH_MODES

PROVIDERS = ("offline", "openai", "record", "replay")

PROVIDER_OPTIONS = (
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
        "interllm_login_margin",
        "--interllm-login-margin",
        "seconds before a ChatGPT login's expiry at which your own codex refreshes it, before the run and during it "
        "(default 300).",
        "300",
        "INTERLLM_LOGIN_MARGIN",
        "SECONDS",
        number=SECONDS,
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
)
