"""Checks of the GPU backend under numba's CUDA simulator, run as a script.

``NUMBA_ENABLE_CUDASIM=1`` must be set before ``numba.cuda`` is first imported, so
``tests/test_gpu_sim.py`` runs this file in a subprocess with it set. It prints one JSON object
with the outcome of every check (and the seconds each took); the test asserts on it.

    NUMBA_ENABLE_CUDASIM=1 python tests/gpu_sim_check.py [CITIZENS] [DAYS]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
import warnings
from typing import Any

import numpy as np

import socialcredit.population as POP


def _same_runs(a: Any, b: Any) -> dict[str, Any]:
    events_equal = len(a.events) == len(b.events) and all(
        x.shape == y.shape and bool((x == y).all()) for x, y in zip(a.events, b.events, strict=True))
    return {
        "counts_equal": bool(a.counts.shape == b.counts.shape and (a.counts == b.counts).all()),
        "events_equal": events_equal,
        "n_events": int(sum(len(x) for x in a.events)),
        "st_equal": bool((a.state["st"] == b.state["st"]).all()),
        "pub_equal": bool((a.state["pub"] == b.state["pub"]).all()),
    }


def _same_run_directories(citizens: int, days: int) -> dict[str, Any]:
    """``simulate`` with ``--ledger`` on both backends, the GPU one interrupted after its first
    checkpoint and resumed: every table and the census must be identical."""
    import tempfile
    from pathlib import Path

    import pyarrow.parquet as pq

    from socialcredit.run import _Stopped, run_tables, simulate
    from socialcredit.scenario import Scenario

    sc = Scenario.load("default").model_copy(update={"burn_in_days": 0})
    kw: dict[str, Any] = {"citizens": citizens, "days": days, "ledger": True,
                          "checkpoint_every": 15}
    with tempfile.TemporaryDirectory() as tmp:
        a = simulate(sc, out=Path(tmp) / "cpu", backend="cpu", **kw)
        try:
            simulate(sc, out=Path(tmp) / "gpu", backend="gpu", stop_after=15, **kw)
        except _Stopped:
            pass
        b = simulate(sc, out=Path(tmp) / "gpu", backend="gpu", resume=True, **kw)
        tables = {}
        for name in run_tables(True):
            pa_, pb_ = a / f"{name}.parquet", b / f"{name}.parquet"
            if not pa_.exists():
                pa_, pb_ = a / name, b / name
            ta, tb = pq.read_table(pa_), pq.read_table(pb_)
            tables[name] = {"rows": ta.num_rows, "equal": bool(ta.equals(tb))}
        ma = json.loads((a / "manifest.json").read_text())
        mb = json.loads((b / "manifest.json").read_text())
    return {"tables": tables, "census_equal": ma["census"] == mb["census"],
            "backend": mb["backend"]}


def main(citizens: int, days: int) -> dict[str, Any]:
    from socialcredit.engine import Calendar, Shard, build_model, new_state, run_memory, whole
    from socialcredit.errors import UserError
    from socialcredit.kernel import gpu as G
    from socialcredit.kernel import gpu_available
    from socialcredit.kernel import layout as LY
    from socialcredit.scenario import Scenario

    out: dict[str, Any] = {"simulator": G.SIMULATOR, "gpu_available": gpu_available()}
    model = build_model(Scenario.load("default"), citizens=citizens, days=days)
    days = min(days, model.total_days)
    shard = whole(model)
    out["subjects"] = shard.size
    out["days"] = days

    # 1. every event recorded: counts, events and final state identical to the CPU backend
    t0 = time.perf_counter()
    cpu = run_memory(model, emit=LY.EMIT_ALL, backend="cpu", until=days)
    t1 = time.perf_counter()
    gpu = run_memory(model, emit=LY.EMIT_ALL, backend="gpu", until=days)
    t2 = time.perf_counter()
    out["emit_all"] = _same_runs(cpu, gpu)
    out["emit_all"]["nonzero_counters"] = int(np.count_nonzero(cpu.counts))
    out["seconds"] = {"cpu": round(t1 - t0, 2), "gpu_sim": round(t2 - t1, 2)}

    # 2. population generated on the device, no events, several counter copies
    d2 = min(days, 30)
    cpu2 = run_memory(model, emit=LY.EMIT_NONE, backend="cpu", until=d2)
    be = G.GpuBackend(model, shard, None, emit=LY.EMIT_NONE)
    fresh = new_state(model, shard)
    be.sync_state()
    assert be.state is not None
    gen = {
        "region_equal": bool((be.state["st"]["region"] == fresh["st"]["region"]).all()),
        "bands_equal": bool((be.state["st"]["bands"] == fresh["st"]["bands"]).all()),
        "state_equal": bool((be.state["st"] == fresh["st"]).all()),
        "rep_equal": bool((be.representatives() == model.population.rep).all()),
        "counter_copies": int(be.cnt.shape[0]),
    }
    cal = Calendar(model)
    counts = np.stack([be.run_day(t, cal).counts for t in range(d2)])
    be.sync_state()
    gen["counts_equal"] = bool((counts == cpu2.counts).all())
    gen["st_equal"] = bool((be.state["st"] == cpu2.state["st"]).all())
    gen["pub_equal"] = bool((be.state["pub"] == cpu2.state["pub"]).all())
    lazy = POP.lazy_population(model.population.layout)
    gen["lazy_untouched"] = not lazy.materialized and not G._has_arrays(lazy)
    gen["lazy_equal"] = bool((lazy.rep == model.population.rep).all()
                             and (lazy.bands == model.population.bands).all()
                             and (lazy.region == model.population.region).all())
    out["device_population"] = gen
    t3 = time.perf_counter()
    out["seconds"]["device_population"] = round(t3 - t2, 2)

    # 3. one shard of two (citizens and businesses from the middle of the id space)
    cb, bb = model.population.shard_bounds(2)
    C = model.n_citizens
    half = Shard(int(cb[1]), int(cb[2]), int(bb[1]) - C, int(bb[2]) - C)
    d3 = min(days, 20)
    cpu3 = run_memory(model, half, emit=LY.EMIT_ALL, backend="cpu", until=d3)
    gpu3 = run_memory(model, half, emit=LY.EMIT_ALL, backend="gpu", until=d3)
    out["shard"] = _same_runs(cpu3, gpu3)
    be3 = G.GpuBackend(model, half, None)
    be3.sync_state()
    assert be3.state is not None
    out["shard"]["generated_equal"] = bool(
        (be3.state["st"] == new_state(model, half)["st"]).all()
        and (be3.representatives() == model.population.rep[half.b_lo:half.b_hi]).all())
    out["seconds"]["shard"] = round(time.perf_counter() - t3, 2)

    # 4. the device reduction of counter copies (the simulator's backend sums on the host)
    from numba import cuda

    rng = np.random.default_rng(1)
    host = rng.integers(-(2**40), 2**40, size=(5, 333), dtype=np.int64)
    d_cnt = cuda.to_device(host)
    d_out = cuda.device_array(host.shape[1], np.int64)
    G._reduce_kernel[3, 8](d_cnt, d_out)
    out["reduce_kernel"] = bool((d_out.copy_to_host() == host.sum(axis=0)).all()
                                and not d_cnt.copy_to_host().any())

    # 5. the whole command: run directories (ledger, snapshots, checkpoints, a resumed run)
    t4 = time.perf_counter()
    out["run_directory"] = _same_run_directories(citizens=800, days=40)
    out["seconds"]["run_directory"] = round(time.perf_counter() - t4, 2)

    # 6. a dated demand (a second period of service tables): the GPU backend reads the same
    # period months as the CPU one, and the demand changes the run
    t5 = time.perf_counter()
    data = Scenario.load("default").to_dict()
    start = dt.date.fromisoformat(str(data["start"])) - dt.timedelta(
        days=int(data.get("burn_in_days", 0)))
    data.setdefault("behaviour", {}).setdefault("services", {})["flight"] = {
        "demand": {start.isoformat(): 1.0, (start + dt.timedelta(days=10)).isoformat(): 3.0}}
    dm = build_model(Scenario.from_dict(data), citizens=800, days=30)
    d6 = min(30, dm.total_days)
    cpu6 = run_memory(dm, emit=LY.EMIT_ALL, backend="cpu", until=d6)
    gpu6 = run_memory(dm, emit=LY.EMIT_ALL, backend="gpu", until=d6)
    plain = run_memory(build_model(Scenario.load("default"), citizens=800, days=30),
                       emit=LY.EMIT_ALL, backend="cpu", until=d6)
    out["dated_demand"] = _same_runs(cpu6, gpu6)
    out["dated_demand"]["periods"] = int(dm.extra["svc_period"].max()) + 1
    out["dated_demand"]["differs_from_plain"] = not bool(
        (cpu6.counts == plain.counts).all())
    out["seconds"]["dated_demand"] = round(time.perf_counter() - t5, 2)

    # 7. the memory check, before any work
    try:
        G.GpuBackend(model, shard, new_state(model, shard), free_bytes=1_000_000)
        out["memory_error"] = None
    except UserError as e:
        out["memory_error"] = str(e)
    plan = G.memory_plan(model, shard)
    out["plan_total"] = plan.total
    return out


if __name__ == "__main__":
    warnings.simplefilter("ignore")  # the simulated step's uint64 products overflow by design
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") in ("", "0"):
        sys.exit("set NUMBA_ENABLE_CUDASIM=1")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    d = int(sys.argv[2]) if len(sys.argv) > 2 else 90
    t = time.perf_counter()
    result = main(n, d)
    result["seconds"]["total"] = round(time.perf_counter() - t, 2)
    print(json.dumps(result))
