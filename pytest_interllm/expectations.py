"""Per-scenario expectations from `scenarios/<list-stem>.yaml`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pytest_interllm.faults import FAULTS
from pytest_interllm.scenarios import Scenario, ScenarioFormatError, normalize_text


@dataclass(frozen=True)
class Expectations:
    """What a scenario must show beyond the model and the output file."""

    model: str | None = None
    timeout: float | None = None
    must_contain: tuple[str, ...] = ()
    min_words: int | None = None
    output_file: str | None = None
    skip: str | None = None
    xfail: str | None = None
    markers: tuple[str, ...] = ()
    fault: str | None = None
    fault_requests: int | None = None
    min_pass: float | None = None
    rubric: tuple[str, ...] = ()
    line: int = 0
    source: Path | None = None


def _reason(value: Any, what: str) -> str | None:
    if value is False or value is None:
        return None
    if value is True:
        return f"{what} in the scenario expectations"
    return str(value)


def _check(path: Path, line: int, key: str, value: Any, kind: type | tuple[type, ...], what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ScenarioFormatError(path, line, f"{key!r} must be {what}, got {value!r}")


def _str_list(path: Path, line: int, key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScenarioFormatError(path, line, f"{key!r} must be a string or a list of strings, got {value!r}")
    return tuple(value)


def _build(path: Path, line: int, data: Any, base: Expectations) -> Expectations:
    if data is None:
        return replace(base, line=line, source=path)
    if not isinstance(data, Mapping):
        raise ScenarioFormatError(path, line, f"expectations must be a mapping, got {data!r}")
    values: dict[str, Any] = {"line": line, "source": path}
    for key, value in data.items():
        if key == "model":
            _check(path, line, key, value, str, "a model name")
            values[key] = value
        elif key == "timeout":
            _check(path, line, key, value, (int, float), "a number of seconds")
            if value <= 0:
                raise ScenarioFormatError(path, line, f"'timeout' must be positive, got {value!r}")
            values[key] = float(value)
        elif key == "fault":
            if value not in FAULTS:
                raise ScenarioFormatError(path, line, f"unknown fault {value!r} (known: {', '.join(FAULTS)})")
            values[key] = value
        elif key == "min_pass":
            _check(path, line, key, value, (int, float), "a share between 0 and 1")
            if not 0 < value <= 1:
                raise ScenarioFormatError(path, line, f"'min_pass' must be greater than 0 and at most 1, got {value!r}")
            values[key] = float(value)
        elif key in ("min_words", "fault_requests"):
            _check(path, line, key, value, int, "a whole number")
            values[key] = value
        elif key == "output_file":
            _check(path, line, key, value, str, "a path relative to the rootdir")
            if Path(value).is_absolute() or ".." in Path(value).parts:
                raise ScenarioFormatError(path, line, f"'output_file' must stay inside the rootdir, got {value!r}")
            values[key] = value
        elif key in ("must_contain", "markers", "rubric"):
            values[key] = _str_list(path, line, key, value)
        elif key in ("skip", "xfail"):
            values[key] = _reason(value, key)
        else:
            known = ", ".join(
                sorted(f.name for f in Expectations.__dataclass_fields__.values() if f.name not in ("line", "source"))
            )
            raise ScenarioFormatError(path, line, f"unknown expectation key {key!r} (known: {known})")
    return replace(base, **values)


def _key_lines(text: str) -> dict[Any, int]:
    """Source line of each top-level key, from the YAML node tree."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(node, yaml.MappingNode):
        return {}
    lines: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = yaml.safe_load(yaml.serialize(key_node))
        lines[key] = key_node.start_mark.line + 1
    return lines


@dataclass(frozen=True)
class ExpectationFile:
    """The parsed expectations of one list (empty when the file does not exist)."""

    path: Path | None = None
    by_index: dict[int, Expectations] = field(default_factory=dict)

    def for_scenario(self, scenario: Scenario) -> Expectations:
        """Expectations of one scenario (defaults applied), or empty ones."""
        return self.by_index.get(scenario.index, Expectations())


def load_expectations(path: Path, scenarios: Iterable[Scenario]) -> ExpectationFile:
    """Load and validate `path`; keys are indexes, `scenario_NNN[-slug]` names, or `defaults`."""
    if not path.is_file():
        return ExpectationFile()
    try:
        text = normalize_text(path.read_bytes().decode("utf-8"))
        data = yaml.safe_load(text)
        lines = _key_lines(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFormatError(path, 1, f"cannot read expectations: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = 1 + (mark.line if mark is not None else 0)
        raise ScenarioFormatError(path, line, f"invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        return ExpectationFile(path=path)
    if not isinstance(data, dict):
        raise ScenarioFormatError(path, 1, "expectations must be a mapping of scenario index or name to keys")
    scenario_list = list(scenarios)
    names = {s.name: s.index for s in scenario_list}
    names.update({s.label: s.index for s in scenario_list})
    defaults = _build(path, lines.get("defaults", 1), data.get("defaults"), Expectations())
    by_index = {s.index: replace(defaults, line=0, source=None) for s in scenario_list}
    for key, value in data.items():
        if key == "defaults":
            continue
        line = lines.get(key, 1)
        if isinstance(key, int) and not isinstance(key, bool):
            index = key
        elif isinstance(key, str) and key in names:
            index = names[key]
        else:
            raise ScenarioFormatError(
                path,
                line,
                f"{key!r} is not a scenario of the list (use an index like 3 or a name like {scenario_list[0].name!r})",
            )
        if index not in by_index:
            raise ScenarioFormatError(path, line, f"there is no scenario {index} (the list has {len(scenario_list)})")
        by_index[index] = _build(path, line, value, defaults)
    return ExpectationFile(path=path, by_index=by_index)
