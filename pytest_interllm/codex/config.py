"""What codex is told about the run's model provider: its provider table, and the `config.toml` of a CODEX_HOME."""

from __future__ import annotations

from typing import Any

PROVIDER_ID = "interllm"
KEY_ENV = "INTERLLM_PROVIDER_KEY"  # codex sends its value as the bearer token: the run's token, never a user's key


def provider_config(base_url: str) -> dict[str, Any]:
    """The model provider table codex gets, in its own config and in every call's `config`."""
    return {
        "name": PROVIDER_ID,
        "base_url": base_url,
        "env_key": KEY_ENV,
        "wire_api": "responses",
        "request_max_retries": 0,
        "stream_max_retries": 0,
    }


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_toml(base_url: str, model: str | None = None) -> str:
    """`config.toml` for an isolated CODEX_HOME: our provider, no analytics (and a default `model`, if given)."""
    table = "\n".join(f"{k} = {_toml(v)}" for k, v in provider_config(base_url).items())
    default = f"model = {_toml(model)}\n" if model is not None else ""
    return (
        f'{default}model_provider = "{PROVIDER_ID}"\n\n[model_providers.{PROVIDER_ID}]\n{table}\n\n'
        "[analytics]\nenabled = false\n"
    )


def codex_call(prompt: str, model: str | None, base_url: str, cwd: str, sandbox: str) -> dict[str, Any]:
    """The arguments of one `codex` call (MCP tool call, app-server thread): explicit model, cwd, sandbox,
    approval policy `never`, and the scenario's provider in `config`."""
    arguments: dict[str, Any] = {
        "prompt": prompt,
        "cwd": cwd,
        "sandbox": sandbox,
        "approval-policy": "never",
        "config": {"model_provider": PROVIDER_ID, "model_providers": {PROVIDER_ID: provider_config(base_url)}},
    }
    if model is not None:
        arguments["model"] = model
    return arguments
