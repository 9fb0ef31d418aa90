"""One declared setting (`Option`): its flag, ini twin, environment variable, help, default and kind. The tables
are `options.OPTIONS` (run policy, codex, outputs) and `provider_options.PROVIDER_OPTIONS` (the provider's part)."""

from __future__ import annotations

from dataclasses import dataclass

from pytest_interllm.bounds import Number


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
