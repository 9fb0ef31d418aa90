"""The files a run reads for each list: the list itself, its prompt template and its expectations file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pytest_interllm.prompt import PromptTemplate, find_template
from pytest_interllm.scenarios import front_matter
from pytest_interllm.settings import Settings


def expectations_path(rootdir: Path, list_path: Path) -> Path:
    """`scenarios/<list-stem>.yaml` under the rootdir."""
    return rootdir / "scenarios" / f"{list_path.stem}.yaml"


@dataclass(frozen=True)
class ListInputs:
    """One collected list and the files that go with it."""

    path: Path
    template: Path | None  # None: the packaged template
    expectations: Path

    def files(self) -> dict[Path, str]:
        """Each input file that exists, with what it is."""
        found = {self.path: "the scenario list", self.expectations: "the expectations file"}
        if self.template is not None:
            found[self.template] = "the prompt template"
        return {path.resolve(): what for path, what in found.items() if path.is_file()}


def list_inputs(settings: Settings) -> tuple[ListInputs, ...]:
    """The inputs of every list of the run (only the front matter is read: collection parses the lists)."""
    found = []
    for path in settings.lists:
        template = front_matter(path).get("template")
        found.append(
            ListInputs(
                path=path,
                template=find_template(path, settings.template, template if isinstance(template, str) else None),
                expectations=expectations_path(settings.rootdir, path),
            )
        )
    return tuple(found)


def input_files(inputs: tuple[ListInputs, ...]) -> dict[Path, str]:
    """Every input file of the run, with what it is: files the run must never write or delete."""
    files: dict[Path, str] = {}
    for entry in inputs:
        files.update(entry.files())
    return files


def check_templates(inputs: tuple[ListInputs, ...]) -> None:
    """Load each list's template once before any scenario runs; raises `TemplateError` naming the file."""
    for template in dict.fromkeys(entry.template for entry in inputs):
        PromptTemplate.load(template)
