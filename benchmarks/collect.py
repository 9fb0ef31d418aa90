"""Collection cost: N scenarios with `--collect-only` vs pytest collecting N trivial parametrised tests.

Both are timed as whole `pytest --collect-only -q` runs in the same temporary project, alternately, best of
two. Also: growth at 1k/10k/50k, and a 10k-row pytest-html report (every scenario skipped through the
expectations' `defaults`, so no agent runs) to show reporting stays linear.
"""

from __future__ import annotations

import shutil
import sys

from common import project, pytest_run, scenario_list, update_summary, write_result

SIZES = (1_000, 10_000, 50_000)


def main() -> int:
    rows = {}
    for size in SIZES:
        root = project(scenario_list(size))
        (root / "test_param.py").write_text(
            f"import pytest\n\n@pytest.mark.parametrize('i', range({size}))\ndef test_trivial(i):\n    pass\n"
        )
        plugin, plain = [], []
        for _ in range(2):
            run = pytest_run(root, "--interllm", "input/list.md", "--collect-only")
            assert run["returncode"] == 0, run["tail"]
            plugin.append(run["wall"])
            run = pytest_run(root, "test_param.py", "--collect-only")
            assert run["returncode"] == 0, run["tail"]
            plain.append(run["wall"])
        rows[size] = {
            "interllm_s": round(min(plugin), 3),
            "parametrize_s": round(min(plain), 3),
            "ratio": round(min(plugin) / min(plain), 3),
        }
        shutil.rmtree(root, ignore_errors=True)
    root = project(scenario_list(10_000), expectations="defaults:\n  skip: benchmark of the report only\n")
    report = pytest_run(
        root, "--interllm", "input/list.md", "--html=report.html", "--self-contained-html", "--interllm-log-dir", "none"
    )
    html_mb = (root / "report.html").stat().st_size / 1e6 if (root / "report.html").exists() else 0.0
    assert report["returncode"] == 0, report["tail"]
    shutil.rmtree(root, ignore_errors=True)
    print(f"{'scenarios':>9} {'interllm s':>11} {'parametrize s':>14} {'ratio':>6} {'interllm µs/item':>17}")
    for size, row in rows.items():
        print(
            f"{size:>9} {row['interllm_s']:>11.2f} {row['parametrize_s']:>14.2f} {row['ratio']:>6.2f} "
            f"{row['interllm_s'] / size * 1e6:>17.0f}"
        )
    print(f"10k skipped scenarios with the HTML report: {report['wall']:.1f} s wall, report {html_mb:.1f} MB")
    ratio = rows[10_000]["ratio"]
    write_result(
        "collect", {"sizes": rows, "html_10k": {"wall_s": round(report["wall"], 2), "report_mb": round(html_mb, 2)}}
    )
    update_summary(collect_ratio_10k=ratio)
    print(f"collection ratio at 10k: {ratio:.3f} (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
