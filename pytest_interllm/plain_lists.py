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
_MARKUP = re.compile(r"[\\`*_\[\]!<&]")
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
    state = "start"  # start (nothing open), item (an item open), para (a top-level paragraph open)
    indent, kind, start, blank = 0, "", 0, False
    single = -1  # an item whose title has markup: its paragraph must be one line (this is that line's index)

    def close(end: int) -> None:
        if state == "item":
            found.append(("item", start, end, found_title))

    found_title = ""
    for i, line in enumerate(lines):
        if not line.strip(" "):
            blank = True
            if state == "para":
                state = "start"
            continue
        if single == i - 1 and not blank:  # the line after a title with markup, inside the item
            spaces = len(line) - len(line.lstrip(" "))
            if spaces and not (spaces >= indent and spaces - indent < 4 and _NESTED_BULLET.match(line[spaces:])):
                return None
        spaces = len(line) - len(line.lstrip(" "))
        if spaces:
            if state != "item" or spaces < indent or spaces > _DEEPEST:
                return None
            rest = line[spaces:]
            if set(rest) <= _RULE_CHARS or rest.startswith(">") or _OPENERS.match(rest):
                return None
            blank = False
            continue
        heading = _HEADING.match(line)
        item = _ITEM.match(line)
        if heading:
            content = (heading.group(2) or "").strip()
            if content.endswith("#"):
                return None
            close(i)
            found.append(("heading", i, i + 1, content))
            state = "start"
        elif item:
            marker = item.group(2) or item.group(1)
            content = item.group(4)
            if state == "para" or (state == "item" and not blank and marker != kind):
                return None
            if len(item.group(3)) > 4 or not _paragraph_line(content) or set(content) <= _RULE_CHARS:
                return None
            close(i)
            state, kind, start = "item", marker, i
            indent = len(item.group(1)) + len(item.group(3))
            found_title = content
            single = i if _MARKUP.search(content) else -1
        else:
            if (state == "item" and not blank) or not _paragraph_line(line):
                return None
            close(i)
            state = "para"
        blank = False
    close(len(lines))
    return found
