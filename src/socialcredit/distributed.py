"""Runs on Dask: one scenario cut into shards of whole groups, run by workers (DESIGN 2.2, 9).

:func:`simulate_distributed` writes the same run directory as :func:`socialcredit.simulate`
for the same scenario and seed. The client (this process) builds the model, cuts the
population into shards of whole groups and is the run's one writer. Each shard's state lives
on a worker and moves forward in blocks of days; one task per shard and block returns that
block's counters, events and snapshots. The client merges a block's shards day by day —
counters by summing (integers), events by a stable sort on subject id (each shard's events
are already sorted by subject, in emission order within a subject), snapshots by putting
every shard's citizens before every shard's businesses — and hands each day to the same
:class:`socialcredit.run.DayRecorder` that :func:`simulate` uses. Since every draw depends
only on the seed, the day and the subject's own group (DESIGN 2.9), the tables are identical.

Resilience comes from Dask's lineage: a block task takes the previous block's state as an
input and never changes it, so when a worker dies the scheduler recomputes the lost states
on another worker and the results are the same.

numba's parallel layer must not be entered from two threads of one process (DESIGN 9): every
task here takes a process-wide lock around the kernels, so workers with several threads are
safe, if not faster. Start workers with ``--nthreads 1`` and set ``NUMBA_NUM_THREADS`` for
the cores each may use.

``--backend`` is carried out by the workers: ``gpu`` needs a GPU on every worker (checked on
each before anything is written), ``auto`` picks the GPU only when every worker has one, and
the manifest records the backend the block tasks report having used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from socialcredit.errors import UserError

__all__ = [
    "BLOCK_DAYS",
    "CONNECT_TIMEOUT",
    "SchedulerSpec",
    "connect",
    "merge_events",
    "numba_lock",
    "parse_scheduler",
    "simulate_distributed",
    "worker_backend",
]

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]

#: Days a shard runs per task: the results of one block travel back together.
BLOCK_DAYS = 30
#: Seconds to wait for a scheduler (and for its first worker) before giving up.
CONNECT_TIMEOUT = 10.0
#: Blocks submitted ahead of the one being written (bounds what waits in workers' memory).
BLOCKS_AHEAD = 2

_NUMBA_LOCK = threading.Lock()
_LOCAL = re.compile(r"^local(?::(\d+))?$")


def numba_lock() -> threading.Lock:
    """The process-wide lock held around numba's parallel kernels in Dask tasks (DESIGN 9)."""
    return _NUMBA_LOCK


# --- schedulers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SchedulerSpec:
    """``local[:N]`` (a cluster of N worker processes started here) or a scheduler address."""

    text: str
    local_workers: int | None = None  # N for local[:N]
    address: str | None = None


def parse_scheduler(text: str) -> SchedulerSpec:
    """Read ``--scheduler``: ``local``, ``local:N`` or an address such as ``tcp://host:8786``."""
    text = text.strip()
    if not text:
        raise UserError("--scheduler needs local, local:N or the address of a Dask scheduler")
    if text.startswith("local"):
        m = _LOCAL.match(text)
        if m is None or (m.group(1) is not None and int(m.group(1)) < 1):
            raise UserError(
                f"--scheduler {text} is not valid; use local, local:N with N at least 1, or the "
                "address of a Dask scheduler"
            )
        n = int(m.group(1)) if m.group(1) else _cores()
        return SchedulerSpec(text=text, local_workers=n)
    return SchedulerSpec(text=text, address=text)


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def connect(scheduler: str | SchedulerSpec, *,
            timeout: float | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``--scheduler``, closed (with a local cluster) on exit.

    ``local:N`` starts N single-threaded worker processes, each allowed ``cores // N`` numba
    threads; they inherit ``NUMBA_CACHE_DIR`` and so share compiled kernels. An address that
    cannot be reached, or a scheduler without workers, is a :class:`UserError`."""
    spec = scheduler if isinstance(scheduler, SchedulerSpec) else parse_scheduler(scheduler)
    wait = CONNECT_TIMEOUT if timeout is None else timeout
    from distributed import Client, LocalCluster

    if spec.local_workers is not None:
        n = spec.local_workers
        per_worker = max(1, _cores() // n)
        with warnings.catch_warnings():  # "port 8787 is in use": the cluster is private
            warnings.simplefilter("ignore")
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR,
                                   env={"NUMBA_NUM_THREADS": str(per_worker)})
        try:
            client = Client(cluster)
            try:
                yield client
            finally:
                client.close()
        finally:
            cluster.close()
        return
    assert spec.address is not None
    try:
        client = Client(spec.address, timeout=wait)
    except (OSError, TimeoutError) as err:
        raise UserError(
            f"cannot reach a Dask scheduler at {spec.address} (is `dask scheduler` running "
            f"there?): {_reason(err)}"
        ) from None
    except ValueError as err:
        raise UserError(f"{spec.address} is not the address of a Dask scheduler ({err})") from None
    try:
        try:
            client.wait_for_workers(1, timeout=wait)
        except (OSError, TimeoutError):
            raise UserError(
                f"the Dask scheduler at {spec.address} has no workers; start some with "
                f"`dask worker {spec.address} --nthreads 1`"
            ) from None
        yield client
    finally:
        client.close()


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text.rstrip(".")


def worker_addresses(client: Any) -> list[str]:
    """The cluster's workers, in a stable order."""
    return sorted(client.scheduler_info(n_workers=-1)["workers"])


def _gpu_here() -> tuple[str, bool]:
    """(host name, whether the GPU backend can run) of the worker that runs it."""
    from socialcredit.kernel import gpu_available

    return socket.gethostname(), gpu_available()


def worker_backend(client: Any, backend: str) -> str:
    """``--backend`` as the workers will run it: ``cpu``, or ``gpu`` when every worker has a
    GPU; ``auto`` becomes ``gpu`` only then, and ``gpu`` with a worker lacking one is a
    :class:`UserError` that names it (the same refusal as without ``--scheduler``)."""
    if backend == "cpu":
        return "cpu"
    found: dict[str, tuple[str, bool]] = client.run(_gpu_here)
    without = sorted(addr for addr, (_, ok) in found.items() if not ok)
    if backend == "auto":
        return "gpu" if found and not without else "cpu"
    if without:
        host = found[without[0]][0]
        raise UserError(
            f"--backend gpu needs an NVIDIA GPU with its driver and numba-cuda on every Dask "
            f"worker, and {len(without)} of {len(found)} have none (the first: {without[0]} on "
            f"{host}); use --backend cpu or auto"
        )
    return "gpu"


# --- tasks (run on workers) ----------------------------------------------------------------


@dataclass
class BlockOut:
    """What one shard sends back for one block of days."""

    counts: np.ndarray  # int64[days, cells, metrics]
    events: list[np.ndarray]  # per day, int32[n, EV_WIDTH] sorted by subject
    snapshots: dict[int, Any] = field(default_factory=dict)  # day index -> pa.Table
    threads: int = 1
    seconds: float = 0.0
    backend: str = "cpu"  # the backend the task ran


def _hold(value: Any) -> Any:
    """Keep ``value`` (the model) as a task result: Dask can recompute it where it is lost."""
    return value


def _start_shard(model: Any, shard: Any) -> dict[str, np.ndarray]:
    from socialcredit.engine import new_state

    return new_state(model, shard)


def _run_block(model: Any, shard: Any, state: dict[str, np.ndarray], t0: int, t1: int,
               ledger: bool, threads: int | None, backend: str) -> tuple[dict, BlockOut]:
    """Days ``t0 .. t1-1`` of one shard, from ``state`` (left untouched: a retried task must
    start from the same state) to the new state and the block's results."""
    from socialcredit.engine import Calendar, make_backend
    from socialcredit.kernel import layout as LY
    from socialcredit.recording import snapshot_table
    from socialcredit.run import snapshot_due

    state = {k: v.copy() for k, v in state.items()}
    emit = LY.EMIT_TABLES if ledger else LY.EMIT_NONE
    C = model.n_citizens
    ids = np.concatenate([np.arange(shard.c_lo, shard.c_hi, dtype=np.int64),
                          C + np.arange(shard.b_lo, shard.b_hi, dtype=np.int64)])
    counts = np.zeros((t1 - t0, model.n_cells, model.n_metrics), dtype=np.int64)
    events: list[np.ndarray] = []
    snapshots: dict[int, Any] = {}
    ts = time.perf_counter()
    with _NUMBA_LOCK:
        be = make_backend(backend, model, shard, state, threads=threads, emit=emit)
        cal = Calendar(model)
        for t in range(t0, t1):
            res = be.run_day(t, cal)
            counts[t - t0] = res.counts
            events.append(res.events)
            if snapshot_due(model, t, ledger):
                if hasattr(be, "sync_state"):
                    be.sync_state()
                snapshots[t] = snapshot_table(model, int(model.first_day + t), ids,
                                              getattr(be, "state", state), (t + 1) & 1)
        if hasattr(be, "sync_state"):
            be.sync_state()
        state = getattr(be, "state", state)
    out = BlockOut(counts=counts, events=events, snapshots=snapshots,
                   threads=int(getattr(be, "threads", 1)), seconds=time.perf_counter() - ts,
                   backend=str(getattr(be, "name", backend)))
    return state, out


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _second(pair: tuple[Any, Any]) -> Any:
    return pair[1]


# --- merging (client) ----------------------------------------------------------------------


def merge_events(parts: list[np.ndarray]) -> np.ndarray:
    """One day's events of all shards as the whole run emits them: sorted by subject id,
    stably, so each subject's events keep their order (citizens of every shard come before
    the businesses of any)."""
    parts = [p for p in parts if p.shape[0]]
    if not parts:
        from socialcredit.kernel import layout as LY

        return np.zeros((0, LY.EV_WIDTH), dtype=np.int32)
    if len(parts) == 1:
        return parts[0]
    ev = np.concatenate(parts)
    return ev[np.argsort(ev[:, 1], kind="stable")]


def merge_snapshots(tables: list[Any], citizens: list[int]) -> Any:
    """Every shard's snapshot rows in subject order: all shards' citizens, then businesses."""
    import pyarrow as pa

    cit = [t.slice(0, n) for t, n in zip(tables, citizens, strict=True)]
    bus = [t.slice(n) for t, n in zip(tables, citizens, strict=True)]
    return pa.concat_tables(cit + bus)


# --- the run -------------------------------------------------------------------------------


def simulate_distributed(scenario: Any = "default", *, scheduler: str | SchedulerSpec = "local",
                         out: str | Path | None = None, seed: int | None = None,
                         citizens: int | None = None, days: int | None = None,
                         ledger: bool = False, resume: bool = False,
                         progress: ProgressFn | None = None, threads: int | None = None,
                         shards: int | None = None, block_days: int = BLOCK_DAYS,
                         backend: str = "cpu", client: Any = None,
                         connect_timeout: float | None = None) -> Path:
    """Run a scenario on Dask and write its run directory; returns the directory's path.

    The tables and the census are identical to :func:`socialcredit.simulate`'s for the same
    scenario, seed, citizens and days; the manifest differs only in ``timings``, ``created``,
    ``threads`` and the added ``distributed`` (scheduler, workers, shards, block days).
    ``threads`` is numba's threads per worker (default: the worker's ``NUMBA_NUM_THREADS``);
    ``shards`` defaults to one per worker; ``client`` is an already connected
    ``distributed.Client`` to use instead of ``scheduler``. ``backend`` (``cpu``, ``gpu`` or
    ``auto``) is resolved on the workers (:func:`worker_backend`) and the manifest records the
    one the tasks used."""
    from socialcredit.engine import build_model
    from socialcredit.run import check_options, check_out, default_out, load_scenario

    t_start = time.perf_counter()
    if resume:
        raise UserError("--resume is not supported with --scheduler; resume the run without it")
    check_options(citizens, days, threads, backend)
    if shards is not None and shards < 1:
        raise UserError(f"the number of shards must be at least 1, not {shards}")
    if block_days < 1:
        raise UserError(f"the days per block must be at least 1, not {block_days}")
    spec = None
    if client is None:
        spec = scheduler if isinstance(scheduler, SchedulerSpec) else parse_scheduler(scheduler)
    sc = load_scenario(scenario, seed=seed, days=days)
    source = str(scenario) if not hasattr(scenario, "name") else sc.name
    out_path = Path(out) if out is not None else default_out(sc.name)
    check_out(out_path)
    model = build_model(sc, seed=seed, citizens=citizens, days=days)
    t_built = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if client is None:
            assert spec is not None
            client = stack.enter_context(connect(spec, timeout=connect_timeout))
            where = spec.text
        else:
            where = str(getattr(client.scheduler, "address", "client"))
        return _run(client, model, out_path=out_path, ledger=ledger, progress=progress,
                    threads=threads, shards=shards, block_days=block_days, backend=backend,
                    source=source, where=where, t_start=t_start, t_built=t_built)
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow


def _run(client: Any, model: Any, *, out_path: Path, ledger: bool, progress: ProgressFn | None,
         threads: int | None, shards: int | None, block_days: int, backend: str, source: str,
         where: str, t_start: float, t_built: float) -> Path:
    from socialcredit.engine import Shard
    from socialcredit.recorder import RunWriter
    from socialcredit.run import DayRecorder, run_tables, writes_subjects

    workers = worker_addresses(client)
    backend = worker_backend(client, backend)  # before the run directory is begun
    C = model.n_citizens
    n = shards or max(1, len(workers))
    n = max(1, min(n, C // 8))
    cb, bb = model.population.shard_bounds(n)
    parts = [Shard(int(cb[k]), int(cb[k + 1]), int(bb[k]) - C, int(bb[k + 1]) - C)
             for k in range(n)]
    tag = uuid.uuid4().hex[:12]
    total = model.total_days
    edges = list(range(0, total, block_days)) + [total]
    blocks = list(zip(edges[:-1], edges[1:], strict=True))

    def home(k: int) -> dict[str, Any]:
        if not workers:
            return {}
        return {"workers": [workers[k % len(workers)]], "allow_other_workers": True}

    with warnings.catch_warnings():  # the model travels in the graph, so Dask can rebuild it
        warnings.simplefilter("ignore")
        model_f = client.submit(_hold, model, key=f"socialcredit-model-{tag}", pure=False)
    states = [client.submit(_start_shard, model_f, parts[k], key=f"socialcredit-s{k}-b0-{tag}",
                            pure=False, **home(k)) for k in range(n)]
    pending: list[list[Any]] = []
    sim_seconds = 0.0
    worker_threads = 1
    used: set[str] = set()

    def submit(b: int) -> None:
        t0, t1 = blocks[b]
        outs = []
        for k in range(n):
            pair = client.submit(_run_block, model_f, parts[k], states[k], t0, t1, ledger,
                                 threads, backend, key=f"socialcredit-run-s{k}-b{b}-{tag}",
                                 pure=False, **home(k))
            states[k] = client.submit(_first, pair, key=f"socialcredit-s{k}-b{b + 1}-{tag}",
                                      pure=False, **home(k))
            outs.append(client.submit(_second, pair, key=f"socialcredit-out-s{k}-b{b}-{tag}",
                                      pure=False, **home(k)))
        pending.append(outs)

    with RunWriter(out_path, tables=run_tables(ledger, writes_subjects(model))) as writer:
        rec = DayRecorder(model, writer, ledger=ledger)
        submitted = 0
        for b, (t0, t1) in enumerate(blocks):
            while submitted < len(blocks) and submitted <= b + BLOCKS_AHEAD:
                submit(submitted)
                submitted += 1
            futures = pending.pop(0)
            results: list[BlockOut] = client.gather(futures)
            del futures
            sim_seconds += max(r.seconds for r in results)
            worker_threads = results[0].threads
            used.update(r.backend for r in results)
            for t in range(t0, t1):
                i = t - t0
                counts = results[0].counts[i].copy()
                for r in results[1:]:
                    counts += r.counts[i]
                rec.add_day(t, counts, merge_events([r.events[i] for r in results]))
                if t in results[0].snapshots:
                    rec.add_snapshot(merge_snapshots([r.snapshots[t] for r in results],
                                                     [p.c_hi - p.c_lo for p in parts]))
                if progress:
                    progress(t + 1, total)
            del results
            rec.flush()
        states.clear()
        t_sim = time.perf_counter()
        timings = {"build_s": round(t_built - t_start, 3), "simulate_s": round(sim_seconds, 3),
                   "loop_s": round(t_sim - t_built, 3)}
        extra = {"distributed": {"scheduler": where, "workers": len(workers), "shards": n,
                                 "block_days": block_days}}
        # one name: a task runs the backend it was given or fails (make_backend)
        return rec.finish(backend="+".join(sorted(used)) or backend, threads=worker_threads,
                          timings=timings, source=source, t_start=t_start, extra=extra)
