"""No codex process outlives a run: not after a crash, a timeout, nor Ctrl-C (checked by pid)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_interllm.codex.locate import locate
from pytest_interllm.codex.process import alive
from tests.conftest import write

SERVER_ARGS = {"mcp-server": [b"mcp-server"], "app-server": [b"app-server", b"--listen", b"stdio://"]}


def codex_pids(cwd: Path, wrapper: str | None = None, interface: str = "mcp-server") -> set[int]:
    """Live `codex mcp-server` processes whose working directory is `cwd` (codex runs with cwd = the rootdir).

    Only the servers: not the `--version` probe, nor the sandbox helpers and commands a server starts.
    """
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            if wrapper is not None and argv[1:2] == [wrapper.encode()]:
                argv = argv[1:]  # a script run by bash: [bash, script, mcp-server]
            # Exactly `codex mcp-server`: not the `mcp-server --help` probe of the binary check.
            server = argv[0].endswith(wrapper.encode() if wrapper else b"codex") and argv[1:] == SERVER_ARGS[interface]
            stat = (entry / "stat").read_text()
            parent = Path(f"/proc/{stat[stat.rfind(')') + 2 :].split()[1]}/cmdline")
            # A server's own child between fork and exec still shows the server's command line: not a server.
            forked = parent.exists() and parent.read_bytes() == (entry / "cmdline").read_bytes()
            if server and not forked and Path(os.readlink(entry / "cwd")) == cwd:
                found.add(int(entry.name))
        except OSError:
            continue
    return {pid for pid in found if alive(pid)}


def server_pids(junit: Path) -> list[int]:
    """The codex server each scenario ran on, in order (the `interllm_codex_pid` JUnit property)."""
    return [
        int(str(p.get("value")))
        for case in ET.parse(junit).getroot().iter("testcase")
        for p in case.iter("property")
        if p.get("name") == "interllm_codex_pid"
    ]


class Watch:
    """Polls for codex processes of a run in the background, remembering every pid it saw."""

    def __init__(self, cwd: Path, wrapper: str | None = None, interface: str = "mcp-server") -> None:
        self.cwd = cwd
        self.wrapper = wrapper
        self.interface = interface
        self.seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.seen |= codex_pids(self.cwd, self.wrapper, self.interface)
            time.sleep(0.05)

    def stop(self) -> set[int]:
        self._stop.set()
        self._thread.join()
        return self.seen


def start(pytester: pytest.Pytester, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_", "COVERAGE"))}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def faulty(project: pytest.Pytester) -> pytest.Pytester:
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: crash\n2:\n  fault: stall\n  timeout: 2\n")
    return project


def test_crash_and_timeout_restart_codex_and_leave_none_behind(faulty: pytest.Pytester) -> None:
    watch = Watch(faulty.path)
    proc = start(faulty, "--interllm", "input/list.md", "--junitxml=junit.xml")
    out, _ = proc.communicate(timeout=120)
    seen = watch.stop()
    assert "2 failed, 1 passed" in out, out
    # One server at start, a replacement after the crash (scenario 1), another after the timeout (scenario 2).
    pids = server_pids(faulty.path / "junit.xml")
    assert len(pids) == 3 and len(set(pids)) == 3, pids
    assert seen <= set(pids), (seen, pids)  # no other server; a short-lived one may slip between two polls
    assert [pid for pid in {*seen, *pids} if alive(pid)] == []


def test_sigint_terminates_codex(faulty: pytest.Pytester) -> None:
    write(faulty.path / "scenarios" / "list.yaml", "1:\n  fault: stall\n  timeout: 120\n")
    watch = Watch(faulty.path)
    proc = start(faulty, "--interllm", "input/list.md")
    deadline = time.monotonic() + 60
    while not watch.seen and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the stalled scenario is now waiting on the provider
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    seen = watch.stop()
    assert seen, out
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "KeyboardInterrupt" in out
    assert [pid for pid in seen if alive(pid)] == []


def test_a_codex_that_ignores_sigterm_is_killed(project: pytest.Pytester) -> None:
    """A wrapper that ignores SIGTERM and outlives codex (as a hung server would): it must not survive the run."""
    real = locate(None).path
    wrapper = write(
        project.path / "bin" / "codex",
        f'#!/bin/bash\ntrap \'\' TERM\n{real} "$@"\n[ "$#" = 1 ] && [ "$1" = mcp-server ] && exec sleep 300\nexit 0\n',
    )
    wrapper.chmod(0o755)
    watch = Watch(project.path, wrapper=str(wrapper))
    proc = start(project, "--interllm", "input/list.md", "-k", "scenario_001", "--interllm-codex", str(wrapper))
    out, _ = proc.communicate(timeout=120)
    seen = watch.stop()
    assert "1 passed" in out, out
    assert len(seen) == 1, seen  # the wrapper (sleeping after codex) was the server
    assert [pid for pid in seen if alive(pid)] == []
