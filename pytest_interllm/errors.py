"""Failure classes: what went wrong, the evidence, and what to check next."""

from __future__ import annotations

HINTS: dict[str, str] = {
    "model-mismatch": "check the model passed in the codex call, `model`/profiles in CODEX_HOME/config.toml, "
    "OPENAI_DEFAULT_MODEL, and the model of any sub-agent the agent spawned",
    "empty-model": "the model reached codex as an empty string: check INTERLLM_MODEL in .env and the environment",
    "provider-error": "the model provider refused the request: check the HTTP status, the API key and the base URL",
    "usage-limit": "your plan's usage limit is reached: the run stopped and the remaining scenarios were skipped; "
    "run again after the reset time, or with an API key (OPENAI_API_KEY) instead of the ChatGPT login",
    "exec-not-found": "codex ran a command or working directory that does not exist: see the tool calls",
    "sandbox-denied": "the sandbox blocked a write: check --interllm-sandbox and that the output path is inside "
    "the rootdir",
    "mcp-protocol": "codex answered the MCP call with something the client could not use: see the raw error",
    "no-output-file": "the agent did not create the output file: read final_output, it may have answered in the "
    "conversation instead",
    "expectation-failed": "the output file does not meet the scenario's expectations in scenarios/<list>.yaml",
    "timeout": "no answer within the scenario timeout: raise --interllm-timeout or check the provider",
    "codex-crashed": "the codex server process died during the call: see codex's stderr below",
    "config-mismatch": "codex ran with another sandbox, approval policy or working directory than the run asked "
    "for: check the codex call's arguments (or the orchestrator's), and sandbox_mode/profiles in "
    "CODEX_HOME/config.toml",
    "rubric-failed": "the grader judged the output file against the rubric in scenarios/<list>.yaml: read each "
    "criterion's reason (offline, the scripted grader matches quoted phrases and content words)",
    "cassette-mismatch": "codex asked for something the cassette does not hold: re-record with "
    "--interllm-provider record --interllm-record-mode all (or new_episodes), or restore the scenario text",
    "codex-missing": "install openai-codex-cli-bin==0.153.4 or point --interllm-codex at a codex that has mcp-server",
}
FAILURE_CLASSES = tuple(HINTS)


class ScenarioFailure(Exception):
    """A scenario that ran and failed: one class, a one-line cause, the evidence and a hint."""

    def __init__(
        self,
        failure_class: str,
        headline: str,
        evidence: list[str] | None = None,
        hint: str | None = None,
        stops_run: str | None = None,
    ) -> None:
        assert failure_class in HINTS, failure_class
        super().__init__(f"[{failure_class}] {headline}")
        self.failure_class = failure_class
        self.headline = headline
        self.evidence = evidence or []
        self._hint = hint  # what to check when the class's general hint would point elsewhere
        # Why no later scenario can pass either (a spent plan, a login gone): the run stops, the rest are skipped.
        self.stops_run = stops_run

    @property
    def hint(self) -> str:
        return self._hint or HINTS[self.failure_class]

    def render(self) -> str:
        """The long representation: cause, evidence lines, what to check next."""
        lines = [str(self)]
        if self.evidence:
            lines.append("evidence:")
            lines += [f"  {line}" for line in self.evidence]
        lines.append(f"check next: {self.hint}")
        return "\n".join(lines)
