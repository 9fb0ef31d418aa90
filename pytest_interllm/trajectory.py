"""What the agent did, step by step: the commands it ran, the files it changed, the MCP tools it called and the web
searches it made — built the same way from codex's MCP `codex/event` stream (`exec_command_end`, `patch_apply_end`,
`mcp_tool_call_end`, `web_search_end`) and from app-server items (`commandExecution`, `fileChange`,
`mcpToolCall`, `webSearch`). A step is a plain dict, as the JSONL log keeps it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pytest_interllm.outcome import CodexEvent, ToolCall, command_line, command_text

OUTPUT_TAIL = 1200  # characters of a command's output kept in its step


def _tail(text: str, limit: int = OUTPUT_TAIL) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


def _relative(path: str, root: Path | None) -> str:
    """A path the agent reported, relative to the workspace when it lies inside it."""
    if path.startswith("file://"):  # codex 0.153 reports a command's cwd as a file URL
        path = unquote(path[len("file://") :])
    if root is None or not path:
        return path
    for base in (root, root.resolve()):
        try:
            return Path(path).relative_to(base).as_posix()
        except ValueError:
            continue
    return path


def _seconds(value: Any) -> float | None:
    """codex's durations: `{secs, nanos}` (MCP), a number of milliseconds (app-server), or `"1.2s"`-like text."""
    if isinstance(value, dict):
        return float(value.get("secs", 0)) + float(value.get("nanos", 0)) / 1e9
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _command(event: CodexEvent, root: Path | None) -> dict[str, Any]:
    msg = event.msg
    code = msg.get("exit_code")
    return {
        "kind": "command",
        "command": command_text(msg.get("command")),
        "cwd": _relative(str(msg.get("cwd") or ""), root),
        "exit_code": code if isinstance(code, int) else None,
        "duration": _seconds(msg.get("duration")),
        "output": _tail(str(msg.get("aggregated_output") or msg.get("stdout") or msg.get("stderr") or "")),
    }


def _patch(changes: Any, root: Path | None, ok: bool) -> list[dict[str, Any]]:
    """One step per file of an MCP `patch_apply_*` event's `changes` map (path → {type, unified_diff|content})."""
    steps = []
    # codex keeps the changes in a hash map: sorted by path, so that a replay reports them in the same order
    for path, change in sorted(changes.items()) if isinstance(changes, dict) else []:
        change = change if isinstance(change, dict) else {}
        kind = str(change.get("type", "update"))
        diff = change.get("unified_diff")
        if kind == "add":
            diff = "".join(f"+{line}\n" for line in str(change.get("content") or "").splitlines())
        elif kind == "delete":
            diff = "".join(f"-{line}\n" for line in str(change.get("content") or "").splitlines())
        step: dict[str, Any] = {
            "kind": "file_change",
            "path": _relative(str(path), root),
            "change": kind,
            "diff": str(diff or ""),
        }
        if change.get("move_path"):
            step["move_path"] = _relative(str(change["move_path"]), root)
        step["ok"] = ok
        steps.append(step)
    return steps


def _item(item: dict[str, Any], root: Path | None) -> list[dict[str, Any]]:
    """The steps of one completed app-server `ThreadItem`."""
    kind = item.get("type")
    if kind == "commandExecution":
        code = item.get("exitCode")
        millis = _seconds(item.get("durationMs"))
        return [
            {
                "kind": "command",
                "command": command_line(item.get("command")),
                "cwd": _relative(str(item.get("cwd") or ""), root),
                "exit_code": code if isinstance(code, int) else None,
                "duration": millis / 1000 if millis is not None else None,
                "output": _tail(str(item.get("aggregatedOutput") or "")),
            }
        ]
    if kind == "fileChange":
        ok = item.get("status") == "completed"
        steps = []
        changes = [c for c in item.get("changes") or [] if isinstance(c, dict)]
        for change in sorted(changes, key=lambda c: str(c.get("path", ""))):
            what = change.get("kind")
            name = what.get("type") if isinstance(what, dict) else what
            step: dict[str, Any] = {
                "kind": "file_change",
                "path": _relative(str(change.get("path", "")), root),
                "change": str(name or "update"),
                "diff": str(change.get("diff") or ""),
            }
            moved = what.get("move_path") or what.get("movePath") if isinstance(what, dict) else None
            if moved:
                step["move_path"] = _relative(str(moved), root)
            step["ok"] = ok
            steps.append(step)
        return steps
    if kind == "mcpToolCall":
        millis = _seconds(item.get("durationMs"))
        return [
            {
                "kind": "mcp_tool_call",
                "server": str(item.get("server", "")),
                "tool": str(item.get("tool", "")),
                "arguments": _tail(json.dumps(item.get("arguments"), ensure_ascii=False), 400),
                "ok": not item.get("error") and item.get("status") != "failed",
                "duration": millis / 1000 if millis is not None else None,
                "output": _tail(json.dumps(item.get("error") or item.get("result"), ensure_ascii=False), 400),
            }
        ]
    if kind == "webSearch":
        return [{"kind": "web_search", "query": str(item.get("query", ""))}]
    return []


_PATCH_FILE = re.compile(r"^\*\*\* (Add|Update|Delete) File: (.+)$")
_MOVE = re.compile(r"^\*\*\* Move to: (.+)$")


def _patch_text(text: str, root: Path | None, ok: bool) -> list[dict[str, Any]]:
    """The file changes of an apply_patch patch the agent sent (when codex's own patch events are not available:
    the Agents SDK drops them), one step per file."""
    steps: list[dict[str, Any]] = []
    for line in text.splitlines():
        found = _PATCH_FILE.match(line)
        moved = _MOVE.match(line)
        if found:
            kind = found.group(1).lower()
            steps.append({"kind": "file_change", "path": _relative(found.group(2).strip(), root), "change": kind})
            steps[-1].update(diff="", ok=ok)
        elif moved and steps:
            steps[-1]["move_path"] = _relative(moved.group(1).strip(), root)
        elif steps and line.startswith(("+", "-", " ", "@@")) and line != "*** End Patch":
            steps[-1]["diff"] += line + "\n"
    return steps


def _from_call(call: ToolCall, root: Path | None) -> list[dict[str, Any]]:
    """A tool call codex reported no exec or patch event for (refused before it ran, or events the transport does not
    receive): a command, or the files of a patch."""
    command = call.command
    if command.startswith("apply_patch"):
        ok = call.exit_code == 0 or "Success." in call.output
        return _patch_text(command, root, ok)
    return [
        {
            "kind": "command",
            "command": command,
            "cwd": "",
            "exit_code": call.exit_code,
            "duration": call.duration,
            "output": _tail(call.output),
        }
    ]


def build(
    events: list[CodexEvent], root: Path | None = None, calls: list[ToolCall] | None = None
) -> list[dict[str, Any]]:
    """The trajectory of one attempt from its codex events (MCP or app-server), in the order codex reported it, with
    the tool `calls` codex reported no event for (a command codex refused, the Agents SDK's dropped events);
    paths relative to the workspace `root` when inside it."""
    timed: list[tuple[float, list[dict[str, Any]]]] = []
    seen: set[str] = set()
    sent_back = {call.call_id: call.output for call in calls or [] if call.output.strip()}
    for event in events:
        found = _event(event, root)
        if found:
            timed.append((event.time, found))
            item = event.msg.get("item")
            call_id = str(event.msg.get("call_id") or (item.get("id") if isinstance(item, dict) else "") or "")
            seen.add(call_id)
            for step in found:
                # codex may end a short command before its output is drained (seen under load: an empty
                # aggregated_output); the output the model was sent back for that call is then the evidence
                if step["kind"] == "command" and not step["output"].strip() and call_id in sent_back:
                    step["output"] = _tail(sent_back[call_id])
    for call in calls or []:
        if call.call_id not in seen:
            timed.append((call.started, _from_call(call, root)))
    return [step for _, found in sorted(timed, key=lambda pair: pair[0]) for step in found]


def _event(event: CodexEvent, root: Path | None) -> list[dict[str, Any]]:
    """The steps one codex event (MCP) or notification (app-server) reports."""
    msg = event.msg
    steps: list[dict[str, Any]] = []
    if event.type == "exec_command_end":
        steps.append(_command(event, root))
    elif event.type == "patch_apply_end":
        steps += _patch(msg.get("changes"), root, bool(msg.get("success", True)))
    elif event.type == "mcp_tool_call_end":
        invocation = msg.get("invocation") or {}
        result = msg.get("result")
        ok = isinstance(result, dict) and "Ok" in result and not (result["Ok"] or {}).get("isError")
        said = (result.get("Err") or result.get("Ok")) if isinstance(result, dict) else result
        steps.append(
            {
                "kind": "mcp_tool_call",
                "server": str(invocation.get("server", "")),
                "tool": str(invocation.get("tool", "")),
                "arguments": _tail(json.dumps(invocation.get("arguments"), ensure_ascii=False), 400),
                "ok": ok,
                "duration": _seconds(msg.get("duration")),
                "output": _tail(said if isinstance(said, str) else json.dumps(said, ensure_ascii=False), 400),
            }
        )
    elif event.type == "web_search_end":
        steps.append({"kind": "web_search", "query": str(msg.get("query", ""))})
    elif event.type == "item/completed" and isinstance(msg.get("item"), dict):
        steps += _item(msg["item"], root)
    return steps


def reported_changes(steps: list[dict[str, Any]]) -> dict[str, str]:
    """The files the agent reported changing (a move reports both paths), each with its last reported kind."""
    found: dict[str, str] = {}
    for step in steps:
        if step["kind"] != "file_change" or not step.get("ok", True):
            continue
        found[step["path"]] = step["change"]
        if step.get("move_path"):
            found[step["move_path"]] = "add"
    return found


def commands(steps: list[dict[str, Any]]) -> list[str]:
    """The commands the agent ran, in order."""
    return [str(step["command"]) for step in steps if step["kind"] == "command"]
