"""No codex process outlives a run: not after a crash, a timeout, Ctrl-C nor SIGTERM (checked by pid); no temporary
dir outlives it either."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
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


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child before pytest starts: Ctrl-C's default, as a terminal gives it. A test run started in the
    background of a non-interactive shell (CI) inherits SIGINT ignored, and Python then never raises
    KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(pytester: pytest.Pytester, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_", "COVERAGE"))}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=pytester.path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_ctrl_c_as_in_a_terminal,  # only a signal disposition, before exec
    )


def ended(proc: subprocess.Popen[str], timeout: float) -> str:
    """The output of a run started by `start`, once it has ended; a run that hangs fails the test with the
    tracebacks of all its threads (SIGABRT: pytest's faulthandler prints them), not just a timeout."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            out = ended(proc, 15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"the run did not end within {timeout}s; its output and threads:\n{out}")
    return out


@pytest.fixture
def faulty(project: pytest.Pytester) -> pytest.Pytester:
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: crash\n2:\n  fault: stall\n  timeout: 2\n")
    return project


def test_crash_and_timeout_restart_codex_and_leave_none_behind(faulty: pytest.Pytester) -> None:
    watch = Watch(faulty.path)
    proc = start(faulty, "--interllm", "input/list.md", "--junitxml=junit.xml")
    out = ended(proc, 120)
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
    out = ended(proc, 60)
    seen = watch.stop()
    assert seen, out
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "KeyboardInterrupt" in out
    assert [pid for pid in seen if alive(pid)] == []


def stubborn_codex(project: pytest.Pytester) -> Path:
    """A codex wrapper that ignores SIGTERM and outlives codex, as a hung server would: it ends only by SIGKILL."""
    real = locate(None).path
    wrapper = write(
        project.path / "bin" / "codex",
        f'#!/bin/bash\ntrap \'\' TERM\n{real} "$@"\n[ "$#" = 1 ] && [ "$1" = mcp-server ] && exec sleep 300\nexit 0\n',
    )
    wrapper.chmod(0o755)
    return wrapper


def test_a_codex_that_ignores_sigterm_is_killed(project: pytest.Pytester) -> None:
    """A wrapper that ignores SIGTERM and outlives codex (as a hung server would): it must not survive the run."""
    wrapper = stubborn_codex(project)
    watch = Watch(project.path, wrapper=str(wrapper))
    proc = start(project, "--interllm", "input/list.md", "-k", "scenario_001", "--interllm-codex", str(wrapper))
    out = ended(proc, 120)
    seen = watch.stop()
    assert "1 passed" in out, out
    assert len(seen) == 1, seen  # the wrapper (sleeping after codex) was the server
    assert [pid for pid in seen if alive(pid)] == []


def interllm_dirs(tmp: Path) -> list[str]:
    """The plugin's temporary directories in `tmp` (`interllm-<label>-*`)."""
    return sorted(p.name for p in tmp.glob("interllm-*"))


def wait_for(condition: Callable[[], object], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


STOPPED_BY = """
import os
from pathlib import Path


def pytest_keyboard_interrupt(excinfo):
    Path(f"stopped-by-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}").write_text(excinfo.typename)
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_sigterm_stops_the_run_like_ctrl_c(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: list[str]
) -> None:
    tmp = project.path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))  # the run's own temporary dirs, apart from everyone else's
    write(project.path / "input" / "list.md", "".join(f"- Copy partner bucket {i} to the archive\n" for i in range(8)))
    write(
        project.path / "scenarios" / "list.yaml",
        "".join(f"{i}:\n  fault: stall\n  timeout: 120\n" for i in range(2, 9)),
    )
    # Each process notes what stopped it: SIGTERM itself, not xdist's shutdown some seconds later.
    write(project.path / "conftest.py", STOPPED_BY)
    # A codex that takes its longest to stop: under xdist, workers must clean up before xdist kills them.
    wrapper = stubborn_codex(project)
    watches = [Watch(project.path), Watch(project.path, wrapper=str(wrapper))]
    args = ("--interllm", "input/list.md", "--interllm-concurrency", "2", "--interllm-codex", str(wrapper))
    proc = start(project, *args, *xdist)
    try:
        wait_for(lambda: (project.path / "outputs" / "scenario_001.md").exists())
        time.sleep(2.0)  # scenario 1 reported; stalled scenarios in flight, waiting on the provider
        assert interllm_dirs(tmp)
        proc.send_signal(signal.SIGTERM)
        out = ended(proc, 90)
    finally:
        proc.kill()
        proc.communicate()
    seen = set().union(*(w.stop() for w in watches))
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "Terminated: SIGTERM: stopped as on Ctrl-C" in out
    assert re.search(r"=+ 1 passed in [\d.]+s", out), out  # pytest's usual summary
    assert seen and [pid for pid in seen if alive(pid)] == []
    assert interllm_dirs(tmp) == [], out  # codex's homes and sessions (the prompts) with them
    stopped = {p.name: p.read_text() for p in project.path.glob("stopped-by-*")}
    processes = ["main", "gw0", "gw1"] if xdist else ["main"]
    assert stopped == {f"stopped-by-{name}": "Terminated" for name in processes}


def test_temp_dirs_of_a_killed_run_are_removed_at_the_next_start(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = project.path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    write(project.path / "scenarios" / "list.yaml", "1:\n  fault: stall\n  timeout: 120\n")
    watch = Watch(project.path)
    killed = start(project, "--interllm", "input/list.md", "-k", "scenario_001")
    wait_for(lambda: watch.seen)
    killed.kill()  # kill -9: nothing of the run can clean up
    killed.communicate(timeout=60)
    [dead] = interllm_dirs(tmp)
    (tmp / "interllm-mine").mkdir()  # not the plugin's
    live = start(project, "--interllm", "input/list.md", "-k", "scenario_001")
    try:
        # The live run's executor dir (its short-lived helper dirs, e.g. `interllm-catalog-*`, come and go).
        wait_for(lambda: [d for d in interllm_dirs(tmp) if d.startswith("interllm-main-") and d != dead])
        [running] = [d for d in interllm_dirs(tmp) if d.startswith("interllm-main-") and d != dead]
        assert dead not in interllm_dirs(tmp)  # removed as the next run started
        result = project.runpytest_subprocess("--interllm", "input/list.md", "-k", "scenario_002", timeout=120)
        result.assert_outcomes(passed=1, deselected=2)
        assert interllm_dirs(tmp) == sorted([running, "interllm-mine"])  # a live run's dir is never touched
        live.send_signal(signal.SIGTERM)
        live.communicate(timeout=60)
    finally:
        live.kill()
        live.communicate()
        watch.stop()
    assert interllm_dirs(tmp) == ["interllm-mine"]


def test_no_codex_starts_once_the_executor_closes(tmp_path: Path) -> None:
    """A scenario in flight that would re-run or retry on a fresh codex while the run ends (SIGTERM, Ctrl-C, -x)
    gets no codex: one started after close() would outlive the run."""
    from pytest_interllm.run.attempt import ExecutorClosed
    from pytest_interllm.settings import Settings
    from pytest_interllm.wiring import make_executor

    settings = Settings(
        rootdir=tmp_path, lists=(), model="gpt-5-codex", model_explicit=False, provider="offline", executor="codex",
        timeout=5, timeout_explicit=False, max_scenarios=None, codex=None, codex_home=None,
        sandbox="workspace-write", template=None, output_dir=tmp_path / "outputs",
    )  # fmt: skip
    executor = make_executor(settings, locate(None), "unit")
    executor.close()
    watch = Watch(tmp_path)
    try:
        with pytest.raises(ExecutorClosed):
            executor.run("Write the plan.", output_file="outputs/scenario_001.md")
    finally:
        seen = watch.stop()
    assert seen == set()
