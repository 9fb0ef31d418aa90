"""Collection cost: N scenarios with `--collect-only` vs pytest collecting N trivial parametrised tests.

Both are timed as whole `pytest --collect-only -q` runs in the same temporary project, alternately, best of
two. The plugin keeps a parsed list in pytest's cache, so it is timed twice: cold (`--cache-clear`: parse
and store) and warm (the list unchanged since the last run: read from the cache). Also: growth at
1k/10k/50k, and a 10k-row pytest-html report (every scenario skipped through the expectations' `defaults`,
so no agent runs) to show reporting stays linear.
"""

from __future__ import annotations

import shutil
import sys

from common import project, pytest_run, scenario_list, update_summary, write_result

SIZES = (1_000, 10_000, 50_000)


def main() -> int:
    rows = {}
    for size in SIZES:
        root = project(scenario_list(size), cache=True)
        (root / "test_param.py").write_text(
            f"import pytest\n\n@pytest.mark.parametrize('i', range({size}))\ndef test_trivial(i):\n    pass\n"
        )
        cold, warm, plain = [], [], []
        for _ in range(2):
            for args, times in (("--cache-clear",), cold), ((), warm):
                run = pytest_run(root, "--interllm", "input/list.md", "--collect-only", *args)
                assert run["returncode"] == 0, run["tail"]
                times.append(run["wall"])
            run = pytest_run(root, "test_param.py", "--collect-only")
            assert run["returncode"] == 0, run["tail"]
            plain.append(run["wall"])
        rows[size] = {
            "interllm_cold_s": round(min(cold), 3),
            "interllm_s": round(min(warm), 3),
            "parametrize_s": round(min(plain), 3),
            "ratio_cold": round(min(cold) / min(plain), 3),
            "ratio": round(min(warm) / min(plain), 3),
        }
        shutil.rmtree(root, ignore_errors=True)
    root = project(scenario_list(10_000), expectations="defaults:\n  skip: benchmark of the report only\n")
    report = pytest_run(
        root, "--interllm", "input/list.md", "--html=report.html", "--self-contained-html", "--interllm-log-dir", "none"
    )
    html_mb = (root / "report.html").stat().st_size / 1e6 if (root / "report.html").exists() else 0.0
    assert report["returncode"] == 0, report["tail"]
    shutil.rmtree(root, ignore_errors=True)
    print(
        f"{'scenarios':>9} {'cold s':>7} {'warm s':>7} {'parametrize s':>14} {'cold ratio':>11} {'warm ratio':>11} "
        f"{'warm µs/item':>13}"
    )
    for size, row in rows.items():
        print(
            f"{size:>9} {row['interllm_cold_s']:>7.2f} {row['interllm_s']:>7.2f} {row['parametrize_s']:>14.2f} "
            f"{row['ratio_cold']:>11.2f} {row['ratio']:>11.2f} {row['interllm_s'] / size * 1e6:>13.0f}"
        )
    print(f"10k skipped scenarios with the HTML report: {report['wall']:.1f} s wall, report {html_mb:.1f} MB")
    ratio, cold = rows[10_000]["ratio"], rows[10_000]["ratio_cold"]
    write_result(
        "collect", {"sizes": rows, "html_10k": {"wall_s": round(report["wall"], 2), "report_mb": round(html_mb, 2)}}
    )
    update_summary(collect_ratio_10k=ratio, collect_ratio_10k_cold=cold)
    print(f"collection ratio at 10k: {ratio:.3f} warm, {cold:.3f} cold (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
