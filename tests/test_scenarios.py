"""Markdown → Scenario: formats, titles, sections, lines, ids and bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from pytest_interllm.scenarios import ScenarioFormatError, parse_scenarios, same_titles, scenario_name, slugify
from tests.conftest import write

MIXED = """\
---
model: gpt-5-codex
---
# Intro

Free text, not a scenario.

## Databases

1. **Replicate** `orders` from [Postgres](https://example.com) to BigQuery
   - nested step a
   - nested step b
     1. deeper
2. [x] Checkbox item done
   continued title paragraph

> - quoted item is not a scenario

```
- fenced item is not a scenario
```

    - indented code is not a scenario

<!--
- commented item is not a scenario
-->

## Fichiers et partenaires

- Ünïcödé 🚀 transfert de données
- 🚀🚀
* Braces {output_path} and {unknown} stay text
"""


def test_top_level_items_only_with_sections_and_lines(tmp_path: Path) -> None:
    parsed = parse_scenarios(write(tmp_path / "list.md", MIXED))
    got = [(s.index, s.line, s.title, s.section) for s in parsed.scenarios]
    assert got == [
        (1, 10, "Replicate orders from Postgres to BigQuery", "Databases"),
        (2, 14, "Checkbox item done", "Databases"),
        (3, 31, "Ünïcödé 🚀 transfert de données", "Fichiers et partenaires"),
        (4, 32, "🚀🚀", "Fichiers et partenaires"),
        (5, 33, "Braces {output_path} and {unknown} stay text", "Fichiers et partenaires"),
    ]
    assert parsed.front_matter == {"model": "gpt-5-codex"}
    assert parsed.problems == ()


def test_body_keeps_nested_items_as_markdown(tmp_path: Path) -> None:
    first = parse_scenarios(write(tmp_path / "list.md", MIXED)).scenarios[0]
    assert first.body.splitlines() == [
        "**Replicate** `orders` from [Postgres](https://example.com) to BigQuery",
        "- nested step a",
        "- nested step b",
        "  1. deeper",
    ]


def test_names_are_deterministic_unique_and_safe(tmp_path: Path) -> None:
    names = [s.name for s in parse_scenarios(write(tmp_path / "list.md", MIXED)).scenarios]
    assert names == [
        "scenario_001-replicate-orders-from-postgres-to-bigque",
        "scenario_002-checkbox-item-done",
        "scenario_003-unicode-transfert-de-donnees",
        "scenario_004",
        "scenario_005-braces-output-path-and-unknown-stay-text",
    ]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("../../etc/passwd", "etc-passwd"),
        ("a/b\\c", "a-b-c"),
        ("x" * 60, "x" * 40),
        ("Ärger über Öl", "arger-uber-ol"),
        ("   ", ""),
    ],
)
def test_slug_never_leaves_the_safe_alphabet(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_index_padding_grows_with_the_list() -> None:
    assert scenario_name(7, "Copy", width=3) == "scenario_007-copy"
    assert scenario_name(1234, "Copy", width=4) == "scenario_1234-copy"


def test_duplicate_titles_get_distinct_names(tmp_path: Path) -> None:
    parsed = parse_scenarios(write(tmp_path / "list.md", "- Same\n- Same\n"))
    assert [s.name for s in parsed.scenarios] == ["scenario_001-same", "scenario_002-same"]


def test_scenarios_sharing_a_title_are_named(tmp_path: Path) -> None:
    parsed = parse_scenarios(write(tmp_path / "list.md", "- Sync\n- Copy `a`\n- Sync\n-\n- Copy a\n- \n- Sync\n"))
    assert same_titles(parsed.scenarios) == [
        'scenarios 1, 3 and 7 have the same title "Sync"',
        'scenarios 2 and 5 have the same title "Copy a"',
    ]


def test_empty_title_is_an_item_problem_at_its_line(tmp_path: Path) -> None:
    parsed = parse_scenarios(write(tmp_path / "list.md", "- Good one\n-\n- Another\n"))
    assert [s.index for s in parsed.scenarios] == [1, 2, 3]
    assert [(p.line, p.message) for p in parsed.problems] == [(2, "scenario 2 has an empty title")]


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"# Only a heading\n\nSome prose.\n", 1, "no scenarios found"),
        (b"", 1, "no scenarios found"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", 1, "binary file"),
        (b"- ok\n- caf\xe9\n", 2, "not valid UTF-8"),
        (b"---\nmodel: [unclosed\n---\n- a\n", 2, "invalid YAML in front matter"),  # the bracket's line
        (b"---\n- a list\n---\n- a\n", 2, "front matter must be a YAML mapping"),
        (b"---\nmodle: x\n---\n- a\n", 2, "unknown front matter key 'modle'"),
        (b"---\nmodel: x\n- a\n", 1, "never closed"),
        # Errors about a key name the key's own line.
        (b"---\nmodel: x\nmodle: y\n---\n- a\n", 3, "unknown front matter key 'modle'"),
        (b"---\nmodel: x\ntimeout: .nan\n---\n- a\n", 3, "front matter 'timeout' must be a finite number, got nan"),
        (b"---\nmodel: x\ntimeout: -5\n---\n- a\n", 3, "front matter 'timeout' must be greater than 0, got -5"),
        (b"---\nmodel: x\ntemplate: 3\n---\n- a\n", 3, "front matter 'template' must be a path, got 3"),
        (b"---\nmodel: x\ntimeout 5\ntitle: t\n---\n- a\n", 3, "invalid YAML in front matter"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, content: bytes, line: int, message: str) -> None:
    path = tmp_path / "list.md"
    path.write_bytes(content)
    with pytest.raises(ScenarioFormatError) as info:
        parse_scenarios(path)
    assert info.value.line == line
    assert message in info.value.message
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_unreadable_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioFormatError, match="cannot read"):
        parse_scenarios(tmp_path / "missing.md")


def test_five_megabyte_list_parses(tmp_path: Path) -> None:
    item = "- Copy bucket {n} to the archive with a long description " + "x" * 200 + "\n"
    text = "".join(item.replace("{n}", str(n)) for n in range(20_000))
    assert len(text) > 5_000_000
    parsed = parse_scenarios(write(tmp_path / "big.md", text))
    assert len(parsed.scenarios) == 20_000
    assert parsed.scenarios[-1].name.startswith("scenario_20000-copy-bucket-19999")


def test_malformed_markdown_still_gives_the_top_level_items(tmp_path: Path) -> None:
    text = (
        "# Unbalanced **emphasis and `code\n\n"
        "- First **unclosed bold item\n"
        "- Second [broken link](\n"
        "<div>\n- html block item is not a scenario\n</div>\n\n"
        "- Third after html\n"
        "```\n- inside an unclosed fence, not a scenario\n"
    )
    parsed = parse_scenarios(write(tmp_path / "list.md", text))
    assert [(s.line, s.title) for s in parsed.scenarios] == [
        (3, "First **unclosed bold item"),
        (4, "Second [broken link]("),
        (9, "Third after html"),
    ]


TITLES = [
    "Plain title - with: colons + dashes = 3 # 4 % done",
    "**Replicate** `orders` from [Postgres](https://example.com) to *BigQuery*",
    "Escaped \\*stars\\* and \\_underscores\\_ stay",
    "Entities &amp; &copy; &#65; &nbsp;end",
    "Autolink <https://example.com/x> and <b>html</b> inline",
    "![an image](img.png) then text",
    "Reference [link][ref] and [Ref]",
    "*Emphasis that spans\n  two lines* of the title",
    "Hard break with spaces  \n  second line",
    "Backslash break\\\n  second line",
    "[x] Done task with `code`",
    "[ ] Open task",
    "Unclosed **bold and `code",
    "Ünïcödé 🚀 transfert & données",
]


@pytest.mark.parametrize("title", TITLES)
def test_titles_equal_a_full_markdown_it_parse(tmp_path: Path, title: str) -> None:
    """Inline markup is parsed only where there is some; the result equals markdown-it's full parse."""
    doc = f"# Head *one* &amp; `two`\n\n- {title}\n\n[ref]: https://example.com/ref\n"
    tokens = MarkdownIt("commonmark").parse(doc)
    item = next(i for i, t in enumerate(tokens) if t.type == "list_item_open")
    parts = []
    for child in tokens[item + 2].children or []:
        if child.type in ("softbreak", "hardbreak"):
            break
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
    expected = "".join(parts).strip()
    for box in ("[x] ", "[ ] "):
        expected = expected.removeprefix(box).strip()
    parsed = parse_scenarios(write(tmp_path / "list.md", doc))
    assert parsed.scenarios[0].title == expected
    assert parsed.scenarios[0].section == "Head one & two"


def test_an_unchanged_list_is_read_from_the_cache(tmp_path: Path) -> None:
    path = write(tmp_path / "list.md", MIXED)
    cache = tmp_path / "cache"
    first = parse_scenarios(path, cache)
    assert first == parse_scenarios(path)
    (stored,) = cache.glob("*.json")
    # Prove the second call reads the stored result: tamper with it, same bytes in the list.
    stored.write_text(stored.read_text().replace("Checkbox item done", "From the cache"))
    assert parse_scenarios(path, cache).scenarios[1].title == "From the cache"
    # Changed bytes → parsed again, and the store is replaced, not added to.
    path.write_text(MIXED.replace("Checkbox item done", "Edited title"))
    assert parse_scenarios(path, cache).scenarios[1].title == "Edited title"
    assert len(list(cache.glob("*"))) == 1
    # A corrupt store is ignored.
    stored.write_text("{not json")
    assert parse_scenarios(path, cache).scenarios[1].title == "Edited title"
    assert parse_scenarios(path, cache).problems == parse_scenarios(path).problems


def _windows(text: str) -> bytes:
    """`text` as a Windows checkout stores it: a BOM and CRLF line endings."""
    return b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8")


def test_crlf_and_bom_lists_parse_to_the_same_scenarios(tmp_path: Path) -> None:
    unix = parse_scenarios(write(tmp_path / "unix" / "list.md", MIXED))
    path = tmp_path / "windows" / "list.md"
    path.parent.mkdir()
    path.write_bytes(_windows(MIXED))
    windows = parse_scenarios(path)
    assert [(s.index, s.title, s.body, s.section, s.line, s.name) for s in windows.scenarios] == [
        (s.index, s.title, s.body, s.section, s.line, s.name) for s in unix.scenarios
    ]
    assert windows.front_matter == unix.front_matter
    assert not any("\r" in s.body or "\ufeff" in s.title for s in windows.scenarios)
    old_mac = tmp_path / "mac.md"
    old_mac.write_bytes(MIXED.replace("\n", "\r").encode("utf-8"))
    assert [s.body for s in parse_scenarios(old_mac).scenarios] == [s.body for s in unix.scenarios]


def test_crlf_and_bom_templates_and_expectations_read_the_same(tmp_path: Path) -> None:
    from pytest_interllm.expectations import load_expectations
    from pytest_interllm.prompt import PromptTemplate

    template = "Scenario {index}: {title}\n\n{body}\n\nWrite it to the file `{output_path}`.\n"
    yaml_text = "defaults:\n  min_words: 3\n2:\n  must_contain: [Kafka]\n"
    scenarios = parse_scenarios(write(tmp_path / "list.md", "- One\n- Two\n")).scenarios
    rendered = {}
    loaded = {}
    for kind, data in (("unix", template.encode()), ("windows", _windows(template))):
        (tmp_path / f"{kind}.txt").write_bytes(data)
        values = {"index": 1, "title": "T", "body": "B", "section": "", "output_path": "o.md", "model": "m"}
        rendered[kind] = PromptTemplate.load(tmp_path / f"{kind}.txt").render(**values)
    for kind, data in (("unix", yaml_text.encode()), ("windows", _windows(yaml_text))):
        (tmp_path / f"{kind}.yaml").write_bytes(data)
        found = load_expectations(tmp_path / f"{kind}.yaml", scenarios)
        loaded[kind] = [(e.min_words, e.must_contain, e.line) for e in found.by_index.values()]
    assert rendered["windows"] == rendered["unix"] and "\r" not in rendered["windows"]
    assert not rendered["windows"].startswith("\ufeff")
    assert loaded["windows"] == loaded["unix"] == [(3, (), 0), (3, ("Kafka",), 3)]


# Lines a list may hold, plain and tricky: random lists of them are read both ways below.
PLAIN = [
    "- Copy bucket 1 to the archive", "1. First scenario", "2. Second scenario", "1) Paren item", "* Star item",
    "+ Plus item", "- [ ] Box with *emphasis*", "- `code` in the title", "  - verify the count", "   - three spaces",
    "# Heading", "", "   ", "Plain paragraph", "  indented text", "- hard break  ", "10. Tenth", "  [x] done",
    "### Section three", "- x &amp; y", "  * star nested", "+ [x] Done item", "  1. ordered nested", "  more text",
    "`code` paragraph", "- title with *open emphasis", "  continued*", "- [link](https://example.com) title",
]  # fmt: skip
TRICKY = [
    "    - four spaces", "  ---", "  ===", "---", "===", "## Closed heading ##", "#NoSpace", "    code block",
    "> quoted", "  > quoted in item", "```", "  ```", "~~~", "<div>", "- <b>x</b> html", "[ref]: /url",
    "- [link][ref]", "- backslash\\", "-", "- ", "1.", "- - -", "*emph* paragraph", "\ttab", "- 10. nested ordered",
    "          deep", "  - - - - x", "- ＃ full-width", "\u00a0nbsp line", "-     five spaces", "***", "  ```python",
    "  - - - - - - - - - - - x", "  >>>>>>>>>>>>>>>>>>>>>> x", "  1. 1. 1. 1. 1. 1. 1. 1. 1. 1. 1. x",
]  # fmt: skip


def test_a_plain_list_reads_the_same_without_markdown_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The line reader (plain_lists) gives what markdown-it gives on every list it accepts, and accepts the shapes
    lists usually have (the examples, the benchmark's list); the rest goes to markdown-it."""
    import random

    from pytest_interllm import plain_lists, scenarios

    def read(text: str) -> object:
        try:
            parsed = scenarios._parse_text(Path("l.md"), text)
            return parsed.scenarios, [str(problem) for problem in parsed.problems]
        except ScenarioFormatError as exc:
            return str(exc)

    def both(text: str) -> tuple[object, object]:
        fast = read(text)
        with monkeypatch.context() as patch:
            patch.setattr(plain_lists, "outline", lambda _text: None)
            return fast, read(text)

    root = Path(__file__).resolve().parent.parent
    shipped = [p.read_text() for p in sorted([*root.glob("examples/*.md"), *root.glob("input/*.md")])]
    benchmark = "".join(f"- Copy partner bucket {n} to the archive\n  - verify the object count\n" for n in range(50))
    # markdown-it skips the rest of a list nested past its maxNesting; a type change after a paragraph line
    deep = [f"- a\n  {opener * 11}x\n- b\n" for opener in ("- ", "1. ", ">")] + ["- a\n2. b\n", "1. a\n- b\n"]
    deep.append("- a\n" + "".join(f"{'  ' * depth}- x\n" for depth in range(1, 12)) + "- b\n")
    for text in [*shipped, benchmark, MIXED.split("---\n", 2)[2], *deep]:
        fast, slow = both(text)
        assert fast == slow
    usual = [scenarios._split_front_matter(Path("l.md"), scenarios.normalize_text(t))[1] for t in [*shipped, benchmark]]
    assert all(plain_lists.outline(t) is not None for t in usual), "the usual shapes are read"
    rng = random.Random(20261203)
    taken = 0
    for _ in range(3000):
        lines = (rng.choice(PLAIN if rng.random() < 0.9 else TRICKY) for _ in range(rng.randint(1, 14)))
        text = "\n".join(lines) + rng.choice(["", "\n"])
        taken += plain_lists.outline(text) is not None
        fast, slow = both(text)
        assert fast == slow, text
    assert taken > 200, taken  # the line reader took a good share of the random lists


def test_a_plain_list_is_read_without_importing_markdown_it(tmp_path: Path) -> None:
    """Start-up: the plugin and a plain list's parse leave markdown-it unimported; a title with markup imports it
    and still reads as markdown-it reads it (a fresh interpreter: this one has it imported)."""
    write(tmp_path / "plain.md", "# Jobs\n\n1. Copy the bucket\n   - verify the count\n2. Archive the logs\n")
    write(tmp_path / "marked.md", "- Copy **the** `bucket`\n")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import pytest_interllm.plugin\n"
        "from pytest_interllm.scenarios import parse_scenarios\n"
        "titles = [s.title for s in parse_scenarios(Path(sys.argv[1]) / 'plain.md').scenarios]\n"
        "print(titles, 'markdown_it' in sys.modules)\n"
        "titles = [s.title for s in parse_scenarios(Path(sys.argv[1]) / 'marked.md').scenarios]\n"
        "print(titles, 'markdown_it' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == [
        "['Copy the bucket', 'Archive the logs'] False",
        "['Copy the bucket'] True",
    ], done.stderr
