"""Secrets never leave the run: known secret values and key-shaped strings are masked everywhere we write."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|AUTH|CREDENTIAL", re.IGNORECASE)
_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}"),
    re.compile(r"(?i)(authorization:\s*bearer\s+)[^\s\"']+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-\.=]{16,}"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"),  # a JWT (a login's tokens)
)
MASK = "[REDACTED]"


def _longest_first(values: Iterable[str]) -> list[str]:
    """Secret values worth masking (8 characters or more), longest first so none is masked only in part."""
    return sorted({v for v in values if len(v) >= 8}, key=len, reverse=True)


class Redactor:
    """Masks the values of secret-named environment variables and key-shaped strings."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = _longest_first(values)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> Redactor:
        env = os.environ if environ is None else environ
        return cls([v for k, v in env.items() if _SECRET_NAME.search(k)] + list(extra))

    def add(self, values: Iterable[str]) -> None:
        """Mask these values too (the tokens of a login file, read at start)."""
        self.values = _longest_first([*self.values, *values])

    def text(self, value: str) -> str:
        for secret in self.values:
            value = value.replace(secret, MASK)
        for pattern in _PATTERNS:
            value = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, value)
        return value

    def data(self, value: Any) -> Any:
        """Redact every string inside nested dicts and lists."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
