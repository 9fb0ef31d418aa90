"""The assertions of a scenario on what the agent did to its workspace (issue 24): the workspace diff against the
`changes:` rules and the changes the agent reported, its commands against `commands:`, and the `check:` command."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from pytest_interllm.errors import ScenarioFailure
from pytest_interllm.expectations import ALWAYS_NEVER, Changes, Expectations
from pytest_interllm.outcome import ScenarioOutcome
from pytest_interllm.trajectory import commands, reported_changes
from pytest_interllm.workspace import inside_path, matches


def _diff_lines(outcome: ScenarioOutcome, limit: int = 12) -> list[str]:
    diff = outcome.workspace_diff or []
    lines = [f"workspace diff: {len(diff)} file(s)"] + [
        f"  {d['kind']} {d['path']}" + (" (binary)" if d.get("binary") else "") for d in diff[:limit]
    ]
    return lines + ([f"  … {len(diff) - limit} more"] if len(diff) > limit else [])


def _step_lines(outcome: ScenarioOutcome) -> list[str]:
    lines = []
    for step in outcome.trajectory:
        if step["kind"] == "command":
            code = "?" if step.get("exit_code") is None else step["exit_code"]
            lines.append(f"ran `{str(step['command']).splitlines()[0][:160]}` (exit {code})")
        elif step["kind"] == "file_change":
            lines.append(f"reported {step['change']} {step['path']}")
    return lines


def changes_failure(outcome: ScenarioOutcome, expect: Expectations | None) -> ScenarioFailure | None:
    """The workspace diff against the scenario's `changes:` rules and against what the agent reported."""
    if outcome.workspace_diff is None:
        return None
    rules = expect.changes if expect is not None and expect.changes is not None else Changes()
    where = f" ({expect.source}:{expect.line_of('changes')})" if expect is not None and expect.source else ""
    evidence = _diff_lines(outcome) + _step_lines(outcome)
    changed = {d["path"]: d["kind"] for d in outcome.workspace_diff}
    reported = reported_changes(outcome.trajectory)
    ran = commands(outcome.trajectory)
    own = inside_path(outcome.output_path, PurePosixPath(outcome.output_path).name)
    for path in changed:
        glob = matches(path, (*ALWAYS_NEVER, *rules.never))
        if glob is not None:
            return ScenarioFailure(
                "changes-failed", f"changes.never: {path} {changed[path]} (matches {glob!r}){where}", evidence
            )
    for path in reported:
        if PurePosixPath(path).is_absolute():
            return ScenarioFailure(
                "changes-failed", f"changes.never: the agent changed {path}, outside its workspace{where}", evidence
            )
    for path, kind in changed.items():
        named = any(path in c or PurePosixPath(path).name in c for c in ran)
        if path not in reported and not named:
            return ScenarioFailure(
                "changes-failed",
                f"unreported change: {path} {kind} on disk, but the agent reported no change to it "
                "(no patch and no command of the agent names it)",
                evidence,
            )
    for path, kind in reported.items():
        if path not in changed:
            return ScenarioFailure(
                "changes-failed",
                f"reported change not on disk: the agent reported {kind} {path}, the workspace shows no change",
                evidence,
            )
    if rules.only is not None:
        for path in changed:
            if path != own and matches(path, rules.only) is None:
                return ScenarioFailure(
                    "changes-failed",
                    f"changes.only: {path} {changed[path]}, not allowed by {list(rules.only)}{where}",
                    evidence,
                )
    for glob in rules.must:
        if not any(matches(path, (glob,)) for path in changed):
            return ScenarioFailure(
                "changes-failed", f"changes.must: no file matching {glob!r} changed{where}", evidence
            )
    return None


def commands_failure(outcome: ScenarioOutcome, expect: Expectations | None) -> ScenarioFailure | None:
    """The agent's commands against the scenario's `commands:` rules."""
    rules = expect.commands if expect is not None else None
    if rules is None:
        return None
    assert expect is not None
    where = f" ({expect.source}:{expect.line_of('commands')})" if expect.source else ""
    ran = commands(outcome.trajectory)
    evidence = _step_lines(outcome) or ["the agent ran no command"]
    for command in ran:
        for pattern in rules.never_run:
            if re.search(pattern, command):
                first = command.splitlines()[0][:160] if command else ""
                return ScenarioFailure(
                    "commands-failed", f"commands.never_run: ran `{first}` (matches '{pattern}'){where}", evidence
                )
    for pattern in rules.must_run:
        if not any(re.search(pattern, command) for command in ran):
            return ScenarioFailure(
                "commands-failed", f"commands.must_run: no command matched '{pattern}'{where}", evidence
            )
    if rules.max is not None and len(ran) > rules.max:
        return ScenarioFailure(
            "commands-failed", f"commands.max: ran {len(ran)} commands, at most {rules.max} allowed{where}", evidence
        )
    return None


def check_failure(outcome: ScenarioOutcome) -> ScenarioFailure | None:
    """The scenario's `check:` command, run in the workspace after the agent stopped: its exit code decides."""
    check = outcome.check
    if check is None or (check["exit_code"] == 0 and not check["timed_out"]):
        return None
    output = [f"  {line}" for line in str(check["output"]).strip().splitlines()[-30:]] or ["  (no output)"]
    evidence = ["check output:", *output, *_diff_lines(outcome)]
    if check["timed_out"]:
        head = f"check `{check['command']}` timed out after {check['duration']:.1f}s (killed)"
    else:
        head = f"check `{check['command']}` exited {check['exit_code']}"
    return ScenarioFailure("check-failed", head, evidence)
