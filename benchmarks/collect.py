"""Collection cost: N scenarios with `--collect-only` vs pytest collecting N trivial parametrised tests.

Both are timed as whole `pytest --collect-only -q` runs in the same temporary project, alternately, BENCH_ROUNDS
rounds (5); a ratio is taken per round and kept as median [min–max]. The plugin keeps a parsed list in pytest's
cache, so it is timed twice: cold (`--cache-clear`: parse and store) and warm (the list unchanged since the last
run: read from the cache). Also: growth at 1k/10k/50k, and a 10k-row pytest-html report (every scenario skipped
through the expectations' `defaults`, so no agent runs) to show reporting stays linear.
"""

from __future__ import annotations

import shutil
import sys

from common import project, pytest_run, scenario_list, update_summary, write_result
from figures import per_round, rounds, scaled, spread, text

SIZES = {"1k": scaled(1_000), "10k": scaled(10_000), "50k": scaled(50_000)}  # fewer in a smoke run


def main() -> int:
    rows = {}
    for name, size in SIZES.items():
        root = project(scenario_list(size), cache=True)
        (root / "test_param.py").write_text(
            f"import pytest\n\n@pytest.mark.parametrize('i', range({size}))\ndef test_trivial(i):\n    pass\n"
        )
        cold, warm, plain = [], [], []
        for _ in range(rounds()):
            for args, times in (("--cache-clear",), cold), ((), warm):
                run = pytest_run(root, "--interllm", "input/list.md", "--collect-only", *args)
                assert run["returncode"] == 0, run["tail"]
                times.append(run["wall"])
            run = pytest_run(root, "test_param.py", "--collect-only")
            assert run["returncode"] == 0, run["tail"]
            plain.append(run["wall"])
        rows[name] = {
            "scenarios": size,
            "interllm_cold_s": spread(cold),
            "interllm_s": spread(warm),
            "parametrize_s": spread(plain),
            "ratio_cold": spread(per_round(cold, plain)),
            "ratio": spread(per_round(warm, plain)),
            "warm_us_per_item": spread([w / size * 1e6 for w in warm], 0),
        }
        shutil.rmtree(root, ignore_errors=True)
    root = project(scenario_list(SIZES["10k"]), expectations="defaults:\n  skip: benchmark of the report only\n")
    report = pytest_run(
        root, "--interllm", "input/list.md", "--html=report.html", "--self-contained-html", "--interllm-log-dir", "none"
    )
    html_mb = (root / "report.html").stat().st_size / 1e6 if (root / "report.html").exists() else 0.0
    assert report["returncode"] == 0, report["tail"]
    shutil.rmtree(root, ignore_errors=True)
    columns = ("interllm_cold_s", "interllm_s", "parametrize_s", "ratio_cold", "ratio", "warm_us_per_item")
    print(f"{'scenarios':>9} " + " ".join(f"{c:>26}" for c in columns))
    for row in rows.values():
        cells = (text(row[c], ".0f" if c.endswith("per_item") else ".2f") for c in columns)
        print(f"{row['scenarios']:>9} " + " ".join(f"{cell:>26}" for cell in cells))
    print(f"{SIZES['10k']} skipped scenarios with the HTML report: {report['wall']:.1f} s, report {html_mb:.1f} MB")
    ratio, cold = rows["10k"]["ratio"], rows["10k"]["ratio_cold"]
    write_result(
        "collect", {"sizes": rows, "html_10k": {"wall_s": round(report["wall"], 2), "report_mb": round(html_mb, 2)}}
    )
    update_summary(collect_ratio_10k=ratio, collect_ratio_10k_cold=cold)
    print(f"collection ratio at 10k: {text(ratio)} warm, {text(cold)} cold (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
