"""A login refreshed by codex itself: its own login code, the user's own auth.json, codex the only writer.

`codex app-server` answers `account/read` with `refreshToken: true` by refreshing a ChatGPT login first
(codex-rs/app-server-protocol v2 `GetAccountParams.refresh_token`; the refresh is codex-rs/login's
`request_chatgpt_token_refresh`, which rewrites auth.json in place). codex runs in a private CODEX_HOME whose
`auth.json` is a link to the user's file: codex reads and writes the user's login through it, and nothing else of
an app-server's start (its databases, logs, skills) lands in the user's CODEX_HOME.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
from pathlib import Path
from typing import IO

from pytest_interllm.workdirs import Workdir

REFRESH_TIMEOUT = 30.0
# What codex needs to reach the auth server as the user would: proxies, certificates, the override codex honours.
_PASSED = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "all_proxy",
           "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "CODEX_REFRESH_TOKEN_URL_OVERRIDE")  # fmt: skip


def refresh_login(codex: str, auth_file: Path, timeout: float = REFRESH_TIMEOUT) -> str | None:
    """Have the user's codex refresh the ChatGPT login in `auth_file`; None when codex answered, else why not (the
    caller reads the file again to see whether the token is new)."""
    workdir = Workdir("login")  # locked: a run killed meanwhile leaves it to the next run to remove
    home = workdir.path
    try:
        codex_home = home / "codex-home"
        codex_home.mkdir()
        link = codex_home / "auth.json"
        link.symlink_to(auth_file.resolve())
        env = {"HOME": str(home), "CODEX_HOME": str(codex_home), "PATH": os.environ.get("PATH", os.defpath)}
        env["LANG"] = os.environ.get("LANG", "C.UTF-8")
        env.update({k: v for k, v in os.environ.items() if k in _PASSED})
        problem = _account_read(codex, env, home, timeout)
        if not link.is_symlink():  # codex replaced the link instead of writing through it: the user's file is stale
            return f"codex wrote the refreshed login into {link} instead of {auth_file}: run `codex login`"
        return problem
    finally:
        workdir.remove()  # the link goes, never the file it points to


def _account_read(codex: str, env: dict[str, str], cwd: Path, timeout: float) -> str | None:
    """`initialize`, then `account/read {refreshToken: true}` on a `codex app-server` of its own; its error, if any."""
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"clientInfo": {"name": "pytest-interllm",
                                                                                       "version": "1"}}},
        {"jsonrpc": "2.0", "method": "initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "account/read", "params": {"refreshToken": True}},
    ]  # fmt: skip
    stdin = "".join(json.dumps(r) + "\n" for r in requests)
    try:
        process = subprocess.Popen(
            [codex, "app-server"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    except OSError as exc:
        return f"cannot start {codex}: {exc.strerror or exc}"
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(stdin)
        process.stdin.flush()
        answer = _answer_to(process.stdout, 2, timeout)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    if answer is None:
        return f"codex app-server did not answer account/read within {timeout:g}s"
    error = answer.get("error")
    return str(error.get("message")) if isinstance(error, dict) else None


def _answer_to(stream: IO[str], request_id: int, timeout: float) -> dict[str, object] | None:
    """The JSON-RPC answer with `request_id` on codex's stdout (notifications skipped), or None at its end."""
    found: queue.Queue[dict[str, object] | None] = queue.Queue()

    def read() -> None:
        for line in stream:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("id") == request_id:
                found.put(message)
                return
        found.put(None)

    threading.Thread(target=read, daemon=True, name="interllm-login").start()
    try:
        return found.get(timeout=timeout)
    except queue.Empty:
        return None
