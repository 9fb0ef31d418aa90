"""In process: killing a codex process kills what it started (its sandbox helpers and their commands)."""

from __future__ import annotations

import subprocess
import time

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
