"""Failure classes: what went wrong, who caused it, the evidence, and what to check next."""

from __future__ import annotations

from dataclasses import dataclass

# Who caused a failure. Pass rates count the agent's attempts only; the other two are counted and shown apart.
AGENT = "agent"  # the agent did the wrong thing: it measures the agent
INFRASTRUCTURE = "infrastructure"  # the provider, the network or codex failed: it says nothing of the agent
CONFIGURATION = "configuration"  # the run was not set up as asked: fix the setup, not the agent
GROUPS = (AGENT, INFRASTRUCTURE, CONFIGURATION)


@dataclass(frozen=True)
class FailureClass:
    """One failure class: its name, who causes it (the first group unless the evidence names another), the hint."""

    name: str
    groups: tuple[str, ...]
    hint: str
    coming: str = ""  # named here for an issue that will raise it; nothing raises it yet

    @property
    def group(self) -> str:
        return self.groups[0]


CLASS_LIST = (
    FailureClass(
        "model-mismatch",
        # The request or the backend changed the model (configuration), unless the agent's own sub-agent chose it:
        # checks.py tells the two apart from the evidence.
        (CONFIGURATION, AGENT),
        "check the model passed in the codex call, `model`/profiles in CODEX_HOME/config.toml, "
        "OPENAI_DEFAULT_MODEL, and the model of any sub-agent the agent spawned",
    ),
    FailureClass(
        "empty-model",
        (CONFIGURATION,),
        "the model reached codex as an empty string: check INTERLLM_MODEL in .env and the environment",
    ),
    FailureClass(
        "provider-error",
        (INFRASTRUCTURE,),
        "the model provider refused the request: check the HTTP status, the API key and the base URL",
    ),
    FailureClass(
        "exec-not-found",
        (CONFIGURATION,),
        "codex ran a command or working directory that does not exist: see the tool calls",
    ),
    FailureClass(
        "sandbox-denied",
        (CONFIGURATION,),
        "the sandbox blocked a write: check --interllm-sandbox and that the output path is inside the rootdir",
    ),
    FailureClass(
        "mcp-protocol",
        (INFRASTRUCTURE,),
        "codex answered the MCP call with something the client could not use: see the raw error",
    ),
    FailureClass(
        "no-output-file",
        (AGENT,),
        "the agent did not create the output file: read final_output, it may have answered in the conversation instead",
    ),
    FailureClass(
        "expectation-failed",
        (AGENT,),
        "the output file does not meet the scenario's expectations in scenarios/<list>.yaml",
    ),
    FailureClass(
        "timeout",
        (INFRASTRUCTURE,),
        "no answer within the scenario timeout: raise --interllm-timeout or check the provider",
    ),
    FailureClass(
        "codex-crashed",
        (INFRASTRUCTURE,),
        "the codex server process died during the call: see codex's stderr below",
    ),
    FailureClass(
        "config-mismatch",
        (CONFIGURATION,),
        "codex ran with another sandbox, approval policy or working directory than the run asked for: check the "
        "codex call's arguments (or the orchestrator's), and sandbox_mode/profiles in CODEX_HOME/config.toml",
    ),
    FailureClass(
        "rubric-failed",
        (AGENT,),
        "the grader judged the output file against the rubric in scenarios/<list>.yaml: read each criterion's "
        "reason (offline, the scripted grader matches quoted phrases and content words)",
    ),
    FailureClass(
        "cassette-mismatch",
        (INFRASTRUCTURE,),
        "codex asked for something the cassette does not hold: re-record with --interllm-provider record "
        "--interllm-record-mode all (or new_episodes), or restore the scenario text",
    ),
    FailureClass(
        "codex-missing",
        (CONFIGURATION,),
        "install openai-codex-cli-bin==0.153.4 or point --interllm-codex at a codex that has mcp-server",
    ),
    FailureClass(
        "usage-limit",
        (INFRASTRUCTURE,),
        "your plan's usage limit is reached: the run stopped and the remaining scenarios were skipped; "
        "run again after the reset time, or with an API key (OPENAI_API_KEY) instead of the ChatGPT login",
    ),
    FailureClass(
        "changes-failed",
        (AGENT,),
        "the agent's changes to its workspace break the scenario's `changes:` rules: see the workspace diff",
        coming="issue 24",
    ),
    FailureClass(
        "commands-failed",
        (AGENT,),
        "the agent's commands break the scenario's `commands:` rules: see the trajectory",
        coming="issue 24",
    ),
    FailureClass(
        "check-failed",
        (AGENT,),
        "the scenario's `check:` command failed in the agent's workspace: see its output",
        coming="issue 24",
    ),
)
CLASSES: dict[str, FailureClass] = {c.name: c for c in CLASS_LIST}
HINTS: dict[str, str] = {c.name: c.hint for c in CLASS_LIST}
FAILURE_CLASSES = tuple(CLASSES)


def group_of(failure_class: str | None, recorded: str | None = None) -> str:
    """Who caused a failure: the group its record gives, else its class's own. A failure with no class (an item
    that never reached codex: its list, its output path) is the configuration's."""
    if recorded in GROUPS:
        return recorded
    found = CLASSES.get(failure_class or "")
    return found.group if found is not None else CONFIGURATION


class ScenarioFailure(Exception):
    """A scenario that ran and failed: one class, who caused it, a one-line cause, the evidence and a hint."""

    def __init__(
        self,
        failure_class: str,
        headline: str,
        evidence: list[str] | None = None,
        hint: str | None = None,
        group: str | None = None,
        stops_run: str | None = None,
    ) -> None:
        assert failure_class in CLASSES, failure_class
        assert group is None or group in CLASSES[failure_class].groups, (failure_class, group)
        super().__init__(f"[{failure_class}] {headline}")
        self.failure_class = failure_class
        self.headline = headline
        self.evidence = evidence or []
        self.group = group or CLASSES[failure_class].group
        self._hint = hint  # what to check when the class's general hint would point elsewhere
        # Why no later scenario can pass either (a spent plan, a login gone): the run stops, the rest are skipped.
        self.stops_run = stops_run

    @property
    def hint(self) -> str:
        return self._hint or HINTS[self.failure_class]

    def render(self) -> str:
        """The long representation: cause (and who caused it), evidence lines, what to check next."""
        lines = [str(self)]
        if self.evidence:
            lines.append("evidence:")
            lines += [f"  {line}" for line in self.evidence]
        lines.append(
            f"caused by: {self.group}" + (" (not counted in the agent's pass rate)" if self.group != AGENT else "")
        )
        lines.append(f"check next: {self.hint}")
        return "\n".join(lines)
