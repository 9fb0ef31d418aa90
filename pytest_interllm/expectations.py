"""Per-scenario expectations from `scenarios/<list-stem>.yaml`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from pytest_interllm import faults
from pytest_interllm.bounds import COUNT, SECONDS, SHARE, TIMES, Number
from pytest_interllm.scenarios import Scenario, ScenarioFormatError, normalize_text, yaml_error_line, yaml_key_lines

_NOT_KEYS = ("line", "source", "key_lines", "rubric_with")  # fields of Expectations that are no YAML key
# The number keys and their kinds: a fault limited to 0 (or fewer) requests would never fire.
NUMBERS: dict[str, Number] = {
    "timeout": SECONDS,
    "min_pass": SHARE,
    "min_words": TIMES,
    "fault_requests": COUNT,
    "check_timeout": SECONDS,
}
DEFAULT_CHECK_TIMEOUT = 60.0
# Never changed by an attempt, whatever `changes.never` adds: the repository's own metadata.
ALWAYS_NEVER = (".git/**",)


@dataclass(frozen=True)
class Changes:
    """`changes:` — globs (relative to the workspace) of the files an attempt may, must and must never change."""

    only: tuple[str, ...] | None = None
    must: tuple[str, ...] = ()
    never: tuple[str, ...] = ()


@dataclass(frozen=True)
class Commands:
    """`commands:` — regexes the agent's commands must (not) match, and how many it may run."""

    must_run: tuple[str, ...] = ()
    never_run: tuple[str, ...] = ()
    max: int | None = None


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
    rubric_with: str | None = None  # `rubric: {criteria: [...], with: diff}`: the grader also sees the workspace diff
    workspace: str | None = None  # a fixture directory (relative to the list's directory) copied per attempt
    changes: Changes | None = None
    commands: Commands | None = None
    check: str | None = None
    check_timeout: float | None = None
    solution: str | None = None  # what the scripted model applies (apply_patch format, relative to the list's dir)
    line: int = 0
    source: Path | None = None
    key_lines: dict[str, int] = field(default_factory=dict, compare=False)  # where each key was set

    def line_of(self, key: str) -> int:
        """The YAML line that set `key` (here or in `defaults`), else the scenario's line."""
        return self.key_lines.get(key) or self.line or 1


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


def _mapping(path: Path, line: int, key: str, value: Any, known: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioFormatError(path, line, f"{key!r} must be a mapping with {', '.join(known)}, got {value!r}")
    unknown = [k for k in value if k not in known]
    if unknown:
        raise ScenarioFormatError(path, line, f"unknown key {unknown[0]!r} in {key!r} (known: {', '.join(known)})")
    return value


def _regexes(path: Path, line: int, key: str, value: Any) -> tuple[str, ...]:
    found = _str_list(path, line, key, value)
    for pattern in found:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ScenarioFormatError(path, line, f"{key!r}: {pattern!r} is not a regular expression ({exc})") from None
    return found


def _changes(path: Path, line: int, value: Any, base: Changes | None) -> Changes:
    """`changes:`; each rule it leaves out keeps the value `defaults:` gave it."""
    data = _mapping(path, line, "changes", value, ("only", "must", "never"))
    given: dict[str, Any] = {k: _str_list(path, line, f"changes.{k}", v or []) for k, v in data.items()}
    return replace(base or Changes(), **given)


def _commands(path: Path, line: int, value: Any, base: Commands | None) -> Commands:
    """`commands:`; each rule it leaves out keeps the value `defaults:` gave it."""
    data = _mapping(path, line, "commands", value, ("must_run", "never_run", "max"))
    given: dict[str, Any] = {}
    for key, item in data.items():
        if key == "max":
            problem = COUNT.check(item)
            if problem is not None:
                raise ScenarioFormatError(path, line, f"'commands.max' {problem}, got {item!r}")
            given[key] = item
        else:
            given[key] = _regexes(path, line, f"commands.{key}", item or [])
    return replace(base or Commands(), **given)


def _rubric(path: Path, line: int, value: Any) -> tuple[tuple[str, ...], str | None]:
    """`rubric: [criteria]`, or `rubric: {criteria: [...], with: diff}`."""
    if not isinstance(value, Mapping):
        return _str_list(path, line, "rubric", value), None
    data = _mapping(path, line, "rubric", value, ("criteria", "with"))
    given = data.get("with")
    if given not in (None, "diff"):
        raise ScenarioFormatError(path, line, f"'rubric.with' must be 'diff', got {given!r}")
    return _str_list(path, line, "rubric.criteria", data.get("criteria") or []), given


def _relative_path(path: Path, line: int, key: str, value: Any) -> str:
    _check(path, line, key, value, str, "a path relative to the scenario list's directory")
    if Path(value).is_absolute() or ".." in Path(value).parts:
        raise ScenarioFormatError(path, line, f"{key!r} must stay inside the list's directory, got {value!r}")
    return str(value)


def _build(path: Path, line: int, data: Any, base: Expectations, key_lines: Mapping[Any, int]) -> Expectations:
    """Expectations of one scenario (or the defaults) at `line`; an error names the line of the key at fault."""
    if data is None:
        return replace(base, line=line, source=path)
    if not isinstance(data, Mapping):
        raise ScenarioFormatError(path, line, f"expectations must be a mapping, got {data!r}")
    values: dict[str, Any] = {"line": line, "source": path}
    lines = dict(base.key_lines)
    for key, value in data.items():
        at = lines[key] = key_lines.get(key, line)
        if key in NUMBERS:
            problem = NUMBERS[key].check(value)
            if problem is not None:
                raise ScenarioFormatError(path, at, f"{key!r} {problem}, got {value!r}")
            values[key] = value if NUMBERS[key].whole else float(value)
        elif key == "model":
            _check(path, at, key, value, str, "a model name")
            values[key] = value
        elif key == "fault":
            if not isinstance(value, str) or not faults.known(value):
                raise ScenarioFormatError(path, at, f"unknown fault {value!r} (known: {faults.names()})")
            values[key] = value
        elif key == "output_file":
            _check(path, at, key, value, str, "a path relative to the rootdir")
            if Path(value).is_absolute() or ".." in Path(value).parts:
                raise ScenarioFormatError(path, at, f"'output_file' must stay inside the rootdir, got {value!r}")
            values[key] = value
        elif key in ("must_contain", "markers"):
            values[key] = _str_list(path, at, key, value)
        elif key == "rubric":
            values["rubric"], values["rubric_with"] = _rubric(path, at, value)
        elif key in ("workspace", "solution"):
            values[key] = _relative_path(path, at, key, value)
        elif key == "changes":
            values[key] = _changes(path, at, value, base.changes)
        elif key == "commands":
            values[key] = _commands(path, at, value, base.commands)
        elif key == "check":
            _check(path, at, key, value, str, "a shell command")
            values[key] = value
        elif key in ("skip", "xfail"):
            values[key] = _reason(value, key)
        else:
            known = ", ".join(
                sorted(f.name for f in Expectations.__dataclass_fields__.values() if f.name not in _NOT_KEYS)
            )
            raise ScenarioFormatError(path, at, f"unknown expectation key {key!r} (known: {known})")
    return replace(base, **values, key_lines=lines)


def _inner(lines: Mapping[tuple[Any, ...], int], key: Any) -> dict[Any, int]:
    """Lines of the keys under the top-level `key`."""
    return {path[1]: line for path, line in lines.items() if len(path) == 2 and path[0] == key}


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
        lines = yaml_key_lines(text, depth=2)
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioFormatError(path, 1, f"cannot read expectations: {exc}") from exc
    except yaml.YAMLError as exc:
        line = 1 + yaml_error_line(exc)
        raise ScenarioFormatError(path, line, f"invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if data is None:
        return ExpectationFile(path=path)
    if not isinstance(data, dict):
        raise ScenarioFormatError(path, 1, "expectations must be a mapping of scenario index or name to keys")
    scenario_list = list(scenarios)
    names = {s.name: s.index for s in scenario_list}
    names.update({s.label: s.index for s in scenario_list})
    defaults = _build(
        path, lines.get(("defaults",), 1), data.get("defaults"), Expectations(), _inner(lines, "defaults")
    )
    by_index = {s.index: replace(defaults, line=0, source=None) for s in scenario_list}
    for key, value in data.items():
        if key == "defaults":
            continue
        line = lines.get((key,), 1)
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
        by_index[index] = _build(path, line, value, defaults, _inner(lines, key))
    return ExpectationFile(path=path, by_index=by_index)
