"""The provider layer's part of the run's settings: all it reads of them (`settings.Settings` is one)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class ProviderSettings(Protocol):
    """Which provider, where, with what credential, recorded how: the provider layer sees no other setting."""

    @property
    def provider(self) -> str: ...  # offline, openai, record, replay

    @property
    def base_url(self) -> str | None: ...

    @property
    def record_mode(self) -> str: ...

    @property
    def cassette_dir(self) -> Path | None: ...

    @property
    def max_concurrency(self) -> int | None: ...

    @property
    def auth(self) -> str: ...

    @property
    def auth_file(self) -> Path | None: ...
