"""Strict prompt templates: known placeholders only, scenario text never interpreted."""

from __future__ import annotations

import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pytest_interllm.scenarios import normalize_text

PLACEHOLDERS = ("index", "title", "body", "section", "output_path", "model")
DEFAULT_TEMPLATE_NAME = "prompt_template.txt"


class TemplateError(Exception):
    """A template that cannot be rendered, naming the file, line and placeholder."""


@dataclass(frozen=True)
class PromptTemplate:
    """A parsed template: literal text and placeholder names, checked once."""

    source: str
    parts: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str, source: str, allowed: tuple[str, ...] = PLACEHOLDERS) -> PromptTemplate:
        """Parse `text`; unknown placeholders, conversions and format specs are errors."""
        parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise TemplateError(f"{source}: {exc} (write {{{{ and }}}} for literal braces)") from exc
        consumed = ""
        for literal, name, spec, conversion in parsed:
            consumed += literal
            if name is None:
                parts.append((literal, None))
                continue
            line = consumed.count("\n") + 1
            if name not in allowed or spec or conversion:
                raise TemplateError(
                    f"{source}:{line}: unknown placeholder {{{name}{'!' + conversion if conversion else ''}"
                    f"{':' + spec if spec else ''}}} (known: {', '.join('{' + p + '}' for p in allowed)})"
                )
            parts.append((literal, name))
        return cls(source=source, parts=tuple(parts))

    @classmethod
    def load(cls, path: Path | None) -> PromptTemplate:
        """The template at `path`, or the packaged default."""
        if path is None:
            text = resources.files("pytest_interllm.templates").joinpath(DEFAULT_TEMPLATE_NAME).read_text("utf-8")
            return cls.parse(text, f"<packaged {DEFAULT_TEMPLATE_NAME}>")
        try:
            text = normalize_text(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"{path}: cannot read the prompt template: {exc}") from exc
        template = cls.parse(text, str(path))
        if "output_path" not in template.names:
            raise TemplateError(
                f"{path}: the template never names the output file: add {{output_path}} where it tells the agent "
                "where to write (without it every scenario would run and fail with no-output-file)"
            )
        return template

    @property
    def names(self) -> tuple[str, ...]:
        """The placeholders the template uses."""
        return tuple(name for _, name in self.parts if name is not None)

    def render(self, **values: object) -> str:
        """Substitute the placeholders; values are inserted verbatim."""
        return "".join(literal + ("" if name is None else str(values[name])) for literal, name in self.parts)


def find_template(list_path: Path, explicit: Path | None, front_matter: str | None) -> Path | None:
    """Which template a list uses: explicit setting, front matter, `prompt_template.txt` beside it, or none."""
    if explicit is not None:
        return explicit
    if front_matter:
        return (list_path.parent / front_matter).resolve()
    beside = list_path.parent / DEFAULT_TEMPLATE_NAME
    return beside if beside.is_file() else None
