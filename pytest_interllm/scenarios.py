"""Markdown scenario lists → `Scenario` records (markdown-it-py; the token `map` gives source lines)."""

from __future__ import annotations

import re
import textwrap
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

FRONT_MATTER_KEYS = frozenset({"model", "timeout", "template", "title"})
_CHECKBOX = re.compile(r"^\[[ xX]\]\s+")
_MARKER = re.compile(r"^(\s*)(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)")
MAX_SLUG = 40


class ScenarioFormatError(Exception):
    """Bad input in a scenario list, pointing at the file and line."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Scenario:
    """One top-level list item of a scenario list."""

    index: int
    title: str
    body: str
    section: str
    line: int
    name: str
    path: Path

    @property
    def label(self) -> str:
        """`scenario_NNN` without the slug."""
        return self.name.split("-", 1)[0]


@dataclass(frozen=True)
class ScenarioList:
    """A parsed list: its front matter, its scenarios and the item-level problems found."""

    path: Path
    front_matter: dict[str, Any] = field(default_factory=dict)
    scenarios: tuple[Scenario, ...] = ()
    problems: tuple[ScenarioFormatError, ...] = ()


def slugify(title: str) -> str:
    """ASCII-folded lowercase slug of `[a-z0-9-]`, at most 40 characters."""
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")
    return slug[:MAX_SLUG].strip("-")


def scenario_name(index: int, title: str, width: int = 3) -> str:
    """Deterministic item name `scenario_NNN-<slug>` (`scenario_NNN` when the slug is empty)."""
    slug = slugify(title)
    label = f"scenario_{index:0{width}d}"
    return f"{label}-{slug}" if slug else label


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioFormatError(path, 1, f"cannot read the scenario list: {exc.strerror or exc}") from exc
    if b"\x00" in data[:8192]:
        raise ScenarioFormatError(path, 1, "this is a binary file, not a markdown scenario list")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ScenarioFormatError(path, line, f"not valid UTF-8 text (byte {exc.start})") from exc


def _split_front_matter(path: Path, text: str) -> tuple[dict[str, Any], str, int]:
    """Front matter mapping, the remaining text and how many lines the front matter took."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return {}, text, 0
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        raise ScenarioFormatError(path, 1, "front matter opened with '---' is never closed")
    try:
        data = yaml.safe_load("".join(lines[1:end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = 2 + (mark.line if mark is not None else 0)
        raise ScenarioFormatError(path, line, f"invalid YAML in front matter: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioFormatError(path, 2, "front matter must be a YAML mapping (key: value)")
    unknown = sorted(str(k) for k in data if k not in FRONT_MATTER_KEYS)
    if unknown:
        raise ScenarioFormatError(
            path, 2, f"unknown front matter key {unknown[0]!r} (known: {', '.join(sorted(FRONT_MATTER_KEYS))})"
        )
    return data, "".join(lines[end + 1 :]), end + 1


def _plain_first_line(inline: Token) -> str:
    """Text of the inline token up to its first line break, markup removed."""
    parts: list[str] = []
    for child in inline.children or []:
        if child.type in ("softbreak", "hardbreak"):
            break
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content if child.type != "html_inline" else "")
    return _CHECKBOX.sub("", "".join(parts).strip()).strip()


def _inline_text(inline: Token) -> str:
    return "".join(c.content for c in inline.children or [] if c.type in ("text", "code_inline")).strip()


def _body(lines: list[str], start: int, end: int) -> str:
    """The item's own markdown: its source lines with the list marker removed and dedented."""
    chunk = lines[start:end]
    if not chunk:
        return ""
    first = chunk[0]
    marker = _MARKER.match(first)
    indent = len(marker.group(0)) if marker else 0
    rest = [line[indent:] if line[:indent].strip() == "" else line for line in chunk[1:]]
    text = first[indent:] + "".join(rest)
    return textwrap.dedent(text).strip("\n")


def parse_scenarios(path: Path) -> ScenarioList:
    """Parse a markdown scenario list; whole-file problems raise, item problems are returned."""
    text = _read_text(path)
    front, rest, offset = _split_front_matter(path, text)
    tokens = MarkdownIt("commonmark").parse(rest)
    lines = rest.splitlines(keepends=True)
    section = ""
    raw: list[tuple[int, str, str, str]] = []  # line, title, body, section
    problems: list[ScenarioFormatError] = []
    for pos, token in enumerate(tokens):
        if token.type == "heading_open" and token.level == 0:
            section = _inline_text(tokens[pos + 1])
        # Items of a list at the document's top level sit at level 1; lists in quotes sit deeper.
        elif token.type == "list_item_open" and token.level == 1 and token.map:
            start, end = token.map
            line = start + 1 + offset
            title = ""
            nxt = tokens[pos + 1] if pos + 1 < len(tokens) else None
            if nxt is not None and nxt.type == "paragraph_open" and tokens[pos + 2].type == "inline":
                title = _plain_first_line(tokens[pos + 2])
            raw.append((line, title, _body(lines, start, end), section))
    width = max(3, len(str(len(raw))))
    scenarios: list[Scenario] = []
    for index, (line, title, body, sect) in enumerate(raw, 1):
        if not title:
            problems.append(ScenarioFormatError(path, line, f"scenario {index} has an empty title"))
        scenarios.append(
            Scenario(
                index=index,
                title=title,
                body=body,
                section=sect,
                line=line,
                name=scenario_name(index, title, width),
                path=path,
            )
        )
    if not scenarios:
        raise ScenarioFormatError(
            path, 1, "no scenarios found: a scenario is a top-level list item ('- ...' or '1. ...')"
        )
    return ScenarioList(path=path, front_matter=front, scenarios=tuple(scenarios), problems=tuple(problems))
