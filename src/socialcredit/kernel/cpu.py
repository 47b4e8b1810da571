"""The CPU driver: one day of the day step over a shard, in parallel with numba ``prange``.

Subjects are cut into a few contiguous chunks per thread; each chunk owns its counters and
its event buffer, so workers never share memory they write. A chunk whose event buffer is
nearly full stops and reports where; the engine drains the buffer and calls again for the
same day (subjects are independent within a day, so this changes nothing).

Most subject-days nothing happens. The driver finds them in blocks of ``SCREEN_BLOCK``
subjects. A *screen*, a loop without branches or table look-ups that the compiler turns into
SIMD code, draws each subject's act, repayment and request numbers, compares them with the
largest thresholds any subject of the chunk's kind has this month, and copies every public
word to tomorrow's. A *recheck* decides the flagged exactly, from the public word where it
says enough and else from the record (asked for one block ahead, so that it arrives while the
driver works on the block before). What is left is stepped: a lone request that no measure
can touch gets the plain grant, everything else the full step (in runs without events, the
full steps of ``FULL_BATCH`` blocks together). The screen and the recheck only ever send more
subjects on, never fewer, so the result is the step's own, bit for bit, on every backend
(``docs/performance.md``).

Compiled without numba's reference counting (``_nrt=False``): the kernel never allocates,
and without it every call inside the step would count references on every array it passes.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

import socialcredit.jitcache  # noqa: F401  (before any cached jit)
from socialcredit import rng
from socialcredit.kernel.layout import (
    ACT_LOW,
    ACT_SHIFT,
    ACT_SLOTS,
    D_R,
    OFF_O,
    SVC_COLS,
    SVC_W,
    T_ACT_OVER,
    T_ACT_OVER_N,
    T_ACT_OVER_Q,
    T_ACT_SLOT_MAX,
    T_PAIR_SLOT_MAX,
    T_REPAY_LISTED_MOD,
    T_REPAY_THR,
    T_SVC_OVER,
    T_SVC_OVER_N,
    T_SVC_OVER_Q,
    T_SVC_THR_B,
)
from socialcredit.kernel.step import (
    C_BUSY,
    C_EMIT,
    C_MONTH,
    C_MONTH_START,
    C_NCIT,
    C_T,
    C_YEAR_START,
    DC_KEY_ACTS,
    DC_KEY_SVC,
    DC_MONTH,
    DC_SVC,
    DELAYED_MASK,
    DIRTY_BIT,
    DRAW_ACT_OVER,
    DRAW_REPAY,
    DRAW_SVC_OVER,
    QUIET_MASK,
    day_consts,
    held_quiet,
    loc,
    mod,
    plain_grant,
    plain_request,
    slot_hit,
    step_full,
    step_with,
    svc_hit,
    svc_row,
    word_bands,
)
from socialcredit.population import region_of

#: Events one subject can emit in one day, at most (the buffer keeps this much free).
EVENT_MARGIN = 96
#: Subjects screened at a time (the flags of one block stay in the first-level cache).
SCREEN_BLOCK = 512

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_LO32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
#: ``rng.sub_hash(h, DRAW_REPAY)`` is ``mix(h ^ _REPAY)``.
_REPAY = np.uint64((DRAW_REPAY * int(rng._M1)) % (1 << 64))
_QUIET_MASK = np.uint32(QUIET_MASK)
#: Layout of the screen's thresholds (uint32), one row per month: per kind (citizen,
#: business) the largest threshold of each act slot (``ACT_SLOTS`` each), the largest
#: false-record threshold of any slot (one each), the largest threshold of each request
#: slot (``SVC_COLS`` each); then the repayment threshold and whether to screen at all.
SCR_ACT = 0
SCR_PAIR = SCR_ACT + 2 * ACT_SLOTS
SCR_SVC = SCR_PAIR + 2
SCR_REPAY = SCR_SVC + 2 * SVC_COLS
SCR_ON = SCR_REPAY + 1
N_SCR = SCR_ON + 1
_ACT_SHIFT = np.uint32(ACT_SHIFT)
_ACT_LOW = np.uint32(ACT_LOW)
_SVC_W = np.uint32(SVC_W)
#: Rows of a chunk's scratch block: the screen's flags and draws, then the subjects to step.
ROW_FLAG, ROW_ACT_HI, ROW_ACT_LO, ROW_REPAY, ROW_SVC, ROW_INDEX, ROW_WORK = range(7)
N_ROWS = 7
#: Blocks whose full steps are taken together (runs without events only).
FULL_BATCH = 64
#: How many full steps ahead ``run_pending`` asks for a subject's record.
PENDING_AHEAD = 8
#: Added to a block position in ``ROW_INDEX``: the subject needs the full step.
FULL = 1024
assert SCREEN_BLOCK <= FULL


def screen_thresholds(P: np.ndarray, months: int = 12) -> np.ndarray:
    """The screen's thresholds for a packed table array, one row per month of the service
    tables (``months``: twelve per period of a dated demand; see ``SCR_*``).

    A threshold of 2**32 or more (an event sure to happen) cannot be screened in 32 bits;
    then screening is off and every subject takes the exact step."""
    R = int(P[D_R])
    out = np.zeros((months, N_SCR), dtype=np.uint32)
    act = P[P[OFF_O + T_ACT_SLOT_MAX]:][:R * 2 * ACT_SLOTS].reshape(R, 2, ACT_SLOTS).max(axis=0)
    pair = P[P[OFF_O + T_PAIR_SLOT_MAX]:][:R * 2 * ACT_SLOTS].reshape(R, 2, ACT_SLOTS)
    svc = P[P[OFF_O + T_SVC_THR_B]:][:months * 2 * 128 * SVC_COLS].reshape(months, 2, 128,
                                                                           SVC_COLS)
    repay = int(P[P[OFF_O + T_REPAY_THR]])
    for m in range(months):
        row = np.concatenate([act.ravel(), pair.max(axis=(0, 2)), svc[m].max(axis=1).ravel(),
                              [repay]])
        if row.max() >= 1 << 32 or row.min() < 0:
            return np.zeros((months, N_SCR), dtype=np.uint32)
        out[m, :SCR_ON] = row
        out[m, SCR_ON] = 1
    return out


@intrinsic
def prefetch(typingctx, arr, idx):  # type: ignore[no-untyped-def]
    """Ask the CPU to start loading element ``idx`` of ``arr`` (its first and its last byte,
    since a record may straddle two cache lines) into the cache, without waiting for it."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        aty = signature.args[0]
        ary = context.make_array(aty)(context, builder, args[0])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = builder.module.globals.get("llvm.prefetch.p0")
        if fn is None:
            fn = ir.Function(builder.module, fnty, name="llvm.prefetch.p0")
        first = builder.bitcast(builder.gep(ary.data, [args[1]]), i8p)
        size = context.get_abi_sizeof(context.get_data_type(aty.dtype))
        # read access, keep in all cache levels, data (not instructions)
        flags = [ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)]
        builder.call(fn, [first] + flags)
        if size > 1:
            last = builder.gep(first, [ir.Constant(ir.IntType(64), size - 1)])
            builder.call(fn, [last] + flags)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def screen(g0, li0, nb, k_acts, k_svc, pub, par, thr_act, thr_pair, thr_svc, thr_repay,
           grading, today, scr):  # type: ignore[no-untyped-def]
    """Flag the subjects ``g0 .. g0 + nb`` (local ``li0 ..``) that may need the exact step,
    and copy every public word to tomorrow's (the exact step overwrites it where it runs).

    ``grading`` is 1 on days when a moved score is graded (then the dirty bit flags too),
    ``today`` the day index mod 256.
    ``scr`` (uint32[N_ROWS, SCREEN_BLOCK]) receives the flags and the subjects' draws."""
    src = pub[par]
    dst = pub[1 - par]
    flags = scr[ROW_FLAG]
    act_hi = scr[ROW_ACT_HI]
    act_lo = scr[ROW_ACT_LO]
    repay = scr[ROW_REPAY]
    svc = scr[ROW_SVC]
    # unsigned indices: no negative-index wraparound to test, so the loop vectorises
    for jj in range(nb):
        j = np.uint64(jj)
        li = np.uint64(li0) + j
        x = (np.uint64(g0) + j) * _GOLDEN
        h = rng.mix(k_acts ^ x)
        ah = np.uint32(h >> _S32)
        al = np.uint32(h & _LO32)
        rh = np.uint32(rng.mix(h ^ _REPAY) >> _S32)
        sh = np.uint32(rng.mix(k_svc ^ x) >> _S32)
        p = src[li]
        dst[li] = p
        # a list or a forced grade; a waiting record or appeal whose day (mod 256) it is; a
        # moved score on a grading day
        f = np.uint32((p & _QUIET_MASK) != 0) | (grading & (p >> np.uint32(30)))
        f |= (p >> np.uint32(31)) & np.uint32(((p >> np.uint32(8)) & np.uint32(255)) == today)
        # a false record: the low bits against the largest threshold of any slot
        f |= np.uint32((al & _ACT_LOW) < thr_pair)
        f |= np.uint32(rh < thr_repay)
        flags[j] = f
        act_hi[j] = ah
        act_lo[j] = al
        repay[j] = rh
        svc[j] = sh
    # the slot look-ups in a second pass: a table look-up keeps the compiler from turning
    # the loop above into SIMD code, and this one reads only what that one wrote
    for jj in range(nb):
        ah = act_hi[jj]
        sh = svc[jj]
        # an act: the slot the draw's top bits name, against that slot's largest threshold
        f = np.uint32((ah & _ACT_LOW) < thr_act[ah >> _ACT_SHIFT])
        # bit 1: a request may have been drawn (bit 0: anything else)
        k = sh // _SVC_W
        f |= np.uint32((sh - k * _SVC_W) < thr_svc[k]) << np.uint32(1)
        flags[jj] |= f


@njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def screen_over(g0, nb, dc, P, kind, scr):  # type: ignore[no-untyped-def]
    """For a kind with acts or services likelier than their slots are wide: flag (bit 2)
    the subjects whose own draw of such an act or service falls below the largest threshold
    it has (any region; this month), so that the recheck sends them to the full step."""
    flags = scr[ROW_FLAG]
    act_hi = scr[ROW_ACT_HI]
    act_lo = scr[ROW_ACT_LO]
    R = P[D_R]
    for x in range(P[P[OFF_O + T_ACT_OVER_N] + kind]):
        a = P[P[OFF_O + T_ACT_OVER] + kind * ACT_SLOTS + x]
        q = np.int64(0)
        for r in range(R):
            q = max(q, P[P[OFF_O + T_ACT_OVER_Q] + (r * 2 + kind) * ACT_SLOTS + x])
        d = np.uint64(DRAW_ACT_OVER + a)
        for j in range(nb):
            h = (np.uint64(act_hi[j]) << _S32) | np.uint64(act_lo[j])
            if np.int64(rng.hi32(rng.sub_hash(h, d))) < q:
                flags[j] |= np.uint32(4)
    month = dc[DC_MONTH]
    k_svc = dc[DC_KEY_SVC]
    for x in range(P[P[OFF_O + T_SVC_OVER_N] + kind]):
        s = P[P[OFF_O + T_SVC_OVER] + kind * SVC_COLS + x]
        q = P[P[OFF_O + T_SVC_OVER_Q] + ((month - 1) * 2 + kind) * SVC_COLS + x]
        d = np.uint64(DRAW_SVC_OVER + s)
        for j in range(nb):
            h2 = rng.subject_hash(k_svc, np.uint64(g0 + j))
            if np.int64(rng.hi32(rng.sub_hash(h2, d))) < q:
                flags[j] |= np.uint32(4)


@njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def recheck_words(li0, nb, dc, P, pub, par, kind, st, scr):  # type: ignore[no-untyped-def]
    """The recheck's first part, for a block the screen has flagged: lists the flagged
    subjects in ``scr[ROW_WORK]`` and decides those flagged only for their request draw, on
    no list and with nothing waiting, from their public words (which then hold the bands
    their request rates depend on). The others are listed in ``scr[ROW_INDEX]`` and their
    records are asked for (``prefetch``), to be read by :func:`recheck_records` once they
    have arrived: the driver does this one block ahead. Returns (flagged, to read)."""
    month = dc[DC_MONTH]
    o_svc = dc[DC_SVC]
    flags = scr[ROW_FLAG]
    index = scr[ROW_INDEX]
    work = scr[ROW_WORK]
    svc = scr[ROW_SVC]
    k = 0
    for j in range(nb):
        work[k] = j
        k += np.int64(flags[j] != 0)
    # decisions go back into ``flags``: 0 quiet, 1 a plain request, 2 the full step
    m = 0
    for q in range(k):
        j = np.int64(work[q])
        p = np.int64(pub[par, li0 + j])
        if flags[j] == 2 and (p >> 31) == 0:
            flags[j] = 1 if svc_hit(P, o_svc, svc_row(month, kind, word_bands(p)),
                                    np.int64(svc[j])) else 0
        else:
            index[m] = j  # (index is free until the end: a list of those to read)
            m += 1
    for q in range(m):
        prefetch(st, li0 + np.int64(index[q]))
    return k, m


@njit(cache=True, nogil=True, _nrt=False, inline="always")  # type: ignore[call-overload]
def look(g, li0, nb, dc, P, pub, par, kind, st, tm, grading, today, scr):  # type: ignore[no-untyped-def]
    """Screen the block of ``nb`` subjects from ``g`` and run the recheck's first part on
    it (:func:`recheck_words`); returns what that returns."""
    a0 = SCR_ACT + kind * ACT_SLOTS
    s0 = SCR_SVC + kind * SVC_COLS
    screen(g, li0, nb, dc[DC_KEY_ACTS], dc[DC_KEY_SVC], pub, par, tm[a0:a0 + ACT_SLOTS],
           tm[SCR_PAIR + kind], tm[s0:s0 + SVC_COLS], tm[SCR_REPAY], grading, today, scr)
    if P[P[OFF_O + T_ACT_OVER_N] + kind] + P[P[OFF_O + T_SVC_OVER_N] + kind] != 0:
        screen_over(g, nb, dc, P, kind, scr)
    return recheck_words(li0, nb, dc, P, pub, par, kind, st, scr)


@njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def recheck_records(li0, k, m, dc, P, st, pub, par, kind, scr):  # type: ignore[no-untyped-def]
    """The recheck's second part: decides the ``m`` subjects :func:`recheck_words` could
    not, from their records, with the same test as the step's on the draws the screen kept.
    Returns how many of the ``k`` flagged subjects the step must see, their block positions
    in ``scr[ROW_INDEX]`` in increasing order, plus ``FULL`` for those that need the full
    step whatever they ask for (the others only drew a request)."""
    (t, busy, month_start, year_start, year, month, er0, n_cit, k_acts, k_svc, o_act, o_pair,
     thr_rep, o_svc) = dc
    # a listed subject meets its obligations faster (the full step's repayment threshold)
    thr_rep_listed = mod(thr_rep, P[P[OFF_O + T_REPAY_LISTED_MOD]])
    flags = scr[ROW_FLAG]
    index = scr[ROW_INDEX]
    work = scr[ROW_WORK]
    act_hi = scr[ROW_ACT_HI]
    act_lo = scr[ROW_ACT_LO]
    repay = scr[ROW_REPAY]
    svc = scr[ROW_SVC]
    tm = t & 1023
    grading = 1 if month_start else 0
    for q in range(m):
        j = np.int64(index[q])
        li = li0 + j
        rec = st[li]
        p = np.int64(pub[par, li])
        w1 = np.int64(rec['delayed']) & DELAYED_MASK
        w2 = np.int64(rec['appeal'])
        # every test below is computed, and their results added as integers, so that the
        # compiler has no reason to turn them into jumps
        rk = np.int64(rec['region']) * 2 + kind
        thr_r = thr_rep_listed if (p & 255) != 0 else thr_rep
        other = np.int64((flags[j] >> 2) & 1)  # an act's or a service's own draw
        other += np.int64(w1 != 0) * np.int64(((w1 >> 13) & 1023) == tm)
        other += np.int64(w2 != 0) * np.int64(((w2 >> 13) & 1023) == tm)
        other += grading * ((p >> 30) & 1)
        other += np.int64(slot_hit(P, o_act, rk, np.int64(act_hi[j])))
        other += np.int64(slot_hit(P, o_pair, rk, np.int64(act_lo[j])))
        other += np.int64((np.int64(rec['counts']) >> 4) != 0) * np.int64(np.int64(repay[j]) < thr_r)
        req = np.int64(svc_hit(P, o_svc, svc_row(month, kind, np.int64(rec['bands'])),
                               np.int64(svc[j])))
        if (p & QUIET_MASK) != 0:
            # on a list or with a forced grade: quiet only if nothing at all is due
            # (the screen kept the subject's act hash in two halves)
            h = (np.uint64(act_hi[j]) << _S32) | np.uint64(act_lo[j])
            quiet = other == 0 and req == 0 and held_quiet(rec, p, h, t,
                                                           er0 + np.int64(rec['region']), P)
            flags[j] = 0 if quiet else 2
        else:
            # a request alone may be granted plainly; anything else needs the full step
            flags[j] = 2 if other != 0 else req
    n = 0
    for q in range(k):
        j = np.int64(work[q])
        d = np.int64(flags[j])
        index[n] = j + FULL * np.int64(d == 2)
        n += np.int64(d != 0)
    return n


@njit(cache=True, nogil=True, _nrt=False, inline="always")  # type: ignore[call-overload]
def plain(i, li, kind, par, u, P, ctx, st, pub, reps, popt, cnt, ev):  # type: ignore[no-untyped-def]
    """A subject whose only business today is the request its draw ``u`` may make: granted
    plainly where no measure can touch it (returns 0), else left to the full step (1)."""
    # the region from the population, the bands from the public word (from the record
    # while something waits)
    p = np.int64(pub[par, li])
    bnd = word_bands(p) if (p >> 31) == 0 else np.int64(st[li]['bands'])
    rk = region_of(i, popt) * 2 + kind
    d = plain_request(u, rk, bnd, p, P, ctx)
    if (d & 3) == 2:
        d -= 1 + ((reps[li >> 3] >> (li & 7)) & 1)
    if d >= 0 and (d & 3) == 1:
        plain_grant(i, d >> 2, rk, bnd, P, ctx, cnt, ev)
    # (the screen has already copied the public word of a quiet subject)
    return 1 if d >= 0 and (d & 3) == 0 else 0


@njit(cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def run_pending(lis, n, shift, P, ctx, st, pub, rep, popt, cnt, ev):  # type: ignore[no-untyped-def]
    """The full steps of the subjects ``lis[:n]`` (local indices), their records and public
    words asked for a few steps ahead."""
    p0 = pub[0]
    p1 = pub[1]
    for q in range(n + PENDING_AHEAD):
        if q < n:
            li = np.int64(lis[q])
            prefetch(st, li)
            prefetch(p0, li)
            prefetch(p1, li)
        if q >= PENDING_AHEAD:
            li = np.int64(lis[q - PENDING_AHEAD])
            step_full(li + shift, li, P, ctx, st, pub, rep, popt, cnt, ev)


@njit(parallel=True, cache=True, nogil=True, _nrt=False)  # type: ignore[call-overload]
def run_day(cursor, end, P, ctx, st, pub, rep, reps, popt, cnt, ev, thr, scratch, pending):  # type: ignore[no-untyped-def]
    """Advance every chunk from ``cursor[c]`` towards ``end[c]`` by one day of the step.

    ``reps`` has bit ``li & 7`` of byte ``li >> 3`` set where the shard's citizen ``li``
    represents one of its businesses (:func:`representatives`); ``thr`` holds the screen's
    thresholds (:func:`screen_thresholds`), ``scratch`` two blocks of working space per chunk
    (uint32[chunks, 2, N_ROWS, SCREEN_BLOCK]): the block being stepped and the next, and
    ``pending`` room for the full steps of ``FULL_BATCH`` blocks per chunk."""
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
        kind = 1 if g >= ctx[C_NCIT] else 0
        par = ctx[C_T] & 1
        tm = thr[ctx[C_MONTH] - 1]
        screening = tm[SCR_ON] != 0 and ctx[C_BUSY] == 0 and ctx[C_YEAR_START] == 0
        grading = np.uint32(1 if ctx[C_MONTH_START] != 0 else 0)
        today = np.uint32(ctx[C_T] & 255)
        cur = 0
        ahead = False  # whether block ``cur`` at g has been screened already
        k = m = k2 = m2 = 0
        # without events to record, order within a day does not matter (subjects are
        # independent), so full steps can wait for their batch
        batching = screening and not emitting
        npend = 0
        blocks = 0
        while g < stop:
            nb = min(SCREEN_BLOCK, stop - g)
            scr = scratch[c, cur]
            index = scr[ROW_INDEX]
            if screening:
                if not ahead:
                    k, m = look(g, g - shift, nb, dc, P, pub, par, kind, st, tm, grading,
                                today, scr)
                # the next block is screened, and its records asked for, before this one's
                # records are read: the memory works while the processor does
                g2 = g + nb
                ahead = g2 < stop
                if ahead:
                    k2, m2 = look(g2, g2 - shift, min(SCREEN_BLOCK, stop - g2), dc, P, pub, par,
                                  kind, st, tm, grading, today, scratch[c, 1 - cur])
                n = recheck_records(g - shift, k, m, dc, P, st, pub, par, kind, scr)
            else:
                for j in range(nb):
                    index[j] = j
                n = nb
            done = nb
            if batching:
                # plain grants now; the full steps of FULL_BATCH blocks later, one after the
                # other (the step's code and branch history stay warm)
                for q in range(n):
                    v = np.int64(index[q])
                    j = v & (FULL - 1)
                    li = g + j - shift
                    if v < FULL:
                        v = plain(g + j, li, kind, par, np.int64(scr[ROW_SVC, j]), P, ctx, st,
                                  pub, reps, popt, counters, events)
                    if v != 0:
                        pending[c, npend] = li
                        npend += 1
                blocks += 1
                if blocks == FULL_BATCH or g + nb >= stop:
                    run_pending(pending[c], npend, shift, P, ctx, st, pub, rep, popt,
                                counters, events)
                    npend = 0
                    blocks = 0
            else:
                for q in range(n):
                    v = np.int64(index[q])
                    j = v & (FULL - 1)
                    if emitting and counters[0] + EVENT_MARGIN > cap:
                        done = j
                        break
                    i = g + j
                    li = i - shift
                    if not screening:
                        step_with(i, li, dc, P, ctx, st, pub, rep, popt, counters, events)
                        continue
                    if v < FULL:
                        v = plain(i, li, kind, par, np.int64(scr[ROW_SVC, j]), P, ctx, st,
                                  pub, reps, popt, counters, events)
                    if v != 0:
                        step_full(i, li, P, ctx, st, pub, rep, popt, counters, events)
            g += done
            if done < nb:
                break
            if ahead:
                cur = 1 - cur
                k = k2
                m = m2
        cursor[c] = g


def representatives(rep: np.ndarray, c_lo: int, n_citizens: int) -> np.ndarray:
    """The bitmap ``run_day`` reads: bit ``k & 7`` of byte ``k >> 3`` set where citizen
    ``c_lo + k`` is the legal representative of a business in ``rep``."""
    out = np.zeros((n_citizens + 7) // 8 + 1, dtype=np.uint8)
    k = rep.astype(np.int64) - c_lo
    k = k[(k >= 0) & (k < n_citizens)]
    np.bitwise_or.at(out, k >> 3, (1 << (k & 7)).astype(np.uint8))
    return out


assert DIRTY_BIT == 1 << 30  # the screen reads the dirty bit as ``p >> 30``
