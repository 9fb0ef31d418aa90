"""The outline of a plain scenario list without markdown-it: its top-level headings and list items, or None.

Most lists are plain: `#` headings, items that start at column 0 with a paragraph line, their continuation
lines indented, blank lines, short paragraphs between lists. For such a list the block structure is read line
by line, which is what makes a 10,000-scenario list collect in a fraction of markdown-it's time. Anything this
reader is not sure about (tabs, quotes, fences or rules at the top level, lazy continuation lines, an item that
opens with something other than a paragraph, a setext underline, link reference definitions, an ordered item
that could continue a paragraph, deep nesting) gives None, and the caller parses the list with markdown-it as
before. tests/test_scenarios.py checks the two agree on every outline this returns.
"""

from __future__ import annotations

import re

_ITEM = re.compile(r"([-*+]|\d{1,9}([.)]))( +)(.*)$")
_HEADING = re.compile(r"(#{1,6})(?: +(.*))?$")
_ORDERED_START = re.compile(r"\d{1,9}[.)](?: |$)")
_NESTED_BULLET = re.compile(r"[-*+] +\S")
# Characters that can open an inline rule of CommonMark in markdown-it (escape, code, emphasis, link, image,
# autolink/HTML, entity). Text without any of them parses to itself (scenarios.py reads titles by it too).
MARKUP = re.compile(r"[\\`*_\[\]!<&]")
_BULLET_START = re.compile(r"[-*+](?: |$)")
_RULE_CHARS = frozenset("-=*_ ")  # a line of only these may underline a heading or be a thematic break
_UNSURE = ("\t", "\x00", "]:", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
# Nesting past markdown-it's maxNesting (20) makes it skip the rest of the list: a line indented more than this, or
# opening more than one nested list or quote, is left to markdown-it.
_DEEPEST = 8
_OPENERS = re.compile(r"(?:(?:[-*+]|\d{1,9}[.)]) +|> *){2}")

# (kind, first line, end line, content): ("heading", line, line + 1, heading text) or ("item", first line of the
# item, the line after its last, the text of its first line); lines 0-based in the text given.
Entry = tuple[str, int, int, str]


def _paragraph_line(text: str) -> bool:
    """Whether `text` (no leading space) surely starts or continues a paragraph."""
    if not text or text[0] in "#><" or set(text) <= _RULE_CHARS or text.startswith(("```", "~~~")):
        return False  # a heading, quote, HTML block, rule or setext underline, fence
    return _ORDERED_START.match(text) is None and _BULLET_START.match(text) is None


def outline(text: str) -> list[Entry] | None:
    """The headings and items of a plain list, in order; None when markdown-it must decide."""
    if any(mark in text for mark in _UNSURE):
        return None
    lines = text.split("\n")
    found: list[Entry] = []
    item_at: tuple[int, str] | None = None  # the open item: its first line and its title's text
    paragraph = False  # a top-level paragraph is open
    indent, kind, blank = 0, "", False
    single = -1  # an item whose title has markup: its paragraph must be one line (this is that line's index)
    for i, line in enumerate(lines):
        if not line.strip(" "):
            blank, paragraph = True, False
            continue
        spaces = len(line) - len(line.lstrip(" "))
        if spaces:
            rest = line[spaces:]
            if item_at is None or spaces < indent or spaces > _DEEPEST:
                return None
            if set(rest) <= _RULE_CHARS or rest.startswith(">") or _OPENERS.match(rest):
                return None
            if single == i - 1 and not (spaces - indent < 4 and _NESTED_BULLET.match(rest)):
                return None  # the title's paragraph may go on: markdown-it reads its markup over the lines
            blank = False
            continue
        heading, item = _HEADING.match(line), _ITEM.match(line)
        content = ""
        if heading:
            content = (heading.group(2) or "").strip()
            if content.endswith("#"):
                return None
        elif item:
            marker, content = item.group(2) or item.group(1), item.group(4)
            if paragraph or (item_at is not None and not blank and marker != kind):
                return None
            if len(item.group(3)) > 4 or not _paragraph_line(content):
                return None
        elif (item_at is not None and not blank) or not _paragraph_line(line):
            return None  # a lazy continuation line, or something other than a paragraph
        if item_at is not None:
            found.append(("item", item_at[0], i, item_at[1]))
        item_at, paragraph, blank = None, False, False
        if heading:
            found.append(("heading", i, i + 1, content))
        elif item:
            item_at, kind = (i, content), marker
            indent = len(item.group(1)) + len(item.group(3))
            single = i if MARKUP.search(content) else -1
        else:
            paragraph = True
    if item_at is not None:
        found.append(("item", item_at[0], len(lines), item_at[1]))
    return found
