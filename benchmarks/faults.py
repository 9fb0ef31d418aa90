"""The whole fault matrix in one real run: is every fault classified, with no hang, orphan or lost output?

Run: `.venv/bin/python benchmarks/faults.py` (or `make bench`). Prints one table and a last line
`faults: N injected, N classified correctly, 0 hangs, 0 orphans, 0 lost final_output`, and writes
`benchmarks/results/faults.json`.

A fault that stops the run (`usage-limit`, `token-expiring`) runs in a list of its own, with one clean scenario
after it that must be skipped.

`--repeat 20` runs the list (the faults that do not stop the run) 20 times serially and 20 times with 4
scenarios in flight, alternating, and counts the scenarios whose class ever changed between runs or differed from
what their fault calls for (target 0); results in `benchmarks/results/faults-stability.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from common import RESULTS

from pytest_interllm.codex.process import alive
from pytest_interllm.faults import EXPECTED_CLASS, REGISTRY

HERE = Path(__file__).resolve().parent
DEADLINE = 600.0
SCENARIO_TIMEOUT = 3


def codex_pids(cwd: Path) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == cwd and b"codex" in (entry / "cmdline").read_bytes():
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def plan(faults: list[str]) -> list[tuple[list[str], int]]:
    """The runs (faults listed, clean scenarios after them) the fault matrix takes: a fault that stops the run (a
    plan's usage limit, an expired login) skips every scenario after it, so each runs in a list of its own with one
    clean scenario after it, which must be skipped; the others run in one list with four clean scenarios."""
    stoppers = [fault for fault in faults if REGISTRY[fault].stops_run]
    return [([fault for fault in faults if fault not in stoppers], 4), *(([fault], 1) for fault in stoppers)]


def project(root: Path, faults: list[str], clean: int = 4) -> None:
    """The fault list: one scenario per fault, then `clean` clean ones."""
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "input").mkdir()
    titles = [f"Fault {name}: move the nightly export" for name in faults] + [
        f"Clean run {n}: copy the partner files" for n in range(1, clean + 1)
    ]
    (root / "input" / "faults.md").write_text("".join(f"- {t}\n  - verify the checksums\n" for t in titles))
    (root / "scenarios").mkdir()
    (root / "scenarios" / "faults.yaml").write_text(
        "".join(f"{n}:\n  fault: {name}\n  timeout: {SCENARIO_TIMEOUT}\n" for n, name in enumerate(faults, 1))
    )


def one_run(root: Path, extra: list[str]) -> tuple[list[dict[str, Any]], int, list[int], int, float]:
    """One pytest run of the fault list: rows (fault, expected, got, ok, seconds), hangs, orphans, lost, wall."""
    seen: set[int] = set()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen.update(codex_pids(root))
            time.sleep(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    start = time.monotonic()
    hangs = 0
    (root / "junit.xml").unlink(missing_ok=True)
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-q",
                "--interllm",
                "input/faults.md",
                "--junitxml=junit.xml",
                "--interllm-provider-retries",
                "1",
                "--interllm-log-dir",
                "none",
                # The field report's model, as the tests' user has it: on the catalog's default model codex refuses
                # the `subagent-model` fault's spawn_agent, and that scenario passes.
                "--interllm-model",
                "gpt-5-codex",
                *extra,
            ],
            cwd=root,
            # this checkout's package first, as in the other benchmarks (a worktree beside an editable install)
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, (str(HERE.parent), os.environ.get("PYTHONPATH")))),
            },
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
    except subprocess.TimeoutExpired:
        hangs += 1
    wall = time.monotonic() - start
    time.sleep(0.5)
    stop.set()
    watcher.join()
    orphans = sorted(pid for pid in seen if alive(pid))
    rows, lost, slow = read_junit(root / "junit.xml")
    return rows, hangs + slow, orphans, lost, wall


def read_junit(path: Path) -> tuple[list[dict[str, Any]], int, int]:
    """One row per scenario of a run's JUnit file (fault, expected, got — `skipped` for a skipped one —, ok,
    seconds), the scenarios whose final output was lost, and those that took too long (hangs)."""
    rows: list[dict[str, Any]] = []
    lost = hangs = 0
    tree = ET.parse(path) if path.exists() else None
    cases = tree.getroot().iter("testcase") if tree is not None else []
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        fault = props.get("interllm_fault") or ""
        got = "skipped" if case.find("skipped") is not None else props.get("interllm_failure_class") or "passed"
        want = EXPECTED_CLASS.get(fault, "passed")
        took = float(case.get("time", "0"))
        hangs += took > SCENARIO_TIMEOUT * 3 + 60
        replied = props.get("interllm_agent_replied") == "True"
        lost += replied and props.get("interllm_final_output_chars") == "0"
        name = case.get("name", "")
        rows.append(
            {"scenario": name, "fault": fault or "-", "expected": want, "got": got, "ok": got == want, "seconds": took}
        )
    return rows, lost, hangs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per mode; with N > 1, serial and in flight")
    args = parser.parse_args()
    # The faults that change files need a workspace of their own: tests/test_workspace.py classifies them.
    faults = [fault for fault in EXPECTED_CLASS if not REGISTRY[fault].needs_workspace]
    if args.repeat > 1:
        return stability(plan(faults)[0][0], args.repeat)
    rows, hangs, orphans, lost, wall = [], 0, [], 0, 0.0
    for listed, clean in plan(faults):
        with tempfile.TemporaryDirectory(prefix="interllm-faults-") as tmp:
            root = Path(tmp).resolve()
            project(root, listed, clean)
            found, h, o, lost_now, took = one_run(root, [])
        if clean == 1:
            for row in found:
                if row["fault"] == "-":  # the clean scenario after a fault that stopped the run
                    row.update(expected="skipped", ok=row["got"] == "skipped")
        rows, hangs, orphans, lost, wall = rows + found, hangs + h, orphans + o, lost + lost_now, wall + took
    injected = sum(1 for r in rows if r["fault"] != "-")
    correct = sum(1 for r in rows if r["fault"] != "-" and r["ok"])
    clean_ok = all(r["ok"] for r in rows if r["fault"] == "-")
    print(f"{'fault':22} {'expected':16} {'got':16} {'ok':4} {'s':>6}")
    for r in rows:
        print(f"{r['fault']:22} {r['expected']:16} {r['got']:16} {'yes' if r['ok'] else 'NO':4} {r['seconds']:6.2f}")
    summary = {
        "injected": injected,
        "classified": correct,
        "hangs": hangs,
        "orphans": len(orphans),
        "lost_final_output": lost,
        "clean_passed": clean_ok,
        "wall_seconds": round(wall, 2),
        "scenarios": len(rows),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "faults.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n")
    print(
        f"faults: {injected} injected, {correct} classified correctly, {hangs} hangs, {len(orphans)} orphans, "
        f"{lost} lost final_output"
    )
    ok = injected == len(faults) == correct and not hangs and not orphans and not lost and clean_ok
    if not ok:
        print(f"expected {len(faults)} faults injected and classified: {', '.join(faults)}")
    return 0 if ok else 1


def stability(faults: list[str], repeat: int) -> int:
    """The fault list `repeat` times serially and `repeat` times with 4 scenarios in flight: does any scenario ever
    get another class than in the other runs (or than its fault calls for)?"""
    modes = {"serial": [], "in flight (--interllm-concurrency 4)": ["--interllm-concurrency", "4"]}
    classes: dict[str, dict[str, list[str]]] = {}  # scenario → mode → class per run
    expected: dict[str, str] = {}
    hangs = orphans = lost = 0
    walls: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="interllm-faults-") as tmp:
        root = Path(tmp).resolve()
        project(root, faults)
        for n in range(repeat):
            for mode, extra in modes.items():  # alternating, so load on the machine hits both alike
                rows, h, o, lost_now, wall = one_run(root, extra)
                hangs, orphans, lost = hangs + h, orphans + len(o), lost + lost_now
                walls.setdefault(mode, []).append(wall)
                for r in rows:
                    expected[r["scenario"]] = r["expected"]
                    classes.setdefault(r["scenario"], {}).setdefault(mode, []).append(r["got"])
                print(f"run {n + 1}/{repeat} {mode}: {sum(r['ok'] for r in rows)}/{len(rows)} as expected", flush=True)
    changed = []
    for scenario, by_mode in classes.items():
        seen = {c for runs in by_mode.values() for c in runs}
        if len(seen) > 1 or seen != {expected[scenario]}:
            changed.append(
                {
                    "scenario": scenario,
                    "expected": expected[scenario],
                    "got": {m: dict(Counter(runs)) for m, runs in by_mode.items()},
                }
            )
    print(f"{'scenario':60} {'expected':16} classes seen")
    for scenario, by_mode in classes.items():
        got = "; ".join(f"{m.split()[0]}: {dict(Counter(runs))}" for m, runs in by_mode.items())
        print(f"{scenario[:60]:60} {expected[scenario]:16} {got}")
    summary = {
        "runs_per_mode": repeat,
        "scenarios": len(classes),
        "changed_or_wrong": len(changed),
        "hangs": hangs,
        "orphans": orphans,
        "lost_final_output": lost,
        "median_wall_seconds": {m: round(statistics.median(w), 2) for m, w in walls.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "faults-stability.json").write_text(
        json.dumps({"summary": summary, "changed": changed}, indent=2) + "\n"
    )
    print(
        f"faults stability: {repeat} runs serial and {repeat} in flight, {len(classes)} scenarios, "
        f"{len(changed)} changed or wrong classifications, {hangs} hangs, {orphans} orphans, {lost} lost final_output"
    )
    return 0 if not changed and not hangs and not orphans and not lost else 1


if __name__ == "__main__":
    sys.exit(main())
