"""cProfile of a cold `--collect-only` on a 10,000-scenario list → `results/collect-profile.txt`.

Cold means the parsed-list cache is off (`-p no:cacheprovider`): every scenario goes through markdown-it.
Not part of `make bench`; it explains the cold collection figure of `collect.py`.
"""

from __future__ import annotations

import io
import os
import pstats
import shutil
import subprocess
import sys

from common import RESULTS, project, scenario_list


def main() -> int:
    root = project(scenario_list(10_000))  # its pytest.ini turns the cache provider off
    out = root / "collect.prof"
    env = {**os.environ, "PYTHONPATH": str(root), "BENCH_TIMING": str(root / "timing.json")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "pytest", "-q", "--interllm", "input/list.md", "--co"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
    )
    text = io.StringIO()
    stats = pstats.Stats(str(out), stream=text)
    text.write("cold `pytest --interllm input/list.md --collect-only` on 10,000 scenarios (times under the profiler)\n")
    stats.sort_stats("cumulative").print_stats(r"perform_collect|pytest_interllm|markdown_it/main|parser_block", 16)
    stats.sort_stats("tottime").print_stats(16)
    RESULTS.mkdir(exist_ok=True)
    body = "\n".join(line.rstrip() for line in text.getvalue().splitlines() if line.strip())
    (RESULTS / "collect-profile.txt").write_text(body.replace(str(root), "<project>") + "\n")
    shutil.rmtree(root, ignore_errors=True)
    print(f"wrote {RESULTS / 'collect-profile.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
