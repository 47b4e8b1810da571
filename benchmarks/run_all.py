"""``make bench``: the performance figures of DESIGN 6, written to bench-results/.

Each benchmark runs the real command or API and reports what it measured; ratios are taken
within one run. Benchmarks of other parts (sweeps, the explorer, the GPU) live beside this
file as ``bench_*.py`` and are run from here too; each writes its own JSON.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-results"
CLI = [sys.executable, "-m", "socialcredit"]
REPEATS = 3


def run_cli(args: list[str], env: dict | None = None) -> tuple[float, int]:
    """Wall seconds and peak resident memory (bytes) of one CLI command."""
    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run(CLI + args, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(args)}\n{proc.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) * 1024


def peak_rss(args: list[str]) -> int:
    """Peak resident memory (bytes) of a command, measured in a fresh child process."""
    code = (
        "import resource, subprocess, sys;"
        f"subprocess.run({CLI + args!r}, check=True, capture_output=True);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) * 1024


def bench_simulation(tmp: Path) -> dict:
    from socialcredit.engine import STATE_BYTES

    results: dict = {"machine": {"cores": os.cpu_count(), "python": platform.python_version()}}
    # warm numba's cache with a small run of the same code
    run_cli(["run", "--citizens", "20000", "--days", "30", "--out", str(tmp / "warm")])
    # this machine is shared and noisy: the command runs REPEATS times; the median is the
    # figure, the best and the worst say how much the runs varied
    walls, sims = [], []
    for k in range(REPEATS):
        out = tmp / f"agg{k}"
        wall, _ = run_cli(["run", "--citizens", "1000000", "--days", "365", "--out", str(out)])
        m = json.loads((out / "manifest.json").read_text())
        walls.append(wall)
        sims.append(m["timings"]["simulate_s"])
    days = m["calendar"]["days"] + m["calendar"]["burn_in_days"]
    subjects = m["population"]["citizens"] + m["population"]["businesses"]
    citizens = m["population"]["citizens"]
    sim = statistics.median(sims)
    results["default_1M_365"] = {
        "command": "socialcredit run --citizens 1000000 --days 365",
        "repeats": REPEATS,
        "simulated_days": days,
        "citizens": citizens,
        "businesses": m["population"]["businesses"],
        "simulate_s": sim,
        "simulate_s_all": sims,
        "citizen_days_per_s": round(citizens * days / sim),
        "subject_days_per_s": round(subjects * days / sim),
        "command_wall_s": round(statistics.median(walls), 3),
        "command_wall_s_all": [round(w, 3) for w in walls],
        "target_citizen_days_per_s": 150e6,
        "target_command_wall_s": 4.0,
    }
    wall_l, _ = run_cli(["run", "--citizens", "1000000", "--days", "365", "--ledger",
                         "--out", str(tmp / "ledger")])
    ml = json.loads((tmp / "ledger" / "manifest.json").read_text())
    results["default_1M_365_ledger"] = {
        "command": "socialcredit run --citizens 1000000 --days 365 --ledger",
        "command_wall_s": round(wall_l, 3),
        "rows": ml.get("row_counts", {}),
        "target_command_wall_s": 30.0,
    }
    per_business = STATE_BYTES + 4  # state plus the representative id
    results["state_bytes"] = {
        "per_subject": STATE_BYTES,
        "per_citizen_including_businesses": round(
            STATE_BYTES + per_business * m["population"]["businesses"] / citizens, 2),
        "target_per_citizen": 48,
    }
    rss1 = peak_rss(["run", "--citizens", "1000000", "--days", "30", "--out", str(tmp / "m1")])
    rss3 = peak_rss(["run", "--citizens", "3000000", "--days", "30", "--out", str(tmp / "m3")])
    results["peak_rss"] = {
        "command": "socialcredit run --citizens N --days 30, N = 1 M and 3 M",
        "rss_1M_bytes": rss1,
        "rss_3M_bytes": rss3,
        "bytes_per_extra_citizen": round((rss3 - rss1) / 2_000_000, 1),
        "target_bytes_per_extra_citizen": 64,
    }
    return results


def main() -> int:
    OUT.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="socialcredit-bench-"))
    try:
        res = bench_simulation(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (OUT / "simulation.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    for extra in sorted(Path(__file__).parent.glob("bench_*.py")):
        print(f"--- {extra.name}")
        proc = subprocess.run([sys.executable, str(extra)], cwd=ROOT)
        if proc.returncode != 0:
            print(f"{extra.name} failed with exit code {proc.returncode}")
            return proc.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
