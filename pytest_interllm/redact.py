"""Secrets never leave the run: known secret values, in every encoding a writer gives them, and key-shaped
strings are masked everywhere we write; values that may be shown in part (a ChatGPT account id) are shortened."""

from __future__ import annotations

import base64
import binascii
import functools
import html
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|AUTH|CREDENTIAL", re.IGNORECASE)
# Key-shaped strings, each with a lowercase word it cannot match without (a quick test before the pattern runs).
_PATTERNS = (
    ("sk-", re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}")),
    ("bearer", re.compile(r"(?i)(authorization:\s*bearer\s+)[^\s\"']+")),
    ("bearer", re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-\.=]{16,}")),
    ("eyj", re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")),  # a JWT (a login's tokens)
)
# `Basic <base64>`, as an `Authorization` header carries it however it is quoted: masked whole when the base64 is
# the text of a `user:password` pair (whether or not the password is one we know).
_BASIC = re.compile(r"(?i)(\bbasic\s+)([A-Za-z0-9+/]{8,}={0,2})(?![A-Za-z0-9+/=])")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{8,}=*")  # standard or URL-safe
MASK = "[REDACTED]"
MIN_LENGTH = 8
# How many encodings may wrap one another: HTML of JSON of JSON is a tool call's arguments (JSON in a JSON event)
# in pytest-html's data-jsonblob attribute.
_DEPTH = 3
_PERCENT = re.compile(r"%[0-9A-F]{2}")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-f]{4})")


def _one_encoding(text: str) -> set[str]:
    """`text` under one more encoding, each way a writer may apply it: JSON (ensure_ascii both ways), HTML/XML
    escaping, URL encoding."""
    ascii_json = json.dumps(text)[1:-1]
    forms = {
        json.dumps(text, ensure_ascii=False)[1:-1],
        ascii_json,
        _UNICODE_ESCAPE.sub(lambda m: "\\u" + m.group(1).upper(), ascii_json),
        text.replace("/", "\\/"),  # JSON writers may escape the solidus
        html.escape(text, quote=False),
        html.escape(text),
        html.escape(text).replace("&quot;", "&#34;").replace("&#x27;", "&#39;"),  # markupsafe, Jinja
        html.escape(text).replace("&#x27;", "&apos;"),
    }
    for url in (quote(text, safe=""), quote_plus(text), quote(text)):
        forms |= {url, _PERCENT.sub(lambda m: m.group().lower(), url)}
    return forms


@functools.cache
def _char_forms(char: str) -> tuple[str, ...]:
    """Every way one character of a secret can be written, longest first. The encodings we mask work character
    by character, so a secret in any of them is its characters, each in one of these forms."""
    if char.isascii() and char.isalnum():
        return (char,)
    forms = {char}
    if char in "\"'&<>" or not char.isascii() or not char.isprintable():
        forms |= {f"&#{ord(char)};", f"&#x{ord(char):x};", f"&#x{ord(char):X};"}
    frontier = set(forms)
    for _ in range(_DEPTH):
        frontier = {form for text in frontier for form in _one_encoding(text)} - forms
        forms |= frontier
    return tuple(sorted(forms, key=lambda f: (-len(f), f)))


def _pattern(value: str) -> re.Pattern[str] | str:
    """What finds `value` in any of its encodings: the value itself when no encoding changes it."""
    if all(len(_char_forms(c)) == 1 for c in value):
        return value
    parts = [
        re.escape(c) if len(forms := _char_forms(c)) == 1 else "(?:" + "|".join(map(re.escape, forms)) + ")"
        for c in value
    ]
    return re.compile("".join(parts))


def _base64_cores(value: str) -> set[str]:
    """The part of value's base64 that does not depend on what surrounds it, for each of the three alignments
    (base64 of `user:password` holds the password at any of them), standard and URL-safe."""
    data = value.encode()
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        core = encoded[4 if offset else 0 : 4 * ((offset + len(data)) // 3)]
        cores |= {core, core.replace("+", "-").replace("/", "_")}
    return {c for c in cores if len(c) >= MIN_LENGTH}


def _basic(match: re.Match[str]) -> str:
    """A `Basic <base64>` credential masked when the base64 decodes to `user:password`."""
    token = match.group(2)
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True).decode()
    except (binascii.Error, ValueError):
        return match.group(0)
    return match.group(1) + MASK if ":" in decoded and decoded.isprintable() else match.group(0)


class Redactor:
    """Masks the values of secret-named environment variables and key-shaped strings, in every encoding."""

    def __init__(self, values: Iterable[str] = (), shown: Mapping[str, str] | None = None) -> None:
        self._masked: set[str] = set()
        self._shown: dict[str, str] = {}
        self.add(values, shown)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, extra: Iterable[str] = ()) -> Redactor:
        env = os.environ if environ is None else environ
        return cls([v for k, v in env.items() if SECRET_NAME.search(k)] + list(extra))

    def add(self, values: Iterable[str], shown: Mapping[str, str] | None = None) -> None:
        """Mask these values too (the tokens of a login file, read at start); write each key of `shown` as its
        value (an account id as the header shows it)."""
        self._masked |= {v for v in values if len(v) >= MIN_LENGTH}
        self._shown.update({k: v for k, v in (shown or {}).items() if len(k) >= MIN_LENGTH})
        # Longest first, so that no value is replaced only in part by a shorter one inside it.
        found = [(v, MASK) for v in self._masked if v not in self._shown] + list(self._shown.items())
        self._rules: list[tuple[re.Pattern[str] | str, str]] = []
        for value, shown_as in sorted(found, key=lambda r: (-len(r[0]), r[0])):
            rule = _pattern(value)
            # `re` reads a backslash in a replacement as an escape: doubled, it is written as it is.
            self._rules.append((rule, shown_as if isinstance(rule, str) else shown_as.replace("\\", "\\\\")))
        self._cores = sorted({c for v in self._masked for c in _base64_cores(v)})

    def _mask_base64(self, value: str) -> str:
        """A base64 run holding a secret's base64 is masked whole (a docker `auth`, a Basic credential)."""
        if not any(core in value for core in self._cores):
            return value
        return _BASE64_RUN.sub(lambda m: MASK if any(c in m.group() for c in self._cores) else m.group(), value)

    def masks(self, value: str) -> bool:
        """Whether `value` holds anything this redactor masks or shortens."""
        return self.text(value) != value

    def text(self, value: str) -> str:
        for rule, replacement in self._rules:
            value = value.replace(rule, replacement) if isinstance(rule, str) else rule.sub(replacement, value)
        value = self._mask_base64(value)
        lowered = value.lower()
        for word, pattern in _PATTERNS:
            if word in lowered:
                value = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, value)
        return _BASIC.sub(_basic, value) if "basic" in lowered else value

    def data(self, value: Any) -> Any:
        """Redact every string inside nested dicts and lists."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value
