"""The CPU driver: one day of the day step over a shard, in parallel with numba ``prange``.

Subjects are cut into a few contiguous chunks per thread; each chunk owns its counters and
its event buffer, so workers never share memory they write. A chunk whose event buffer is
nearly full stops and reports where; the engine drains the buffer and calls again for the
same day (subjects are independent within a day, so this changes nothing).

Compiled without numba's reference counting (``_nrt=False``): the kernel never allocates,
and without it every call inside the step would count references on every array it passes.
"""

from __future__ import annotations

from numba import njit, prange

import socialcredit.jitcache  # noqa: F401  (before any cached jit)
from socialcredit.kernel.step import C_EMIT, day_consts, loc, step_with

#: Events one subject can emit in one day, at most (the buffer keeps this much free).
EVENT_MARGIN = 96


@njit(parallel=True, cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def run_day(cursor, end, P, ctx, st, pub, rep, popt, cnt, ev):  # type: ignore[no-untyped-def]
    """Advance every chunk from ``cursor[c]`` towards ``end[c]`` by one day of the step."""
    for c in prange(cursor.shape[0]):
        g = cursor[c]
        stop = end[c]
        cap = ev.shape[1]
        counters = cnt[c]
        events = ev[c]
        dc = day_consts(P, ctx)
        emitting = ctx[C_EMIT] != 0
        # a chunk lies within the citizens or within the businesses: local = global - shift
        shift = g - loc(g, ctx) if g < stop else 0
        while g < stop:
            if emitting and counters[0] + EVENT_MARGIN > cap:
                break
            step_with(g, g - shift, dc, P, ctx, st, pub, rep, popt, counters, events)
            g += 1
        cursor[c] = g
