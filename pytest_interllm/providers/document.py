"""What the scripted model writes: the scenario read back out of codex's prompt, and a real markdown plan for it
(goal, steps, checklist, verification, rollback), written by a shell command codex runs."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_EOF = "INTERLLM_EOF"
_PATH_PATTERNS = (
    re.compile(r"to the file `([^`\n]+)`"),
    re.compile(r"`([^`\s]+\.(?:md|markdown|txt))`"),
    re.compile(r"(\S+/scenario_\d+\.md)"),
)
_TITLE = re.compile(r"^\s*Scenario (\d+): (.+)$", re.MULTILINE)
_STEP = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?(.+)$")


@dataclass(frozen=True)
class ScenarioRequest:
    """What the scripted model read out of codex's prompt."""

    index: str | None
    title: str
    steps: tuple[str, ...]
    output_path: str | None


def read_scenario(prompt: str) -> ScenarioRequest:
    """Pull the scenario's title, steps and output path out of a rendered prompt."""
    path = None
    for pattern in _PATH_PATTERNS:
        found = pattern.search(prompt)
        if found:
            path = found.group(1).strip()
            break
    title_match = _TITLE.search(prompt)
    index, title = (title_match.group(1), title_match.group(2).strip()) if title_match else (None, "Scenario")
    steps = []
    for line in prompt.splitlines():
        step = _STEP.match(line)
        if step and (path is None or path not in step.group(1)):
            steps.append(step.group(1).strip())
    return ScenarioRequest(index=index, title=title, steps=tuple(steps), output_path=path)


def render_document(scenario: ScenarioRequest) -> str:
    """A real markdown plan for the scenario: goal, numbered steps, checklist, verification."""
    steps = list(scenario.steps) or [f"Carry out: {scenario.title}"]
    heading = f"Scenario {scenario.index}: {scenario.title}" if scenario.index else scenario.title
    lines = [f"# {heading}", "", "## Goal", "", f"{scenario.title}.", "", "## Plan", ""]
    lines += [f"{n}. {step}" for n, step in enumerate(steps, 1)]
    lines += ["", "## Checklist", ""]
    lines += [f"- [ ] {step}" for step in steps]
    lines += [
        "",
        "## Verification",
        "",
        "- Compare source and target row counts (or object counts) after the transfer.",
        "- Compare checksums of a sample of records on both sides.",
        "- Record start time, end time and volume moved in the run log.",
        "",
        "## Rollback",
        "",
        "- Keep the source untouched until verification passes; re-run from the last checkpoint on failure.",
        "",
    ]
    return "\n".join(line for line in lines if _EOF not in line)


def write_command(path: str, document: str) -> str:
    """A shell command that creates the file's directory and writes the document into it."""
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    return f"mkdir -p {shlex.quote(parent)} && cat > {shlex.quote(path)} <<'{_EOF}'\n{document}\n{_EOF}\n"
