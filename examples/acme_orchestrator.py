"""An orchestrator in the style of the field report's script: an OpenAI Agents SDK `Agent` that hands each
data-transfer scenario to codex through its MCP server. Test it with the plugin's scenarios and evidence:

    pytest --interllm input/DataTransferScenarioList.md --interllm-agent examples.acme_orchestrator:build

The plugin calls `build(codex, model)` for each scenario: `codex` is the codex MCP server it configured (its
codex, an isolated CODEX_HOME, the run's audited provider, cwd = the rootdir) and `model` the model the
orchestrator is expected to run (`--interllm-orchestrator-model`, default the expected model).
"""

from __future__ import annotations

from typing import Any

from agents import Agent

INSTRUCTIONS = """\
You coordinate the OpenAI Codex agent for the data-transfer team.
For each request, call the `codex` tool exactly once with the user's message as its prompt and these arguments:
model: gpt-5-codex
sandbox: workspace-write
approval-policy: never
When codex answers, reply with its answer unchanged. Never write the plan yourself.
"""


def build(codex: Any, model: str) -> Agent:
    """The orchestrator for one scenario, with an explicit model."""
    return Agent(name="acme-orchestrator", model=model, instructions=INSTRUCTIONS, mcp_servers=[codex])
