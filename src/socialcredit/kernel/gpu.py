"""The GPU driver: the day step of ``kernel.step`` run by numba-cuda kernels (DESIGN 4, 6).

The same :func:`~socialcredit.kernel.step.step_subject` the CPU driver calls runs here once
per subject and day, one CUDA thread per subject (a grid-stride loop). The state stays on the
device for the whole run; each day the host sends the day's context (18 integers) and gets
back the day's counters (one int64 array of cells × metrics) and, when the run records
events, the events.

Identity with the CPU backend (DESIGN 2.9):

- every draw is a counter-based hash and every decision an integer comparison, so a subject's
  step computes the same values wherever it runs; a step writes only its own state and
  tomorrow's public word, and reads its group's public words as of the start of the day, so
  the order in which threads run changes nothing;
- counters are int64 and are added with integer atomics (``atomic_add`` becomes
  ``cuda.atomic.add`` here); integer addition commutes, so the day's totals are exact;
- events: one thread emits a subject's events in program order and takes their rows with an
  atomic increment of one write position, so a subject's rows lie in emission order in the
  buffer; the host sorts them by subject with a stable sort, exactly as
  ``engine.CpuBackend.run_day`` does, and gets the same array.

Counters: without events, ``REPLICAS`` copies of the counter row (block ``k`` adds to copy
``k % REPLICAS``) spread the atomics of hot counters; a small kernel sums the copies on the
device. With events there is one counter row and one event buffer, and a day is run in
sub-ranges of at most ``capacity // EVENT_MARGIN`` subjects, so even if every subject emitted
the most a subject can, the buffer could not overflow: no sub-range ever needs running
twice (which would apply its state changes twice).

Population: when the backend gets no host state it generates the subjects' region and bands
and the businesses' representatives on the device, with the same jitable functions
(``socialcredit.population``) and the same counter-based draws as the CPU's
``population._generate_into``; the host copy of the state is made only when asked for
(:meth:`GpuBackend.sync_state`: checkpoints and snapshots).

Memory: before any work the backend adds up what it will put on the device
(:func:`memory_plan`) and raises a :class:`~socialcredit.errors.UserError` saying how much it
needs and how much is free when it does not fit.

numba-cuda and numba core keep separate typing registries, and numba-cuda 0.30 cannot lower
numba core's ``register_jitable(inline="always")`` overloads (its IR inliner types the callee
with ``omitted`` arguments). :func:`_register_cuda_overloads` registers every jitable function
of the package again for the ``cuda`` target, with the same inlining choice, so the one
source of ``kernel/step.py`` compiles for both targets unchanged.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
from numba import cuda

import socialcredit.jitcache  # noqa: F401  (before any cached jit)
from socialcredit.kernel import layout as LY
from socialcredit.kernel.atomic import atomic_add
from socialcredit.kernel.cpu import EVENT_MARGIN
from socialcredit.kernel.gpu_plan import EVENT_CAPACITY, check_memory, event_rows, memory_plan
from socialcredit.kernel.step import (
    C_BLO,
    C_CHI,
    C_CLO,
    C_NCIT,
    CNT_BASE,
    N_CTX,
    STATE_DTYPE,
    step_subject,
)
from socialcredit.population import (
    _business_bands_in,
    _business_rep_in,
    _citizen_bands_in,
    business_region,
    citizen_region,
    n_citizens_of,
)

#: numba reads the same variable when ``numba.cuda`` is first imported.
SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")

#: Threads per block of the day kernel (the step is register-heavy: 128 keeps occupancy up).
#: The simulator runs every thread as a Python thread: few threads, each looping, are fastest.
THREADS_PER_BLOCK = 8 if SIMULATOR else 128
#: Resident blocks per multiprocessor the grid-stride launch aims at.
BLOCKS_PER_SM = 16
#: Copies of the counter row when no events are recorded (spreads atomics of hot counters).
REPLICAS = 4 if SIMULATOR else 32
#: Cap on the device memory the backend may use, in bytes (e.g. on a shared GPU).
MEMORY_ENV = "SOCIALCREDIT_GPU_MEMORY"

_STATE_WORDS = STATE_DTYPE.itemsize // 4
assert STATE_DTYPE.itemsize % 4 == 0 and CNT_BASE == 2 and EVENT_MARGIN == 96  # gpu_plan's

if not SIMULATOR:
    # numba-cuda keeps its own config: point its cache where ``jitcache`` points numba's, a
    # directory keyed by the sources of every kernel file (the cache itself checks only this
    # file, not the day step it inlines)
    import numba
    from numba.cuda.core import config as _cuda_config

    _cuda_config.CACHE_DIR = numba.config.CACHE_DIR  # type: ignore[attr-defined]


# ============================================================================================
# numba-cuda typing: the package's jitable functions for the cuda target
# ============================================================================================

_registered = False


def _register_cuda_overloads() -> None:
    """Register ``atomic_add`` as ``cuda.atomic.add`` and every ``register_jitable`` function
    of the package for the cuda target (see the module docstring). Idempotent."""
    global _registered
    if _registered or SIMULATOR:
        return
    from numba.core.typing.templates import builtin_registry
    from numba.cuda.extending import overload as cuda_overload  # type: ignore[attr-defined]

    @cuda_overload(atomic_add, target="cuda")
    def _atomic_add_cuda(arr, i, v):  # type: ignore[no-untyped-def]
        def impl(arr, i, v):  # type: ignore[no-untyped-def]
            return cuda.atomic.add(arr, i, v)

        return impl

    @cuda_overload(_raw, target="cuda", inline="always")
    def _raw_cuda(a):  # type: ignore[no-untyped-def]
        return lambda a: a

    done: set[int] = set()
    for gv, gty in list(builtin_registry.globals):
        if not getattr(gv, "__module__", "").startswith("socialcredit.") or id(gv) in done:
            continue
        for tmpl in getattr(gty, "templates", ()):
            if (getattr(tmpl, "metadata", None) or {}).get("target", "generic") != "generic":
                continue  # e.g. atomic_add's cpu overload
            _mirror(cuda_overload, gv)
            done.add(id(gv))
            break
    _registered = True


def _raw(a):  # type: ignore[no-untyped-def]
    """The array behind a kernel argument. On a GPU the identity (see the overload below);
    under the simulator the NumPy array inside its wrapper, whose every element access
    would otherwise cost two Python calls (it makes the simulated step ten times faster and
    changes no value: the wrapper only forwards to that array)."""
    item = getattr(a, "_item", None)
    return getattr(item, "_ary", a) if item is not None else a


def _mirror(cuda_overload: Any, fn: Any) -> None:
    # inline="never": NVVM inlines at -O3 anyway, and Numba-IR inlining of functions with
    # conditional expressions trips numba's own IR checks (numba issue 9489)
    @cuda_overload(fn, target="cuda", inline="never", strict=False)
    def _ov(*args, **kwargs):  # type: ignore[no-untyped-def]
        return fn


_register_cuda_overloads()


# ============================================================================================
# Kernels
# ============================================================================================


@cuda.jit(cache=not SIMULATOR)
def _day_kernel(a, b, P, ctx, st, pub, rep, popt, cnt, ev):  # type: ignore[no-untyped-def]
    """Step subjects of shard-local indices [a, b); block k counts into copy k % len(cnt)."""
    P = _raw(P)
    ctx = _raw(ctx)
    st = _raw(st)
    pub = _raw(pub)
    rep = _raw(rep)
    popt = _raw(popt)
    cnt = _raw(cnt)
    ev = _raw(ev)
    k = cuda.blockIdx.x % cnt.shape[0]
    counters = cnt[k]
    events = ev[k]
    nc = ctx[C_CHI] - ctx[C_CLO]
    li = a + np.int64(cuda.grid(1))
    stride = np.int64(cuda.gridsize(1))
    while li < b:
        if li < nc:
            g = ctx[C_CLO] + li
        else:
            g = ctx[C_NCIT] + ctx[C_BLO] + li - nc
        step_subject(g, li, P, ctx, st, pub, rep, popt, counters, events)
        li += stride


@cuda.jit(cache=not SIMULATOR)
def _reduce_kernel(cnt, out):  # type: ignore[no-untyped-def]
    """out[j] = the sum of cnt[:, j]; cnt is zeroed for the next day."""
    j = np.int64(cuda.grid(1))
    stride = np.int64(cuda.gridsize(1))
    while j < out.shape[0]:
        s = np.int64(0)
        for k in range(cnt.shape[0]):
            s += cnt[k, j]
            cnt[k, j] = 0
        out[j] = s
        j += stride


@cuda.jit(cache=not SIMULATOR)
def _reset_positions(cnt):  # type: ignore[no-untyped-def]
    """Zero the event write position and overflow count of every counter copy."""
    k = np.int64(cuda.grid(1))
    if k < cnt.shape[0]:
        cnt[k, 0] = 0
        cnt[k, 1] = 0


@cuda.jit(cache=not SIMULATOR)
def _zero_kernel(a):  # type: ignore[no-untyped-def]
    j = np.int64(cuda.grid(1))
    stride = np.int64(cuda.gridsize(1))
    while j < a.shape[0]:
        a[j] = 0
        j += stride


@cuda.jit(cache=not SIMULATOR)
def _populate_kernel(popt, c_lo, nc, b_lo, st, rep, do_state):  # type: ignore[no-untyped-def]
    """Region and bands of shard subjects (into zeroed state) and representatives of its
    businesses, exactly as ``population._generate_into`` computes them."""
    popt = _raw(popt)
    st = _raw(st)
    rep = _raw(rep)
    C = n_citizens_of(popt)
    n = nc + rep.shape[0]
    j = np.int64(cuda.grid(1))
    stride = np.int64(cuda.gridsize(1))
    while j < n:
        if j < nc:
            if do_state:
                i = c_lo + j
                r = citizen_region(i, popt)
                rec = st[j]
                rec["region"] = np.uint8(r)
                rec["bands"] = _citizen_bands_in(i, r, popt)
        else:
            kb = j - nc
            bid = C + b_lo + kb
            r = business_region(bid, popt)
            if do_state:
                rec = st[j]
                rec["region"] = np.uint8(r)
                rec["bands"] = _business_bands_in(bid, r, popt)
            rep[kb] = np.uint32(_business_rep_in(bid, r, popt))
        j += stride


# ============================================================================================
# Memory
# ============================================================================================


def counter_copies(emit: int) -> int:
    return 1 if emit else REPLICAS


def device_free_bytes() -> float:
    """Free memory of the current CUDA device (the simulator reports infinity), capped by
    ``$SOCIALCREDIT_GPU_MEMORY`` when that is set."""
    free = float(cuda.current_context().get_memory_info()[0])
    cap = os.environ.get(MEMORY_ENV)
    if cap:
        free = min(free, float(int(cap)))
    return free


# ============================================================================================
# The backend
# ============================================================================================


def _has_arrays(pop: Any) -> bool:
    return getattr(pop, "materialized", True) and getattr(pop, "rep", None) is not None


class GpuBackend:
    """Runs days of a shard with numba-cuda kernels; the state lives on the device.

    ``state``: the host state dict (``{"st", "pub"}``, as ``engine.new_state`` makes it or a
    checkpoint restored it), uploaded once; or ``None`` to generate the population on the
    device, in which case ``self.state`` is made on the host only by :meth:`sync_state`."""

    name = "gpu"

    def __init__(self, model: Any, shard: Any, state: dict[str, np.ndarray] | None = None, *,
                 emit: int = LY.EMIT_NONE, event_capacity: int = EVENT_CAPACITY,
                 free_bytes: float | None = None, threads_per_block: int | None = None):
        from socialcredit.engine import DayResult

        self._DayResult = DayResult
        self.model = model
        self.shard = shard
        self.emit = int(emit)
        self.state: dict[str, np.ndarray] | None = state
        n = shard.size
        nb = shard.b_hi - shard.b_lo
        self.n = n
        self.plan = memory_plan(model, shard, emit=self.emit, copies=REPLICAS,
                                event_capacity=event_capacity)
        check_memory(self.plan, device_free_bytes() if free_bytes is None else free_bytes)
        self.tpb = int(threads_per_block or THREADS_PER_BLOCK)
        if SIMULATOR:
            self.max_blocks = 8
            self.threads = 1
        else:
            sms = int(cuda.get_current_device().MULTIPROCESSOR_COUNT)
            self.max_blocks = sms * BLOCKS_PER_SM
            self.threads = sms
        self.ncol = CNT_BASE + model.n_cells * model.n_metrics
        #: sum the counter copies on the device; under the simulator, where a kernel's loop
        #: over every counter would cost more than the simulated day, with NumPy on the host
        #: (the test checks :func:`_reduce_kernel` on its own)
        self.device_reduce = not SIMULATOR
        k = counter_copies(self.emit)
        rows = event_rows(n, self.emit, event_capacity)
        #: subjects per launch: the worst case of every subject's events fits the buffer
        self.span = max(1, rows // EVENT_MARGIN) if self.emit else max(1, n)
        # tables
        self.P = cuda.to_device(np.ascontiguousarray(model.packed.P))
        self.popt = cuda.to_device(np.ascontiguousarray(model.population.popt))
        self.ctx = cuda.device_array(N_CTX, np.int64)
        self.cnt = cuda.device_array((k, self.ncol), np.int64)
        self.out = cuda.device_array(self.ncol, np.int64)
        self.ev = cuda.device_array((k, rows, LY.EV_WIDTH), np.int32)
        self._out_host = np.zeros(self.ncol, np.int64)
        self._zero(self.cnt.reshape(k * self.ncol))
        # state
        self.stw = cuda.device_array(max(1, n) * _STATE_WORDS, np.uint32)
        self.st = self.stw.view(STATE_DTYPE)[:n]
        self.pub = cuda.device_array((2, n), np.uint32)
        self.rep = cuda.device_array(nb, np.uint32)
        pop = model.population
        if state is not None:
            self.st.copy_to_device(np.ascontiguousarray(state["st"]))
            self.pub.copy_to_device(np.ascontiguousarray(state["pub"]))
            if _has_arrays(pop):
                self.rep.copy_to_device(np.ascontiguousarray(pop.rep[shard.b_lo:shard.b_hi]))
            else:
                self._populate(do_state=False)
        else:
            self._zero(self.stw)
            self._zero(self.pub.reshape(2 * n))
            self._populate(do_state=True)
        cuda.synchronize()

    # -- launches -------------------------------------------------------------------------

    def _grid(self, n: int) -> int:
        return max(1, min(self.max_blocks, -(-n // self.tpb)))

    def _zero(self, a: Any) -> None:
        if a.shape[0]:
            _zero_kernel[self._grid(a.shape[0]), self.tpb](a)

    def _populate(self, *, do_state: bool) -> None:
        sh = self.shard
        nc = sh.c_hi - sh.c_lo
        _populate_kernel[self._grid(self.n), self.tpb](self.popt, np.int64(sh.c_lo),
                                                        np.int64(nc), np.int64(sh.b_lo),
                                                        self.st, self.rep, do_state)

    def run_day(self, t: int, calendar: Any) -> Any:
        m = self.model
        ctx = calendar.ctx(t, m, self.shard, self.emit)
        self.ctx.copy_to_device(ctx)
        chunks: list[np.ndarray] = []
        a = 0
        while a < self.n:
            b = min(self.n, a + self.span)
            _day_kernel[self._grid(b - a), self.tpb](np.int64(a), np.int64(b), self.P, self.ctx,
                                                     self.st, self.pub, self.rep, self.popt,
                                                     self.cnt, self.ev)
            if self.emit:
                pos = self.cnt[0, :CNT_BASE].copy_to_host()
                if pos[1]:
                    raise RuntimeError("event buffer overflow")
                if pos[0]:
                    chunks.append(self.ev[0, :int(pos[0])].copy_to_host())
                _reset_positions[1, max(1, self.cnt.shape[0])](self.cnt)
            a = b
        if self.device_reduce:
            _reduce_kernel[self._grid(self.ncol), self.tpb](self.cnt, self.out)
            self.out.copy_to_host(self._out_host)
        else:
            host = self.cnt.copy_to_host()
            self._out_host[:] = host.sum(axis=0)
            host[:] = 0
            self.cnt.copy_to_device(host)
        counts = self._out_host[CNT_BASE:].reshape(m.n_cells, m.n_metrics).copy()
        if chunks:
            events = np.concatenate(chunks)
            events = events[np.argsort(events[:, 1], kind="stable")]
        else:
            events = np.zeros((0, LY.EV_WIDTH), dtype=np.int32)
        return self._DayResult(counts=counts, events=events)

    def sync_state(self) -> None:
        """Copy the device state into ``self.state`` (made on first use when the population
        was generated on the device)."""
        if self.state is None:
            self.state = {"st": np.zeros(self.n, STATE_DTYPE),
                          "pub": np.zeros((2, self.n), np.uint32)}
        if self.n:
            self.st.copy_to_host(self.state["st"])
            self.pub.copy_to_host(self.state["pub"])

    def representatives(self) -> np.ndarray:
        """The shard's representatives as the device holds them (for checks)."""
        return np.asarray(self.rep.copy_to_host())

    def device_copy_seconds(self, repeats: int = 3, buffer_bytes: int = 1 << 31) -> float:
        """Seconds of one plain device-to-device copy of the state arrays (records and public
        words): the bandwidth bound a day's step is measured against. The copy goes through
        a buffer of at most ``buffer_bytes`` (a second full copy would not fit beside the
        state of a full-scale run), piece by piece; the best of ``repeats``."""
        import time

        words = [self.stw[: self.n * _STATE_WORDS], self.pub.reshape(2 * self.n)]
        piece = max(1, min(buffer_bytes // 4, max(w.shape[0] for w in words)))
        buf = cuda.device_array(piece, np.uint32)
        best = math.inf
        for _ in range(max(1, repeats)):
            cuda.synchronize()
            t0 = time.perf_counter()
            for w in words:
                for a in range(0, w.shape[0], piece):
                    b = min(w.shape[0], a + piece)
                    buf[: b - a].copy_to_device(w[a:b])
            cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        del buf
        return best


# ============================================================================================
# A population whose arrays are made only when read (the GPU generates its own)
# ============================================================================================


