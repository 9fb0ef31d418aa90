"""Markdown scenario lists → `Scenario` records (markdown-it-py; the token `map` gives source lines).

Block structure comes from markdown-it's block parser, or for a plain list from plain_lists.py's line reader.
Inline markup is parsed only where a title or a heading has any (`_MARKUP`); a plain line is its own text. A
parsed list is kept in pytest's cache (`.pytest_cache/d/interllm-lists/`) keyed by the file's bytes, so an
unchanged list is parsed once, not once per run and per xdist worker; a list that holds a secret is never kept
there.

A title or heading that quotes a secret stays as written (the agent's prompt is the same whatever the
environment, so cassettes replay anywhere), but the item is named from the title with the secret masked, and
the redactor learns what markup made of the secret (`<b>` inside one leaves a variant of it in the title).
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pytest_interllm import list_cache, plain_lists
from pytest_interllm.bounds import SECONDS
from pytest_interllm.redact import MASK, Redactor

if TYPE_CHECKING:  # markdown-it is imported when a list needs it: a plain list is read without it
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

FRONT_MATTER_KEYS = frozenset({"model", "timeout", "template", "title"})
_FRONT_MATTER_TEXT = {"model": "a model name", "template": "a path"}  # keys whose value is a string
_CHECKBOX = re.compile(r"^\[[ xX]\]\s+")
_MARKER = re.compile(r"^(\s*)(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)")
MAX_SLUG = 40
_MARKUP = plain_lists.MARKUP  # characters that can open an inline rule; text without them parses to itself
# Inline tokens whose content is title text (`text_special`: escapes and entities, which the skipped
# `text_join` core rule would have merged into `text`).
_TEXT = frozenset({"text", "text_special", "code_inline"})
# Bump when the parse result for the same bytes changes: it is part of the cache key.
PARSER_VERSION = "4"
# Stands for a masked secret while a title is read: it is no markup, where `[REDACTED]` could make a link.
_HIDDEN = "\ue000"


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


def normalize_text(text: str) -> str:
    """The text as every checkout gives it: a leading BOM dropped, CRLF and CR line endings turned into LF."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def yaml_error_line(exc: yaml.YAMLError) -> int:
    """0-based line of a YAML syntax error: where a token that ran on began (a key without its colon, an unclosed
    quote or bracket), else where the parser stopped."""
    context = getattr(exc, "context", None) or ""
    mark = getattr(exc, "context_mark", None) if context.startswith("while scanning") or " flow " in context else None
    mark = mark or getattr(exc, "problem_mark", None)
    return mark.line if mark is not None else 0


def yaml_key_lines(text: str, depth: int = 1) -> dict[tuple[Any, ...], int]:
    """1-based line of each mapping key of a YAML text, by its path from the top (`(3, "timeout")`), `depth` deep."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: yaml.Node | None, path: tuple[Any, ...]) -> None:
        if not isinstance(node, yaml.MappingNode) or len(path) >= depth:
            return
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            lines[(*path, key)] = key_node.start_mark.line + 1
            walk(value_node, (*path, key))

    walk(yaml.compose(text, Loader=yaml.SafeLoader), ())
    return lines


def same_titles(scenarios: Iterable[Scenario]) -> list[str]:
    """A note for each title that several scenarios share (`scenarios 2 and 5 have the same title "..."`)."""
    by_title: dict[str, list[str]] = {}
    for scenario in scenarios:
        if scenario.title:  # an empty title is a problem of its own
            by_title.setdefault(scenario.title, []).append(str(scenario.index))
    notes = []
    for title, indexes in by_title.items():
        if len(indexes) > 1:
            quoted = json.dumps(title, ensure_ascii=False)
            notes.append(f"scenarios {', '.join(indexes[:-1])} and {indexes[-1]} have the same title {quoted}")
    return notes


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioFormatError(path, 1, f"cannot read the scenario list: {exc.strerror or exc}") from exc
    if b"\x00" in data[:8192]:
        raise ScenarioFormatError(path, 1, "this is a binary file, not a markdown scenario list")
    try:
        return normalize_text(data.decode("utf-8"))
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
    yaml_text = "".join(lines[1:end])
    try:
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        line = 2 + yaml_error_line(exc)
        raise ScenarioFormatError(path, line, f"invalid YAML in front matter: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioFormatError(path, 2, "front matter must be a YAML mapping (key: value)")
    keys = yaml_key_lines(yaml_text)
    for key, value in data.items():
        line = 1 + keys.get((key,), 1)  # the front matter's text starts on the file's line 2
        if key not in FRONT_MATTER_KEYS:
            known = ", ".join(sorted(FRONT_MATTER_KEYS))
            raise ScenarioFormatError(path, line, f"unknown front matter key {str(key)!r} (known: {known})")
        if value is None:
            continue
        if key == "timeout":
            problem = SECONDS.check(value)
        elif key in _FRONT_MATTER_TEXT and not isinstance(value, str):
            problem = f"must be {_FRONT_MATTER_TEXT[key]}"
        else:
            problem = None
        if problem is not None:
            raise ScenarioFormatError(path, line, f"front matter {key!r} {problem}, got {value!r}")
    return data, "".join(lines[end + 1 :]), end + 1


def front_matter(path: Path) -> dict[str, Any]:
    """A list's front matter alone, without parsing its markdown; a list that does not read gives {}."""
    try:
        return _split_front_matter(path, _read_text(path))[0]
    except ScenarioFormatError:
        return {}  # collection reports it, at its line


def _markdown() -> MarkdownIt:
    """markdown-it for CommonMark, its inline rules off (see `_Inline`)."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark")
    md.disable("inline")
    return md


class _Inline:
    """Inline text of paragraphs and headings; markdown-it's inline parser runs only on text with markup."""

    def __init__(self, md: MarkdownIt | None, env: dict[str, Any]) -> None:
        self.md = md  # made on first use when the block parser did not run (a plain list)
        self.env = env  # carries the link reference definitions found by the block parser

    def _children(self, content: str) -> list[Token]:
        if self.md is None:
            self.md = _markdown()
        children: list[Token] = []
        self.md.inline.parse(content, self.md, self.env, children)
        return children

    def first_line(self, content: str) -> str:
        """Text of a paragraph up to its first line break, markup removed, task checkbox dropped."""
        if _MARKUP.search(content) is None:
            text = content.split("\n", 1)[0].strip()
        else:
            parts: list[str] = []
            for child in self._children(content):
                if child.type in ("softbreak", "hardbreak"):
                    break
                if child.type in _TEXT:
                    parts.append(child.content)
            text = "".join(parts).strip()
        return _CHECKBOX.sub("", text).strip()

    def text(self, content: str) -> str:
        """Text of a heading, markup removed."""
        if _MARKUP.search(content) is None:
            return content.strip()
        return "".join(c.content for c in self._children(content) if c.type in _TEXT).strip()


def _masked(read: Callable[[str], str], content: str, redactor: Redactor) -> str:
    """What `read` gives of `content` with its secrets masked before the markup is read (markup inside a secret
    leaves a variant of it) and after (markup may join one)."""
    shown = read(redactor.text(content).replace(MASK, _HIDDEN)).replace(_HIDDEN, MASK)
    return redactor.text(shown)


def _learn(redactor: Redactor, read: Callable[[str], str], content: str) -> str:
    """`content` read with its secrets masked; the redactor learns what they became in it read as written."""
    written, shown = read(content), _masked(read, content, redactor)
    if written != shown:
        found = re.fullmatch("(.*?)".join(map(re.escape, shown.split(MASK))), written, re.DOTALL)
        if found is not None:
            redactor.add(found.groups())
    return shown


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


def _parse_text(path: Path, text: str, redactor: Redactor | None = None) -> ScenarioList:
    """The list; with a redactor (it holds a secret), items are named from masked titles."""
    front, rest, offset = _split_front_matter(path, text)
    env: dict[str, Any] = {}
    plain = plain_lists.outline(rest) if redactor is None else None
    md = _markdown() if plain is None else None
    tokens = md.parse(rest, env) if md is not None else []
    inline = _Inline(md, env)
    lines = rest.splitlines(keepends=True)
    section = ""
    raw: list[tuple[int, str, str, str, str]] = []  # line, title, title masked, body, section
    problems: list[ScenarioFormatError] = []
    for kind, start, end, content in plain or ():  # a plain list: its outline, read without markdown-it
        if kind == "heading":
            section = inline.text(content)
        else:
            title = inline.first_line(content)
            raw.append((start + 1 + offset, title, title, _body(lines, start, end), section))
    for pos, token in enumerate(tokens):
        if token.type == "heading_open" and token.level == 0:
            section = inline.text(tokens[pos + 1].content)
            if redactor is not None:
                _learn(redactor, inline.text, tokens[pos + 1].content)
        # Items of a list at the document's top level sit at level 1; lists in quotes sit deeper.
        elif token.type == "list_item_open" and token.level == 1 and token.map:
            start, end = token.map
            line = start + 1 + offset
            title = shown = ""
            nxt = tokens[pos + 1] if pos + 1 < len(tokens) else None
            if nxt is not None and nxt.type == "paragraph_open" and tokens[pos + 2].type == "inline":
                title = shown = inline.first_line(tokens[pos + 2].content)
                if redactor is not None:
                    shown = _learn(redactor, inline.first_line, tokens[pos + 2].content)
            raw.append((line, title, shown, _body(lines, start, end), section))
    width = max(3, len(str(len(raw))))
    scenarios: list[Scenario] = []
    for index, (line, title, shown, body, sect) in enumerate(raw, 1):
        if not title:
            problems.append(ScenarioFormatError(path, line, f"scenario {index} has an empty title"))
        scenarios.append(
            Scenario(
                index=index,
                title=title,
                body=body,
                section=sect,
                line=line,
                name=scenario_name(index, shown, width),
                path=path,
            )
        )
    if not scenarios:
        raise ScenarioFormatError(
            path, 1, "no scenarios found: a scenario is a top-level list item ('- ...' or '1. ...')"
        )
    return ScenarioList(path=path, front_matter=front, scenarios=tuple(scenarios), problems=tuple(problems))


def _shown(parsed: ScenarioList) -> str:
    """What a parsed list shows of itself and names its items by: its titles and sections."""
    return "\n".join(text for s in parsed.scenarios for text in (s.title, s.section))


def _parse(path: Path, text: str, redactor: Redactor, secret: bool) -> tuple[ScenarioList, bool]:
    """The list, and whether it quotes a secret: in its text, or in a title that markup joins into one."""
    if not secret:
        parsed = _parse_text(path, text)
        if not redactor.masks(_shown(parsed)):
            return parsed, False
    return _parse_text(path, text, redactor), True


def _to_data(parsed: ScenarioList) -> dict[str, Any]:
    """What the list cache keeps of a parsed list."""
    return {
        "front_matter": parsed.front_matter,
        "scenarios": [[s.index, s.title, s.body, s.section, s.line, s.name] for s in parsed.scenarios],
        "problems": [[p.line, p.message] for p in parsed.problems],
    }


def _from_data(path: Path, data: dict[str, Any] | None) -> ScenarioList | None:
    """The parsed list the cache kept, or None (nothing kept, or in a shape of another version: parse again)."""
    if data is None:
        return None
    try:
        scenarios = tuple(
            Scenario(index=i, title=t, body=b, section=s, line=ln, name=n, path=path)
            for i, t, b, s, ln, n in data["scenarios"]
        )
        problems = tuple(ScenarioFormatError(path, ln, msg) for ln, msg in data["problems"])
        return ScenarioList(path=path, front_matter=data["front_matter"], scenarios=scenarios, problems=problems)
    except (ValueError, KeyError, TypeError):
        return None


def parse_scenarios(path: Path, cache_dir: Path | None = None, redactor: Redactor | None = None) -> ScenarioList:
    """Parse a markdown scenario list; whole-file problems raise, item problems are returned.

    `redactor` (else one for key-shaped strings): items whose title quotes a secret are named with it masked.
    With `cache_dir`, a list whose bytes were parsed before (same parser and markdown-it versions) is read
    from there instead of parsed again; a list that quotes a secret is never kept there, and what the cache
    held of it is removed.
    """
    redactor = redactor or Redactor()
    text = _read_text(path)
    secret = redactor.masks(text)
    key = ""
    if cache_dir is not None:
        import markdown_it  # its version is part of the key (the cache is kept per parser)

        key = hashlib.sha256(f"{PARSER_VERSION}\0{markdown_it.__version__}\0{text}".encode()).hexdigest()
    if cache_dir is not None and not secret:
        cached = _from_data(path, list_cache.read(cache_dir, path, key))
        if cached is not None and not redactor.masks(_shown(cached)):
            return cached
    parsed, secret = _parse(path, text, redactor, secret)
    if cache_dir is not None:
        if secret:
            list_cache.forget(cache_dir, path)
        else:
            list_cache.keep(cache_dir, path, key, _to_data(parsed))
    return parsed
