"""The GPU backend without a GPU: numba's CUDA simulator, PTX compilation, the memory plan.

The simulator must be switched on before ``numba.cuda`` is first imported, so the checks run
in subprocesses (``tests/gpu_sim_check.py``, ``tests/gpu_ptx_check.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env.update(extra)
    return env


def _run(script: str, *args: str, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HERE / script), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def sim() -> dict:
    proc = _run("gpu_sim_check.py", "3000", "90",
                env=_env(NUMBA_ENABLE_CUDASIM="1", SOCIALCREDIT_GPU_SIM="1",
                         PYTHONWARNINGS="ignore"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_gpu_kernels_match_cpu_under_simulator(sim: dict) -> None:
    assert sim["simulator"] is True
    assert sim["subjects"] >= 3000 and sim["days"] == 90
    e = sim["emit_all"]
    assert e["n_events"] > 1000 and e["nonzero_counters"] > 100  # the run did something
    assert e == {**e, "counts_equal": True, "events_equal": True, "st_equal": True,
                 "pub_equal": True}


@pytest.mark.slow
def test_device_population_and_counter_copies(sim: dict) -> None:
    g = sim["device_population"]
    assert g["counter_copies"] > 1
    assert all(g[k] for k in ("region_equal", "bands_equal", "state_equal", "rep_equal",
                              "counts_equal", "st_equal", "pub_equal", "lazy_untouched",
                              "lazy_equal")), g


@pytest.mark.slow
def test_gpu_shard_matches_cpu(sim: dict) -> None:
    s = sim["shard"]
    assert s["n_events"] > 0
    assert all(s[k] for k in ("counts_equal", "events_equal", "st_equal", "pub_equal",
                              "generated_equal")), s


@pytest.mark.slow
def test_gpu_run_directory_matches_cpu(sim: dict) -> None:
    r = sim["run_directory"]
    assert r["backend"] == "gpu" and r["census_equal"] is True
    assert r["tables"]["ledger"]["rows"] > 0 and r["tables"]["snapshots"]["rows"] > 0
    assert all(t["equal"] for t in r["tables"].values()), r["tables"]


@pytest.mark.slow
def test_gpu_backend_follows_a_dated_demand(sim: dict) -> None:
    """A dated demand gives the service tables a second period; the GPU backend reads the
    same months of it as the CPU one, bit for bit, and the demand did change the run."""
    d = sim["dated_demand"]
    assert d["periods"] == 2 and d["differs_from_plain"] and d["n_events"] > 100
    assert d == {**d, "counts_equal": True, "events_equal": True, "st_equal": True,
                 "pub_equal": True}


def test_reduce_kernel_and_memory_error(sim: dict) -> None:
    assert sim["reduce_kernel"] is True
    msg = sim["memory_error"]
    assert msg is not None and "needs" in msg and "GB of GPU memory" in msg and "free" in msg
    assert sim["gpu_available"] is True  # SOCIALCREDIT_GPU_SIM=1 asked for it


@pytest.mark.slow
def test_gpu_kernels_compile_to_ptx() -> None:
    proc = _run("gpu_ptx_check.py", env=_env())
    if proc.returncode == 3:
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["day_ptx_bytes"] > 0 and out["populate_ptx_bytes"] > 0
    assert out["day_float_instructions"] == 0  # integers only (DESIGN 2.9)
    assert out["day_atomics"] > 0


def test_gpu_available_is_lazy_and_false_without_a_device() -> None:
    code = ("import sys, socialcredit.kernel as k; a = k.gpu_available(); "
            "print(a, 'numba.cuda' in sys.modules)")
    for extra, expected in (({}, None), ({"NUMBA_ENABLE_CUDASIM": "1"}, "False"),
                            ({"NUMBA_ENABLE_CUDASIM": "1", "SOCIALCREDIT_GPU_SIM": "1"}, "True")):
        proc = subprocess.run([sys.executable, "-c", code], env=_env(**extra), cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        avail, imported = proc.stdout.split()
        assert imported == "False"  # probing never imports numba.cuda
        if expected is not None:
            assert avail == expected
        elif not Path("/dev/nvidia0").exists():
            assert avail == "False"


def test_full_scale_china_fits_one_h100() -> None:
    from socialcredit.kernel.gpu_plan import china_full_scale_plan

    plan = china_full_scale_plan()
    assert plan["citizens"] > 1_400_000_000 and plan["businesses"] > 40_000_000
    assert plan["state_bytes_per_subject"] == 44
    assert plan["bytes_per_citizen"] <= 48  # DESIGN 5, businesses included
    assert plan["total_bytes"] < 78 * 2**30  # one 80 GB H100 (about 79 GiB usable)
