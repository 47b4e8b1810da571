"""Benchmark: the ``china`` scenario at full scale on one GPU (DESIGN 6).

    .venv/bin/python benchmarks/bench_gpu.py [--citizens N]
        [--days 365] [--out bench-results] [--no-command]

Without a GPU (``socialcredit.kernel.gpu_available()`` is false) it prints ``skipped: no GPU``,
writes the memory plan of full-scale china to ``bench-results/bench_gpu.json`` and exits 0.

With one it measures, after warming numba's compile cache with a small GPU run:

1. ``engine``: in this process, the whole population (``--citizens``, default every region at
   its census population, about 1.41 billion citizens and 43 million businesses) generated on
   the device, then every simulated day (``--days`` reported days plus the scenario's burn-in)
   with aggregates only; citizen-days per second of the day loop; and in the same process the
   seconds of one plain device-to-device copy of the state arrays, so the ratio
   ``day / copy`` says how far a day is from the memory bandwidth bound;
2. ``command``: the wall time of ``socialcredit run china --citizens N --days D --backend gpu``
   from start to finished run directory (target: under 60 s).

The figures go to ``bench-results/bench_gpu.json``. Under numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1 SOCIALCREDIT_GPU_SIM=1``, small ``--citizens``) it runs the same code
to check the script, and says so in the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "socialcredit"]
TARGET_COMMAND_S = 60.0


def full_scale_citizens() -> int:
    from socialcredit.scenario import Scenario

    sc = Scenario.load("china")
    return int(sum(sc._people(r) for r in sc.regions))


def run_cli(args: list[str]) -> float:
    t = time.perf_counter()
    proc = subprocess.run(CLI + args, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed: {' '.join(args)}\n{proc.stderr[-4000:]}")
    return wall


def bench_engine(citizens: int, days: int) -> dict[str, Any]:
    """Generate the population on the device and run every day, timing the day loop; then a
    plain device copy of the state arrays in the same process."""
    import socialcredit.population as population
    from socialcredit.engine import Calendar, build_model, whole
    from socialcredit.kernel.gpu import GpuBackend, lazy_population
    from socialcredit.scenario import Scenario

    real_generate = population.generate
    # the device generates the subjects: the host needs only the layout
    population.generate = lambda sc, seed=None, citizens=None: lazy_population(  # type: ignore[assignment]
        population.layout(sc, seed, citizens))
    try:
        t0 = time.perf_counter()
        model = build_model(Scenario.load("china"), citizens=citizens, days=days)
    finally:
        population.generate = real_generate
    t1 = time.perf_counter()
    shard = whole(model)
    be = GpuBackend(model, shard, None)
    t2 = time.perf_counter()
    cal = Calendar(model)
    per_day = []
    for t in range(model.total_days):
        ts = time.perf_counter()
        be.run_day(t, cal)
        per_day.append(time.perf_counter() - ts)
    t3 = time.perf_counter()
    copy_s = be.device_copy_seconds()
    sim_s = t3 - t2
    C, B = model.n_citizens, model.n_businesses
    n_days = model.total_days
    mean_day = sim_s / n_days
    quiet = sorted(per_day)[len(per_day) // 2]
    return {
        "citizens": C,
        "businesses": B,
        "simulated_days": n_days,
        "reported_days": model.days,
        "burn_in_days": model.burn_in,
        "build_model_s": round(t1 - t0, 3),
        "device_population_s": round(t2 - t1, 3),
        "simulate_s": round(sim_s, 3),
        "citizen_days_per_s": round(C * n_days / sim_s),
        "subject_days_per_s": round((C + B) * n_days / sim_s),
        "mean_day_s": round(mean_day, 5),
        "median_day_s": round(quiet, 5),
        "slowest_day_s": round(max(per_day), 5),
        "state_copy_s": round(copy_s, 5),
        "state_bytes": int(be.plan.state + be.plan.public),
        "copy_GB_per_s": round(2 * (be.plan.state + be.plan.public) / copy_s / 1e9, 1),
        "mean_day_over_copy": round(mean_day / copy_s, 2),
        "median_day_over_copy": round(quiet / copy_s, 2),
        "device_plan_bytes": int(be.plan.total),
        "counter_copies": int(be.cnt.shape[0]),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--citizens", type=int, default=None)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-results")
    ap.add_argument("--no-command", action="store_true", help="skip the CLI wall-time run")
    args = ap.parse_args()

    from socialcredit.kernel import gpu_available
    from socialcredit.kernel.gpu_plan import china_full_scale_plan

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "bench_gpu.json"
    res: dict[str, Any] = {"machine": {"python": platform.python_version(),
                                       "cores": os.cpu_count()}}
    res["memory_plan_china_full_scale"] = china_full_scale_plan()
    if not gpu_available():
        res["skipped"] = "no GPU"
        path.write_text(json.dumps(res, indent=2) + "\n")
        print("skipped: no GPU")
        return 0
    from socialcredit.kernel.gpu import SIMULATOR

    citizens = args.citizens or full_scale_citizens()
    res["simulator"] = SIMULATOR
    if not SIMULATOR:
        from numba import cuda

        dev = cuda.get_current_device()
        res["machine"]["gpu"] = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    tmp = Path(tempfile.mkdtemp(prefix="socialcredit-bench-gpu-"))
    try:
        # warm numba's compile cache (the targets assume a warm cache)
        warm = max(8 * 31, min(citizens, 100_000))
        res["warm_up_s"] = round(run_cli(["run", "china", "--citizens", str(warm), "--days", "2",
                                          "--backend", "gpu", "--out", str(tmp / "warm")]), 3)
        res["engine"] = bench_engine(citizens, args.days)
        if not args.no_command:
            cmd = ["run", "china", "--citizens", str(citizens), "--days", str(args.days),
                   "--backend", "gpu", "--out", str(tmp / "full")]
            wall = run_cli(cmd)
            m = json.loads((tmp / "full" / "manifest.json").read_text())
            res["command"] = {
                "command": "socialcredit " + " ".join(cmd[:-2]),
                "wall_s": round(wall, 3),
                "target_wall_s": TARGET_COMMAND_S,
                "backend": m.get("backend"),
                "timings": m.get("timings"),
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    path.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
