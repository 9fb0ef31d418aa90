"""In process: killing a codex process kills what it started (its sandbox helpers and their commands)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pytest_interllm.codex import process


def test_kill_takes_the_whole_tree_with_it() -> None:
    # A parent with a child and a grandchild, as codex → codex-linux-sandbox → the command it runs.
    parent = subprocess.Popen(["bash", "-c", "bash -c 'sleep 300 & wait' & wait"])
    try:
        deadline = time.monotonic() + 10
        while len(process.descendants(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        below = process.descendants(parent.pid)
        assert len(below) == 2, below  # the inner bash and its sleep
        process.kill(parent.pid)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while any(process.alive(pid) for pid in below) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in below if process.alive(pid)] == []
    finally:
        parent.kill()
        parent.wait()


SPAWN_ORDER = """
import asyncio, os, sys, tempfile
from pathlib import Path
from pytest_interllm.codex import process, stdio
from pytest_interllm.codex.locate import locate
from pytest_interllm.codex.server import CodexServer

seen = {}
spawn = stdio.spawn

async def recorded(*args, **kwargs):
    seen["mcp imported at spawn"] = any(name == "mcp" or name.startswith("mcp.") for name in sys.modules)
    return await spawn(*args, **kwargs)

stdio.spawn = recorded

import gc
def audit(event, args):
    if event == "import" and args[0] == "mcp.client.session":
        seen.setdefault("collector on during mcp's import", gc.isenabled())
sys.addaudithook(audit)
home = Path(tempfile.mkdtemp())
env = {"HOME": str(home), "CODEX_HOME": str(home), "PATH": os.environ["PATH"]}
server = CodexServer(str(locate(None).path), env, home, home / "stderr.txt")

async def main():
    await server.start()
    seen["alive"] = server.alive and process.alive(server.pid)
    pid = server.pid
    await server.stop()
    seen["gone"] = not process.alive(pid)
    seen["collector on after"] = gc.isenabled()

asyncio.run(main())
print(seen, "mcp" in sys.modules, server.server_info.get("name"))
"""


def test_codex_is_spawned_before_mcp_is_imported_and_stopped_with_the_session() -> None:
    """codex/stdio.py: the server starts on another core while mcp is imported (the cyclic collector paused for the
    import, and on again after); its pid is the one spawned, and closing the session ends it."""
    out = subprocess.run([sys.executable, "-c", SPAWN_ORDER], capture_output=True, text=True, timeout=120, check=True)
    expected = (
        "{'mcp imported at spawn': False, \"collector on during mcp's import\": False, 'alive': True, 'gone': True, "
        "'collector on after': True} True"
    )
    assert out.stdout.split() and expected in out.stdout, out.stdout
    assert "codex" in out.stdout.split()[-1], out.stdout


def test_kill_catches_what_is_started_while_it_kills(tmp_path: Path) -> None:
    """A parent that starts a writer every few milliseconds (codex starting commands while the run stops): once
    `kill` returns, every process of the tree is gone and no file appears afterwards."""
    script = 'while :; do sh -c \'sleep 0.3; : > "$0/$$"\' "$1" & sleep 0.005; done'
    parent = subprocess.Popen(["bash", "-c", script, "parent", str(tmp_path)])
    try:
        deadline = time.monotonic() + 10
        while len(list(tmp_path.iterdir())) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.iterdir()), "the writers never wrote"
        process.kill(parent.pid)
        written = sorted(p.name for p in tmp_path.iterdir())
        time.sleep(0.6)  # twice as long as a writer waits before it writes
        assert sorted(p.name for p in tmp_path.iterdir()) == written
        assert parent.poll() is not None or not process.alive(parent.pid)
    finally:
        parent.kill()
        parent.wait()


def test_the_collector_is_paused_for_an_import_and_left_as_found() -> None:
    import gc

    from pytest_interllm.runtime import collector_paused

    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # the user's own choice
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
