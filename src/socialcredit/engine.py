"""The engine: state arrays, the calendar, the day loop, counters, events and checkpoints.

It knows nothing of file formats: :func:`socialcredit.simulate` (``socialcredit.run``) hands
what the engine produces to the recorder. A run is cut into *shards* of whole groups
(DESIGN 2.2); each shard owns the state of its subjects only, so the same code runs a whole
country in one process, a slice of it on a Dask worker, or one group replayed alone for
``explain``.

State per subject (DESIGN 5): one 36-byte record (``kernel.step.STATE_DTYPE``) and the
public word, twice (today's and tomorrow's, 8 bytes): 44 bytes. Businesses add their
4-byte representative. docs/state.md says where every byte goes.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from socialcredit import rng
from socialcredit.errors import UserError
from socialcredit.kernel import layout as LY
from socialcredit.kernel.pack import Packed, pack
from socialcredit.kernel.step import (
    C_BLO,
    C_BUSY,
    C_CHI,
    C_CLO,
    C_E,
    C_E_PREV,
    C_EMIT,
    C_FIRST,
    C_KEY_ACTS,
    C_KEY_SVC,
    C_MONTH,
    C_MONTH_START,
    C_NCIT,
    C_NSUB,
    C_T,
    C_YEAR,
    C_YEAR_START,
    CNT_BASE,
    N_CTX,
    STATE_DTYPE,
)
from socialcredit.policy.tables import PolicyTables

EPOCH = dt.date(1970, 1, 1)
STATE_FIELDS = ("st", "pub")
STATE_BYTES = STATE_DTYPE.itemsize + 8
STREAM_ACTS = rng.key("acts")
STREAM_SERVICES = rng.key("services")


def day_number(d: dt.date) -> int:
    return (d - EPOCH).days


@dataclass
class Model:
    """Everything fixed for a run: scenario, policy tables, behaviour, population, calendar."""

    scenario: Any
    catalogue: Any
    policy: PolicyTables
    packed: Packed
    population: Any
    seed: int
    start: dt.date
    days: int
    burn_in: int
    n_false_pairs: int
    extra: dict = field(default_factory=dict)

    @property
    def first_day(self) -> int:
        """Absolute day number of the first simulated day (burn-in included)."""
        return day_number(self.start) - self.burn_in

    @property
    def total_days(self) -> int:
        return self.burn_in + self.days

    @property
    def n_citizens(self) -> int:
        return int(self.population.n_citizens)

    @property
    def n_businesses(self) -> int:
        return int(self.population.n_businesses)

    @property
    def svc_period(self) -> np.ndarray:
        """The period of the service tables in force in each epoch (all 0 without a dated
        demand, behaviour._service_tables)."""
        period = self.extra.get("svc_period")
        if period is None or not len(period):
            return np.zeros(self.policy.epoch_start.shape[0], dtype=np.int64)
        return np.asarray(period, dtype=np.int64)

    @property
    def n_cells(self) -> int:
        return int(self.packed.D[LY.D_CELLS])

    @property
    def n_metrics(self) -> int:
        return int(self.packed.MO[-1])


def _behaviour_dates(scenario: Any) -> list[dt.date]:
    """Dates on which the scenario's dated behaviour values change (none for a mapping or an
    object without them)."""
    dates = getattr(scenario, "behaviour_dates", None)
    return list(dates()) if callable(dates) else []


def build_model(scenario: Any, *, seed: int | None = None, citizens: int | None = None,
                days: int | None = None, lazy_population: bool = False) -> Model:
    """Load everything a run needs: policy tables, behaviour tables and the population.

    With ``lazy_population`` only the population's layout is built; its arrays are made on
    first use (a GPU run generates its subjects on the device and never needs them)."""
    from socialcredit.behaviour import build_behaviour
    from socialcredit.catalogue import load_catalogue
    from socialcredit.policy import compile_policy
    from socialcredit.population import generate, layout
    from socialcredit.population import lazy_population as make_lazy

    if citizens is not None:
        scenario = scenario.rescaled(citizens)
    seed = int(scenario.seed if seed is None else seed)
    n_days = int(scenario.days if days is None else days)
    catalogue = load_catalogue()
    start = scenario.start
    burn = int(scenario.burn_in_days)
    first = day_number(start) - burn
    last = day_number(start) + n_days - 1
    regions = [(r.id, r.extension) for r in scenario.regions]
    policy = compile_policy(scenario.policy, regions, list(scenario.reforms),
                            EPOCH + dt.timedelta(days=first), EPOCH + dt.timedelta(days=last),
                            catalogue, extra_dates=_behaviour_dates(scenario))
    beh, n_pairs = build_behaviour(catalogue, scenario, policy)
    tables: dict[str, np.ndarray] = {}
    tables.update(policy.arrays())
    tables.update(beh)
    pop = make_lazy(layout(scenario, seed)) if lazy_population else generate(scenario, seed=seed)
    R = len(scenario.regions)
    dims = dict(E=policy.epoch_start.shape[0], R=R, A=len(policy.act_names),
                H=len(policy.channel_names), S=len(policy.service_names),
                L=len(policy.list_names), M=len(policy.measure_names),
                G=policy.grade_floor.shape[-1], P=n_pairs, T=len(policy.category_names),
                C=pop.n_citizens, B=pop.n_businesses, CELLS=R * LY.CELLS_PER_REGION)
    packed = pack(tables, dims)
    return Model(scenario=scenario, catalogue=catalogue, policy=policy, packed=packed,
                 population=pop, seed=seed, start=start, days=n_days, burn_in=burn,
                 n_false_pairs=n_pairs, extra={"svc_period": beh["svc_period"]})


@dataclass(frozen=True)
class Shard:
    """Citizens ``[c_lo, c_hi)`` and businesses ``[b_lo, b_hi)`` (business indices, 0-based)."""

    c_lo: int
    c_hi: int
    b_lo: int
    b_hi: int

    @property
    def size(self) -> int:
        return self.c_hi - self.c_lo + self.b_hi - self.b_lo


def whole(model: Model) -> Shard:
    return Shard(0, model.n_citizens, 0, model.n_businesses)


def new_state(model: Model, shard: Shard) -> dict[str, np.ndarray]:
    """Fresh state arrays for a shard (static attributes copied from the population)."""
    pop = model.population
    C = model.n_citizens
    n = shard.size
    region = np.concatenate([pop.region[shard.c_lo:shard.c_hi],
                             pop.region[C + shard.b_lo:C + shard.b_hi]]).astype(np.uint8)
    bands = np.concatenate([pop.bands[shard.c_lo:shard.c_hi],
                            pop.bands[C + shard.b_lo:C + shard.b_hi]]).astype(np.uint8)
    st = np.zeros(n, dtype=STATE_DTYPE)
    st["region"] = region
    st["bands"] = bands
    return {"st": st, "pub": np.zeros((2, n), np.uint32)}


class Calendar:
    """Day-by-day context: dates, epochs, calendar flags and the day keys of the draws."""

    def __init__(self, model: Model):
        first = model.first_day
        n = model.total_days
        days = np.arange(first, first + n, dtype=np.int64)
        dates = days.astype("datetime64[D]")
        years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
        months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
        dom = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
        self.days = days
        self.dates = dates
        self.years = years
        self.months = months
        self.month_start = dom == 1
        self.year_start = (dom == 1) & (months == 1)
        starts = model.policy.epoch_start.astype(np.int64)
        self.epochs = np.clip(np.searchsorted(starts, days, side="right") - 1, 0, None)
        # the month the kernel reads is the month of the service tables' period (a dated
        # demand gives each period its own twelve months, behaviour._service_tables)
        self.svc_months = model.svc_period[self.epochs] * 12 + months
        self.seed = model.seed

    def ctx(self, t: int, model: Model, shard: Shard, emit: int) -> np.ndarray:
        c = np.zeros(N_CTX, dtype=np.int64)
        c[C_T] = t
        c[C_E] = self.epochs[t]
        c[C_YEAR] = self.years[t]
        c[C_MONTH] = self.svc_months[t]
        c[C_YEAR_START] = int(self.year_start[t])
        c[C_MONTH_START] = int(self.month_start[t])
        c[C_EMIT] = emit
        c[C_NCIT] = model.n_citizens
        c[C_NSUB] = model.n_citizens + model.n_businesses
        c[C_FIRST] = int(t == 0)
        c[C_CLO] = shard.c_lo
        c[C_CHI] = shard.c_hi
        c[C_BLO] = shard.b_lo
        new_epoch = t > 0 and self.epochs[t] != self.epochs[t - 1]
        c[C_E_PREV] = self.epochs[t - 1] if t > 0 else self.epochs[t]
        c[C_BUSY] = int(t == 0 or new_epoch)
        d = int(self.days[t])
        with np.errstate(over="ignore"):
            for idx, stream in ((C_KEY_ACTS, STREAM_ACTS), (C_KEY_SVC, STREAM_SERVICES)):
                k = int(rng.day_key(np.uint64(self.seed), np.uint64(stream), np.uint64(d)))
                c[idx] = k >> 32
                c[idx + 1] = k & 0xFFFFFFFF
        return c



@dataclass
class DayResult:
    counts: np.ndarray  # int64[cells, metrics] the day's counters (stocks as deltas)
    events: np.ndarray  # int32[n, EV_WIDTH] sorted by subject, in emission order per subject


class CpuBackend:
    """Runs days of a shard with the numba CPU driver."""

    name = "cpu"

    def __init__(self, model: Model, shard: Shard, state: dict[str, np.ndarray], *,
                 threads: int | None = None, emit: int = LY.EMIT_NONE,
                 event_capacity: int = 1 << 16):
        import numba

        from socialcredit.kernel.cpu import (
            EVENT_MARGIN,
            FULL_BATCH,
            N_ROWS,
            SCREEN_BLOCK,
            representatives,
            screen_thresholds,
        )

        self.model = model
        self.shard = shard
        self.state = state
        self.emit = emit
        if threads:
            numba.set_num_threads(int(threads))
        self.threads = numba.get_num_threads()
        nc = shard.c_hi - shard.c_lo
        nb = shard.b_hi - shard.b_lo
        target = max(1, self.threads * 4)
        C = model.n_citizens
        bounds: list[tuple[int, int]] = []
        for lo, n, k in ((shard.c_lo, nc, max(1, (target * nc) // max(1, nc + nb))),
                         (C + shard.b_lo, nb, max(1, (target * nb) // max(1, nc + nb)))):
            if n == 0:
                continue
            k = min(k, n)
            edges = [lo + (n * j) // k for j in range(k + 1)]
            bounds.extend((edges[j], edges[j + 1]) for j in range(k) if edges[j + 1] > edges[j])
        self.starts = np.array([b[0] for b in bounds], dtype=np.int64)
        self.ends = np.array([b[1] for b in bounds], dtype=np.int64)
        nchunks = len(bounds)
        self.cnt = np.zeros((nchunks, CNT_BASE + model.n_cells * model.n_metrics),
                            dtype=np.int64)
        cap = max(4 * EVENT_MARGIN, event_capacity) if emit else 1
        self.ev = np.zeros((nchunks, cap, LY.EV_WIDTH), dtype=np.int32)
        self.scr = screen_thresholds(model.packed.P, 12 * (int(model.svc_period.max()) + 1))
        self.scratch = np.zeros((nchunks, 2, N_ROWS, SCREEN_BLOCK), dtype=np.uint32)
        self.pending = np.zeros((nchunks, FULL_BATCH * SCREEN_BLOCK), dtype=np.int64)
        pop = model.population
        self.rep = np.ascontiguousarray(pop.rep[shard.b_lo:shard.b_hi])
        self.reps = representatives(self.rep, shard.c_lo, nc)
        self.popt = pop.popt
        self._load()

    def _load(self) -> None:
        """Load the compiled kernel now (from numba's cache, or compile it), with a call that
        has no subject to step, so that the first day is timed like the others."""
        from socialcredit.kernel.cpu import run_day

        done = self.ends.copy()
        run_day(done, self.ends, self.model.packed.P, np.zeros(N_CTX, dtype=np.int64),
                self.state["st"], self.state["pub"], self.rep, self.reps, self.popt, self.cnt,
                self.ev, self.scr, self.scratch, self.pending)
        self.cnt[:] = 0

    def run_day(self, t: int, calendar: Calendar) -> DayResult:
        from socialcredit.kernel.cpu import run_day

        m = self.model
        pk = m.packed
        ctx = calendar.ctx(t, m, self.shard, self.emit)
        self.cnt[:] = 0
        cursor = self.starts.copy()
        chunks: list[np.ndarray] = []
        while True:
            self.cnt[:, :CNT_BASE] = 0
            run_day(cursor, self.ends, pk.P, ctx, self.state["st"], self.state["pub"], self.rep,
                    self.reps, self.popt, self.cnt, self.ev, self.scr, self.scratch, self.pending)
            if self.emit:
                if self.cnt[:, 1].any():
                    raise RuntimeError("event buffer overflow")
                for c in range(self.ev.shape[0]):
                    n = int(self.cnt[c, 0])
                    if n:
                        chunks.append(self.ev[c, :n].copy())
            if (cursor >= self.ends).all():
                break
        counts = self.cnt[:, CNT_BASE:].sum(axis=0).reshape(m.n_cells, m.n_metrics)
        if chunks:
            events = np.concatenate(chunks)
            events = events[np.argsort(events[:, 1], kind="stable")]
        else:
            events = np.zeros((0, LY.EV_WIDTH), dtype=np.int32)
        return DayResult(counts=counts, events=events)


def resolve_backend(name: str) -> str:
    """``auto`` becomes ``gpu`` when a GPU is present, else ``cpu``."""
    if name == "auto":
        from socialcredit.kernel import gpu_available

        return "gpu" if gpu_available() else "cpu"
    return name


def require_gpu() -> None:
    """Refuse ``--backend gpu`` where the GPU backend cannot run, with one sentence that names
    the machine (on a Dask worker, the worker's)."""
    from socialcredit.kernel import gpu_available

    if not gpu_available():
        import socket

        raise UserError(
            f"--backend gpu needs an NVIDIA GPU with its driver and numba-cuda, and "
            f"{socket.gethostname()} has none; use --backend cpu or auto"
        )


def make_backend(name: str, model: Model, shard: Shard, state: dict[str, np.ndarray] | None, *,
                 threads: int | None = None, emit: int = LY.EMIT_NONE) -> Any:
    """A backend by name: ``cpu``, ``gpu`` or ``auto`` (the GPU when one is present).

    A GPU backend given no ``state`` generates the population on the device; ``gpu`` on a
    machine without one is a :class:`UserError` (:func:`require_gpu`)."""
    name = resolve_backend(name)
    if name == "cpu":
        if state is None:
            state = new_state(model, shard)
        return CpuBackend(model, shard, state, threads=threads, emit=emit)
    if name == "gpu":
        require_gpu()
        from socialcredit.kernel.gpu import GpuBackend

        return GpuBackend(model, shard, state, emit=emit)
    raise ValueError(f"unknown backend {name!r}")


@dataclass
class MemoryRun:
    """A run kept in memory (tests, explain, shards on Dask workers)."""

    counts: np.ndarray  # int64[days, cells, metrics]: flows per day, stocks as deltas
    events: list[np.ndarray]  # per day, int32[n, EV_WIDTH]
    state: dict[str, np.ndarray]


def run_memory(model: Model, shard: Shard | None = None, *, emit: int = LY.EMIT_NONE,
               threads: int | None = None, backend: str = "cpu",
               until: int | None = None, state: dict[str, np.ndarray] | None = None,
               t0: int = 0, on_day: Callable[[int], None] | None = None) -> MemoryRun:
    """Run days ``t0 .. until`` of a shard and keep every day's counters and events."""
    shard = shard or whole(model)
    state = state if state is not None else new_state(model, shard)
    cal = Calendar(model)
    be = make_backend(backend, model, shard, state, threads=threads, emit=emit)
    until = model.total_days if until is None else until
    counts = np.zeros((until - t0, model.n_cells, model.n_metrics), dtype=np.int64)
    events: list[np.ndarray] = []
    for t in range(t0, until):
        res = be.run_day(t, cal)
        counts[t - t0] = res.counts
        events.append(res.events)
        if on_day:
            on_day(t)
    if hasattr(be, "sync_state"):
        be.sync_state()
    return MemoryRun(counts=counts, events=events, state=state)


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
