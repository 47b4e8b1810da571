"""The per-subject day step (DESIGN 3), written once for every backend.

Every function here is ``register_jitable``: the CPU driver (``kernel.cpu``) calls
:func:`step_subject` from a parallel numba loop, the GPU driver (``kernel.gpu``) from a
``cuda.jit`` kernel, and under numba's CUDA simulator it runs as plain Python. The rules:
integers only (no floats, so fused multiply-add and float reductions cannot break identity),
no allocation, no I/O, no Python objects. Counting and event emission go through
``atomic_add``, which is a plain add on the CPU and an atomic on the GPU.

A subject's step reads only its own state, the packed tables, the counter-based draws and,
for the members of its own group, their public state as of the start of the day
(``pub[parity]``); it writes its own state and ``pub[1 - parity]``. So the result of a day
does not depend on the order in which subjects are processed.

The public word ``pub`` of a subject (uint32):
bits 0-7 lists it is on; 8-15 those of its lists whose entry was caused by a false record;
16-19 grade (15 = none); 20-23 the grade it would have without points from false records;
24-27 forced grade + 1 (0 = none); 28 the forced grade came from a false record;
29 it carries points.
"""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

from socialcredit import rng
from socialcredit.kernel.atomic import atomic_add
from socialcredit.kernel.group import household_range, represented_range
from socialcredit.kernel.layout import (
    CELLS_PER_REGION,
    D_A,
    D_G,
    D_H,
    D_L,
    D_M,
    D_P,
    D_R,
    D_S,
    EMIT_ALL,
    EMIT_TABLES,
    EV_ACT,
    EV_APPEAL,
    EV_DECISION,
    EV_GRADE,
    EV_INCOME,
    EV_LEDGER,
    EV_LIST,
    EV_OBJECTION,
    EV_OVERRIDE,
    EV_RECORD,
    EV_REPAY,
    EV_WIDTH,
    EXIT_APPEAL,
    EXIT_GRADE,
    EXIT_MOVED,
    EXIT_OBLIGATION,
    EXIT_POLICY,
    EXIT_REPAIR,
    EXIT_TERM,
    LIST_ENTER,
    LIST_EXIT,
    LIST_EXTEND,
    M_ACTS,
    M_APPEALS_LOST_FALSE,
    M_APPEALS_LOST_TRUE,
    M_APPEALS_WON_FALSE,
    M_APPEALS_WON_TRUE,
    M_DECISIONS,
    M_DELAY_OVERFLOW,
    M_EXIT_REASON,
    M_EXPIRED_POINTS,
    M_GRADE_COUNT,
    M_INCOME_DROPS,
    M_LIST_ENTER,
    M_LIST_EXIT,
    M_LIST_EXTEND,
    M_LIST_OVERFLOW,
    M_LISTED,
    M_LISTED_FALSE,
    M_MEASURE_FIRED,
    M_OBJECTION_OVERFLOW,
    M_OBJECTIONS,
    M_OBLIGATIONS_CREATED,
    M_OBLIGATIONS_MET,
    M_OVERRIDES,
    M_POINTS_DOWN,
    M_POINTS_UP,
    M_RECORDS_FALSE,
    M_RECORDS_TRUE,
    M_REPAIRS,
    M_REQUESTS,
    M_RETRIES,
    M_SCORE_SUM,
    M_SCORED,
    M_SUBJECTS,
    M_WRONGFUL,
    MAX_ACT_CHANNELS,
    NO_GRADE,
    OUT_DENIED,
    OUT_FAST,
    OUT_GRANTED,
    RETRY_MAX,
    RULE_APPEAL,
    RULE_EXPIRY,
    RULE_START,
    T_ACT_BASE,
    T_ACT_CATEGORY,
    T_ACT_CHANNELS,
    T_ACT_ESCALATION_PCT,
    T_ACT_KIND,
    T_ACT_MAX,
    T_ACT_MOD_AGE,
    T_ACT_MOD_EDU,
    T_ACT_MOD_INCOME,
    T_ACT_MOD_LISTED,
    T_ACT_MOD_POLICY,
    T_ACT_MOD_URBAN,
    T_ACT_OBLIGATION,
    T_ACT_POINTS,
    T_ACT_RULE,
    T_ACT_THR,
    T_ACT_TOTAL,
    T_ACT_VALIDITY,
    T_APPEAL_DELAY,
    T_APPEAL_WIN_FALSE_THR,
    T_APPEAL_WIN_TRUE_THR,
    T_AWARE_THR,
    T_CADENCE,
    T_CAP_CATEGORY,
    T_CAP_POINTS,
    T_CHAN_COV,
    T_CHAN_DELAY,
    T_CHAN_MISID_AGE,
    T_CHAN_MISID_INCOME,
    T_CONSENT_REQUIRED,
    T_ECON_DROP_THR,
    T_GRADE_FLOOR,
    T_LIST_ACTIVE,
    T_LIST_ACTS,
    T_LIST_ENTRY_RULE,
    T_LIST_EXIT_OBLIGATION,
    T_LIST_EXTEND,
    T_LIST_FROM,
    T_LIST_FROM_DAYS,
    T_LIST_FROM_MOVES,
    T_LIST_FROM_RULE,
    T_LIST_GRADE_HI,
    T_LIST_GRADE_LO,
    T_LIST_GRADE_RULE,
    T_LIST_K,
    T_LIST_KIND,
    T_LIST_REPAIR_MIN,
    T_LIST_REPAIR_THR,
    T_LIST_SUBJECT_KIND,
    T_LIST_TERM,
    T_LIST_WINDOW,
    T_LISTED_REQUEST_FACTOR,
    T_MEASURE_ACTIVE,
    T_MEASURE_EFFECT,
    T_MEASURE_GRADE_HI,
    T_MEASURE_GRADE_LO,
    T_MEASURE_LISTS,
    T_MEASURE_REACH,
    T_MEASURE_SERVICE,
    T_MIN_AGE_BAND,
    T_MOD_CAP,
    T_N_GRADES,
    T_OBJ_MOD_EDU,
    T_OBJ_MOD_INCOME,
    T_OBJ_THR,
    T_OBJECTION_WINDOW,
    T_OVERRIDE_DAYS,
    T_OVERRIDE_GRADE,
    T_OVERRIDE_RULE,
    T_PAIR_ACT,
    T_PAIR_BASE,
    T_PAIR_CHAN,
    T_PAIR_KIND,
    T_PAIR_MAX,
    T_PAIR_MISID,
    T_PAIR_THR,
    T_PAIR_TOTAL,
    T_REPAY_LISTED_MOD,
    T_REPAY_THR,
    T_SCORE_CEILING,
    T_SCORE_FLOOR,
    T_SCORE_START,
    T_SCORING,
    T_SVC_AGES,
    T_SVC_BASE,
    T_SVC_ECONOMIC,
    T_SVC_KIND,
    T_SVC_MAX,
    T_SVC_MOD_INCOME,
    T_SVC_MOD_URBAN,
    T_SVC_MONTHS,
    T_SVC_RETRY_THR,
    T_SVC_THR,
    T_SVC_TOTAL,
)

# context array (int64) passed per day
C_T, C_E, C_YEAR, C_MONTH, C_YEAR_START, C_MONTH_START, C_EMIT, C_NCIT, C_NSUB, C_FIRST = range(10)
C_CLO, C_CHI, C_BLO = 10, 11, 12  # the shard: citizens [lo, hi), businesses from index C_BLO
C_BUSY = 13  # 1 on days when every subject takes the full step (calendar turns, new epochs)
N_CTX = 14
#: A public word with any of these bits (lists, a forced grade) needs the full step every day.
QUIET_MASK = 255 | (31 << 24)
# day keys (uint64) passed per day
K_ACTS, K_SVC, K_MISC = range(3)
N_KEYS = 3

# draw names within a subject's day (named by meaning; see rng.sub_hash)
DRAW_CHANNEL = 1 << 20  # + act * 32 + channel
DRAW_RECORD = 2 << 20  # + act * 64 + channel * 2 + true
DRAW_REPAY = 3 << 20
DRAW_REPAIR = 4 << 20  # + list
DRAW_APPEAL = 5 << 20
DRAW_RETRY = 6 << 20  # + attempt
DRAW_ECON = 7 << 20
DRAW_AWARE = 8 << 20

SHIFT8 = np.int64(8)

# state arrays travel together as a tuple so every driver passes them the same way:
# (region, bands, score, pts, fpts, ovr, caps, offences, oblig, strikes, strike_wk,
#  pub, slot_list, slot_day, delayed, appeal)
S_REGION, S_BANDS, S_SCORE, S_PTS, S_FPTS, S_OVR, S_CAPS, S_OFFENCES, S_OBLIG = range(9)
S_STRIKES, S_STRIKE_WK, S_PUB, S_SLOT_LIST, S_SLOT_DAY, S_DELAYED, S_APPEAL = range(9, 16)


@register_jitable(inline="always")
def loc(g, ctx):  # type: ignore[no-untyped-def]
    """Shard-local index of global subject id g (citizens of the shard, then its businesses)."""
    if g < ctx[C_NCIT]:
        return g - ctx[C_CLO]
    return ctx[C_CHI] - ctx[C_CLO] + g - ctx[C_NCIT] - ctx[C_BLO]


@register_jitable(inline="always")
def u32(h):  # type: ignore[no-untyped-def]
    return np.int64(rng.hi32(h))


@register_jitable(inline="always")
def u32lo(h):  # type: ignore[no-untyped-def]
    return np.int64(rng.lo32(h))


@register_jitable
def count(cnt, MO, cell, metric, col, v):  # type: ignore[no-untyped-def]
    """Add v to one counter of the day."""
    nm = MO[MO.shape[0] - 1]
    atomic_add(cnt, cell * nm + MO[metric] + col, np.int64(v))


@register_jitable
def emit(ctx, ev, evpos, typ, subject, a, b, c, d):  # type: ignore[no-untyped-def]
    """Append one event row when events are being recorded."""
    if ctx[C_EMIT] == 0:
        return
    if typ != EV_LEDGER and typ != EV_RECORD and typ != EV_LIST and typ != EV_DECISION:
        if ctx[C_EMIT] < EMIT_ALL:
            return
    k = atomic_add(evpos, 0, np.int64(1))
    if k >= ev.shape[0]:
        atomic_add(evpos, 1, np.int64(1))  # overflow: the driver sizes buffers so this is rare
        return
    ev[k, 0] = typ
    ev[k, 1] = subject
    ev[k, 2] = a
    ev[k, 3] = b
    ev[k, 4] = c
    ev[k, 5] = d


@register_jitable
def grade_of(P, O, D, erk, score):  # type: ignore[no-untyped-def]
    """Grade index of a score (0 best); NO_GRADE where the kind has no grades."""
    ng = P[O[T_N_GRADES] + erk]
    if ng == 0:
        return NO_GRADE
    base = O[T_GRADE_FLOOR] + erk * D[D_G]
    for g in range(ng):
        if score >= P[base + g]:
            return g
    return ng - 1


@register_jitable
def pub_grade(p):  # type: ignore[no-untyped-def]
    return (p >> 16) & 15


@register_jitable
def pub_honest(p):  # type: ignore[no-untyped-def]
    return (p >> 20) & 15


@register_jitable(inline="always")
def mod(v, m):  # type: ignore[no-untyped-def]
    """Apply a Q8 fixed-point modifier (256 = 1.0)."""
    return (v * m) >> SHIFT8


@register_jitable
def list_enter(i, li, L, false_caused, reason, t, er, mem, P, O, D, S, cnt, MO, cell, ctx, ev, evpos):  # type: ignore[no-untyped-def]
    """Put subject i on list L; returns the new membership word (bits 0-15 of pub)."""
    slot_list = S[S_SLOT_LIST]
    slot_day = S[S_SLOT_DAY]
    term = P[O[T_LIST_TERM] + er * D[D_L] + L]
    for s in range(3):
        if slot_list[li, s] == 0:
            slot_list[li, s] = np.uint8((L + 1) | (128 if false_caused else 0))
            slot_day[li, s] = np.uint16(t + term if term > 0 else t)
            mem |= 1 << L
            if false_caused:
                mem |= 1 << (8 + L)
                count(cnt, MO, cell, M_LISTED_FALSE, L, 1)
            count(cnt, MO, cell, M_LIST_ENTER, L, 1)
            count(cnt, MO, cell, M_LISTED, L, 1)
            emit(ctx, ev, evpos, EV_LIST, i, L, LIST_ENTER, reason, 1 if false_caused else 0)
            return mem
    count(cnt, MO, cell, M_LIST_OVERFLOW, 0, 1)
    return mem


@register_jitable
def list_exit(i, li, s, reason, reason_col, mem, S, cnt, MO, cell, ctx, ev, evpos):  # type: ignore[no-untyped-def]
    """Take subject i off the list in its slot s; returns the new membership word."""
    slot_list = S[S_SLOT_LIST]
    v = np.int64(slot_list[li, s])
    L = (v & 127) - 1
    false_caused = (v >> 7) & 1
    slot_list[li, s] = np.uint8(0)
    S[S_SLOT_DAY][li, s] = np.uint16(0)
    mem &= ~((1 << L) | (1 << (8 + L)))
    count(cnt, MO, cell, M_LIST_EXIT, L, 1)
    count(cnt, MO, cell, M_EXIT_REASON, reason_col, 1)
    count(cnt, MO, cell, M_LISTED, L, -1)
    if false_caused:
        count(cnt, MO, cell, M_LISTED_FALSE, L, -1)
    if reason == EXIT_REPAIR:
        count(cnt, MO, cell, M_REPAIRS, 0, 1)
    emit(ctx, ev, evpos, EV_LIST, i, L, LIST_EXIT, reason, false_caused)
    return mem


@register_jitable
def find_slot(slot_list, li, L):  # type: ignore[no-untyped-def]
    for s in range(3):
        if (np.int64(slot_list[li, s]) & 127) == L + 1:
            return s
    return -1


@register_jitable
def apply_points(i, li, p, rule, is_false, validity, year, erk, P, O, S, cnt, MO, cell, ctx, ev, evpos):  # type: ignore[no-untyped-def]
    """Add p points (clamped to floor and ceiling) and log them; returns the applied amount."""
    score = S[S_SCORE]
    old = np.int64(score[li])
    lo = P[O[T_SCORE_FLOOR] + erk]
    hi = P[O[T_SCORE_CEILING] + erk]
    new = old + p
    if new < lo:
        new = lo
    if new > hi:
        new = hi
    applied = new - old
    score[li] = np.int16(new)
    if validity > 0 or is_false:
        # points that expire sit in the bucket of the year they expire in; false points are
        # tracked the same way (permanent false points count as false for two years)
        v = validity if validity > 0 else 2
        k = (year + v - 1) & 1
        if validity > 0:
            S[S_PTS][li, k] = np.int16(np.int64(S[S_PTS][li, k]) + applied)
        if is_false:
            S[S_FPTS][li, k] = np.int16(np.int64(S[S_FPTS][li, k]) + applied)
    if applied > 0:
        count(cnt, MO, cell, M_POINTS_UP, 0, applied)
    elif applied < 0:
        count(cnt, MO, cell, M_POINTS_DOWN, 0, -applied)
    count(cnt, MO, cell, M_SCORE_SUM, 0, applied)
    emit(ctx, ev, evpos, EV_LEDGER, i, rule, applied, new, 1 if is_false else 0)
    return applied


@register_jitable
def process_record(i, li, a, ch, is_true, delayed, h, kind, scored, age, edu, inc, mem, P, O, D, S, ctx, cnt, MO, cell, ev, evpos):  # type: ignore[no-untyped-def]
    """A record reaches the system: points, forced grade, list entries and a chance of objection.

    Returns the new membership word."""
    t = ctx[C_T]
    e = ctx[C_E]
    R = D[D_R]
    A = D[D_A]
    L = D[D_L]
    r = np.int64(S[S_REGION][li])
    er = e * R + r
    erk = er * 2 + kind
    is_false = 1 - is_true
    if is_true:
        count(cnt, MO, cell, M_RECORDS_TRUE, ch, 1)
    else:
        count(cnt, MO, cell, M_RECORDS_FALSE, ch, 1)
    emit(ctx, ev, evpos, EV_RECORD, i, a, ch, is_true, delayed)
    hr = rng.sub_hash(h, np.uint64(DRAW_RECORD + a * 64 + ch * 2 + is_true))
    # points
    if scored:
        p = P[O[T_ACT_POINTS] + er * A + a]
        if p != 0:
            if p < 0:
                off = np.int64(S[S_OFFENCES][li])
                p = p * (100 + P[O[T_ACT_ESCALATION_PCT] + er * A + a] * off) // 100
                if off < 255:
                    S[S_OFFENCES][li] = np.uint8(off + 1)
                cat = P[O[T_ACT_CATEGORY] + a]
                for k in range(2):
                    if P[O[T_CAP_CATEGORY] + er * 2 + k] == cat:
                        used = np.int64(S[S_CAPS][li, k])
                        room = P[O[T_CAP_POINTS] + er * 2 + k] - used
                        if room < 0:
                            room = 0
                        if -p > room:
                            p = -room
                        nu = used - p
                        S[S_CAPS][li, k] = np.uint8(nu if nu < 255 else 255)
            if p != 0:
                apply_points(i, li, p, P[O[T_ACT_RULE] + er * A + a], is_false,
                             P[O[T_ACT_VALIDITY] + er * A + a], ctx[C_YEAR], erk, P, O, S,
                             cnt, MO, cell, ctx, ev, evpos)
        og = P[O[T_OVERRIDE_GRADE] + er * A + a]
        if og >= 0:
            until = t + P[O[T_OVERRIDE_DAYS] + er * A + a]
            S[S_OVR][li] = np.uint16(until if until < 65535 else 65535)
            pub = S[S_PUB]
            # remember the forced grade in tomorrow's public word (bits 24-28)
            par = t & 1
            cur = np.int64(pub[1 - par, li])
            cur = (cur & ~(31 << 24)) | ((og + 1) << 24) | (is_false << 28)
            pub[1 - par, li] = np.uint32(cur)
            count(cnt, MO, cell, M_OVERRIDES, 0, 1)
            emit(ctx, ev, evpos, EV_OVERRIDE, i, a, og, P[O[T_OVERRIDE_RULE] + er * A + a], until)
    # lists entered by records of this act
    slot_list = S[S_SLOT_LIST]
    struck = False
    entered = 0
    for lst in range(L):
        if P[O[T_LIST_ACTIVE] + er * L + lst] == 0:
            continue
        if P[O[T_LIST_ACTS] + (er * L + lst) * A + a] == 0:
            continue
        if P[O[T_LIST_SUBJECT_KIND] + lst] != kind:
            continue
        k = P[O[T_LIST_K] + er * L + lst]
        if k > 1:
            if not struck:
                # one shared strike counter per subject (a stated approximation), in weeks
                struck = True
                week = (t // 7) & 255
                strikes = np.int64(S[S_STRIKES][li])
                wk0 = np.int64(S[S_STRIKE_WK][li])
                window = P[O[T_LIST_WINDOW] + er * L + lst]
                if strikes == 0 or ((week - wk0) & 255) * 7 > window:
                    strikes = 1
                    S[S_STRIKE_WK][li] = np.uint8(week)
                elif strikes < 255:
                    strikes += 1
                S[S_STRIKES][li] = np.uint8(strikes)
            if np.int64(S[S_STRIKES][li]) < k:
                continue
        rule = P[O[T_LIST_ENTRY_RULE] + er * L + lst]
        s = find_slot(slot_list, li, lst)
        if s >= 0:
            ext = P[O[T_LIST_EXTEND] + er * L + lst]
            if ext > 0 and P[O[T_LIST_TERM] + er * L + lst] > 0:
                nd = np.int64(S[S_SLOT_DAY][li, s]) + ext
                S[S_SLOT_DAY][li, s] = np.uint16(nd if nd < 65535 else 65535)
                count(cnt, MO, cell, M_LIST_EXTEND, lst, 1)
                emit(ctx, ev, evpos, EV_LIST, i, lst, LIST_EXTEND, rule, is_false)
        else:
            before = mem
            mem = list_enter(i, li, lst, is_false, rule, t, er, mem, P, O, D, S, cnt, MO, cell,
                             ctx, ev, evpos)
            if mem != before:
                entered |= 1 << lst
    # objection: the subject may object within the window; the appeal is decided later
    if P[O[T_OBJECTION_WINDOW] + er] > 0:
        thr = mod(mod(P[O[T_OBJ_THR]], P[O[T_OBJ_MOD_EDU] + edu]), P[O[T_OBJ_MOD_INCOME] + inc])
        if kind == 1:
            thr = P[O[T_OBJ_THR]]
        if u32(hr) < thr:
            if S[S_APPEAL][li] == 0:
                due = (t + P[O[T_APPEAL_DELAY] + er]) & 1023
                word = (a + 1) | (is_false << 7) | (ch << 8) | (due << 13) | ((entered & 255) << 23)
                S[S_APPEAL][li] = np.uint32(word)
                count(cnt, MO, cell, M_OBJECTIONS, 0, 1)
                emit(ctx, ev, evpos, EV_OBJECTION, i, a, ch, is_true, 0)
            else:
                count(cnt, MO, cell, M_OBJECTION_OVERFLOW, 0, 1)
                emit(ctx, ev, evpos, EV_OBJECTION, i, a, ch, is_true, 1)
    return mem


@register_jitable
def deliver(i, li, a, ch, is_true, h, kind, scored, age, edu, inc, mem, P, O, D, S, ctx, cnt, MO, cell, ev, evpos):  # type: ignore[no-untyped-def]
    """A channel makes a record: now, or after the channel's delay (one waiting slot)."""
    delay = P[O[T_CHAN_DELAY] + ch]
    if delay > 0:
        if S[S_DELAYED][li] == 0:
            due = (ctx[C_T] + delay) & 1023
            S[S_DELAYED][li] = np.uint32((a + 1) | ((1 - is_true) << 7) | (ch << 8) | (due << 13))
            return mem
        # the waiting slot is taken: this record is processed on arrival (stated overflow rule)
        count(cnt, MO, cell, M_DELAY_OVERFLOW, 0, 1)
    return process_record(i, li, a, ch, is_true, 0, h, kind, scored, age, edu, inc, mem, P, O, D,
                          S, ctx, cnt, MO, cell, ev, evpos)


@register_jitable
def trigger_holds(m, er, M, mem, grade, P, O):  # type: ignore[no-untyped-def]
    """Does measure m's trigger hold for a public word? Returns 0 no, 1 yes, 2 yes but only
    because of false records."""
    lists = P[O[T_MEASURE_LISTS] + er * M + m]
    hit = mem & lists & 255
    glo = P[O[T_MEASURE_GRADE_LO] + er * M + m]
    held = 0
    honest = 0
    if hit != 0:
        held = 1
        if (hit & ~(mem >> 8)) != 0:
            honest = 1
    if glo >= 0:
        ghi = P[O[T_MEASURE_GRADE_HI] + er * M + m]
        g = (grade >> 0) & 15
        if g != NO_GRADE and glo <= g <= ghi:
            held = 1
            hg = (grade >> 4) & 15
            if hg != NO_GRADE and glo <= hg <= ghi:
                honest = 1
    if held == 0:
        return 0
    return 1 if honest else 2


@register_jitable
def pub_grades(p):  # type: ignore[no-untyped-def]
    """Grade (low nibble) and honest grade (high nibble) packed from a public word."""
    return ((p >> 16) & 15) | (((p >> 20) & 15) << 4)


@register_jitable
def decide(i, li, s, kind, age, mem, grades, er, P, O, D, S, ctx, rep, popt):  # type: ignore[no-untyped-def]
    """Decide one service request. Returns outcome * 2**20 + (measure + 1) * 2 + wrongful.

    Members of the group are looked up only when a measure reaches through them."""
    M = D[D_M]
    pub = S[S_PUB]
    par = ctx[C_T] & 1
    bands = S[S_BANDS]
    best_deny = -1
    deny_wrong = 1
    best_fast = -1
    for m in range(M):
        if P[O[T_MEASURE_SERVICE] + m] != s or P[O[T_MEASURE_ACTIVE] + er * M + m] == 0:
            continue
        reach = P[O[T_MEASURE_REACH] + er * M + m]
        res = 0
        if reach & 1:
            res = trigger_holds(m, er, M, mem, grades, P, O)
        if res != 1 and (reach & 2) and kind == 0 and age == 0:
            # a child: the measure reads the household's adults as of the start of the day
            hh_lo, hh_hi = household_range(i, popt)
            for j in range(hh_lo, hh_hi):
                lj = loc(j, ctx)
                if j == i or ((np.int64(bands[lj]) >> 4) & 3) == 0:
                    continue
                pj = np.int64(pub[par, lj])
                rj = trigger_holds(m, er, M, pj & 65535, pub_grades(pj), P, O)
                if rj == 1 or (rj == 2 and res == 0):
                    res = rj
        if res != 1 and (reach & 4) and kind == 0:
            # the legal representative of a business that triggers it
            b_lo, b_hi = represented_range(i, rep)
            for b in range(b_lo, b_hi):
                pb = np.int64(pub[par, ctx[C_CHI] - ctx[C_CLO] + b])
                rb = trigger_holds(m, er, M, pb & 65535, pub_grades(pb), P, O)
                if rb == 1 or (rb == 2 and res == 0):
                    res = rb
        if res != 1 and (reach & 8) and kind == 1:
            pr = np.int64(pub[par, loc(np.int64(rep[li - (ctx[C_CHI] - ctx[C_CLO])]), ctx)])
            rr = trigger_holds(m, er, M, pr & 65535, pub_grades(pr), P, O)
            if rr == 1 or (rr == 2 and res == 0):
                res = rr
        if res == 0:
            continue
        if P[O[T_MEASURE_EFFECT] + m] == 0:
            if best_deny < 0 or (deny_wrong == 1 and res == 1):
                best_deny = m
                deny_wrong = 1 if res == 2 else 0
            elif res == 1:
                deny_wrong = 0
        elif best_fast < 0:
            best_fast = m
    if best_deny >= 0:
        return OUT_DENIED * 1048576 + (best_deny + 1) * 2 + deny_wrong
    if best_fast >= 0:
        return OUT_FAST * 1048576 + (best_fast + 1) * 2
    return OUT_GRANTED * 1048576


@register_jitable(inline="always")
def step_subject(i, li, P, O, D, MO, ctx, keys, S, rep, popt, cnt, ev, evpos):  # type: ignore[no-untyped-def]
    """One subject, one day: DESIGN 3's phases 1-9 for subject i.

    Most subject-days nothing happens: no act, no record, no request, nothing pending, no
    list to serve, no calendar turn. Those take the quiet path, which draws the same numbers
    the full step would and carries the public word over unchanged, exactly as the full
    step would have; everything else takes :func:`step_full`."""
    if ctx[C_BUSY] == 0:
        pub = S[S_PUB]
        par = ctx[C_T] & 1
        p_in = np.int64(pub[par, li])
        if (p_in & QUIET_MASK) == 0 and S[S_DELAYED][li] == 0 and S[S_APPEAL][li] == 0 \
                and S[S_OBLIG][li] == 0:
            rk = np.int64(S[S_REGION][li]) * 2 + (1 if i >= ctx[C_NCIT] else 0)
            h = rng.subject_hash(keys[K_ACTS], np.uint64(i))
            if u32(h) >= P[O[T_ACT_TOTAL] + rk] and u32lo(h) >= P[O[T_PAIR_TOTAL] + rk]:
                h2 = rng.subject_hash(keys[K_SVC], np.uint64(i))
                if u32(h2) >= P[O[T_SVC_TOTAL] + rk]:
                    pub[1 - par, li] = np.uint32(p_in)
                    return
    step_full(i, li, P, O, D, MO, ctx, keys, S, rep, popt, cnt, ev, evpos)


@register_jitable
def step_full(i, li, P, O, D, MO, ctx, keys, S, rep, popt, cnt, ev, evpos):  # type: ignore[no-untyped-def]
    """The full day step of DESIGN 3 for subject i.

    ``rep`` holds each business's legal representative and ``popt`` the population tables
    that locate a citizen's household (see ``socialcredit.kernel.group``)."""
    t = ctx[C_T]
    e = ctx[C_E]
    year = ctx[C_YEAR]
    month = ctx[C_MONTH]
    par = t & 1
    R = D[D_R]
    A = D[D_A]
    L = D[D_L]
    Sv = D[D_S]
    NP = D[D_P]
    C = ctx[C_NCIT]
    kind = 1 if i >= C else 0
    r = np.int64(S[S_REGION][li])
    bnd = np.int64(S[S_BANDS][li])
    inc = bnd & 3
    edu = (bnd >> 2) & 3
    age = (bnd >> 4) & 3
    urb = (bnd >> 6) & 1
    consent = (bnd >> 7) & 1
    if kind == 1:
        edu = 0
        age = 1
        urb = 0
    er = e * R + r
    erk = er * 2 + kind
    cell = (r * 2 + kind) * (CELLS_PER_REGION // 2) + (inc * 2 + urb if kind == 0 else inc)
    pub = S[S_PUB]
    p_in = np.int64(pub[par, li])
    # tomorrow's word is scratch space today: a record that forces a grade writes it there
    pub[1 - par, li] = np.uint32(0)
    if ctx[C_FIRST]:
        count(cnt, MO, cell, M_SUBJECTS, 0, 1)
        count(cnt, MO, cell, M_GRADE_COUNT, NO_GRADE, 1)
        p_in = (NO_GRADE << 16) | (NO_GRADE << 20)
    mem = p_in & 65535
    was_scored = (p_in >> 29) & 1
    old_grade = (p_in >> 16) & 15
    forced = (p_in >> 24) & 31
    scored = P[O[T_SCORING] + erk] != 0
    if scored and kind == 0:
        if age < P[O[T_MIN_AGE_BAND] + er]:
            scored = False
        elif consent == 0 and P[O[T_CONSENT_REQUIRED] + er] != 0:
            scored = False
    score = S[S_SCORE]
    recalc = False
    # phase 3 (calendar part): points expire at the turn of the year; yearly counters reset
    if ctx[C_YEAR_START]:
        k = (year - 1) & 1
        expired = np.int64(S[S_PTS][li, k])
        if expired != 0 and was_scored:
            old = np.int64(score[li])
            new = old - expired
            lo = P[O[T_SCORE_FLOOR] + erk]
            hi = P[O[T_SCORE_CEILING] + erk]
            new = lo if new < lo else (hi if new > hi else new)
            score[li] = np.int16(new)
            count(cnt, MO, cell, M_EXPIRED_POINTS, 0, 1)
            count(cnt, MO, cell, M_SCORE_SUM, 0, new - old)
            emit(ctx, ev, evpos, EV_LEDGER, i, RULE_EXPIRY, new - old, new, 0)
            recalc = True
        S[S_PTS][li, k] = np.int16(0)
        S[S_FPTS][li, k] = np.int16(0)
        S[S_CAPS][li, 0] = np.uint8(0)
        S[S_CAPS][li, 1] = np.uint8(0)
        S[S_OFFENCES][li] = np.uint8(0)
    # scoring starts or stops (consent rules can change mid-run)
    if scored and not was_scored:
        start = P[O[T_SCORE_START] + erk]
        score[li] = np.int16(start)
        S[S_PTS][li, 0] = np.int16(0)
        S[S_PTS][li, 1] = np.int16(0)
        S[S_FPTS][li, 0] = np.int16(0)
        S[S_FPTS][li, 1] = np.int16(0)
        count(cnt, MO, cell, M_SCORED, 0, 1)
        count(cnt, MO, cell, M_SCORE_SUM, 0, start)
        emit(ctx, ev, evpos, EV_LEDGER, i, RULE_START, 0, start, 0)
        recalc = True
    elif was_scored and not scored:
        count(cnt, MO, cell, M_SCORED, 0, -1)
        count(cnt, MO, cell, M_SCORE_SUM, 0, -np.int64(score[li]))
        score[li] = np.int16(0)
    h = rng.subject_hash(keys[K_ACTS], np.uint64(i))
    # phase 1: acts (the truth). One draw places the subject in at most one act's interval;
    # each act's interval has a fixed place, so one act's rate never moves another's draws.
    u = u32(h)
    if u < P[O[T_ACT_TOTAL] + r * 2 + kind]:
        for a in range(A):
            if P[O[T_ACT_KIND] + a] != kind:
                continue
            base = P[O[T_ACT_BASE] + r * A + a]
            if u < base or u >= base + P[O[T_ACT_MAX] + r * A + a]:
                continue
            m = 256
            if kind == 0:
                m = mod(m, P[O[T_ACT_MOD_INCOME] + a * 4 + inc])
                m = mod(m, P[O[T_ACT_MOD_EDU] + a * 4 + edu])
                m = mod(m, P[O[T_ACT_MOD_AGE] + a * 4 + age])
                m = mod(m, P[O[T_ACT_MOD_URBAN] + a * 2 + urb])
            else:
                m = mod(m, P[O[T_ACT_MOD_INCOME] + a * 4 + inc])
            m = mod(m, P[O[T_ACT_MOD_POLICY] + er * A + a])
            if (mem & 255) != 0:
                m = mod(m, P[O[T_ACT_MOD_LISTED] + a])
            cap = P[O[T_MOD_CAP]]
            if m > cap:
                m = cap
            if u - base < mod(P[O[T_ACT_THR] + r * A + a], m):
                ob = P[O[T_ACT_OBLIGATION] + a]
                if ob != 0:
                    o = np.int64(S[S_OBLIG][li])
                    if o < 255:
                        S[S_OBLIG][li] = np.uint8(o + 1)
                    count(cnt, MO, cell, M_OBLIGATIONS_CREATED, 0, 1)
                count(cnt, MO, cell, M_ACTS, a, 1)
                emit(ctx, ev, evpos, EV_ACT, i, a, ob, 0, 0)
                # phase 2: the first channel that sees it makes a record
                for k in range(MAX_ACT_CHANNELS):
                    ch = P[O[T_ACT_CHANNELS] + a * MAX_ACT_CHANNELS + k]
                    if ch < 0:
                        break
                    hc = rng.sub_hash(h, np.uint64(DRAW_CHANNEL + a * 32 + ch))
                    if u32(hc) < P[O[T_CHAN_COV] + ch * R + r]:
                        mem = deliver(i, li, a, ch, 1, h, kind, scored, age, edu, inc, mem, P, O, D,
                                      S, ctx, cnt, MO, cell, ev, evpos)
                        break
            break
    # phase 2: false records (acts that did not happen, misidentification)
    u = u32lo(h)
    if u < P[O[T_PAIR_TOTAL] + r * 2 + kind]:
        for p in range(NP):
            if P[O[T_PAIR_KIND] + p] != kind:
                continue
            base = P[O[T_PAIR_BASE] + r * NP + p]
            if u < base or u >= base + P[O[T_PAIR_MAX] + r * NP + p]:
                continue
            ch = P[O[T_PAIR_CHAN] + p]
            thr = P[O[T_PAIR_THR] + r * NP + p]
            mis = P[O[T_PAIR_MISID] + r * NP + p]
            if mis > 0 and kind == 0:
                mis = mod(mod(mis, P[O[T_CHAN_MISID_AGE] + ch * 4 + age]),
                          P[O[T_CHAN_MISID_INCOME] + ch * 4 + inc])
            if u - base < thr + mis:
                mem = deliver(i, li, P[O[T_PAIR_ACT] + p], ch, 0, h, kind, scored, age, edu, inc, mem,
                              P, O, D, S, ctx, cnt, MO, cell, ev, evpos)
            break
    # delayed records that are due today
    w = np.int64(S[S_DELAYED][li])
    if w != 0 and ((w >> 13) & 1023) == (t & 1023):
        S[S_DELAYED][li] = np.uint32(0)
        mem = process_record(i, li, (w & 127) - 1, (w >> 8) & 31, 1 - ((w >> 7) & 1), 1, h, kind,
                             scored, age, edu, inc, mem, P, O, D, S, ctx, cnt, MO, cell, ev, evpos)
    # phase 3: appeals decided today
    w = np.int64(S[S_APPEAL][li])
    if w != 0 and ((w >> 13) & 1023) == (t & 1023):
        S[S_APPEAL][li] = np.uint32(0)
        a = (w & 127) - 1
        is_false = (w >> 7) & 1
        ch = (w >> 8) & 31
        ha = rng.sub_hash(h, np.uint64(DRAW_APPEAL))
        thr = P[O[T_APPEAL_WIN_FALSE_THR] + er] if is_false else P[O[T_APPEAL_WIN_TRUE_THR] + er]
        won = u32(ha) < thr
        if won:
            if is_false:
                count(cnt, MO, cell, M_APPEALS_WON_FALSE, 0, 1)
            else:
                count(cnt, MO, cell, M_APPEALS_WON_TRUE, 0, 1)
            if scored:
                p = P[O[T_ACT_POINTS] + er * A + a]
                if p != 0:
                    apply_points(i, li, -p, RULE_APPEAL, is_false, P[O[T_ACT_VALIDITY] + er * A + a],
                                 year, erk, P, O, S, cnt, MO, cell, ctx, ev, evpos)
                    recalc = True
            entered = (w >> 23) & 255
            for lst in range(L):
                if (entered >> lst) & 1:
                    s = find_slot(S[S_SLOT_LIST], li, lst)
                    if s >= 0:
                        mem = list_exit(i, li, s, EXIT_APPEAL, 3, mem, S, cnt, MO, cell, ctx, ev, evpos)
            if forced != 0 and P[O[T_OVERRIDE_GRADE] + er * A + a] >= 0:
                forced = 0
                S[S_OVR][li] = np.uint16(0)
                recalc = True
        else:
            if is_false:
                count(cnt, MO, cell, M_APPEALS_LOST_FALSE, 0, 1)
            else:
                count(cnt, MO, cell, M_APPEALS_LOST_TRUE, 0, 1)
        emit(ctx, ev, evpos, EV_APPEAL, i, a, ch, 1 - is_false, 1 if won else 0)
    # obligations met at a repayment hazard; listing raises it (compliance under pressure)
    ob = np.int64(S[S_OBLIG][li])
    if ob > 0:
        thr = P[O[T_REPAY_THR]]
        if (mem & 255) != 0:
            thr = mod(thr, P[O[T_REPAY_LISTED_MOD]])
        if u32(rng.sub_hash(h, np.uint64(DRAW_REPAY))) < thr:
            ob -= 1
            S[S_OBLIG][li] = np.uint8(ob)
            count(cnt, MO, cell, M_OBLIGATIONS_MET, 0, 1)
            emit(ctx, ev, evpos, EV_REPAY, i, ob, 0, 0, 0)
    # phase 6 (exits): terms served, obligations met, repair, lists abolished, moves
    if (mem & 255) != 0:
        slot_list = S[S_SLOT_LIST]
        slot_day = S[S_SLOT_DAY]
        for s in range(3):
            v = np.int64(slot_list[li, s])
            if v == 0:
                continue
            lst = (v & 127) - 1
            ll = er * L + lst
            term = P[O[T_LIST_TERM] + ll]
            sd = np.int64(slot_day[li, s])
            since = sd - term if term > 0 else sd
            if P[O[T_LIST_ACTIVE] + ll] == 0:
                mem = list_exit(i, li, s, EXIT_POLICY, 6, mem, S, cnt, MO, cell, ctx, ev, evpos)
                continue
            if term > 0 and t >= sd:
                mem = list_exit(i, li, s, EXIT_TERM, 0, mem, S, cnt, MO, cell, ctx, ev, evpos)
                continue
            if P[O[T_LIST_EXIT_OBLIGATION] + ll] != 0 and ob == 0 and t > since:
                mem = list_exit(i, li, s, EXIT_OBLIGATION, 1, mem, S, cnt, MO, cell, ctx, ev, evpos)
                continue
            rmin = P[O[T_LIST_REPAIR_MIN] + ll]
            if rmin > 0 and ob == 0 and t - since >= rmin:
                hr = rng.sub_hash(h, np.uint64(DRAW_REPAIR + lst))
                if u32(hr) < P[O[T_LIST_REPAIR_THR] + ll]:
                    mem = list_exit(i, li, s, EXIT_REPAIR, 2, mem, S, cnt, MO, cell, ctx, ev, evpos)
                    continue
            # time on this list leads to another (e.g. abnormal operations -> serious list)
            for l2 in range(L):
                if P[O[T_LIST_FROM] + er * L + l2] != lst or ((mem >> l2) & 1) != 0:
                    continue
                if P[O[T_LIST_ACTIVE] + er * L + l2] == 0:
                    continue
                if t - since >= P[O[T_LIST_FROM_DAYS] + er * L + l2]:
                    fc = (v >> 7) & 1
                    mem = list_enter(i, li, l2, fc, P[O[T_LIST_FROM_RULE] + er * L + l2], t, er, mem,
                                     P, O, D, S, cnt, MO, cell, ctx, ev, evpos)
                    if P[O[T_LIST_FROM_MOVES] + er * L + l2] != 0 and slot_list[li, s] != 0:
                        mem = list_exit(i, li, s, EXIT_MOVED, 5, mem, S, cnt, MO, cell, ctx, ev,
                                        evpos)
                        break
    # phase 5: grades at the policy's cadence, forced grades
    nf = (np.int64(pub[1 - par, li]) >> 24) & 31
    if nf != 0:
        forced = nf
        recalc = True
    ovr_until = np.int64(S[S_OVR][li])
    if forced != 0 and t >= ovr_until:
        forced = 0
        recalc = True
    cad = P[O[T_CADENCE] + erk]
    if cad == 0 or (cad == 1 and ctx[C_MONTH_START]) or (cad == 2 and ctx[C_YEAR_START]):
        recalc = True
    grade = old_grade
    honest = (p_in >> 20) & 15
    if not scored:
        grade = NO_GRADE
        honest = NO_GRADE
    elif recalc or old_grade == NO_GRADE:
        sc = np.int64(score[li])
        grade = grade_of(P, O, D, erk, sc)
        fp = np.int64(S[S_FPTS][li, 0]) + np.int64(S[S_FPTS][li, 1])
        honest = grade_of(P, O, D, erk, sc - fp)
        if forced != 0:
            fg = forced & 15
            if fg > 0 and fg - 1 > grade:
                grade = fg - 1
            if ((forced >> 4) & 1) == 0 and fg > 0 and fg - 1 > honest:
                honest = fg - 1
    if grade != old_grade:
        count(cnt, MO, cell, M_GRADE_COUNT, old_grade, -1)
        count(cnt, MO, cell, M_GRADE_COUNT, grade, 1)
        emit(ctx, ev, evpos, EV_GRADE, i, old_grade, grade, -1, honest)
    # lists entered and left by grade (only when grades are recalculated)
    if recalc or grade != old_grade:
        for lst in range(L):
            ll = er * L + lst
            glo = P[O[T_LIST_GRADE_LO] + ll]
            if glo < 0 or P[O[T_LIST_ACTIVE] + ll] == 0:
                continue
            if P[O[T_LIST_SUBJECT_KIND] + lst] != kind:
                continue
            ghi = P[O[T_LIST_GRADE_HI] + ll]
            inside = grade != NO_GRADE and glo <= grade <= ghi
            on = (mem >> lst) & 1
            if inside and on == 0:
                fc = 0 if (honest != NO_GRADE and glo <= honest <= ghi) else 1
                mem = list_enter(i, li, lst, fc, P[O[T_LIST_GRADE_RULE] + ll], t, er, mem, P, O, D,
                                 S, cnt, MO, cell, ctx, ev, evpos)
            elif not inside and on != 0:
                s = find_slot(S[S_SLOT_LIST], li, lst)
                if s >= 0 and P[O[T_LIST_TERM] + ll] == 0:
                    mem = list_exit(i, li, s, EXIT_GRADE, 4, mem, S, cnt, MO, cell, ctx, ev, evpos)
    grades = (grade & 15) | ((honest & 15) << 4)
    # phase 7-8: service requests and decisions (others are read as of the start of the day)
    h2 = rng.subject_hash(keys[K_SVC], np.uint64(i))
    u = u32(h2)
    if u < P[O[T_SVC_TOTAL] + r * 2 + kind]:
        for s in range(Sv):
            if P[O[T_SVC_KIND] + s] != kind:
                continue
            base = P[O[T_SVC_BASE] + r * Sv + s]
            if u < base or u >= base + P[O[T_SVC_MAX] + r * Sv + s]:
                continue
            if ((P[O[T_SVC_MONTHS] + s] >> (month - 1)) & 1) == 0:
                break
            if kind == 0 and ((P[O[T_SVC_AGES] + s] >> age) & 1) == 0:
                break
            thr = P[O[T_SVC_THR] + r * Sv + s]
            if kind == 0:
                thr = mod(mod(thr, P[O[T_SVC_MOD_INCOME] + s * 4 + inc]),
                          P[O[T_SVC_MOD_URBAN] + s * 2 + urb])
            else:
                thr = mod(thr, P[O[T_SVC_MOD_INCOME] + s * 4 + inc])
            if (mem & 255) != 0:
                # a subject who knows it is listed asks less
                if u32lo(rng.sub_hash(h2, np.uint64(DRAW_AWARE))) < P[O[T_AWARE_THR]]:
                    thr = mod(thr, P[O[T_LISTED_REQUEST_FACTOR]])
            if u - base >= thr:
                break
            res = decide(i, li, s, kind, age, mem, grades, er, P, O, D, S, ctx, rep, popt)
            outcome = res // 1048576
            meas = ((res % 1048576) // 2) - 1
            wrong = res & 1
            attempts = 1
            if outcome == OUT_DENIED:
                for k in range(RETRY_MAX):
                    hk = rng.sub_hash(h2, np.uint64(DRAW_RETRY + k))
                    if u32(hk) >= P[O[T_SVC_RETRY_THR] + s]:
                        break
                    attempts += 1
                count(cnt, MO, cell, M_RETRIES, 0, attempts - 1)
            count(cnt, MO, cell, M_REQUESTS, 0, attempts)
            count(cnt, MO, cell, M_DECISIONS, s * 3 + outcome, attempts)
            if meas >= 0:
                count(cnt, MO, cell, M_MEASURE_FIRED, meas, attempts)
            if wrong:
                count(cnt, MO, cell, M_WRONGFUL, s, attempts)
            for k in range(attempts):
                emit(ctx, ev, evpos, EV_DECISION, i, s, outcome, meas, wrong)
            # economic consequences: a denied job or loan can lower the income band
            if outcome == OUT_DENIED and kind == 0 and P[O[T_SVC_ECONOMIC] + s] != 0 and inc > 0:
                if u32(rng.sub_hash(h2, np.uint64(DRAW_ECON))) < P[O[T_ECON_DROP_THR]]:
                    S[S_BANDS][li] = np.uint8((bnd & ~3) | (inc - 1))
                    count(cnt, MO, cell, M_INCOME_DROPS, 0, 1)
                    emit(ctx, ev, evpos, EV_INCOME, i, inc, inc - 1, 0, 0)
            break
    # phase 9: tomorrow's public word
    out = (mem & 65535) | ((grade & 15) << 16) | ((honest & 15) << 20) | (forced << 24)
    if scored:
        out |= 1 << 29
    pub[1 - par, li] = np.uint32(out)
