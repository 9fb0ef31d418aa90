"""`make bench`: every benchmark in one go, then the headline figures (benchmarks/results/summary.json)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from common import HERE, RESULTS

SCRIPTS = ("faults.py", "overhead.py", "parallel.py", "concurrency.py", "collect.py", "memory.py", "startup.py")


def main() -> int:
    start = time.time()
    failed = []
    for script in SCRIPTS:
        print(f"\n=== {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)], cwd=HERE, check=False).returncode != 0:
            failed.append(script)
    summary = json.loads((RESULTS / "summary.json").read_text())
    print(f"\n=== summary ({time.time() - start:.0f} s on {summary['machine']})")
    targets = {
        "overhead_ratio": ("<=", 1.05),
        "parallel_efficiency_n4": (">=", 0.90),
        "collect_ratio_10k": ("<=", 1.5),
        "collect_ratio_10k_cold": ("<=", 1.5),
        "inflight_vs_bare_16": (">=", 0.95),
        "mb_per_inflight_16": ("<=", 50),
        "speedup_wall_16": (">=", 6),
    }
    for key, value in summary.items():
        if key == "machine":
            continue
        goal = targets.get(key)
        met = (
            ""
            if goal is None
            else (
                "  met"
                if (value <= goal[1] if goal[0] == "<=" else value >= goal[1])
                else f"  MISSED (target {goal[0]} {goal[1]})"
            )
        )
        print(f"{key:28} {value}{met}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
