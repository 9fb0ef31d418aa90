"""The openai-codex SDK is reached into in one place (`codex/sdk.py`): every private path it uses exists in the
installed SDK, and a missing one fails loudly, naming the library, its version and what it was for."""

from __future__ import annotations

from importlib import metadata
from typing import Any

import pytest

from pytest_interllm.codex.sdk import PRIVATE, SdkChanged, _private


def sdk() -> Any:
    from openai_codex import AsyncCodex, CodexConfig

    return AsyncCodex(CodexConfig(launch_args_override=("true",)))  # never started


@pytest.mark.parametrize("path", list(PRIVATE))
def test_every_private_path_exists_in_the_installed_sdk(path: str) -> None:
    _private(sdk(), path)


def test_a_path_the_sdk_no_longer_has_names_library_version_and_purpose() -> None:
    with pytest.raises(SdkChanged) as raised:
        _private(sdk(), "_client._sync._gone")
    assert str(raised.value).startswith(f"openai-codex {metadata.version('openai-codex')} has no AsyncCodex.")
