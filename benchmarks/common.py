"""Shared helpers of the benchmarks: temporary projects, timed pytest runs, results files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from figures import scale, smoke

HERE = Path(__file__).resolve().parent
# a smoke run (fewer rounds or scenarios) keeps its results apart from the real run's
RESULTS = HERE / "results" / "smoke" if smoke() else HERE / "results"
TIMING_PLUGIN = """
import json, os, time
_t = {"session_start": None, "first_start": None, "last_end": None, "scenarios": 0, "loop_lag_s": []}
if os.environ.get("BENCH_LOOP_LAG"):
    # the plugin's event loop: a probe asks to wake every 50 ms and records how late it wakes
    import asyncio
    from pytest_interllm.runtime import LoopRunner
    _init = LoopRunner.__init__
    _probes = []
    async def _probe(loop):
        while True:
            t = loop.time()
            await asyncio.sleep(0.05)
            _t["loop_lag_s"].append((time.time(), loop.time() - t - 0.05))
    def _patched(self):
        _init(self)
        self._loop.call_soon_threadsafe(lambda: _probes.append(self._loop.create_task(_probe(self._loop))))
    LoopRunner.__init__ = _patched
def pytest_sessionstart(session):
    _t["session_start"] = time.time()
def pytest_runtest_logstart(nodeid, location):
    if _t["first_start"] is None:
        _t["first_start"] = time.time()
def pytest_runtest_logreport(report):
    if report.when == "teardown":
        _t["last_end"] = time.time()
        _t["scenarios"] += 1
def pytest_unconfigure(config):
    if not hasattr(config, "workerinput"):
        with open(os.environ["BENCH_TIMING"], "w") as fh:
            json.dump(_t, fh)
"""


def machine() -> str:
    """A one-line description of the machine the figures come from."""
    cpus = os.cpu_count()
    try:
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        gib = int(mem.split()[1]) / 1024 / 1024
    except (OSError, StopIteration):
        gib = 0.0
    return f"{platform.machine()}, {cpus} cores, {gib:.0f} GiB, Python {platform.python_version()}, {platform.system()}"


def pythonpath(root: Path) -> str:
    """The child pytest's PYTHONPATH: its project (the timing plugin), then this checkout's package, so that a
    worktree's pytest_interllm wins over an editable install of another checkout."""
    parts = [str(root), str(HERE.parent), os.environ.get("PYTHONPATH", "")]
    return os.pathsep.join(p for p in parts if p)


def project(list_text: str, expectations: str | None = None, stem: str = "list", cache: bool = False) -> Path:
    """A throwaway rootdir with `input/<stem>.md`, optional expectations and the timing plugin.

    pytest's cache provider is off unless `cache` (it keeps parsed lists: see `collect.py`)."""
    root = Path(tempfile.mkdtemp(prefix="interllm-bench-")).resolve()
    no_cache = "" if cache else "-p no:cacheprovider "
    (root / "pytest.ini").write_text(f"[pytest]\naddopts = {no_cache}-p bench_timing\n")
    (root / "bench_timing.py").write_text(TIMING_PLUGIN)
    (root / "input").mkdir()
    (root / "input" / f"{stem}.md").write_text(list_text)
    if expectations is not None:
        (root / "scenarios").mkdir()
        (root / "scenarios" / f"{stem}.yaml").write_text(expectations)
    return root


def pytest_run(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> dict[str, Any]:
    """Run pytest in `root`; return wall time, the timing plugin's figures and the exit code."""
    timing = root / "timing.json"
    full_env = {**os.environ, "PYTHONPATH": pythonpath(root), "BENCH_TIMING": str(timing), **(env or {})}
    # Bytecode caching as on a usual machine: start-up without it is slower and would flatter the ratios.
    for name in ("INTERLLM_FAULT", "OPENAI_API_KEY", "PYTHONDONTWRITEBYTECODE"):
        full_env.pop(name, None)
    start = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *args],
        cwd=root,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    ended = time.time()
    wall = ended - start
    data = json.loads(timing.read_text()) if timing.exists() else {}
    phase = (data["last_end"] - data["first_start"]) if data.get("first_start") and data.get("last_end") else None
    return {
        "wall": wall,
        "launched": start,
        "ended": ended,
        "phase": phase,
        "timing": data,
        "returncode": proc.returncode,
        "tail": proc.stdout[-2000:] + proc.stderr[-2000:],
    }


def scenario_list(count: int, title: str = "Copy partner bucket {n} to the archive") -> str:
    return "".join(f"- {title.format(n=n)}\n  - verify the object count\n" for n in range(1, count + 1))


def write_result(name: str, data: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine(), "smoke": smoke(), **data}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")


def update_summary(**figures: Any) -> None:
    """Merge headline figures into `results/summary.json`."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "summary.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    current.update(figures)
    current["machine"] = machine()
    current["smoke"] = smoke()
    current["scale"] = scale()
    path.write_text(json.dumps(current, indent=2) + "\n")
