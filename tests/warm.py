"""Child pytest runs forked from a warm process: the suite's own speed-up, never part of the plugin.

The suite starts a few hundred child pytest runs, and each used to spend most of its CPU importing the same
libraries (mcp alone ~0.5 s, the Agents SDK ~1.8 s) before doing anything of its own. One warm process per test
process imports those libraries once, then forks a child per run: the child takes the run's working directory,
environment, `sys.path` and argv, points its stdin at /dev/null and its stdout and stderr at files, and calls
pytest's own entry point exactly as `python -m pytest` would. Everything a run does from there — loading the
plugin and the project's conftest, starting codex and the scripted model, writing the report, the interpreter's
exit — happens in the child as in a fresh process.

Pytest plugins are not imported in the warm process (pytest would warn that it cannot rewrite their asserts),
only the libraries under them; anyio, a library mcp imports that is also a pytest plugin, is marked as one whose
asserts are not rewritten. Whatever depends on a fresh interpreter runs in one: `run(..., fresh=True)`, any
run under coverage (its subprocess hook starts with the interpreter), a run whose environment sets a `PYTHON*`
variable the interpreter reads at start-up, and every run when `INTERLLM_TEST_FRESH=1`.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

FRESH_ENV = "INTERLLM_TEST_FRESH"
FRESH = os.environ.get(FRESH_ENV) == "1"  # read once: the suite's fixtures clear INTERLLM_* variables per test

# Libraries the plugin loads on a run's way to its first scenario, heaviest first; none of them is a pytest plugin.
WARM = (
    "agents",
    "openai_codex",
    "mcp.client.session",
    "mcp.client.extension",
    "mcp.shared.jsonrpc_dispatcher",
    "mcp.shared.message",
    "uvicorn",
    "starlette.applications",
    "httpx2",
    "jinja2",
    "execnet",
    "markdown_it",
    "yaml",
    "dotenv",
    "jsonschema",
)

# The warm process: imports, then serves one run at a time (a request line naming a JSON file; answers: the
# child's pid, then its exit code). It reads and writes its pipes with os.read/os.write only, so a child inherits
# no buffered protocol bytes.
SERVER = r"""
import importlib, json, os, signal, sys, traceback
import pytest
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except Exception:
        pass
# A pytest plugin's package imported here (anyio, under mcp) would make each run warn that pytest cannot rewrite
# its asserts, where a fresh process imports it through pytest's rewriting loader: marked as one not to rewrite.
from importlib.metadata import entry_points
for ep in entry_points(group="pytest11"):
    top = sys.modules.get(ep.value.split(":")[0].split(".")[0])
    if top is not None:
        top.__doc__ = (top.__doc__ or "") + "\n\nPYTEST_DONT_REWRITE (imported early by tests/warm.py)"
base = sys.path[1:]
# What is imported stays untouched by each child's collector: no child copies the warm heap page by page.
import gc
gc.collect()
gc.freeze()
os.write(1, b"ready\n")

def line():
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(0, 4096)
        if not chunk:
            os._exit(0)
        data += chunk
    return data.decode().strip()

def child(request):
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(err, 2)
    for fd in (null, out, err):
        os.close(fd)
    sys.path[:] = [request["cwd"], *request["pythonpath"], *base]
    importlib.invalidate_caches()
    sys.argv = [request["argv0"], *request["args"]]
    try:
        code = int(pytest.main())  # console_main is deprecated since pytest 9.1 and warns
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.exit(code)  # the interpreter's own exit: atexit, finalizers, flushed streams

while True:
    with open(line(), encoding="utf-8") as fh:
        request = json.load(fh)
    pid = os.fork()
    if pid == 0:
        child(request)
    os.write(1, f"{pid}\n".encode())
    _, status = os.waitpid(pid, 0)
    os.write(1, f"{os.waitstatus_to_exitcode(status)}\n".encode())
"""


class _Server:
    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, json.dumps(WARM)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=tempfile.gettempdir(),
        )
        self._buffer = b""
        if self.read(120) != "ready":
            raise RuntimeError("the warm process for child pytest runs did not start")

    def read(self, timeout: float | None) -> str | None:
        """One line from the server, or None when `timeout` passes first."""
        assert self.proc.stdout is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("the warm process for child pytest runs ended")
            self._buffer += chunk
        text, self._buffer = self._buffer.split(b"\n", 1)
        return text.decode()

    def send(self, path: Path) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{path}\n".encode())
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_server: _Server | None = None


def _warm() -> _Server:
    global _server
    if _server is None or _server.proc.poll() is not None:
        _server = _Server()
        atexit.register(_server.close)
    return _server


def needs_fresh(env: dict[str, str]) -> bool:
    if FRESH or any(k.startswith(("COVERAGE_PROCESS", "COV_CORE")) for k in env):
        return True  # coverage measures a child from its interpreter's start
    started = os.environ  # what the warm process started with (but PYTHONPATH, taken per run)
    return any(
        env.get(k) != started.get(k)
        for k in {*env, *started}
        if k.startswith("PYTHON") and k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    )


def runpytest(pytester: pytest.Pytester, *args: str, timeout: float = 300, fresh: bool = False) -> pytest.RunResult:
    """`pytester.runpytest_subprocess(*args, timeout=timeout)`, forked from the warm process unless the run needs
    a fresh interpreter (see the module's docstring). Same arguments (`--basetemp`, `-p` plugins), same environment
    and working directory, same result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH", "")]))
    if fresh or needs_fresh(env):
        return pytester.runpytest_subprocess(*args, timeout=timeout)
    basetemp = tempfile.mkdtemp(prefix="runpytest-", dir=pytester.path)  # as runpytest_subprocess gives it one
    argv: list[str] = [f"--basetemp={basetemp}", *map(str, args)]
    for plugin in pytester.plugins:
        argv = ["-p", str(plugin), *argv]
    out, err = pytester.path / "stdout", pytester.path / "stderr"
    request = Path(basetemp) / "warm-run.json"  # beside the run's temp files, not among the project's own
    request.write_text(
        json.dumps(
            {
                "cwd": os.getcwd(),
                "env": env,
                "args": argv,
                "argv0": str(Path(pytest.__file__).parent / "__main__.py"),
                "stdout": str(out),
                "stderr": str(err),
                "pythonpath": [os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p],
            }
        ),
        encoding="utf-8",
    )
    server = _warm()
    start = time.monotonic()
    server.send(request)
    started = server.read(30)
    if not started:
        raise RuntimeError("the warm process for child pytest runs did not start the run")
    pid = int(started)
    code = server.read(timeout)
    if code is None:
        os.kill(pid, signal.SIGKILL)
        server.read(30)
        raise pytester.TimeoutExpired(f"{timeout} second timeout expired running: pytest {' '.join(argv)}")
    request.unlink(missing_ok=True)  # pytest clears its --basetemp as it starts
    outlines = out.read_text(encoding="utf-8", errors="replace").splitlines()
    errlines = err.read_text(encoding="utf-8", errors="replace").splitlines()
    print("\n".join(outlines))  # shown with a failing test, as runpytest_subprocess shows it
    print("\n".join(errlines), file=sys.stderr)
    return pytest.RunResult(int(code), outlines, errlines, time.monotonic() - start)
