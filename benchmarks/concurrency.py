"""Scenarios in flight on one codex server: 16 and 64 scenarios, 1 s of model latency per request.

Each round runs, one after the other: for 16 scenarios, serial; `--interllm-concurrency N` (one process, one
codex server) for N = 16 and 64, each beside a bare script that makes the same N codex calls concurrently on one
server through the plugin's own MCP client, with no pytest at all — the limit of codex itself on this machine.
`-n 4` (four workers, four servers) runs in the first round only, for its memory. Figures, per round, then median
[min–max] over the rounds:
- `efficiency_inflight_16`: serial phase / (16 × in-flight phase); 1.0 would be perfect overlap;
- `inflight_vs_bare_N`: bare concurrent phase / in-flight phase; 1.0 means the plugin adds nothing;
- `mb_per_inflight_N`: peak RSS of the whole process tree (pytest, codex, the commands codex runs) during
  the in-flight run, divided by N;
- `speedup_wall_16`: serial wall clock / in-flight wall clock, start-up included.
What bounds the in-flight phase, measured on both sides during the phase: codex's own CPU seconds per turn (from
/proc, the commands it ran apart), the Python process's CPU per turn, how busy the machine's cores were, the lag of the
event loop (a probe that asks to wake every 50 ms) and what the model's server adds to each request beyond its latency
(offline, codex talks to the scripted model in the pytest process itself: no audit proxy is in the path).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import project, pytest_run, scenario_list, update_summary, write_result
from figures import per_round, rounds, scaled, spread, text

from pytest_interllm.codex.config import config_toml, provider_config
from pytest_interllm.codex.locate import locate
from pytest_interllm.codex.server import CodexServer
from pytest_interllm.providers.scripted import CallContext, ScriptedModel

LATENCY = 1.0
SIZES = {16: scaled(16), 64: scaled(64)}  # figure name → scenarios (fewer in a smoke run)
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def processes() -> dict[int, tuple[int, int, float, float]]:
    """pid → (parent, RSS bytes, own CPU s, CPU s of its reaped children) for every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            f = stat[stat.rfind(")") + 2 :].split()
            own, reaped = (int(f[11]) + int(f[12])) / TICK, (int(f[13]) + int(f[14])) / TICK
            found[int(entry.name)] = (int(f[1]), int(f[21]) * PAGE, own, reaped)
        except (OSError, ValueError, IndexError):
            continue
    return found


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy(start: tuple[int, int], end: tuple[int, int]) -> float:
    """How busy the machine's cores were between two `machine_cpu` readings (1.0: every core all the time)."""
    return (end[0] - start[0]) / max(1, end[1] - start[1])


def descendants(procs: dict[int, tuple[int, int, float, float]], root_pid: int) -> set[int]:
    tree, frontier = {root_pid}, [root_pid]
    children: dict[int, list[int]] = {}
    for pid, (parent, *_) in procs.items():
        children.setdefault(parent, []).append(pid)
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in tree:
                tree.add(child)
                frontier.append(child)
    return tree


def is_codex(pid: int, known: set[int]) -> bool:
    """Whether `pid` is a codex server; only a yes is remembered (between fork and exec, a child still shows its
    parent's command line)."""
    if pid not in known:
        try:
            cmd = (Path("/proc") / str(pid) / "cmdline").read_bytes()
        except OSError:
            return False
        if b"codex" in cmd.split(b"\0", 1)[0] and b"mcp-server" in cmd:
            known.add(pid)
    return pid in known


def sampled_run(root: Path, *args: str) -> dict[str, Any]:
    """`pytest_run`, with the process tree sampled every 50 ms: peak RSS, and CPU seconds of the pytest process,
    of codex and of the commands codex ran during the scenario phase (start-up apart)."""
    peak = 0
    cpu: dict[int, tuple[str, float, float]] = {}  # pid → (role, own CPU, reaped children's CPU), last seen
    series: list[tuple[float, dict[int, tuple[str, float, float]]]] = []  # (when, `cpu` then) at each sample
    known: set[int] = set()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        top = None
        while not done.is_set():
            if top is None:
                for proc in Path("/proc").iterdir():
                    try:
                        cmd = (proc / "cmdline").read_bytes()
                        if proc.name.isdigit() and b"pytest" in cmd and Path(os.readlink(proc / "cwd")) == root:
                            top = int(proc.name)
                            break
                    except OSError:
                        continue
            if top is not None:
                procs = processes()
                tree = descendants(procs, top) & procs.keys()
                peak = max(peak, sum(procs[pid][1] for pid in tree))
                for pid in tree:
                    role = "pytest" if pid == top else "codex" if is_codex(pid, known) else "other"
                    cpu[pid] = (role, procs[pid][2], procs[pid][3])
                series.append((time.time(), dict(cpu)))
            time.sleep(0.05)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    busy_start = machine_cpu()
    try:
        result = pytest_run(root, *args, env={"INTERLLM_SCRIPTED_LATENCY": str(LATENCY), "BENCH_LOOP_LAG": "1"})
    finally:
        done.set()
        watcher.join()
    assert result["returncode"] == 0, result["tail"]
    result["peak"] = peak
    timing = result["timing"]
    at_start = next((c for t, c in reversed(series) if t <= timing["first_start"]), {})
    at_end = next((c for t, c in series if t >= timing["last_end"]), cpu)

    def phase_cpu(role: str, which: int = 1) -> float:
        return sum(v[which] - at_start.get(pid, (role, 0.0, 0.0))[which] for pid, v in at_end.items() if v[0] == role)

    result["cpu_pytest_s"] = phase_cpu("pytest")
    result["cpu_codex_s"] = phase_cpu("codex")
    result["cpu_commands_s"] = phase_cpu("codex", 2)
    result["cpu_all_s"] = sum(own for _, own, _ in cpu.values())  # the whole run, start-up included
    # the lag while scenarios ran (at start-up the loop waits on the import lock and the GIL, not on the scenarios)
    result["loop_lag_s"] = [
        lag for at, lag in timing.get("loop_lag_s", []) if timing["first_start"] <= at <= timing["last_end"]
    ]
    result["machine_busy"] = busy(busy_start, machine_cpu())
    logs = sorted((root / "logs").glob("run-*.jsonl"))
    records = [json.loads(line) for line in logs[-1].read_text().splitlines()] if logs else []
    latencies = [r["latency"] for rec in records for r in rec.get("requests") or [] if r.get("latency") is not None]
    result["requests"] = len(latencies)
    result["request_extra_s"] = statistics.median(latencies) - LATENCY if latencies else None
    shutil.rmtree(root / "logs", ignore_errors=True)
    return result


async def lag_probe(lags: list[tuple[float, float]]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        t = loop.time()
        await asyncio.sleep(0.05)
        lags.append((time.time(), loop.time() - t - 0.05))


async def bare_calls(root: Path, count: int) -> dict[str, Any]:
    """The same scenario calls, concurrently, on one codex server: the phase from first call to last end, and the
    CPU of this script and of its codex server."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    model = ScriptedModel(latency=LATENCY)
    await model.start()
    home, codex_home = root / "bare-home", root / "bare-codex-home"
    home.mkdir()
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(config_toml(model.url))
    env = {"HOME": str(home), "CODEX_HOME": str(codex_home), "INTERLLM_PROVIDER_KEY": model.token}
    env["PATH"] = os.environ.get("PATH", os.defpath)
    server = CodexServer(locate(None).path, env, root, root / "bare-stderr.log")
    await server.start()
    lags: list[tuple[float, float]] = []
    probe = asyncio.create_task(lag_probe(lags))

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
        result = await server.call(arguments, 300)
        assert not result.is_error and not result.error, result
        model.close_call(key)

    try:
        procs = processes()
        codex = [pid for pid in descendants(procs, os.getpid()) if is_codex(pid, set())]
        codex_start = [sum(procs[pid][i] for pid in codex) for i in (2, 3)]
        start, busy_start, cpu_start = time.monotonic(), machine_cpu(), time.process_time()
        await asyncio.gather(*(one(n) for n in range(1, count + 1)))
        phase = time.monotonic() - start
        cpu_script = time.process_time() - cpu_start
        machine_busy = busy(busy_start, machine_cpu())
        procs = processes()
        return {
            "phase": phase,
            "cpu_script_s": cpu_script,
            "cpu_codex_s": sum(procs[pid][2] for pid in codex if pid in procs) - codex_start[0],
            "cpu_commands_s": sum(procs[pid][3] for pid in codex if pid in procs) - codex_start[1],
            "loop_lag_s": [lag for _, lag in lags],
            "machine_busy": machine_busy,
        }
    finally:
        probe.cancel()
        await server.stop()
        await model.stop()


def lag(values: list[float]) -> dict[str, float | None]:
    """Median, 95th percentile and worst lag of the event loop, in ms."""
    if len(values) < 2:
        return {"median_ms": None, "p95_ms": None, "max_ms": None}
    p95 = statistics.quantiles(values, n=20)[-1]
    return {
        "median_ms": round(statistics.median(values) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "max_ms": round(max(values) * 1000, 1),
    }


def floors_of(b: dict[str, Any], count: int, cores: int) -> dict[str, float]:
    """The least phase each resource allows, in seconds (medians): the model's latency (requests in a row), codex's
    CPU and its commands' spread over the cores, and the plugin's Python process on one core (the GIL)."""
    return {
        "model latency": round(b["requests_per_scenario"]["median"] * LATENCY, 2),
        "codex CPU": round(
            (b["codex_cpu_per_turn_s"]["median"] + b["commands_cpu_per_turn_s"]["median"]) * count / cores, 2
        ),
        "pytest-interllm's Python process": round(b["pytest_cpu_per_turn_s"]["median"] * count, 2),
    }


def main() -> int:
    roots = {name: project(scenario_list(count)) for name, count in SIZES.items()}
    bare_root = Path(tempfile.mkdtemp(prefix="interllm-bare-")).resolve()
    runs: dict[str, list[dict[str, Any]]] = {}
    xdist: dict[str, Any] = {}
    for n in range(rounds()):
        runs.setdefault("serial_16", []).append(sampled_run(roots[16], "--interllm", "input/list.md"))
        for name, count in SIZES.items():
            # which side goes first alternates, so a drift in the machine's load hits both alike
            for side in ("inflight", "bare") if n % 2 == 0 else ("bare", "inflight"):
                if side == "bare":
                    runs.setdefault(f"bare_{name}", []).append(asyncio.run(bare_calls(bare_root, count)))
                else:
                    args = ("--interllm", "input/list.md", "--interllm-concurrency", str(count))
                    runs.setdefault(f"inflight_{name}", []).append(sampled_run(roots[name], *args))
        if n == 0:
            xdist = sampled_run(roots[16], "--interllm", "input/list.md", "-n", "4")
    phase = {key: [r["phase"] for r in rs] for key, rs in runs.items()}
    figures = {
        "efficiency_inflight_16": spread([e / SIZES[16] for e in per_round(phase["serial_16"], phase["inflight_16"])]),
        "speedup_wall_16": spread(
            per_round([r["wall"] for r in runs["serial_16"]], [r["wall"] for r in runs["inflight_16"]]), 2
        ),
    }
    bounds: dict[str, Any] = {}
    cores = os.cpu_count() or 1
    for name, count in SIZES.items():
        ours, bare = runs[f"inflight_{name}"], runs[f"bare_{name}"]
        figures[f"inflight_vs_bare_{name}"] = spread(per_round(phase[f"bare_{name}"], phase[f"inflight_{name}"]))
        figures[f"mb_per_inflight_{name}"] = spread([r["peak"] / count / 1e6 for r in ours], 1)
        bounds[str(name)] = {
            "name": name,
            "scenarios": count,
            "codex_cpu_per_turn_s": spread([r["cpu_codex_s"] / count for r in ours]),
            "bare_codex_cpu_per_turn_s": spread([r["cpu_codex_s"] / count for r in bare]),
            "commands_cpu_per_turn_s": spread([r["cpu_commands_s"] / count for r in ours]),
            "pytest_cpu_per_turn_s": spread([r["cpu_pytest_s"] / count for r in ours]),
            "bare_script_cpu_per_turn_s": spread([r["cpu_script_s"] / count for r in bare]),
            # the run's CPU over what the cores could give during its wall clock; and how busy the whole machine was
            # (other processes too): near 1.0, the machine's CPU bounds the phase, not the plugin
            "run_cpu_share": spread([r["cpu_all_s"] / (cores * r["wall"]) for r in ours]),
            "machine_busy": spread([r["machine_busy"] for r in ours]),
            "bare_machine_busy": spread([r["machine_busy"] for r in bare]),
            "loop_lag": lag([x for r in ours for x in r["loop_lag_s"]]),
            "bare_loop_lag": lag([x for r in bare for x in r["loop_lag_s"]]),
            "requests_per_scenario": spread([r["requests"] / count for r in ours], 2),
            "model_server_extra_per_request_s": spread(
                [r["request_extra_s"] for r in ours if r["request_extra_s"] is not None] or [0.0]
            ),
        }
        bounds[str(name)]["floors_s"] = floors = floors_of(bounds[str(name)], count, cores)
        bounds[str(name)]["bound"] = max(floors, key=floors.__getitem__)
    print(f"{'run':34} {'phase s':>30} {'wall s':>30} {'peak tree MB':>30}")
    for key, rs in runs.items():
        walls = text(spread([r["wall"] for r in rs]), ".2f") if "wall" in rs[0] else "-"
        peaks = text(spread([r["peak"] / 1e6 for r in rs], 0), ".0f") if "peak" in rs[0] else "-"
        print(f"{key:34} {text(spread(phase[key]), '.2f'):>30} {walls:>30} {peaks:>30}")
    print(f"{'-n 4 (first round)':34} {xdist['phase']:>30.2f} {xdist['wall']:>30.2f} {xdist['peak'] / 1e6:>30.0f}")
    print("\nwhat bounds the in-flight phase (per scenario turn; ours vs the bare script):")
    for b in bounds.values():
        print(
            f"  {b['scenarios']:>3} in flight: codex CPU {text(b['codex_cpu_per_turn_s'])} s vs bare "
            f"{text(b['bare_codex_cpu_per_turn_s'])} s; commands codex ran {text(b['commands_cpu_per_turn_s'])} s; "
            f"pytest process {text(b['pytest_cpu_per_turn_s'])} s vs bare script "
            f"{text(b['bare_script_cpu_per_turn_s'])} s; the run's share of the cores "
            f"{text(b['run_cpu_share'], '.2f')}; "
            f"machine busy {text(b['machine_busy'], '.2f')} vs bare {text(b['bare_machine_busy'], '.2f')}; "
            f"loop lag median/p95/max {b['loop_lag']['median_ms']}/{b['loop_lag']['p95_ms']}/{b['loop_lag']['max_ms']} "
            f"ms vs bare {b['bare_loop_lag']['median_ms']}/{b['bare_loop_lag']['p95_ms']}/"
            f"{b['bare_loop_lag']['max_ms']} ms; "
            f"{text(b['requests_per_scenario'], '.2f')} requests per scenario, the model's server adds "
            f"{text(b['model_server_extra_per_request_s'])} s to each beyond the latency (no proxy offline)"
        )
        ours_phase, bare_phase = (statistics.median(phase[f"{k}_{b['name']}"]) for k in ("inflight", "bare"))
        print(
            f"      least phase each allows: {', '.join(f'{k} {v:.2f} s' for k, v in b['floors_s'].items())}; "
            f"measured {ours_phase:.2f} s (bare {bare_phase:.2f} s): bound by {b['bound']}"
        )
    write_result(
        "concurrency",
        {
            "latency_s": LATENCY,
            "sizes": {str(k): v for k, v in SIZES.items()},
            "phases_s": phase,
            "walls_s": {key: [r["wall"] for r in rs if "wall" in r] for key, rs in runs.items()},
            "xdist_4_first_round": {
                "phase_s": round(xdist["phase"], 3),
                "wall_s": round(xdist["wall"], 3),
                "peak_mb": round(xdist["peak"] / 1e6, 1),
            },
            "bounds": bounds,
            **figures,
        },
    )
    update_summary(
        **figures,
        codex_cpu_per_turn_64=bounds["64"]["codex_cpu_per_turn_s"],
        bare_codex_cpu_per_turn_64=bounds["64"]["bare_codex_cpu_per_turn_s"],
    )
    for root in (*roots.values(), bare_root):
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"in flight 16: efficiency {text(figures['efficiency_inflight_16'])}, vs bare "
        f"{text(figures['inflight_vs_bare_16'])} (target >= 0.95), {text(figures['mb_per_inflight_16'], '.1f')} MB "
        f"per scenario (target <= 50), {text(figures['speedup_wall_16'], '.2f')}x faster than serial (target >= 6); "
        f"in flight 64: vs bare {text(figures['inflight_vs_bare_64'])} (target >= 0.90), "
        f"{text(figures['mb_per_inflight_64'], '.1f')} MB per scenario (target <= 25)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
