"""A run cut into shards on Dask workers writes the same run directory as one process."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from socialcredit.errors import UserError

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.filterwarnings("ignore:Port 8787 is already in use")

#: Manifest keys that may differ between a distributed and a single-process run.
MAY_DIFFER = {"timings", "created", "threads", "distributed"}
CITIZENS = 20000
DAYS = 60


def read_tables(run: Path) -> tuple[dict[str, Any], dict[str, pa.Table]]:
    manifest = json.loads((run / "manifest.json").read_text())
    tables = {}
    for name, rel in manifest["tables"].items():
        parts = sorted((run / rel).glob("*.parquet"))
        tables[name] = pa.concat_tables([pq.read_table(p) for p in parts])
    return manifest, tables


def assert_same_run(single: Path, sharded: Path, also: frozenset[str] = frozenset()) -> None:
    """The same tables, census and manifest, but for :data:`MAY_DIFFER` and ``also``."""
    m1, t1 = read_tables(single)
    m2, t2 = read_tables(sharded)
    assert sorted(t1) == sorted(t2) and "daily" in t1
    for name in t1:
        assert t1[name].schema.equals(t2[name].schema), name
        assert t1[name].num_rows == t2[name].num_rows, name
        assert t1[name].equals(t2[name]), f"table {name} differs"
    assert m1["census"] == m2["census"]
    assert m1["row_counts"] == m2["row_counts"]
    differ = {k for k in set(m1) | set(m2) if m1.get(k) != m2.get(k)}
    assert differ <= MAY_DIFFER | also, differ


@pytest.fixture(scope="module")
def single_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from socialcredit.run import simulate

    out = tmp_path_factory.mktemp("single") / "run"
    return simulate("default", out=out, citizens=CITIZENS, days=DAYS, ledger=True, threads=1)


def test_sharded_run_is_identical_to_single_process(client: Any, single_run: Path,
                                                    tmp_path: Path) -> None:
    from socialcredit.distributed import simulate_distributed

    seen: list[int] = []
    out = simulate_distributed("default", client=client, out=tmp_path / "run",
                               citizens=CITIZENS, days=DAYS, ledger=True,
                               progress=lambda done, total: seen.append(done))
    assert_same_run(single_run, out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["distributed"]["shards"] == 2
    assert manifest["distributed"]["workers"] == 2
    assert seen[-1] == manifest["calendar"]["days"] + manifest["calendar"]["burn_in_days"]
    assert not list(tmp_path.glob(".*.partial"))


def test_any_sharding_and_block_length_give_the_same_run(client: Any, single_run: Path,
                                                         tmp_path: Path) -> None:
    from socialcredit.distributed import simulate_distributed

    # More shards than workers, and blocks that cut through snapshot and checkpoint days.
    out = simulate_distributed("default", client=client, out=tmp_path / "run",
                               citizens=CITIZENS, days=DAYS, ledger=True, shards=5,
                               block_days=47)
    assert_same_run(single_run, out)
    assert json.loads((out / "manifest.json").read_text())["distributed"]["shards"] == 5


def test_aggregate_run_on_local_scheduler(tmp_path: Path) -> None:
    """``--scheduler local:2`` starts its own cluster; without --ledger only daily is written."""
    from socialcredit.distributed import simulate_distributed
    from socialcredit.run import simulate

    a = simulate("default", out=tmp_path / "a", citizens=4000, days=30, threads=1)
    b = simulate_distributed("default", scheduler="local:2", out=tmp_path / "b",
                             citizens=4000, days=30)
    assert_same_run(a, b)


def test_a_killed_worker_does_not_change_the_run(client: Any, tmp_path: Path) -> None:
    """Dask recomputes the lost shard states from their lineage: the run is still identical."""
    from socialcredit.distributed import simulate_distributed
    from socialcredit.run import simulate

    kw: dict[str, Any] = {"citizens": CITIZENS, "days": 90}
    pids = client.run(os.getpid)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["path"] = simulate_distributed("default", client=client, out=tmp_path / "b",
                                               block_days=5, **kw)
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            box["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline and thread.is_alive():
        for addr, keys in client.processing().items():
            if any("-b2-" in str(k) for k in keys) and addr in pids:
                victim = addr
                break
        time.sleep(0.005)
    assert victim is not None, "no block task was seen running"
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive()
    assert "error" not in box, box.get("error")
    a = simulate("default", out=tmp_path / "a", threads=1, **kw)
    assert_same_run(a, box["path"])


def test_unreachable_scheduler_is_one_sentence_and_writes_nothing(tmp_path: Path) -> None:
    from socialcredit.distributed import simulate_distributed

    out = tmp_path / "run"
    with pytest.raises(UserError, match=r"cannot reach a Dask scheduler at tcp://127\.0\.0\.1:9"):
        simulate_distributed("default", scheduler="tcp://127.0.0.1:9", out=out,
                             citizens=800, days=5, connect_timeout=1)
    assert list(tmp_path.iterdir()) == []


def test_cli_unreachable_scheduler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    from socialcredit import cli
    from socialcredit import distributed as dist

    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", 1.0)
    monkeypatch.setattr(sys, "argv", ["socialcredit", "run", "default", "--citizens", "800",
                                      "--days", "5", "--out", str(tmp_path / "run"),
                                      "--scheduler", "tcp://127.0.0.1:9"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot reach a Dask scheduler at tcp://127.0.0.1:9")
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", ["local:0", "local:x", "locally", ""])
def test_bad_scheduler_spec(text: str, tmp_path: Path) -> None:
    from socialcredit.distributed import simulate_distributed

    with pytest.raises(UserError, match="--scheduler"):
        simulate_distributed("default", scheduler=text, out=tmp_path / "run", citizens=800,
                             days=5)
    assert list(tmp_path.iterdir()) == []


def test_parse_scheduler() -> None:
    from socialcredit.distributed import parse_scheduler

    assert parse_scheduler("local:3").local_workers == 3
    assert parse_scheduler("local").local_workers >= 1
    assert parse_scheduler("tcp://10.0.0.1:8786").address == "tcp://10.0.0.1:8786"


def test_resume_is_refused_with_a_scheduler(tmp_path: Path) -> None:
    from socialcredit.distributed import simulate_distributed

    with pytest.raises(UserError, match="--resume"):
        simulate_distributed("default", scheduler="local:2", out=tmp_path / "run", resume=True)
    assert list(tmp_path.iterdir()) == []


def test_existing_run_directory_is_refused_before_connecting(tmp_path: Path) -> None:
    from socialcredit.distributed import simulate_distributed

    (tmp_path / "run").mkdir()
    with pytest.raises(UserError, match="already exists"):
        simulate_distributed("default", scheduler="tcp://127.0.0.1:9", out=tmp_path / "run",
                             citizens=800, days=5, connect_timeout=1)


def test_merge_events_is_a_stable_sort_by_subject() -> None:
    import numpy as np

    from socialcredit.distributed import merge_events

    # shard 0: citizens 0-1 and business 10; shard 1: citizen 5 and business 12
    a = np.array([[1, 0, 0, 0, 0, 0], [2, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0],
                  [3, 10, 0, 0, 0, 0]], dtype=np.int32)
    b = np.array([[1, 5, 0, 0, 0, 0], [2, 5, 0, 0, 0, 0], [1, 12, 0, 0, 0, 0]], dtype=np.int32)
    merged = merge_events([a, b])
    assert merged[:, 1].tolist() == [0, 0, 1, 5, 5, 10, 12]
    assert merged[:, 0].tolist() == [1, 2, 1, 1, 2, 3, 1]
    assert merge_events([a[:0], b[:0]]).shape == (0, 6)


# --- the backend on the workers ----------------------------------------------------------------
# NUMBA_ENABLE_CUDASIM=1 makes gpu_available() False unless SOCIALCREDIT_GPU_SIM=1 asks for the
# simulator, on any machine; the workers of local:N inherit the environment.


@pytest.mark.parametrize("scheduler", [[], ["--scheduler", "local:1"]], ids=["alone", "local"])
def test_gpu_without_a_gpu_is_refused_with_or_without_a_scheduler(
        scheduler: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from cli_support import invoke

    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "1")
    monkeypatch.delenv("SOCIALCREDIT_GPU_SIM", raising=False)
    code, out, err = invoke(["run", "default", "--citizens", "800", "--days", "5", "--out",
                             str(tmp_path / "run"), "--backend", "gpu", *scheduler],
                            monkeypatch, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err + out, err
    assert lines[0].startswith("error: --backend gpu needs an NVIDIA GPU"), lines
    assert lines[0].endswith("use --backend cpu or auto")
    assert ("every Dask worker" in lines[0]) == bool(scheduler)
    assert list(tmp_path.iterdir()) == []


def test_auto_on_workers_without_a_gpu_records_cpu(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from socialcredit.distributed import simulate_distributed
    from socialcredit.run import simulate

    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "1")
    monkeypatch.delenv("SOCIALCREDIT_GPU_SIM", raising=False)
    kw: dict[str, Any] = {"citizens": 800, "days": 5}
    a = simulate("default", out=tmp_path / "a", threads=1, **kw)
    b = simulate_distributed("default", scheduler="local:1", out=tmp_path / "b",
                             backend="auto", **kw)
    assert json.loads((b / "manifest.json").read_text())["backend"] == "cpu"
    assert_same_run(a, b)


def test_gpu_on_workers_runs_the_gpu_backend(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """``--backend gpu`` reaches the workers (here under numba's CUDA simulator): the manifest
    says ``gpu`` and the tables are the CPU run's."""
    from socialcredit.distributed import simulate_distributed
    from socialcredit.run import simulate
    from socialcredit.scenario import Scenario

    sc = Scenario.load("default").model_copy(update={"burn_in_days": 0})
    kw: dict[str, Any] = {"citizens": 800, "days": 8, "ledger": True}
    a = simulate(sc, out=tmp_path / "a", threads=1, **kw)
    monkeypatch.setenv("NUMBA_ENABLE_CUDASIM", "1")
    monkeypatch.setenv("SOCIALCREDIT_GPU_SIM", "1")
    b = simulate_distributed(sc, scheduler="local:1", out=tmp_path / "b", backend="gpu",
                             block_days=5, **kw)
    manifest = json.loads((b / "manifest.json").read_text())
    assert manifest["backend"] == "gpu"
    assert manifest["threads"] == 1  # the simulated GPU's multiprocessors
    assert_same_run(a, b, also=frozenset({"backend"}))
