"""What the installed codex sends: its own first request for a prompt (body, headers, originator), captured on
127.0.0.1 with `codex exec` against a one-shot local provider. The preflight repeats it upstream, so the backend
judges a request exactly like the scenarios' (0.153 sends `instructions`, 0.163 a developer message instead)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pytest_interllm.codex.config import KEY_ENV, config_toml
from pytest_interllm.workdirs import Workdir

CAPTURE_TIMEOUT = 60.0
_ANSWER = (
    b'event: response.created\ndata: {"type":"response.created","response":{"id":"resp_capture"}}\n\n'
    b'event: response.output_item.done\ndata: {"type":"response.output_item.done","output_index":0,"item":'
    b'{"type":"message","role":"assistant","id":"msg_capture","content":[{"type":"output_text","text":"OK"}]}}\n\n'
    b'event: response.completed\ndata: {"type":"response.completed","response":{"id":"resp_capture","usage":'
    b'{"input_tokens":1,"output_tokens":1,"total_tokens":2}}}\n\n'
)


def capture_request(codex: str, model: str, prompt: str, timeout: float = CAPTURE_TIMEOUT) -> dict[str, Any] | None:
    """The body and headers of the first request `codex exec` makes for `prompt` on `model` (None if it made
    none in time). codex gets an isolated home, a clean environment and a read-only sandbox."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            try:
                body = json.loads(self.rfile.read(length))
            except ValueError:
                body = None
            if isinstance(body, dict) and not seen:
                seen.append({"body": body, "headers": {k.lower(): v for k, v in self.headers.items()}})
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(_ANSWER)))
            self.end_headers()
            self.wfile.write(_ANSWER)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    workdir = Workdir("capture")  # locked: a run killed meanwhile leaves it to the next run to remove
    home = str(workdir.path)
    try:
        os.makedirs(os.path.join(home, "codex-home"))
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        with open(os.path.join(home, "codex-home", "config.toml"), "w", encoding="utf-8") as fh:
            fh.write(config_toml(url))
        env = {
            "HOME": home,
            "CODEX_HOME": os.path.join(home, "codex-home"),
            KEY_ENV: "interllm-capture",
            "PATH": os.environ.get("PATH", os.defpath),
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }
        command = [codex, "exec", "--skip-git-repo-check", "-s", "read-only", "-m", model, prompt]
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):  # no request seen: the minimal preflight
            subprocess.run(
                command, cwd=home, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
            )
    finally:
        server.shutdown()
        server.server_close()
        workdir.remove()
    return seen[0] if seen else None
