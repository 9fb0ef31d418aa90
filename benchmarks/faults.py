"""The whole fault matrix in one real run: is every fault classified, with no hang, orphan or lost output?

Run: `.venv/bin/python benchmarks/faults.py` (or `make bench`). Prints one table and a last line
`faults: N injected, N classified correctly, 0 hangs, 0 orphans, 0 lost final_output`, and writes
`benchmarks/results/faults.json`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from pytest_interllm.codex.process import alive
from pytest_interllm.faults import EXPECTED_CLASS

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


def main() -> int:
    faults = list(EXPECTED_CLASS)
    with tempfile.TemporaryDirectory(prefix="interllm-faults-") as tmp:
        root = Path(tmp).resolve()
        (root / "pytest.ini").write_text("[pytest]\n")
        (root / "input").mkdir()
        titles = [f"Fault {name}: move the nightly export" for name in faults] + [
            f"Clean run {n}: copy the partner files" for n in range(1, 5)
        ]
        (root / "input" / "faults.md").write_text("".join(f"- {t}\n  - verify the checksums\n" for t in titles))
        (root / "scenarios").mkdir()
        (root / "scenarios" / "faults.yaml").write_text(
            "".join(f"{n}:\n  fault: {name}\n  timeout: {SCENARIO_TIMEOUT}\n" for n, name in enumerate(faults, 1))
        )
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
                ],
                cwd=root,
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
        rows = []
        lost = 0
        tree = ET.parse(root / "junit.xml") if (root / "junit.xml").exists() else None
        cases = tree.getroot().iter("testcase") if tree is not None else []
        for case in cases:
            props = {p.get("name"): p.get("value") for p in case.iter("property")}
            fault = props.get("interllm_fault") or ""
            got = props.get("interllm_failure_class") or "passed"
            want = EXPECTED_CLASS.get(fault, "passed")
            took = float(case.get("time", "0"))
            hangs += took > SCENARIO_TIMEOUT * 3 + 60
            replied = props.get("interllm_agent_replied") == "True"
            lost += replied and props.get("interllm_final_output_chars") == "0"
            rows.append({"fault": fault or "-", "expected": want, "got": got, "ok": got == want, "seconds": took})
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
        "codex_processes_seen": len(seen),
        "wall_seconds": round(wall, 2),
        "scenarios": len(rows),
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "faults.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n")
    print(
        f"faults: {injected} injected, {correct} classified correctly, {hangs} hangs, {len(orphans)} orphans, "
        f"{lost} lost final_output"
    )
    ok = injected == len(faults) == correct and not hangs and not orphans and not lost and clean_ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
