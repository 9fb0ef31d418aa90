"""What the scripted model answers: the output items of one turn of codex (a reasoning item, a commentary preamble,
the shell call that writes the scenario's file, then the final message), of the Agents SDK orchestrator and of
the grader. Deterministic: the same request gets the same items, whatever the transport."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_interllm.faults import Fault, WritePlan
from pytest_interllm.providers.audit import user_texts
from pytest_interllm.providers.document import ScenarioRequest, read_scenario, render_document, write_command
from pytest_interllm.rubric import read_request, scripted_verdicts
from pytest_interllm.workspace import solution_for

CALL_PREFIX = "interllm_write_"
_CWD = re.compile(r"<cwd>([^<]+)</cwd>")  # codex's environment context
PATCH_EOF = "INTERLLM_PATCH"
ORCHESTRATOR_PREFIX = "interllm_codex_"
AGENT_PREFIX = "interllm_agent_"
AGENT_TOOLS = "multi_agent_v1"  # codex's namespace of sub-agent tools (spawn_agent, wait_agent, ...)
# A model codex accepts for a sub-agent (spawn_agent refuses names it does not know), not the expected one.
SUBAGENT_MODEL = "gpt-5.6-luna"
# The codex call arguments an orchestrator's instructions state as `key: value` lines (a list bullet allowed).
CODE_MODE = "code:exec"
_ARG = re.compile(r"^\s*(?:[-*]\s*)?(model|cwd|sandbox|approval-policy):\s*`?([^`\s][^`]*?)`?\s*$", re.MULTILINE)


def tool_names(body: dict[str, Any]) -> set[str]:
    """The names of the tools a request offers; `code:exec` when codex offers its tools only inside JavaScript
    (code mode, gpt-6 models: an `additional_tools` input item whose `functions` namespace holds `exec`)."""
    names = {str(t.get("name")) for t in body.get("tools") or [] if isinstance(t, dict) and t.get("name")}
    for item in body.get("input") or []:
        if isinstance(item, dict) and item.get("type") == "additional_tools":
            for space in item.get("tools") or []:
                inner = space.get("tools") or [] if isinstance(space, dict) else []
                if space.get("name") == "functions" and any(t.get("name") == "exec" for t in inner):
                    names.add(CODE_MODE)
    return names


def _outputs(items: Any, prefix: str, kinds: tuple[str, ...] = ("function_call_output",)) -> list[dict[str, Any]]:
    """The outputs codex sent back for the calls the scripted model made (`prefix` marks its call ids)."""
    return [
        i
        for i in items
        if isinstance(i, dict) and i.get("type") in kinds and str(i.get("call_id", "")).startswith(prefix)
    ]


@dataclass(frozen=True)
class Solution:
    """A solution file: the hunks of an apply_patch patch (between `*** Begin Patch` and `*** End Patch`, or the
    whole text without them), the commands run after it (lines `$ command`), the web searches made before it
    (lines `? query`) and the MCP tools called before it (lines `! server.tool {json arguments}`)."""

    hunks: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    tools: tuple[tuple[str, str, dict[str, Any]], ...] = ()


def read_solution(text: str) -> Solution:
    """The `Solution` a solution file holds."""
    hunks: list[str] = []
    commands: list[str] = []
    searches: list[str] = []
    tools: list[tuple[str, str, dict[str, Any]]] = []
    inside = False
    for line in text.splitlines():
        if line.strip() == "*** Begin Patch":
            inside = True
        elif line.strip() == "*** End Patch":
            inside = False
        elif not inside and line.startswith("$ "):
            commands.append(line[2:].strip())
        elif not inside and line.startswith("? "):
            searches.append(line[2:].strip())
        elif not inside and line.startswith("! "):
            name, _, args = line[2:].strip().partition(" ")
            server, _, tool = name.partition(".")
            tools.append((server, tool, json.loads(args or "{}")))
        elif inside or (line.startswith("*** ") or hunks):
            hunks.append(line)
    return Solution(tuple(hunks), tuple(commands), tuple(searches), tuple(tools))


class Script:
    """The scripted model's answers; `next_id` numbers its items (shared by every scenario of the server)."""

    def __init__(self, next_id: Callable[[], int]) -> None:
        self.next_id = next_id

    def answer(self, body: dict[str, Any], fault: Fault | None = None) -> list[dict[str, Any]]:
        """The output items for one request; in a scenario's own workspace (codex's cwd), the patch and commands
        that solve it there."""
        graded = read_request(body)
        if graded is not None:  # a grader's request: judged by phrase matching, not by a model
            return [self.message(json.dumps({"criteria": scripted_verdicts(*graded)}))]
        items = body.get("input") or []
        tools = tool_names(body)
        if "codex" in tools and "exec_command" not in tools:
            return self._orchestrate(body, items, fault)
        outputs = _outputs(items, CALL_PREFIX, ("function_call_output", "custom_tool_call_output"))
        texts = user_texts(items)
        scenario = read_scenario("\n".join(texts))
        cwd = next((found.group(1) for t in texts for found in [_CWD.search(t)] if found), None)
        solution = solution_for(cwd) if cwd else None
        if solution is not None and scenario.output_path is not None:
            return self._in_workspace(scenario, solution, fault, tools, outputs)
        if outputs:
            return [self.message(self._final_text(scenario, outputs[-1]), "final_answer")]
        if scenario.output_path is None:
            return [self.message("I found no output file path in the prompt, so I wrote nothing.", "final_answer")]
        plan = WritePlan(path=scenario.output_path)
        plan = fault.shape_plan(plan) if fault is not None else plan
        if plan.delegate and AGENT_TOOLS in tools:
            delegated = self._delegate(items)
            if delegated is not None:
                return [delegated]
        document = render_document(scenario)
        if plan.reply_instead:
            return [self.message(f"Here is the plan for '{scenario.title}':\n\n{document}", "final_answer")]
        preamble = self.message(f"I'll write the plan for '{scenario.title}' to {plan.path}.", "commentary")
        call = self._write_call(plan, document, tools)
        return (
            [preamble, call]
            if call is not None
            else [
                self.message(f"No file tool was offered; here is the document instead:\n\n{document}", "final_answer")
            ]
        )

    def _in_workspace(
        self,
        scenario: ScenarioRequest,
        solution: str,
        fault: Fault | None,
        tools: set[str],
        outputs: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """A scenario in its own workspace, one step per request: the patch (its solution and the report file) with
        codex's patch tool, then the solution's commands, then the final message."""
        assert scenario.output_path is not None
        plan = WritePlan(path=scenario.output_path)
        plan = fault.shape_plan(plan) if fault is not None else plan
        solved = read_solution(solution)
        report = render_document(scenario)
        patch = ["*** Begin Patch"]
        if not plan.broken:
            patch += solved.hunks
        patch += [f"*** Add File: {plan.path}", *(f"+{line}" for line in report.splitlines())]
        if plan.stray:
            patch += ["*** Add File: STRAY.md", "+A note nobody asked for."]
        patch.append("*** End Patch")
        # The patch, then the commands, then the MCP tools codex offers (`mcp__<server>` namespaces): last, because
        # codex starts its MCP servers while the turn begins and may leave a tool out of its first requests; a tool
        # offered late then shifts no step before it.
        steps: list[tuple[str, str]] = [("patch", "\n".join(patch) + "\n")]
        if plan.unreported:  # a file changed on disk that no patch reports and no command names
            steps.append(
                (
                    "exec",
                    "find . -path ./.git -prune -o -path ./outputs -prune -o -type f -print | sort | head -n 1 "
                    "| while read -r f; do printf '\\n' >> \"$f\"; done",
                )
            )
        if plan.forbidden:
            steps.append(("exec", "rm -rf build"))
        steps += [("exec", command) for command in solved.commands]
        steps += [
            ("mcp", json.dumps([server, tool, args]))
            for server, tool, args in solved.tools
            if f"mcp__{server}" in tools
        ]
        if len(outputs) >= len(steps):
            first = outputs[0].get("output", "")
            text = first if isinstance(first, str) else json.dumps(first)
            if "Success" in text or re.search(r"exit(?:ed with)? code:? 0\b", text):
                return [self.message(f"Done: '{scenario.title}'. The report is in {plan.path}.", "final_answer")]
            return [self.message(f"The patch for '{scenario.title}' failed:\n{text[:2000]}", "final_answer")]
        kind, text = steps[len(outputs)]
        call_id = f"{CALL_PREFIX}{self.next_id()}"
        if kind == "mcp":
            server, tool, args = json.loads(text)
            call: dict[str, Any] = {**self.function_call(call_id, tool, args), "namespace": f"mcp__{server}"}
        elif kind == "patch" and "apply_patch" in tools:
            call = {
                "type": "custom_tool_call",
                "id": f"ctc_{call_id}",
                "call_id": call_id,
                "name": "apply_patch",
                "input": text,
                "status": "completed",
            }
        else:
            command = f"apply_patch <<'{PATCH_EOF}'\n{text}{PATCH_EOF}\n" if kind == "patch" else text
            call = self.function_call(call_id, "exec_command", {"cmd": command})
        if outputs:
            return [call]
        looked = [self.web_search(query) for query in solved.searches]  # the hosted tool: the backend searched
        return [*looked, self.message(f"I'll work on '{scenario.title}' in the workspace.", "commentary"), call]

    def _write_call(self, plan: WritePlan, document: str, tools: set[str]) -> dict[str, Any] | None:
        """The tool call that writes the document with whichever tool codex offers."""
        path = plan.path
        call_id = f"{CALL_PREFIX}{self.next_id()}"
        if "exec_command" in tools:
            cmd: dict[str, Any] = {"cmd": write_command(path, document)}
            if plan.workdir is not None:
                cmd["workdir"] = plan.workdir
            return self.function_call(call_id, "exec_command", cmd)
        if CODE_MODE in tools:  # code mode: the shell tool is called from JavaScript, `exec`'s input
            request: dict[str, Any] = {"cmd": write_command(path, document)}
            if plan.workdir is not None:
                request["workdir"] = plan.workdir
            script = f"const result = await tools.exec_command({json.dumps(request)});\ntext(JSON.stringify(result));"
            return {
                "type": "custom_tool_call",
                "id": f"ctc_{call_id}",
                "call_id": call_id,
                "name": "exec",
                "input": script,
                "status": "completed",
            }
        if "shell" in tools:
            return self.function_call(call_id, "shell", {"command": ["bash", "-c", write_command(path, document)]})
        if "apply_patch" in tools:
            patch = "\n".join(
                ["*** Begin Patch", f"*** Add File: {path}"]
                + [f"+{line}" for line in document.splitlines()]
                + ["*** End Patch"]
            )
            return {
                "type": "custom_tool_call",
                "id": f"ctc_{call_id}",
                "call_id": call_id,
                "name": "apply_patch",
                "input": patch,
                "status": "completed",
            }
        return None

    def _delegate(self, items: Any) -> dict[str, Any] | None:
        """The `subagent-model` fault: spawn a sub-agent on another model and wait for it, then go on as usual.

        Codex's session stays on the expected model; only the provider's requests show the sub-agent's model.
        """
        done = _outputs(items, AGENT_PREFIX)
        call_id = f"{AGENT_PREFIX}{self.next_id()}"
        if not done:
            message = "Review the wording of the plan and reply with one sentence."
            call = self.function_call(call_id, "spawn_agent", {"message": message, "model": SUBAGENT_MODEL})
            return {**call, "namespace": AGENT_TOOLS}
        if len(done) == 1:
            try:
                agent = json.loads(str(done[0].get("output") or "{}")).get("agent_id")
            except (ValueError, AttributeError):
                return None  # codex refused the spawn: nothing to wait for
            call = self.function_call(call_id, "wait_agent", {"targets": [agent], "timeout_ms": 30000})
            return {**call, "namespace": AGENT_TOOLS}
        return None

    def _orchestrate(self, body: dict[str, Any], items: Any, fault: Fault | None) -> list[dict[str, Any]]:
        """The orchestrator of the Agents SDK executor: one `codex` tool call, then codex's answer as its own."""
        outputs = _outputs(items, ORCHESTRATOR_PREFIX)
        if outputs:
            output = outputs[-1].get("output", "")
            text = output if isinstance(output, str) else json.dumps(output)
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                parsed = [parsed]
            if isinstance(parsed, list):  # the SDK hands MCP content over as a list of text parts
                text = "\n".join(str(p.get("text", "")) for p in parsed if isinstance(p, dict)) or text
            return [self.message(text)]
        args: dict[str, Any] = {"prompt": "\n".join(user_texts(items))}
        for found in _ARG.finditer(str(body.get("instructions") or "")):
            args[found.group(1)] = found.group(2).strip()
        if fault is not None and fault.by_call:  # what a faulty executor does to its call, the orchestrator does
            args = fault.shape_call(args)
        return [self.function_call(f"{ORCHESTRATOR_PREFIX}{self.next_id()}", "codex", args)]

    @staticmethod
    def _final_text(scenario: ScenarioRequest, output: dict[str, Any]) -> str:
        raw = output.get("output", "")
        text = raw if isinstance(raw, str) else json.dumps(raw)
        if re.search(r'exited with code 0\b|exit code:? 0\b|\\?"exit_code\\?":\s*0\b', text, re.IGNORECASE):
            return f"Wrote the plan for '{scenario.title}' to {scenario.output_path}."
        return f"I could not write {scenario.output_path}; the command reported:\n{text[:2000]}"

    @staticmethod
    def function_call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "function_call",
            "id": f"fc_{call_id}",
            "call_id": call_id,
            "name": name,
            "arguments": json.dumps(args),
            "status": "completed",
        }

    def web_search(self, query: str) -> dict[str, Any]:
        """A web search the backend made for the model (a hosted tool: codex only reports it)."""
        action = {"type": "search", "query": query}
        return {"type": "web_search_call", "id": f"ws_{self.next_id()}", "status": "completed", "action": action}

    def message(self, text: str, phase: str | None = None) -> dict[str, Any]:
        """An assistant message; codex tells a preamble (`commentary`) from the answer (`final_answer`)."""
        item: dict[str, Any] = {
            "type": "message",
            "id": f"msg_{self.next_id()}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }
        return {**item, "phase": phase} if phase else item

    def reasoning(self, items: list[dict[str, Any]], sealed: Callable[[str], str]) -> dict[str, Any]:
        """The reasoning item a reasoning model sends before its answer: a summary, and its encrypted content (which
        codex must send back with the next request of the turn, `store: false`)."""
        what = next((i.get("name") for i in items if i.get("type") in ("function_call", "custom_tool_call")), None)
        summary = f"**Planning the next step**\n\nI will {'call ' + str(what) if what else 'answer the user'}."
        reasoning_id = f"rs_{self.next_id()}"
        return {
            "type": "reasoning",
            "id": reasoning_id,
            "summary": [{"type": "summary_text", "text": summary}],
            "encrypted_content": sealed(reasoning_id),
        }
