"""Scenarios in flight on one codex server: 16 scenarios, 1 s of model latency per request.

Side by side in one run: serial; `--interllm-concurrency 16` (one process, one codex server); `-n 4`
(four workers, four servers); and a bare script that makes the same 16 codex calls concurrently on one
server through the plugin's own MCP client, with no pytest at all — the limit of codex itself on this
machine. Figures:
- `efficiency_inflight_16`: serial phase / (16 × in-flight phase); 1.0 would be perfect overlap;
- `inflight_vs_bare_16`: bare concurrent phase / in-flight phase; 1.0 means the plugin adds nothing;
- `mb_per_inflight_16`: peak RSS of the whole process tree (pytest, codex, the commands codex runs) during
  the in-flight run, divided by 16;
- `speedup_wall_16`: serial wall clock / in-flight wall clock, start-up included.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import project, pytest_run, scenario_list, update_summary, write_result

from pytest_interllm.codex.config import config_toml, provider_config
from pytest_interllm.codex.locate import locate
from pytest_interllm.codex.server import CodexServer
from pytest_interllm.providers.scripted import CallContext, ScriptedModel

LATENCY = 1.0
SCENARIOS = 16


def tree_rss(root_pid: int) -> int:
    """RSS in bytes of `root_pid` and all its descendants."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rfind(")") + 2 :].split()
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            continue
    tree, frontier = {root_pid}, [root_pid]
    while frontier:
        pid = frontier.pop()
        for child, parent in parents.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(rss.get(pid, 0) for pid in tree)


def sampled_run(root: Path, *args: str) -> tuple[dict[str, Any], int]:
    """`pytest_run`, with the process tree's peak RSS sampled every 20 ms."""
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            for proc in Path("/proc").iterdir():
                try:
                    cmd = (proc / "cmdline").read_bytes()
                    if proc.name.isdigit() and b"pytest" in cmd and Path(os.readlink(proc / "cwd")) == root:
                        peak = max(peak, tree_rss(int(proc.name)))
                        break
                except OSError:
                    continue
            time.sleep(0.02)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    try:
        result = pytest_run(root, *args, env={"INTERLLM_SCRIPTED_LATENCY": str(LATENCY)})
    finally:
        done.set()
        watcher.join()
    return result, peak


async def bare_calls(root: Path) -> float:
    """The same 16 scenario calls, concurrently, on one codex server: the phase from first call to last end."""
    model = ScriptedModel(latency=LATENCY)
    await model.start()
    home, codex_home = root / "bare-home", root / "bare-codex-home"
    home.mkdir()
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(config_toml(model.url))
    env = {"HOME": str(home), "CODEX_HOME": str(codex_home), "INTERLLM_PROVIDER_KEY": model.token, "PATH": os.defpath}
    env["PATH"] = os.environ.get("PATH", os.defpath)
    server = CodexServer(locate(None).path, env, root, root / "bare-stderr.log")
    await server.start()

    async def one(n: int) -> None:
        key = model.open_call(CallContext(label=f"bare/{n}"))
        prompt = f"Scenario {n}: Copy partner bucket {n} to the archive\n\n- verify the object count\n\n"
        prompt += f"Write the complete document to the file `outputs/bare_{n}.md`."
        arguments = {
            "prompt": prompt,
            "model": "gpt-5-codex",
            "cwd": str(root),
            "sandbox": "workspace-write",
            "approval-policy": "never",
            "config": {
                "model_provider": "interllm",
                "model_providers": {"interllm": provider_config(model.call_url(key))},
            },
        }
        result = await server.call(arguments, 120)
        assert not result.is_error and not result.error, result
        model.close_call(key)

    try:
        start = time.monotonic()
        await asyncio.gather(*(one(n) for n in range(1, SCENARIOS + 1)))
        return time.monotonic() - start
    finally:
        await server.stop()
        await model.stop()


def main() -> int:
    root = project(scenario_list(SCENARIOS))
    serial, serial_peak = sampled_run(root, "--interllm", "input/list.md")
    assert serial["returncode"] == 0, serial["tail"]
    inflight, peak = sampled_run(root, "--interllm", "input/list.md", "--interllm-concurrency", str(SCENARIOS))
    assert inflight["returncode"] == 0, inflight["tail"]
    xdist, xdist_peak = sampled_run(root, "--interllm", "input/list.md", "-n", "4")
    assert xdist["returncode"] == 0, xdist["tail"]
    bare_root = Path(tempfile.mkdtemp(prefix="interllm-bare-")).resolve()
    bare = asyncio.run(bare_calls(bare_root))
    figures = {
        "efficiency_inflight_16": round(serial["phase"] / (SCENARIOS * inflight["phase"]), 3),
        "inflight_vs_bare_16": round(bare / inflight["phase"], 3),
        "mb_per_inflight_16": round(peak / SCENARIOS / 1e6, 1),
        "speedup_wall_16": round(serial["wall"] / inflight["wall"], 2),
    }
    rows = [
        ("serial", serial["phase"], serial["wall"], serial_peak),
        (f"--interllm-concurrency {SCENARIOS}", inflight["phase"], inflight["wall"], peak),
        ("-n 4", xdist["phase"], xdist["wall"], xdist_peak),
        (f"bare script, {SCENARIOS} calls on one server", bare, None, None),
    ]
    print(f"{'run':42} {'phase s':>8} {'wall s':>7} {'peak tree MB':>13}")
    for name, phase, wall, rss in rows:
        wall_text = f"{wall:7.2f}" if wall is not None else "      -"
        rss_text = f"{rss / 1e6:13.0f}" if rss is not None else "            -"
        print(f"{name:42} {phase:8.2f} {wall_text} {rss_text}")
    write_result(
        "concurrency",
        {
            "latency_s": LATENCY,
            "scenarios": SCENARIOS,
            "serial": {"phase_s": round(serial["phase"], 3), "wall_s": round(serial["wall"], 3)},
            "inflight": {
                "phase_s": round(inflight["phase"], 3),
                "wall_s": round(inflight["wall"], 3),
                "peak_mb": peak / 1e6,
            },
            "xdist_4": {
                "phase_s": round(xdist["phase"], 3),
                "wall_s": round(xdist["wall"], 3),
                "peak_mb": xdist_peak / 1e6,
            },
            "bare_phase_s": round(bare, 3),
            **figures,
        },
    )
    update_summary(**figures)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(bare_root, ignore_errors=True)
    print(
        f"in flight: efficiency {figures['efficiency_inflight_16']:.3f}, vs bare {figures['inflight_vs_bare_16']:.3f} "
        f"(target >= 0.95), {figures['mb_per_inflight_16']:.1f} MB per scenario in flight (target <= 50), "
        f"{figures['speedup_wall_16']:.1f}x faster than serial (target >= 6)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
