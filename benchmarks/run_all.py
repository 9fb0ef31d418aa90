"""`make bench`: every benchmark in one go, then the headline figures (benchmarks/results/summary.json), each as
median [min–max] over its rounds and checked against its target on the median; exit status 1 when a benchmark
failed or a target was missed."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from common import HERE, RESULTS, machine
from figures import check

SCRIPTS = ("faults.py", "overhead.py", "parallel.py", "concurrency.py", "collect.py", "memory.py", "startup.py")


def main() -> int:
    start = time.time()
    (RESULTS / "summary.json").unlink(missing_ok=True)  # a benchmark that fails leaves no stale figure behind
    failed = []
    for script in SCRIPTS:
        print(f"\n=== {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)], cwd=HERE, check=False).returncode != 0:
            failed.append(script)
    path = RESULTS / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    print(f"\n=== summary ({time.time() - start:.0f} s on {machine()})")
    lines, missed = check(summary)
    print("\n".join(lines))
    if missed:
        print(f"missed: {', '.join(missed)}")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed or missed else 0


if __name__ == "__main__":
    sys.exit(main())
