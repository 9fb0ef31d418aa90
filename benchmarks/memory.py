"""Memory: peak RSS of the controller, each xdist worker and each codex server during a `-n 4` run.

The process tree of one pytest run (16 scenarios, 0.5 s model latency so that 4 run at once) is sampled
every 50 ms from /proc, BENCH_ROUNDS rounds (5). Figure: MB per concurrent scenario = (peak of workers + codex
servers) / 4, median [min–max] over the rounds.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from common import project, pythonpath, scenario_list, update_summary, write_result
from figures import rounds, scaled, spread, text

WORKERS = 4


def tree(root_pid: int) -> dict[int, tuple[str, float]]:
    """pid → (role, RSS MB) for `root_pid` and all its descendants."""
    parents: dict[int, int] = {}
    info: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[stat.rfind(")") + 2 :].split()[1])
        rss = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS")), 0.0)
        exe = cmd.split(" ", 1)[0]
        role = (
            "codex"
            if "mcp-server" in cmd
            else "python"
            if exe.endswith(("python", "python3")) or "python3." in exe.rsplit("/", 1)[-1]
            else "tool"
        )
        info[int(entry.name)] = (role, rss)
    members = {root_pid}
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in members and pid not in members:
                members.add(pid)
                changed = True
    # codex started by the controller itself is the one-off `--version`/`mcp-server --help` check
    return {
        pid: ("check" if info[pid][0] == "codex" and parents.get(pid) == root_pid else info[pid][0], info[pid][1])
        for pid in members
        if pid in info
    }


def one_run(root: Path) -> dict[str, Any]:
    """One `-n 4` run: peak RSS MB of the controller, each worker, each codex server and the commands codex ran."""
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath(root),
        "BENCH_TIMING": str(root / "timing.json"),
        "INTERLLM_SCRIPTED_LATENCY": "0.5",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "--interllm", "input/list.md", "-n", str(WORKERS)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    peaks: dict[int, tuple[str, float]] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid, (role, rss) in tree(proc.pid).items():
                if rss > peaks.get(pid, (role, 0.0))[1]:
                    peaks[pid] = (role, rss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate(timeout=600)
    done.set()
    sampler.join()
    assert proc.returncode == 0, out[-2000:]
    return {
        "controller": peaks.get(proc.pid, ("python", 0.0))[1],
        "workers": sorted(rss for pid, (role, rss) in peaks.items() if role == "python" and pid != proc.pid),
        "tools": [rss for role, rss in peaks.values() if role == "tool"],
        "codex": sorted(rss for role, rss in peaks.values() if role == "codex"),
    }


def main() -> int:
    root = project(scenario_list(scaled(16)))
    runs = [one_run(root) for _ in range(rounds())]
    shutil.rmtree(root, ignore_errors=True)
    controller = spread([r["controller"] for r in runs], 1)
    workers = spread([statistics.mean(r["workers"]) for r in runs], 1)  # per round, the mean of its processes
    codex = spread([statistics.mean(r["codex"]) for r in runs], 1)
    tools = spread([max(r["tools"], default=0.0) for r in runs], 1)
    per = spread([(sum(r["workers"]) + sum(r["codex"])) / WORKERS for r in runs], 1)
    print(f"{'process':10} {'count':>5} {'peak RSS MB each: median [min–max] (rounds)':>50}")
    print(f"{'controller':10} {1:>5} {text(controller, '.0f'):>50}")
    print(f"{'workers':10} {len(runs[0]['workers']):>5} {text(workers, '.0f'):>50}")
    print(f"{'codex':10} {len(runs[0]['codex']):>5} {text(codex, '.0f'):>50}")
    print(f"{'tools':10} {'':>5} {text(tools, '.0f'):>50}  (the largest command codex ran in a round; short-lived)")
    write_result(
        "memory",
        {"controller_mb": controller, "worker_mb": workers, "codex_mb": codex, "mb_per_scenario": per, "rounds": runs},
    )
    update_summary(mb_per_scenario=per)
    print(
        f"MB per concurrent scenario: {text(per, '.1f')} (worker + its codex server; controller "
        f"{controller['median']:.0f} MB once)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
