"""The CI gate: `--interllm-fail-under RATE` (the run's pass rate, or with `--interllm-gate lower-bound` the lower
end of its 95% interval) and `--interllm-fail-on regressed` (a significant regression against the baseline).

With a gate the numbers decide the session, not each agent failure: exit 0 when the gate holds, `GATE_FAILED`
when it does not. A failure that is not the agent's (infrastructure, configuration, a test of yours) measured
nothing, so it still fails the session as pytest says (exit 1) when the gate holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from pytest_interllm.report.baseline import Change
from pytest_interllm.report.numbers import Tally

GATE_FAILED = 6  # the session's exit code when the gate fails: pytest's own codes are 0 to 5


@dataclass(frozen=True)
class Gate:
    """What the run is gated on (nothing, when neither option is given)."""

    fail_under: float | None = None
    gate: str = "point"
    fail_on: str | None = None

    @property
    def active(self) -> bool:
        return self.fail_under is not None or self.fail_on is not None


@dataclass(frozen=True)
class Judgement:
    """The gate's verdict: whether it failed, a line per check with its numbers, and the exit status it sets."""

    failed: bool
    checks: list[str] = field(default_factory=list)
    not_agents: list[str] = field(default_factory=list)  # failures the gate cannot forgive: not the agent's
    exit_status: int | None = None  # None: pytest's own status stands
    status: int = 0  # pytest's own exit status

    def record(self, gate: Gate) -> dict[str, Any]:
        """The gate's part of the JSONL summary record."""
        return {
            "fail_under": gate.fail_under,
            "gate": gate.gate,
            "fail_on": gate.fail_on,
            "failed": self.failed,
            "checks": list(self.checks),
            "exit_status": self.exit_status,
            "pytest_status": self.status,
        }


def judge(
    gate: Gate, run: Tally, changes: list[Change] | None, not_agents: list[str], status: int, stopped: bool = False
) -> Judgement:
    """Judge the run: `run` its attempts, `changes` the baseline comparison, `not_agents` the failed tests that were
    not the agent's doing, `status` pytest's exit status (only 0 and 1 are ever changed), `stopped` whether the run
    stopped early (`-x`, `--maxfail`): the numbers of part of a run decide nothing, so pytest's status stands."""
    checks, failed = [], False
    if gate.fail_under is not None:
        low, _ = run.interval
        value, what = (
            (low, "lower bound of the pass rate's 95% CI") if gate.gate == "lower-bound" else (run.rate, "pass rate")
        )
        if value is None:
            checks.append(f"fail under {gate.fail_under:g}: no attempt measured the agent: FAILED")
            failed = True
        else:
            held = value >= gate.fail_under
            failed |= not held
            checks.append(
                f"{what} {value:.1%} {'≥' if held else '<'} {gate.fail_under:.1%} ({run.text()}): "
                + ("held" if held else "FAILED")
            )
    if gate.fail_on == "regressed":
        regressed = [c for c in changes or [] if c.status == "regressed"]
        failed |= bool(regressed)
        checks.append(
            f"{len(regressed)} scenario{'' if len(regressed) == 1 else 's'} regressed significantly"
            + (f": {', '.join(c.name for c in regressed)}: FAILED" if regressed else ": held")
        )
    exit_status = None
    if status in (0, 1) and not stopped:
        exit_status = GATE_FAILED if failed else (1 if not_agents else 0)
    return Judgement(failed, checks, list(not_agents), exit_status, status)


def lines(judgement: Judgement) -> list[str]:
    """The gate's account for the terminal: each check, and the exit status it set."""
    shown = [f"interllm: gate: {check}" for check in judgement.checks]
    if judgement.exit_status == GATE_FAILED:
        shown.append(f"interllm: gate FAILED: exit status {GATE_FAILED}")
    elif judgement.exit_status == 1:
        shown.append(
            f"interllm: gate held, but {len(judgement.not_agents)} failed test(s) were not the agent's doing "
            f"({', '.join(judgement.not_agents[:3])}{', …' if len(judgement.not_agents) > 3 else ''}): exit status 1"
        )
    elif judgement.exit_status == 0:
        shown.append("interllm: gate held: exit status 0")
    else:
        shown.append(f"interllm: {not_applied(judgement)}")
    return shown


def not_applied(judgement: Judgement) -> str:
    """Why the gate left pytest's exit status alone."""
    return (
        f"gate not applied: pytest's exit status {judgement.status} stands (the run was interrupted, stopped early "
        "or ran no test)"
    )


def markdown(judgement: Judgement) -> str:
    """The gate's section of the markdown summary (`$GITHUB_STEP_SUMMARY`)."""
    head = "### Gate ❌ failed" if judgement.failed else "### Gate ✅ held"
    lines = [head, "", *[f"- {check}" for check in judgement.checks]]
    if judgement.exit_status == 1:
        lines.append(f"- not the agent's doing, so not forgiven by the gate: {', '.join(judgement.not_agents)}")
    if judgement.exit_status is not None:
        lines += ["", f"exit status {judgement.exit_status}"]
    else:
        lines += ["", not_applied(judgement)]
    return "\n".join(lines) + "\n"


def html(judgement: Judgement) -> str:
    """The gate's section of the report's summary."""
    head = "Gate: FAILED" if judgement.failed else "Gate: held"
    items = "".join(f"<li>{escape(check)}</li>" for check in judgement.checks)
    status = (
        f"<p>exit status {judgement.exit_status}</p>"
        if judgement.exit_status is not None
        else f"<p>{escape(not_applied(judgement))}</p>"
    )
    return f'<h3 class="{"bad" if judgement.failed else "ok"}">{head}</h3><ul>{items}</ul>{status}'
