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
bits 0-7 lists it is on; 8-15 those of its lists whose entry was caused by a false record
(:func:`false_entries`), or, for a subject on no list, the day (mod 256) on which the first of
its waiting record and appeal falls due if one waits (bit 31), else its bands byte's low seven
bits (all that request rates depend on);
16-19 grade (15 = none); 20-23 the grade it would have without points from false records;
24-27 forced grade + 1 (0 = none); 28 the forced grade came from a false record;
29 it carries points; 30 its score moved since its grade was last calculated; 31 a delayed
record or a pending appeal waits in its slots (so a day with nothing due can be recognised
from the public word alone, see ``kernel.cpu``).
"""

from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

from socialcredit import rng
from socialcredit.kernel.atomic import atomic_add
from socialcredit.kernel.group import household_range, represented_range
from socialcredit.kernel.layout import (
    ACT_LOW,
    ACT_PER,
    ACT_SHIFT,
    ACT_SLOTS,
    ACT_W,
    CELLS_PER_REGION,
    D_A,
    D_G,
    D_L,
    D_M,
    D_P,
    D_R,
    D_S,
    EFFECT_DENY,
    EFFECT_THROTTLE,
    EMIT_ALL,
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
    EV_RESTRICTION,
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
    M_RECORDS_CORROBORATING,
    M_RECORDS_FALSE,
    M_RECORDS_TRUE,
    M_REPAIRS,
    M_REQUESTS,
    M_RETRIES,
    M_SCORE_SUM,
    M_SCORED,
    M_SUBJECTS,
    M_THROTTLE_ENDS,
    M_THROTTLE_STARTS,
    M_THROTTLED,
    M_THROTTLED_GRANTS,
    M_WRONGFUL,
    MAX_ACT_CHANNELS,
    N_METRICS,
    NO_GRADE,
    OFF_MO,
    OFF_O,
    OUT_DENIED,
    OUT_FAST,
    OUT_GRANTED,
    RESTRICTION_END,
    RESTRICTION_START,
    RETRY_MAX,
    RULE_APPEAL,
    RULE_EXPIRY,
    RULE_START,
    SVC_COLS,
    SVC_PER,
    SVC_W,
    T_ACT_CATEGORY,
    T_ACT_CHANNELS,
    T_ACT_ESCALATION_PCT,
    T_ACT_MET_THR,
    T_ACT_MOD_AGE,
    T_ACT_MOD_EDU,
    T_ACT_MOD_INCOME,
    T_ACT_MOD_LISTED,
    T_ACT_MOD_POLICY,
    T_ACT_MOD_URBAN,
    T_ACT_OBLIGATION,
    T_ACT_OVER,
    T_ACT_OVER_N,
    T_ACT_OVER_Q,
    T_ACT_POINTS,
    T_ACT_RULE,
    T_ACT_SLOT,
    T_ACT_SLOT_MAX,
    T_ACT_THR,
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
    T_PAIR_CHAN,
    T_PAIR_MISID,
    T_PAIR_SLOT,
    T_PAIR_SLOT_MAX,
    T_PAIR_THR,
    T_REPAY_LISTED_MOD,
    T_REPAY_THR,
    T_SCORE_CEILING,
    T_SCORE_FLOOR,
    T_SCORE_START,
    T_SCORING,
    T_SVC_COL,
    T_SVC_ECONOMIC,
    T_SVC_MEASURES,
    T_SVC_NMEASURES,
    T_SVC_OVER,
    T_SVC_OVER_N,
    T_SVC_OVER_Q,
    T_SVC_PLAIN,
    T_SVC_RETRY_THR,
    T_SVC_SLOT,
    T_SVC_THR_B,
)

# context array (int64) passed per day
C_T, C_E, C_YEAR, C_MONTH, C_YEAR_START, C_MONTH_START, C_EMIT, C_NCIT, C_NSUB, C_FIRST = range(10)
C_KEY_ACTS, C_KEY_SVC = 14, 16  # day keys, two int64 halves each
C_CLO, C_CHI, C_BLO = 10, 11, 12  # the shard: citizens [lo, hi), businesses from index C_BLO
C_BUSY = 13  # 1 on days when every subject takes the full step (first day, new epochs)
C_E_PREV = 18  # the epoch of the day before
N_CTX = 19
#: A public word with any of these bits (lists, a forced grade) needs the full step every day.
QUIET_MASK = 255 | (31 << 24)
#: The public word's bit 30: the score moved since the grade was last calculated.
DIRTY_BIT = 1 << 30
#: The public word's bit 31: the subject's delayed-record or appeal slot is in use.
PENDING_BIT = 1 << 31
# the exit-reason counters are in the order of the reasons (see the full step's exits)
assert EXIT_POLICY == EXIT_TERM - 6

# draw names within a subject's day (named by meaning; see rng.sub_hash)
DRAW_CHANNEL = 1 << 20  # + act * 32 + channel
DRAW_RECORD = 2 << 20  # + act * 64 + channel * 2 + true
DRAW_REPAY = 3 << 20
DRAW_REPAIR = 4 << 20  # + list
DRAW_APPEAL = 5 << 20
DRAW_RETRY = 6 << 20  # + attempt
DRAW_ECON = 7 << 20
DRAW_AWARE = 8 << 20
DRAW_ACT_OVER = 9 << 20  # + act: an act's own draw beyond its slot
DRAW_SVC_OVER = 10 << 20  # + service: a service's own draw beyond its slot
DRAW_MET = 11 << 20  # + act: is the act's obligation met at once?
#: Probability 1 as a threshold.
ONE = np.int64(1 << 32)
#: ``delayed`` holds the waiting record in bits 0-22 and, in bits 23-31, what repeat
#: escalation needs (``escalate``): the act (+ 1) of the subject's last record of an
#: escalating rule this year (bits 23-29) and how many of its repeats counted in the low
#: nibble of ``counts`` were false records (bits 30-31, at most 3).
DELAYED_MASK = (1 << 23) - 1
ESC_SHIFT = 23
#: ``strikes`` counts qualifying records in its window in bits 0-6 (at most 127); bit 7 says
#: that the subject's connection is throttled (a measure with ``effect: throttle``).
STRIKES_MASK = 127
THROTTLED_BIT = 128
#: :func:`decide`'s result carries this bit when the grant is throttled.
THROTTLE_RES = 1 << 19

SHIFT8 = np.int64(8)
LIST_BLACK_KIND = 0  # policy.tables.LIST_BLACK

#: The state of one subject (DESIGN 5), fields ordered for natural alignment on a GPU.
#: ``counts`` holds penalised records this year (low nibble, for escalation) and open
#: obligations (high nibble); ``sl*`` are the three list slots (list + 1, bit 7: entered
#: because of a false record) and ``sd*`` the day each slot's term ends (or began, if the
#: list has no term); ``pts*``/``fp*`` the points (and false points) that expire, by the
#: parity of the year they expire in; ``cap*`` the deductions this year in capped categories.
STATE_DTYPE = np.dtype([
    ("delayed", np.uint32), ("appeal", np.uint32),
    ("ovr", np.uint16), ("sd0", np.uint16), ("sd1", np.uint16), ("sd2", np.uint16),
    ("score", np.int16), ("pts0", np.int16), ("pts1", np.int16), ("fp0", np.int16),
    ("fp1", np.int16),
    ("region", np.uint8), ("bands", np.uint8), ("cap0", np.uint8), ("cap1", np.uint8),
    ("counts", np.uint8), ("strikes", np.uint8), ("strike_wk", np.uint8), ("sl0", np.uint8),
    ("sl1", np.uint8), ("sl2", np.uint8),
], align=True)  # fmt: skip
assert STATE_DTYPE.itemsize == 36

#: The first two counters of a chunk are its event position and overflow count.
CNT_BASE = 2


@register_jitable
def key_of(ctx, k):  # type: ignore[no-untyped-def]
    """A day key kept in ctx as two 32-bit halves (an int64 cannot hold every uint64)."""
    return (np.uint64(ctx[k]) << np.uint64(32)) | np.uint64(ctx[k + 1])


@register_jitable
def get_pts(rec, k):  # type: ignore[no-untyped-def]
    return np.int64(rec["pts0"]) if k == 0 else np.int64(rec["pts1"])


@register_jitable
def add_pts(rec, k, v):  # type: ignore[no-untyped-def]
    if k == 0:
        rec["pts0"] = np.int16(np.int64(rec["pts0"]) + v)
    else:
        rec["pts1"] = np.int16(np.int64(rec["pts1"]) + v)


@register_jitable
def get_fp(rec, k):  # type: ignore[no-untyped-def]
    return np.int64(rec["fp0"]) if k == 0 else np.int64(rec["fp1"])


@register_jitable
def add_fp(rec, k, v):  # type: ignore[no-untyped-def]
    if k == 0:
        rec["fp0"] = np.int16(np.int64(rec["fp0"]) + v)
    else:
        rec["fp1"] = np.int16(np.int64(rec["fp1"]) + v)


@register_jitable
def get_cap(rec, k):  # type: ignore[no-untyped-def]
    return np.int64(rec["cap0"]) if k == 0 else np.int64(rec["cap1"])


@register_jitable
def set_cap(rec, k, v):  # type: ignore[no-untyped-def]
    if k == 0:
        rec["cap0"] = np.uint8(v)
    else:
        rec["cap1"] = np.uint8(v)


@register_jitable
def get_sl(rec, s):  # type: ignore[no-untyped-def]
    if s == 0:
        return np.int64(rec["sl0"])
    if s == 1:
        return np.int64(rec["sl1"])
    return np.int64(rec["sl2"])


@register_jitable
def set_sl(rec, s, v):  # type: ignore[no-untyped-def]
    if s == 0:
        rec["sl0"] = np.uint8(v)
    elif s == 1:
        rec["sl1"] = np.uint8(v)
    else:
        rec["sl2"] = np.uint8(v)


@register_jitable
def get_sd(rec, s):  # type: ignore[no-untyped-def]
    if s == 0:
        return np.int64(rec["sd0"])
    if s == 1:
        return np.int64(rec["sd1"])
    return np.int64(rec["sd2"])


@register_jitable
def set_sd(rec, s, v):  # type: ignore[no-untyped-def]
    v = v if v < 65535 else 65535
    if s == 0:
        rec["sd0"] = np.uint16(v)
    elif s == 1:
        rec["sd1"] = np.uint16(v)
    else:
        rec["sd2"] = np.uint16(v)


@register_jitable
def loc(g, ctx):  # type: ignore[no-untyped-def]
    """Shard-local index of global subject id g (citizens of the shard, then its businesses)."""
    if g < ctx[C_NCIT]:
        return g - ctx[C_CLO]
    return ctx[C_CHI] - ctx[C_CLO] + g - ctx[C_NCIT] - ctx[C_BLO]


@register_jitable
def u32(h):  # type: ignore[no-untyped-def]
    return np.int64(rng.hi32(h))


@register_jitable
def u32lo(h):  # type: ignore[no-untyped-def]
    return np.int64(rng.lo32(h))


@register_jitable
def count(P, cnt, cell, metric, col, v):  # type: ignore[no-untyped-def]
    """Add v to one counter of the day."""
    nm = P[OFF_MO + N_METRICS]
    atomic_add(cnt, CNT_BASE + cell * nm + P[OFF_MO + metric] + col, np.int64(v))


@register_jitable
def emit(ctx, ev, cnt, typ, subject, a, b, c, d):  # type: ignore[no-untyped-def]
    """Append one event row when events are being recorded."""
    if ctx[C_EMIT] == 0:
        return
    if typ != EV_LEDGER and typ != EV_RECORD and typ != EV_LIST and typ != EV_DECISION \
            and typ != EV_RESTRICTION:
        if ctx[C_EMIT] < EMIT_ALL:
            return
    k = atomic_add(cnt, 0, np.int64(1))
    if k >= ev.shape[0]:
        atomic_add(cnt, 1, np.int64(1))  # overflow: the driver sizes buffers so this is rare
        return
    ev[k, 0] = typ
    ev[k, 1] = subject
    ev[k, 2] = a
    ev[k, 3] = b
    ev[k, 4] = c
    ev[k, 5] = d


@register_jitable
def slot_hit(P, o_max, rk, u):  # type: ignore[no-untyped-def]
    """Whether a 32-bit draw ``u`` can be an act (or a false record) of a subject of region
    and kind ``rk``: the low bits of ``u`` below the largest threshold of the slot its top
    bits name (``o_max``: the offset of ``act_slot_max`` or ``pair_slot_max``). Exact
    enough to skip: a draw that fails it is no act whatever the subject's modifiers."""
    return (u & ACT_LOW) < P[o_max + rk * ACT_SLOTS + (u >> ACT_SHIFT)]


@register_jitable
def svc_hit(P, o_thr, rb, u):  # type: ignore[no-untyped-def]
    """Whether the request draw ``u`` is a request of the service whose slot it falls in,
    for row ``rb`` of the service tables (``o_thr``: the offset of ``svc_thr_b``)."""
    k = u // SVC_W
    return u - k * SVC_W < P[o_thr + rb * SVC_COLS + k]


@register_jitable
def overflow_thr(p, width, per):  # type: ignore[no-untyped-def]
    """The threshold of the own draw of an act (or service) whose threshold ``p`` exceeds
    its slot's ``width`` (``per`` = 2**32 / width slots): it happens when the slot draw lands
    in its slot, or else when its own draw falls below this (``behaviour.overflow_q``)."""
    if p <= width:
        return np.int64(0)
    q = (p - width) * per // (per - 1)
    return q if q < ONE else ONE


@register_jitable
def act_over_hit(P, rk, h):  # type: ignore[no-untyped-def]
    """Whether the own draw of any act of this kind that can exceed its slot falls below the
    largest threshold it has in the region (so that the day may hold such an act)."""
    kind = rk & 1
    n = P[P[OFF_O + T_ACT_OVER_N] + kind]
    for j in range(n):
        a = P[P[OFF_O + T_ACT_OVER] + kind * ACT_SLOTS + j]
        if u32(rng.sub_hash(h, np.uint64(DRAW_ACT_OVER + a))) < \
                P[P[OFF_O + T_ACT_OVER_Q] + rk * ACT_SLOTS + j]:
            return True
    return False


@register_jitable
def svc_over_hit(P, month, kind, h2):  # type: ignore[no-untyped-def]
    """The same for services asked for more often than their slot allows (``h2``: the
    subject's request hash of the day)."""
    n = P[P[OFF_O + T_SVC_OVER_N] + kind]
    for j in range(n):
        s = P[P[OFF_O + T_SVC_OVER] + kind * SVC_COLS + j]
        if u32(rng.sub_hash(h2, np.uint64(DRAW_SVC_OVER + s))) < \
                P[P[OFF_O + T_SVC_OVER_Q] + ((month - 1) * 2 + kind) * SVC_COLS + j]:
            return True
    return False


@register_jitable
def act_threshold(P, a, kind, inc, edu, age, urb, er, r, mem):  # type: ignore[no-untyped-def]
    """Act a's threshold for a subject today: its rate with the band, policy and listing
    modifiers, their product capped."""
    A = P[D_A]
    m = 256
    if kind == 0:
        m = mod(m, P[P[OFF_O + T_ACT_MOD_INCOME] + a * 4 + inc])
        m = mod(m, P[P[OFF_O + T_ACT_MOD_EDU] + a * 4 + edu])
        m = mod(m, P[P[OFF_O + T_ACT_MOD_AGE] + a * 4 + age])
        m = mod(m, P[P[OFF_O + T_ACT_MOD_URBAN] + a * 2 + urb])
    else:
        m = mod(m, P[P[OFF_O + T_ACT_MOD_INCOME] + a * 4 + inc])
    m = mod(m, P[P[OFF_O + T_ACT_MOD_POLICY] + er * A + a])
    if (mem & 255) != 0:
        m = mod(m, P[P[OFF_O + T_ACT_MOD_LISTED] + a])
    cap = P[P[OFF_O + T_MOD_CAP]]
    if m > cap:
        m = cap
    return mod(P[P[OFF_O + T_ACT_THR] + r * A + a], m)


@register_jitable
def svc_row(month, kind, bnd):  # type: ignore[no-untyped-def]
    """The row of the service tables for a month (1-12), a kind and a bands byte
    (``behaviour``): request rates depend on the season and the bands but not on the region
    or the consent bit."""
    return ((month - 1) * 2 + kind) * 128 + (bnd & 127)


@register_jitable
def plain_request(u, rk, bnd, p_in, P, ctx):  # type: ignore[no-untyped-def]
    """How the quiet path may decide the request of an unlisted subject whose service draw
    is u: -1 when the draw is no request at all (as in the full step), else ``s * 4 + f``
    for service s and ``svc_plain``'s f: 1 when no measure can touch the request (grant it
    with :func:`plain_grant`), 2 when one could only if the citizen represents a business
    (grant it if it represents none), 0 when the full step must decide."""
    Sv = P[D_S]
    kind = rk & 1
    if not svc_hit(P, P[OFF_O + T_SVC_THR_B], svc_row(ctx[C_MONTH], kind, bnd), u):
        return -1
    s = P[P[OFF_O + T_SVC_SLOT] + kind * SVC_COLS + u // SVC_W]
    kidx = 2 if kind == 1 else (1 if ((bnd >> 4) & 3) == 0 else 0)
    er = ctx[C_E] * P[D_R] + (rk >> 1)
    g = (p_in >> 16) & 15
    return s * 4 + P[P[OFF_O + T_SVC_PLAIN] + ((er * 3 + kidx) * 16 + g) * Sv + s]


@register_jitable
def plain_grant(i, s, rk, bnd, P, ctx, cnt, ev):  # type: ignore[no-untyped-def]
    """Grant subject i's request for service s on the quiet path (see
    :func:`plain_request`): counted and logged exactly as :func:`decide` would."""
    kind = rk & 1
    band = bnd & 3 if kind == 1 else (bnd & 3) * 2 + ((bnd >> 6) & 1)
    cell = rk * (CELLS_PER_REGION // 2) + band
    count(P, cnt, cell, M_REQUESTS, 0, 1)
    count(P, cnt, cell, M_DECISIONS, s * 3 + OUT_GRANTED, 1)
    emit(ctx, ev, cnt, EV_DECISION, i, s, OUT_GRANTED, -1, 0)


@register_jitable
def grade_of(P, erk, score):  # type: ignore[no-untyped-def]
    """Grade index of a score (0 best); NO_GRADE where the kind has no grades."""
    ng = P[P[OFF_O + T_N_GRADES] + erk]
    if ng == 0:
        return NO_GRADE
    base = P[OFF_O + T_GRADE_FLOOR] + erk * P[D_G]
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


@register_jitable
def mod(v, m):  # type: ignore[no-untyped-def]
    """Apply a Q8 fixed-point modifier (256 = 1.0)."""
    return (v * m) >> SHIFT8


@register_jitable
def list_enter(i, li, L, false_caused, reason, t, er, mem, P, rec, cnt, cell, ctx, ev):  # type: ignore[no-untyped-def]
    """Put subject i on list L; returns the new membership word (bits 0-15 of pub)."""
    term = P[P[OFF_O + T_LIST_TERM] + er * P[D_L] + L]
    for s in range(3):
        if get_sl(rec, s) == 0:
            set_sl(rec, s, (L + 1) | (128 if false_caused else 0))
            set_sd(rec, s, t + term if term > 0 else t)
            mem |= 1 << L
            if false_caused:
                mem |= 1 << (8 + L)
                count(P, cnt, cell, M_LISTED_FALSE, L, 1)
            count(P, cnt, cell, M_LIST_ENTER, L, 1)
            count(P, cnt, cell, M_LISTED, L, 1)
            emit(ctx, ev, cnt, EV_LIST, i, L, LIST_ENTER, reason, 1 if false_caused else 0)
            return mem
    count(P, cnt, cell, M_LIST_OVERFLOW, 0, 1)
    return mem


@register_jitable
def list_exit(i, li, s, reason, reason_col, mem, P, rec, cnt, cell, ctx, ev):  # type: ignore[no-untyped-def]
    """Take subject i off the list in its slot s; returns the new membership word."""
    v = get_sl(rec, s)
    L = (v & 127) - 1
    false_caused = (v >> 7) & 1
    set_sl(rec, s, 0)
    set_sd(rec, s, 0)
    mem &= ~((1 << L) | (1 << (8 + L)))
    count(P, cnt, cell, M_LIST_EXIT, L, 1)
    count(P, cnt, cell, M_EXIT_REASON, reason_col, 1)
    count(P, cnt, cell, M_LISTED, L, -1)
    if false_caused:
        count(P, cnt, cell, M_LISTED_FALSE, L, -1)
    if reason == EXIT_REPAIR:
        count(P, cnt, cell, M_REPAIRS, 0, 1)
    emit(ctx, ev, cnt, EV_LIST, i, L, LIST_EXIT, reason, false_caused)
    return mem


@register_jitable
def find_slot(rec, L):  # type: ignore[no-untyped-def]
    for s in range(3):
        if (get_sl(rec, s) & 127) == L + 1:
            return s
    return -1


@register_jitable
def apply_points(i, li, p, rule, is_false, validity, year, erk, P, rec, cnt, cell, ctx, ev):  # type: ignore[no-untyped-def]
    """Add p points (clamped to floor and ceiling) and log them; returns the applied amount."""
    old = np.int64(rec['score'])
    lo = P[P[OFF_O + T_SCORE_FLOOR] + erk]
    hi = P[P[OFF_O + T_SCORE_CEILING] + erk]
    new = old + p
    if new < lo:
        new = lo
    if new > hi:
        new = hi
    applied = new - old
    rec['score'] = np.int16(new)
    if validity > 0 or is_false:
        # points that expire sit in the bucket of the year they expire in; false points are
        # tracked the same way (permanent false points count as false for two years)
        v = validity if validity > 0 else 2
        k = (year + v - 1) & 1
        if validity > 0:
            add_pts(rec, k, applied)
        if is_false:
            add_fp(rec, k, applied)
    if applied > 0:
        count(P, cnt, cell, M_POINTS_UP, 0, applied)
    elif applied < 0:
        count(P, cnt, cell, M_POINTS_DOWN, 0, -applied)
    count(P, cnt, cell, M_SCORE_SUM, 0, applied)
    emit(ctx, ev, cnt, EV_LEDGER, i, rule, applied, new, 1 if is_false else 0)
    return applied


@register_jitable
def escalate(rec, a, is_false):  # type: ignore[no-untyped-def]
    """A record of act a under a rule with repeat escalation: how many earlier records of the
    same rule this year count towards it, and how many of those were false; then this one is
    counted. The count is kept for the subject's last escalating rule (bounded state: a
    record of another escalating rule starts it again; records of rules that do not escalate
    neither count nor interrupt it)."""
    w = np.int64(rec['delayed'])
    c = np.int64(rec['counts'])
    off = 0
    nf = 0
    if ((w >> ESC_SHIFT) & 127) == a + 1:
        off = c & 15
        nf = (w >> 30) & 3
    n2 = off + 1 if off < 15 else 15
    f2 = nf + is_false if nf + is_false < 3 else 3
    rec['counts'] = np.uint8((c & 240) | n2)
    rec['delayed'] = np.uint32((w & DELAYED_MASK) | ((a + 1) << ESC_SHIFT) | (f2 << 30))
    return off, nf


@register_jitable
def process_record(i, li, a, ch, is_true, h, kind, scored, age, edu, inc, mem, P, rec, pub, ctx, cnt, cell, ev):  # type: ignore[no-untyped-def]
    """A record reaches the system (the day it was made, or after its channel's delay):
    points, forced grade, list entries and a chance of objection.

    Returns the new membership word."""
    t = ctx[C_T]
    e = ctx[C_E]
    R = P[D_R]
    A = P[D_A]
    L = P[D_L]
    r = np.int64(rec['region'])
    er = e * R + r
    erk = er * 2 + kind
    is_false = 1 - is_true
    hr = rng.sub_hash(h, np.uint64(DRAW_RECORD + a * 64 + ch * 2 + is_true))
    # points
    if scored:
        p = P[P[OFF_O + T_ACT_POINTS] + er * A + a]
        esc_false = 0
        if p != 0:
            if p < 0:
                pct = P[P[OFF_O + T_ACT_ESCALATION_PCT] + er * A + a]
                if pct > 0:
                    base = p
                    off, nf = escalate(rec, a, is_false)
                    p = base * (100 + pct * off) // 100
                    # the part owed to earlier false records is false too (DESIGN 2.7)
                    esc_false = base * pct * nf // 100
                cat = P[P[OFF_O + T_ACT_CATEGORY] + a]
                for k in range(2):
                    if P[P[OFF_O + T_CAP_CATEGORY] + er * 2 + k] == cat:
                        used = get_cap(rec, k)
                        room = P[P[OFF_O + T_CAP_POINTS] + er * 2 + k] - used
                        if room < 0:
                            room = 0
                        if -p > room:
                            p = -room
                        nu = used - p
                        set_cap(rec, k, nu if nu < 255 else 255)
            if p != 0:
                validity = P[P[OFF_O + T_ACT_VALIDITY] + er * A + a]
                applied = apply_points(i, li, p, P[P[OFF_O + T_ACT_RULE] + er * A + a],
                                       is_false, validity, ctx[C_YEAR], erk, P, rec, cnt, cell,
                                       ctx, ev)
                if is_false == 0 and esc_false < 0 and applied < 0:
                    v = validity if validity > 0 else 2
                    add_fp(rec, (ctx[C_YEAR] + v - 1) & 1,
                           esc_false if esc_false > applied else applied)
        og = P[P[OFF_O + T_OVERRIDE_GRADE] + er * A + a]
        if og >= 0:
            until = t + P[P[OFF_O + T_OVERRIDE_DAYS] + er * A + a]
            rec['ovr'] = np.uint16(until if until < 65535 else 65535)
            # remember the forced grade in tomorrow's public word (bits 24-28)
            par = t & 1
            cur = np.int64(pub[1 - par, li])
            cur = (cur & ~(31 << 24)) | ((og + 1) << 24) | (is_false << 28)
            pub[1 - par, li] = np.uint32(cur)
            count(P, cnt, cell, M_OVERRIDES, 0, 1)
            emit(ctx, ev, cnt, EV_OVERRIDE, i, a, og, P[P[OFF_O + T_OVERRIDE_RULE] + er * A + a], until)
    # lists entered by records of this act
    struck = False
    entered = 0
    for lst in range(L):
        if P[P[OFF_O + T_LIST_ACTIVE] + er * L + lst] == 0:
            continue
        if P[P[OFF_O + T_LIST_ACTS] + (er * L + lst) * A + a] == 0:
            continue
        if P[P[OFF_O + T_LIST_SUBJECT_KIND] + lst] != kind:
            continue
        k = P[P[OFF_O + T_LIST_K] + er * L + lst]
        if k > 1:
            if not struck:
                # one shared strike counter per subject (a stated approximation), in weeks
                struck = True
                week = (t // 7) & 255
                sb = np.int64(rec['strikes'])
                strikes = sb & STRIKES_MASK
                wk0 = np.int64(rec['strike_wk'])
                window = P[P[OFF_O + T_LIST_WINDOW] + er * L + lst]
                if strikes == 0 or ((week - wk0) & 255) * 7 > window:
                    strikes = 1
                    rec['strike_wk'] = np.uint8(week)
                elif strikes < STRIKES_MASK:
                    strikes += 1
                rec['strikes'] = np.uint8((sb & THROTTLED_BIT) | strikes)
            if (np.int64(rec['strikes']) & STRIKES_MASK) < k:
                continue
        rule = P[P[OFF_O + T_LIST_ENTRY_RULE] + er * L + lst]
        s = find_slot(rec, lst)
        if s >= 0:
            ext = P[P[OFF_O + T_LIST_EXTEND] + er * L + lst]
            if ext > 0 and P[P[OFF_O + T_LIST_TERM] + er * L + lst] > 0:
                nd = get_sd(rec, s) + ext
                set_sd(rec, s, nd if nd < 65535 else 65535)
                count(P, cnt, cell, M_LIST_EXTEND, lst, 1)
                emit(ctx, ev, cnt, EV_LIST, i, lst, LIST_EXTEND, rule, is_false)
        else:
            before = mem
            mem = list_enter(i, li, lst, is_false, rule, t, er, mem, P, rec, cnt, cell,
                             ctx, ev)
            if mem != before and P[P[OFF_O + T_LIST_KIND] + lst] == LIST_BLACK_KIND:
                entered |= 1 << lst
    # objection: a subject may object to a record that costs it (points taken, a forced
    # grade, a blacklist) within the window; the appeal is decided later
    adverse = entered != 0 or (scored and (P[P[OFF_O + T_ACT_POINTS] + er * A + a] < 0
                                           or P[P[OFF_O + T_OVERRIDE_GRADE] + er * A + a] >= 0))
    if adverse and P[P[OFF_O + T_OBJECTION_WINDOW] + er] > 0:
        thr = mod(mod(P[P[OFF_O + T_OBJ_THR]], P[P[OFF_O + T_OBJ_MOD_EDU] + edu]), P[P[OFF_O + T_OBJ_MOD_INCOME] + inc])
        if kind == 1:
            thr = P[P[OFF_O + T_OBJ_THR]]
        if u32(hr) < thr:
            if rec['appeal'] == 0:
                due = (t + P[P[OFF_O + T_APPEAL_DELAY] + er]) & 1023
                word = (a + 1) | (is_false << 7) | (ch << 8) | (due << 13) | ((entered & 255) << 23)
                rec['appeal'] = np.uint32(word)
                count(P, cnt, cell, M_OBJECTIONS, 0, 1)
                emit(ctx, ev, cnt, EV_OBJECTION, i, a, ch, is_true, 0)
            else:
                count(P, cnt, cell, M_OBJECTION_OVERFLOW, 0, 1)
                emit(ctx, ev, cnt, EV_OBJECTION, i, a, ch, is_true, 1)
    return mem


@register_jitable
def act_happens(i, li, a, h, kind, scored, age, edu, inc, mem, P, rec, pub, ctx, cnt, cell, ev):  # type: ignore[no-untyped-def]
    """Subject i does act a today: an obligation if the act creates one, the truth counted,
    and a record from every channel that sees it. Returns the new membership word."""
    R = P[D_R]
    r = np.int64(rec['region'])
    ob = P[P[OFF_O + T_ACT_OBLIGATION] + a]
    met = 0
    if ob != 0:
        count(P, cnt, cell, M_OBLIGATIONS_CREATED, 0, 1)
        # met on the day (a fine paid in time) on the act's own draw, so that one act's share
        # moves no other draw; the rest stay open until met at the repayment hazard
        mthr = P[P[OFF_O + T_ACT_MET_THR] + a]
        if mthr != 0 and u32(rng.sub_hash(h, np.uint64(DRAW_MET + a))) < mthr:
            met = 1
            ob = 0
            count(P, cnt, cell, M_OBLIGATIONS_MET, 0, 1)
        else:
            o = (np.int64(rec['counts']) >> 4)
            if o < 15:
                rec['counts'] = np.uint8((np.int64(rec['counts']) & 15) | ((o + 1) << 4))
    count(P, cnt, cell, M_ACTS, a, 1)
    emit(ctx, ev, cnt, EV_ACT, i, a, ob, met, 0)
    # phase 2: every channel that sees it makes a record, each on its own draw; the first of
    # them (in the act's channel order) carries the act's consequences, the others
    # corroborate it (recorded and counted, never scored twice)
    seen = False
    for k in range(MAX_ACT_CHANNELS):
        ch = P[P[OFF_O + T_ACT_CHANNELS] + a * MAX_ACT_CHANNELS + k]
        if ch < 0:
            break
        hc = rng.sub_hash(h, np.uint64(DRAW_CHANNEL + a * 32 + ch))
        if u32(hc) < P[P[OFF_O + T_CHAN_COV] + ch * R + r]:
            if not seen:
                seen = True
                mem = deliver(i, li, a, ch, 1, h, kind, scored, age, edu, inc, mem, P, rec,
                              pub, ctx, cnt, cell, ev)
            else:
                count(P, cnt, cell, M_RECORDS_TRUE, ch, 1)
                count(P, cnt, cell, M_RECORDS_CORROBORATING, ch, 1)
                emit(ctx, ev, cnt, EV_RECORD, i, a, ch, 1, 2)
    return mem


@register_jitable
def deliver(i, li, a, ch, is_true, h, kind, scored, age, edu, inc, mem, P, rec, pub, ctx, cnt, cell, ev):  # type: ignore[no-untyped-def]
    """A channel makes a record today; the system acts on it now, or after the channel's
    delay (one waiting slot)."""
    delay = P[P[OFF_O + T_CHAN_DELAY] + ch]
    if is_true:
        count(P, cnt, cell, M_RECORDS_TRUE, ch, 1)
    else:
        count(P, cnt, cell, M_RECORDS_FALSE, ch, 1)
    emit(ctx, ev, cnt, EV_RECORD, i, a, ch, is_true, 1 if delay > 0 else 0)
    if delay > 0:
        w = np.int64(rec['delayed'])
        if (w & DELAYED_MASK) == 0:
            due = (ctx[C_T] + delay) & 1023
            rec['delayed'] = np.uint32((w & ~DELAYED_MASK) | (a + 1) | ((1 - is_true) << 7)
                                       | (ch << 8) | (due << 13))
            return mem
        # the waiting slot is taken: this record is processed on arrival (stated overflow rule)
        count(P, cnt, cell, M_DELAY_OVERFLOW, 0, 1)
    return process_record(i, li, a, ch, is_true, h, kind, scored, age, edu, inc, mem, P, rec,
                          pub, ctx, cnt, cell, ev)


@register_jitable
def trigger_holds(m, er, M, mem, grade, P):  # type: ignore[no-untyped-def]
    """Does measure m's trigger hold for a public word? Returns 0 no, 1 yes, 2 yes but only
    because of false records."""
    lists = P[P[OFF_O + T_MEASURE_LISTS] + er * M + m]
    hit = mem & lists & 255
    glo = P[P[OFF_O + T_MEASURE_GRADE_LO] + er * M + m]
    held = 0
    honest = 0
    if hit != 0:
        held = 1
        if (hit & ~(mem >> 8)) != 0:
            honest = 1
    if glo >= 0:
        ghi = P[P[OFF_O + T_MEASURE_GRADE_HI] + er * M + m]
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
def false_entries(p):  # type: ignore[no-untyped-def]
    """The lists of a public word whose entry a false record caused (none when the subject
    is on no list: then bits 8-15 hold its wake-up day, see the module's docstring)."""
    return (p >> 8) & 255 if (p & 255) != 0 else 0


@register_jitable
def word_bands(p):  # type: ignore[no-untyped-def]
    """The bands a public word carries: meaningful for a subject on no list with nothing
    waiting (bits 0-7 and 31 clear), the seven bits request rates depend on (``svc_row``)."""
    return (p >> 8) & 127


@register_jitable
def wake_day(w1, w2, t):  # type: ignore[no-untyped-def]
    """The day (mod 256) on which the first of a delayed record ``w1`` and an appeal ``w2``
    (0: none) falls due after day t: the step takes each on the first later day whose index
    matches its due day mod 1024."""
    best = 0
    best_d = 2048
    for w in (w1, w2):
        if w != 0:
            due = (w >> 13) & 1023
            d = ((due - t - 1) & 1023) + 1
            if d < best_d:
                best_d = d
                best = due
    return best & 255


@register_jitable
def pub_grades(p):  # type: ignore[no-untyped-def]
    """Grade (low nibble) and honest grade (high nibble) packed from a public word."""
    return ((p >> 16) & 15) | (((p >> 20) & 15) << 4)


@register_jitable(inline="always")
def keep_best(best, wrong, m, res):  # type: ignore[no-untyped-def]
    """Among the measures of one effect that hold (``res`` of :func:`trigger_holds`), the one
    a decision names: the first that holds honestly, else the first; and whether it rests on
    false records alone (1) or not (0)."""
    if best < 0 or (wrong == 1 and res == 1):
        return m, (1 if res == 2 else 0)
    if res == 1:
        return best, 0
    return best, wrong


@register_jitable
def decide(i, li, s, kind, age, mem, grades, er, P, st, pub, ctx, rep, popt):  # type: ignore[no-untyped-def]
    """Decide one service request. Returns outcome * 2**20 + (measure + 1) * 2 + wrongful,
    plus ``THROTTLE_RES`` when the request is granted with a throttled connection (a denial
    comes before a throttle, a throttle before a fast track).

    Members of the group are looked up only when a measure reaches through them."""
    M = P[D_M]
    par = ctx[C_T] & 1
    best_deny = -1
    deny_wrong = 1
    best_fast = -1
    best_thr = -1
    thr_wrong = 1
    for mi in range(P[P[OFF_O + T_SVC_NMEASURES] + s]):
        m = P[P[OFF_O + T_SVC_MEASURES] + s * M + mi]
        if P[P[OFF_O + T_MEASURE_ACTIVE] + er * M + m] == 0:
            continue
        reach = P[P[OFF_O + T_MEASURE_REACH] + er * M + m]
        res = 0
        if reach & 1:
            res = trigger_holds(m, er, M, mem, grades, P)
        if res != 1 and (reach & 2) and kind == 0 and age == 0:
            # a child: the measure reads the household's adults as of the start of the day
            hh_lo, hh_hi = household_range(i, popt)
            for j in range(hh_lo, hh_hi):
                lj = loc(j, ctx)
                if j == i or ((np.int64(st[lj]['bands']) >> 4) & 3) == 0:
                    continue
                pj = np.int64(pub[par, lj])
                rj = trigger_holds(m, er, M, pj & 65535, pub_grades(pj), P)
                if rj == 1 or (rj == 2 and res == 0):
                    res = rj
        if res != 1 and (reach & 4) and kind == 0:
            # the legal representative of a business that triggers it
            b_lo, b_hi = represented_range(i, er - ctx[C_E] * P[D_R], rep, popt,
                                           ctx[C_NCIT] + ctx[C_BLO])
            for b in range(b_lo, b_hi):
                pb = np.int64(pub[par, ctx[C_CHI] - ctx[C_CLO] + b])
                rb = trigger_holds(m, er, M, pb & 65535, pub_grades(pb), P)
                if rb == 1 or (rb == 2 and res == 0):
                    res = rb
        if res != 1 and (reach & 8) and kind == 1:
            pr = np.int64(pub[par, loc(np.int64(rep[li - (ctx[C_CHI] - ctx[C_CLO])]), ctx)])
            rr = trigger_holds(m, er, M, pr & 65535, pub_grades(pr), P)
            if rr == 1 or (rr == 2 and res == 0):
                res = rr
        if res == 0:
            continue
        eff = P[P[OFF_O + T_MEASURE_EFFECT] + m]
        if eff == EFFECT_DENY:
            best_deny, deny_wrong = keep_best(best_deny, deny_wrong, m, res)
        elif eff == EFFECT_THROTTLE:
            best_thr, thr_wrong = keep_best(best_thr, thr_wrong, m, res)
        elif best_fast < 0:
            best_fast = m
    if best_deny >= 0:
        return OUT_DENIED * 1048576 + (best_deny + 1) * 2 + deny_wrong
    if best_thr >= 0:
        return OUT_GRANTED * 1048576 + THROTTLE_RES + (best_thr + 1) * 2 + thr_wrong
    if best_fast >= 0:
        return OUT_FAST * 1048576 + (best_fast + 1) * 2
    return OUT_GRANTED * 1048576


#: Positions in :func:`day_consts`' tuple.
(DC_T, DC_BUSY, DC_MONTH_START, DC_YEAR_START, DC_YEAR, DC_MONTH, DC_ER0, DC_NCIT, DC_KEY_ACTS,
 DC_KEY_SVC, DC_ACT, DC_PAIR, DC_REPAY, DC_SVC) = range(14)


@register_jitable(inline="always")
def day_consts(P, ctx):  # type: ignore[no-untyped-def]
    """What every subject's quiet check reads, loaded once per day (and per worker)."""
    return (ctx[C_T], ctx[C_BUSY], ctx[C_MONTH_START], ctx[C_YEAR_START], ctx[C_YEAR],
            ctx[C_MONTH], ctx[C_E] * P[D_R], ctx[C_NCIT], key_of(ctx, C_KEY_ACTS),
            key_of(ctx, C_KEY_SVC), P[OFF_O + T_ACT_SLOT_MAX], P[OFF_O + T_PAIR_SLOT_MAX],
            P[P[OFF_O + T_REPAY_THR]], P[OFF_O + T_SVC_THR_B])


@register_jitable(inline="always")
def step_subject(i, li, P, ctx, st, pub, rep, popt, cnt, ev):  # type: ignore[no-untyped-def]
    """One subject, one day: DESIGN 3's phases 1-9 for subject i (see :func:`step_with`)."""
    step_with(i, li, day_consts(P, ctx), P, ctx, st, pub, rep, popt, cnt, ev)


@register_jitable(inline="always")
def step_with(i, li, dc, P, ctx, st, pub, rep, popt, cnt, ev):  # type: ignore[no-untyped-def]
    """One subject, one day, given the day's constants ``dc`` (:func:`day_consts`).

    Most subject-days nothing happens: no act, no record, no request that a measure could
    touch, nothing due, no list to serve, no grade to move. Those take the quiet path, which
    draws the same numbers the full step would and leaves the state exactly as the full step
    would have; everything else takes :func:`step_full`."""
    t, busy, month_start, year_start, year, month, er0, n_cit, k_acts, k_svc, o_act, o_pair, \
        repay, o_svc = dc
    if busy == 0:
        par = t & 1
        p_in = np.int64(pub[par, li])
        if (p_in & QUIET_MASK) == 0:
            rec = st[li]
            w = np.int64(rec['delayed']) & DELAYED_MASK
            due = w != 0 and ((w >> 13) & 1023) == (t & 1023)
            if month_start and (p_in >> 30) & 1:
                due = True  # a moved score is graded at the turn of the month or year
            if year_start:
                k = (year - 1) & 1
                if get_pts(rec, k) != 0 or get_fp(rec, k) != 0 or rec['cap0'] != 0 or \
                        rec['cap1'] != 0 or (np.int64(rec['counts']) & 15) != 0:
                    due = True
            w = np.int64(rec['appeal'])
            due = due or (w != 0 and ((w >> 13) & 1023) == (t & 1023))
            if not due:
                rk = np.int64(rec['region']) * 2 + (1 if i >= n_cit else 0)
                h = rng.subject_hash(k_acts, np.uint64(i))
                if not slot_hit(P, o_act, rk, u32(h)) and not slot_hit(P, o_pair, rk, u32lo(h)) \
                        and not act_over_hit(P, rk, h):
                    ob = np.int64(rec['counts']) >> 4
                    # the repayment draw is the full step's own, so skipping is exact
                    if ob == 0 or u32(rng.sub_hash(h, np.uint64(DRAW_REPAY))) >= repay:
                        h2 = rng.subject_hash(k_svc, np.uint64(i))
                        bnd = np.int64(rec['bands'])
                        u = u32(h2)
                        d = -1
                        if svc_over_hit(P, month, rk & 1, h2):
                            d = 0  # a service's own draw may be a request: the full step
                        elif svc_hit(P, o_svc, svc_row(month, rk & 1, bnd), u):
                            d = plain_request(u, rk, bnd, p_in, P, ctx)
                        if (d & 3) == 2:
                            b_lo, b_hi = represented_range(i, rk >> 1, rep, popt,
                                                           n_cit + ctx[C_BLO])
                            d -= 1 if b_hi == b_lo else 2
                        if d < 0 or (d & 3) == 1:
                            if d >= 0:
                                plain_grant(i, d >> 2, rk, bnd, P, ctx, cnt, ev)
                            pub[1 - par, li] = np.uint32(p_in)
                            return
    step_full(i, li, P, ctx, st, pub, rep, popt, cnt, ev)


@register_jitable
def slot_due(rec, s, v, mem, ob, h, t, er, P, first):  # type: ignore[no-untyped-def]
    """What happens today to list slot s (holding ``v``) of a listed subject with ``ob``
    open obligations: 0 nothing; an exit, as its reason (``EXIT_POLICY``, ``EXIT_TERM``,
    ``EXIT_OBLIGATION``, ``EXIT_REPAIR``, all negative); or ``1 + l2``, time on this list
    leading to a list l2 ≥ ``first`` that the subject is not on (with ``first`` > 0 the exits
    are not looked at again). The full step acts on it; the CPU driver's recheck asks it
    whether an idle listed subject's day changes anything at all."""
    L = P[D_L]
    lst = (v & 127) - 1
    ll = er * L + lst
    term = P[P[OFF_O + T_LIST_TERM] + ll]
    sd = get_sd(rec, s)
    since = sd - term if term > 0 else sd
    if first == 0:
        if P[P[OFF_O + T_LIST_ACTIVE] + ll] == 0:
            return EXIT_POLICY
        if term > 0 and t >= sd:
            return EXIT_TERM
        # not on the day of entry (since == t); an extension moves sd, and so since, past
        # the entry day, so "t > since" would hold a debtor who has paid until then
        if P[P[OFF_O + T_LIST_EXIT_OBLIGATION] + ll] != 0 and ob == 0 and t != since:
            return EXIT_OBLIGATION
        rmin = P[P[OFF_O + T_LIST_REPAIR_MIN] + ll]
        if rmin > 0 and ob == 0 and t - since >= rmin:
            hr = rng.sub_hash(h, np.uint64(DRAW_REPAIR + lst))
            if u32(hr) < P[P[OFF_O + T_LIST_REPAIR_THR] + ll]:
                return EXIT_REPAIR
    # time on this list leads to another (e.g. abnormal operations -> serious list)
    for l2 in range(first, L):
        if P[P[OFF_O + T_LIST_FROM] + er * L + l2] != lst or ((mem >> l2) & 1) != 0:
            continue
        if P[P[OFF_O + T_LIST_ACTIVE] + er * L + l2] == 0:
            continue
        if t - since >= P[P[OFF_O + T_LIST_FROM_DAYS] + er * L + l2]:
            return 1 + l2
    return 0


@register_jitable
def held_quiet(rec, p, h, t, er, P):  # type: ignore[no-untyped-def]
    """Whether a subject on a list, or with a forced grade (public word ``p``), has nothing
    due today beyond what the CPU driver's recheck has tested (no act, record, repayment,
    request or waiting item): no forced grade ending, no grade to recalculate, no list slot
    changing (:func:`slot_due`). Then the full step would leave its state as it is."""
    if ((p >> 24) & 31) != 0 and t >= np.int64(rec['ovr']):
        return False
    if ((p >> 29) & 1) != 0 and ((p >> 16) & 15) == NO_GRADE:
        return False  # a scored subject without a grade is graded every day
    mem = p & 255
    ob = np.int64(rec['counts']) >> 4
    for s in range(3):
        v = get_sl(rec, s)
        if v != 0 and slot_due(rec, s, v, mem, ob, h, t, er, P, 0) != 0:
            return False
    return True


@register_jitable
def throttle_lapses(i, rec, mem, grades, er, P, ctx, cnt, cell, ev):  # type: ignore[no-untyped-def]
    """Lift a throttled connection when none of the throttle measures that reach the subject
    holds any longer (its lists or grade changed, or the policy did): counted and logged.
    Throttle measures reach only their subject (``policy.checks``), so only a full step, in
    which the lists and grade change, can end one."""
    M = P[D_M]
    svc = -1
    for m in range(M):
        if P[P[OFF_O + T_MEASURE_EFFECT] + m] != EFFECT_THROTTLE:
            continue
        svc = P[P[OFF_O + T_MEASURE_SERVICE] + m]
        if P[P[OFF_O + T_MEASURE_ACTIVE] + er * M + m] != 0 and \
                trigger_holds(m, er, M, mem, grades, P) != 0:
            return
    rec['strikes'] = np.uint8(np.int64(rec['strikes']) & STRIKES_MASK)
    count(P, cnt, cell, M_THROTTLE_ENDS, 0, 1)
    count(P, cnt, cell, M_THROTTLED, 0, -1)
    emit(ctx, ev, cnt, EV_RESTRICTION, i, svc, RESTRICTION_END, -1, 0)


@register_jitable
def request(i, li, s, kind, age, inc, bnd, mem, grades, er, h2, P, rec, st, pub, ctx, rep, popt, cnt, cell, ev):  # type: ignore[no-untyped-def]
    """Subject i asks for service s: decided, tried again after a denial, counted, logged,
    and a denied job or loan may lower its income band (economic feedback)."""
    res = decide(i, li, s, kind, age, mem, grades, er, P, st, pub, ctx, rep, popt)
    outcome = res // 1048576
    meas = ((res % THROTTLE_RES) // 2) - 1
    wrong = res & 1
    attempts = 1
    if outcome == OUT_DENIED:
        for k in range(RETRY_MAX):
            hk = rng.sub_hash(h2, np.uint64(DRAW_RETRY + s * 8 + k))
            if u32(hk) >= P[P[OFF_O + T_SVC_RETRY_THR] + s]:
                break
            attempts += 1
        count(P, cnt, cell, M_RETRIES, 0, attempts - 1)
    count(P, cnt, cell, M_REQUESTS, 0, attempts)
    count(P, cnt, cell, M_DECISIONS, s * 3 + outcome, attempts)
    if meas >= 0:
        count(P, cnt, cell, M_MEASURE_FIRED, meas, attempts)
    if wrong:
        count(P, cnt, cell, M_WRONGFUL, s, attempts)
    for _k in range(attempts):
        emit(ctx, ev, cnt, EV_DECISION, i, s, outcome, meas, wrong)
    # a throttled grant: the connection stays throttled while a throttle measure holds
    if (res & THROTTLE_RES) != 0:
        count(P, cnt, cell, M_THROTTLED_GRANTS, 0, 1)
        sb = np.int64(rec['strikes'])
        if (sb & THROTTLED_BIT) == 0:
            rec['strikes'] = np.uint8(sb | THROTTLED_BIT)
            count(P, cnt, cell, M_THROTTLE_STARTS, 0, 1)
            count(P, cnt, cell, M_THROTTLED, 0, 1)
            emit(ctx, ev, cnt, EV_RESTRICTION, i, s, RESTRICTION_START, meas, wrong)
    # economic consequences: a denied job or loan can lower the income band
    if outcome == OUT_DENIED and kind == 0 and P[P[OFF_O + T_SVC_ECONOMIC] + s] != 0 and inc > 0:
        b = np.int64(rec['bands'])
        if (b & 3) == inc and \
                u32(rng.sub_hash(h2, np.uint64(DRAW_ECON + s))) < P[P[OFF_O + T_ECON_DROP_THR]]:
            rec['bands'] = np.uint8((b & ~3) | (inc - 1))
            count(P, cnt, cell, M_INCOME_DROPS, 0, 1)
            emit(ctx, ev, cnt, EV_INCOME, i, inc, inc - 1, 0, 0)


@register_jitable
def step_full(i, li, P, ctx, st, pub, rep, popt, cnt, ev):  # type: ignore[no-untyped-def]
    """The full day step of DESIGN 3 for subject i.

    ``rep`` holds each business's legal representative and ``popt`` the population tables
    that locate a citizen's household (see ``socialcredit.kernel.group``)."""
    t = ctx[C_T]
    e = ctx[C_E]
    year = ctx[C_YEAR]
    month = ctx[C_MONTH]
    par = t & 1
    R = P[D_R]
    A = P[D_A]
    L = P[D_L]
    NP = P[D_P]
    C = ctx[C_NCIT]
    kind = 1 if i >= C else 0
    rec = st[li]
    r = np.int64(rec['region'])
    bnd = np.int64(rec['bands'])
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
    p_in = np.int64(pub[par, li])
    # tomorrow's word is scratch space today: a record that forces a grade writes it there
    pub[1 - par, li] = np.uint32(0)
    if ctx[C_FIRST]:
        count(P, cnt, cell, M_SUBJECTS, 0, 1)
        count(P, cnt, cell, M_GRADE_COUNT, NO_GRADE, 1)
        p_in = (NO_GRADE << 16) | (NO_GRADE << 20)
    mem = p_in & 255
    if mem != 0:
        mem |= p_in & 65280  # the false-entry bits (on no list, they hold the wake-up day)
    was_scored = (p_in >> 29) & 1
    old_grade = (p_in >> 16) & 15
    forced = (p_in >> 24) & 31
    scored = P[P[OFF_O + T_SCORING] + erk] != 0
    if scored and kind == 0:
        if age < P[P[OFF_O + T_MIN_AGE_BAND] + er]:
            scored = False
        elif consent == 0 and P[P[OFF_O + T_CONSENT_REQUIRED] + er] != 0:
            scored = False
    recalc = False
    # bit 30: the score moved since the grade was last calculated
    dirty = (p_in >> 30) & 1
    # phase 3 (calendar part): points expire at the turn of the year; yearly counters reset
    if ctx[C_YEAR_START]:
        k = (year - 1) & 1
        expired = get_pts(rec, k)
        if expired != 0 and was_scored:
            old = np.int64(rec['score'])
            new = old - expired
            lo = P[P[OFF_O + T_SCORE_FLOOR] + erk]
            hi = P[P[OFF_O + T_SCORE_CEILING] + erk]
            new = lo if new < lo else (hi if new > hi else new)
            rec['score'] = np.int16(new)
            count(P, cnt, cell, M_EXPIRED_POINTS, 0, 1)
            count(P, cnt, cell, M_SCORE_SUM, 0, new - old)
            emit(ctx, ev, cnt, EV_LEDGER, i, RULE_EXPIRY, new - old, new, 0)
            recalc = True
        add_pts(rec, k, -get_pts(rec, k))
        add_fp(rec, k, -get_fp(rec, k))
        rec['cap0'] = np.uint8(0)
        rec['cap1'] = np.uint8(0)
        rec['counts'] = np.uint8(np.int64(rec['counts']) & 240)
        rec['delayed'] = np.uint32(np.int64(rec['delayed']) & DELAYED_MASK)
    # scoring starts or stops (consent rules can change mid-run)
    if scored and not was_scored:
        start = P[P[OFF_O + T_SCORE_START] + erk]
        rec['score'] = np.int16(start)
        rec['pts0'] = np.int16(0)
        rec['pts1'] = np.int16(0)
        rec['fp0'] = np.int16(0)
        rec['fp1'] = np.int16(0)
        count(P, cnt, cell, M_SCORED, 0, 1)
        count(P, cnt, cell, M_SCORE_SUM, 0, start)
        emit(ctx, ev, cnt, EV_LEDGER, i, RULE_START, 0, start, 0)
        recalc = True
    elif was_scored and not scored:
        count(P, cnt, cell, M_SCORED, 0, -1)
        count(P, cnt, cell, M_SCORE_SUM, 0, -np.int64(rec['score']))
        rec['score'] = np.int16(0)
    score0 = np.int64(rec['score'])
    fp0 = np.int64(rec['fp0']) + np.int64(rec['fp1'])
    h = rng.subject_hash(key_of(ctx, C_KEY_ACTS), np.uint64(i))
    # phase 1: acts (the truth). The draw's top bits name a slot, which belongs to at most
    # one act of the subject's kind; the act happens when the low bits fall below its own
    # threshold. Slots have fixed places, so one act's rate never moves another's draws. An
    # act likelier than its slot is wide takes the rest from a draw of its own.
    u = u32(h)
    rk = r * 2 + kind
    a = P[P[OFF_O + T_ACT_SLOT] + kind * ACT_SLOTS + (u >> ACT_SHIFT)]
    if a >= 0 and slot_hit(P, P[OFF_O + T_ACT_SLOT_MAX], rk, u):
        if (u & ACT_LOW) < act_threshold(P, a, kind, inc, edu, age, urb, er, r, mem):
            mem = act_happens(i, li, a, h, kind, scored, age, edu, inc, mem, P, rec, pub, ctx,
                              cnt, cell, ev)
    for j in range(P[P[OFF_O + T_ACT_OVER_N] + kind]):
        a2 = P[P[OFF_O + T_ACT_OVER] + kind * ACT_SLOTS + j]
        if a2 == a:
            continue  # the draw fell in its own slot, which decided it
        uo = u32(rng.sub_hash(h, np.uint64(DRAW_ACT_OVER + a2)))
        if uo < P[P[OFF_O + T_ACT_OVER_Q] + rk * ACT_SLOTS + j]:
            thr = act_threshold(P, a2, kind, inc, edu, age, urb, er, r, mem)
            if uo < overflow_thr(thr, ACT_W, ACT_PER):
                mem = act_happens(i, li, a2, h, kind, scored, age, edu, inc, mem, P, rec, pub,
                                  ctx, cnt, cell, ev)
    # phase 2: false records (acts that did not happen, misidentification), in the fixed
    # slots of the draw's other half, one per (channel, act) pair of the subject's kind
    u = u32lo(h)
    p = P[P[OFF_O + T_PAIR_SLOT] + kind * ACT_SLOTS + (u >> ACT_SHIFT)]
    if p >= 0 and slot_hit(P, P[OFF_O + T_PAIR_SLOT_MAX], rk, u):
        ch = P[P[OFF_O + T_PAIR_CHAN] + p]
        thr = P[P[OFF_O + T_PAIR_THR] + r * NP + p]
        mis = P[P[OFF_O + T_PAIR_MISID] + r * NP + p]
        if mis > 0 and kind == 0:
            mis = mod(mod(mis, P[P[OFF_O + T_CHAN_MISID_AGE] + ch * 4 + age]),
                      P[P[OFF_O + T_CHAN_MISID_INCOME] + ch * 4 + inc])
        if (u & ACT_LOW) < thr + mis:
            mem = deliver(i, li, P[P[OFF_O + T_PAIR_ACT] + p], ch, 0, h, kind, scored, age, edu, inc, mem,
                          P, rec, pub, ctx, cnt, cell, ev)
    # delayed records that are due today
    w = np.int64(rec['delayed'])
    if (w & DELAYED_MASK) != 0 and ((w >> 13) & 1023) == (t & 1023):
        rec['delayed'] = np.uint32(w & ~DELAYED_MASK)
        w = w & DELAYED_MASK
        mem = process_record(i, li, (w & 127) - 1, (w >> 8) & 31, 1 - ((w >> 7) & 1), h, kind,
                             scored, age, edu, inc, mem, P, rec, pub, ctx, cnt, cell, ev)
    # phase 3: appeals decided today
    w = np.int64(rec['appeal'])
    if w != 0 and ((w >> 13) & 1023) == (t & 1023):
        rec['appeal'] = np.uint32(0)
        a = (w & 127) - 1
        is_false = (w >> 7) & 1
        ch = (w >> 8) & 31
        ha = rng.sub_hash(h, np.uint64(DRAW_APPEAL))
        thr = P[P[OFF_O + T_APPEAL_WIN_FALSE_THR] + er] if is_false else P[P[OFF_O + T_APPEAL_WIN_TRUE_THR] + er]
        won = u32(ha) < thr
        if won:
            if is_false:
                count(P, cnt, cell, M_APPEALS_WON_FALSE, 0, 1)
            else:
                count(P, cnt, cell, M_APPEALS_WON_TRUE, 0, 1)
            if scored:
                p = P[P[OFF_O + T_ACT_POINTS] + er * A + a]
                if p != 0:
                    apply_points(i, li, -p, RULE_APPEAL, is_false, P[P[OFF_O + T_ACT_VALIDITY] + er * A + a],
                                 year, erk, P, rec, cnt, cell, ctx, ev)
                    recalc = True
            entered = (w >> 23) & 255
            for lst in range(L):
                if (entered >> lst) & 1:
                    s = find_slot(rec, lst)
                    if s >= 0:
                        mem = list_exit(i, li, s, EXIT_APPEAL, 3, mem, P, rec, cnt, cell, ctx, ev)
            if forced != 0 and P[P[OFF_O + T_OVERRIDE_GRADE] + er * A + a] >= 0:
                forced = 0
                rec['ovr'] = np.uint16(0)
                recalc = True
        else:
            if is_false:
                count(P, cnt, cell, M_APPEALS_LOST_FALSE, 0, 1)
            else:
                count(P, cnt, cell, M_APPEALS_LOST_TRUE, 0, 1)
        emit(ctx, ev, cnt, EV_APPEAL, i, a, ch, 1 - is_false, 1 if won else 0)
    # obligations met at a repayment hazard; listing raises it (compliance under pressure)
    ob = (np.int64(rec['counts']) >> 4)
    if ob > 0:
        thr = P[P[OFF_O + T_REPAY_THR]]
        if (mem & 255) != 0:
            thr = mod(thr, P[P[OFF_O + T_REPAY_LISTED_MOD]])
        if u32(rng.sub_hash(h, np.uint64(DRAW_REPAY))) < thr:
            ob -= 1
            rec['counts'] = np.uint8((np.int64(rec['counts']) & 15) | ((ob) << 4))
            count(P, cnt, cell, M_OBLIGATIONS_MET, 0, 1)
            emit(ctx, ev, cnt, EV_REPAY, i, ob, 0, 0, 0)
    # phase 6 (exits): terms served, obligations met, repair, lists abolished, moves
    if (mem & 255) != 0:
        for s in range(3):
            # a slot can see several lists entered from it (each found in turn), then a move
            nxt = 0
            while True:
                v = get_sl(rec, s)
                if v == 0:
                    break
                due = slot_due(rec, s, v, mem, ob, h, t, er, P, nxt)
                if due == 0:
                    break
                if due < 0:
                    # the exit reasons count in the order EXIT_TERM, EXIT_OBLIGATION, ...
                    mem = list_exit(i, li, s, due, EXIT_TERM - due, mem, P, rec, cnt, cell, ctx,
                                    ev)
                    break
                l2 = due - 1
                ll2 = er * L + l2
                mem = list_enter(i, li, l2, (v >> 7) & 1, P[P[OFF_O + T_LIST_FROM_RULE] + ll2], t,
                                 er, mem, P, rec, cnt, cell, ctx, ev)
                if P[P[OFF_O + T_LIST_FROM_MOVES] + ll2] != 0 and get_sl(rec, s) != 0:
                    mem = list_exit(i, li, s, EXIT_MOVED, 5, mem, P, rec, cnt, cell, ctx, ev)
                    break
                nxt = l2 + 1
    # phase 5: grades at the policy's cadence (a grade whose score has not moved stays as it
    # is, so only moved scores are recalculated), forced grades
    if np.int64(rec['score']) != score0 or np.int64(rec['fp0']) + np.int64(rec['fp1']) != fp0:
        dirty = 1
    nf = (np.int64(pub[1 - par, li]) >> 24) & 31
    if nf != 0:
        forced = nf
        recalc = True
    ovr_until = np.int64(rec['ovr'])
    if forced != 0 and t >= ovr_until:
        forced = 0
        recalc = True
    cad = P[P[OFF_O + T_CADENCE] + erk]
    if dirty and (cad == 0 or (cad == 1 and ctx[C_MONTH_START])
                  or (cad == 2 and ctx[C_YEAR_START])):
        recalc = True
    if ctx[C_BUSY] and (ctx[C_FIRST] or ctx[C_E] != ctx[C_E_PREV]):
        recalc = True  # the grade bands may have changed with the policy
    grade = old_grade
    honest = (p_in >> 20) & 15
    if not scored:
        grade = NO_GRADE
        honest = NO_GRADE
    elif recalc or old_grade == NO_GRADE:
        sc = np.int64(rec['score'])
        grade = grade_of(P, erk, sc)
        fp = np.int64(rec['fp0']) + np.int64(rec['fp1'])
        honest = grade_of(P, erk, sc - fp)
        dirty = 0
        if forced != 0:
            fg = forced & 15
            if fg > 0 and fg - 1 > grade:
                grade = fg - 1
            if ((forced >> 4) & 1) == 0 and fg > 0 and fg - 1 > honest:
                honest = fg - 1
    if grade != old_grade:
        count(P, cnt, cell, M_GRADE_COUNT, old_grade, -1)
        count(P, cnt, cell, M_GRADE_COUNT, grade, 1)
        emit(ctx, ev, cnt, EV_GRADE, i, old_grade, grade, -1, honest)
    # lists entered and left by grade (only when grades are recalculated)
    if recalc or grade != old_grade:
        for lst in range(L):
            ll = er * L + lst
            glo = P[P[OFF_O + T_LIST_GRADE_LO] + ll]
            if glo < 0 or P[P[OFF_O + T_LIST_ACTIVE] + ll] == 0:
                continue
            if P[P[OFF_O + T_LIST_SUBJECT_KIND] + lst] != kind:
                continue
            ghi = P[P[OFF_O + T_LIST_GRADE_HI] + ll]
            inside = grade != NO_GRADE and glo <= grade <= ghi
            on = (mem >> lst) & 1
            if inside and on == 0:
                fc = 0 if (honest != NO_GRADE and glo <= honest <= ghi) else 1
                mem = list_enter(i, li, lst, fc, P[P[OFF_O + T_LIST_GRADE_RULE] + ll], t, er, mem, P,
                                 rec, cnt, cell, ctx, ev)
            elif not inside and on != 0:
                s = find_slot(rec, lst)
                if s >= 0 and P[P[OFF_O + T_LIST_TERM] + ll] == 0:
                    mem = list_exit(i, li, s, EXIT_GRADE, 4, mem, P, rec, cnt, cell, ctx, ev)
    grades = (grade & 15) | ((honest & 15) << 4)
    # phase 7-8: service requests and decisions (others are read as of the start of the day).
    # The request draw names a slot, which belongs to at most one service of the subject's
    # kind; a service asked for more often than its slot allows takes the rest from a draw
    # of its own. A subject who knows it is listed asks less.
    h2 = rng.subject_hash(key_of(ctx, C_KEY_SVC), np.uint64(i))
    u = u32(h2)
    rb = svc_row(month, kind, bnd)
    aware = (mem & 255) != 0 and \
        u32lo(rng.sub_hash(h2, np.uint64(DRAW_AWARE))) < P[P[OFF_O + T_AWARE_THR] + e]
    slot = u // SVC_W
    s0 = P[P[OFF_O + T_SVC_SLOT] + kind * SVC_COLS + slot]
    if s0 >= 0:
        thr = P[P[OFF_O + T_SVC_THR_B] + rb * SVC_COLS + slot]
        if aware:
            thr = mod(thr, P[P[OFF_O + T_LISTED_REQUEST_FACTOR]])
        if u - slot * SVC_W < thr:
            request(i, li, s0, kind, age, inc, bnd, mem, grades, er, h2, P, rec, st, pub, ctx,
                    rep, popt, cnt, cell, ev)
    for j in range(P[P[OFF_O + T_SVC_OVER_N] + kind]):
        s2 = P[P[OFF_O + T_SVC_OVER] + kind * SVC_COLS + j]
        if s2 == s0:
            continue  # the draw fell in its own slot, which decided it
        uo = u32(rng.sub_hash(h2, np.uint64(DRAW_SVC_OVER + s2)))
        if uo < P[P[OFF_O + T_SVC_OVER_Q] + ((month - 1) * 2 + kind) * SVC_COLS + j]:
            thr = P[P[OFF_O + T_SVC_THR_B] + rb * SVC_COLS + P[P[OFF_O + T_SVC_COL] + s2]]
            if aware:
                thr = mod(thr, P[P[OFF_O + T_LISTED_REQUEST_FACTOR]])
            if uo < overflow_thr(thr, SVC_W, SVC_PER):
                request(i, li, s2, kind, age, inc, bnd, mem, grades, er, h2, P, rec, st, pub,
                        ctx, rep, popt, cnt, cell, ev)
    if (np.int64(rec['strikes']) & THROTTLED_BIT) != 0:
        throttle_lapses(i, rec, mem, grades, er, P, ctx, cnt, cell, ev)
    # phase 9: tomorrow's public word
    out = (mem & 65535) | ((grade & 15) << 16) | ((honest & 15) << 20) | (forced << 24)
    if scored:
        out |= 1 << 29
        out |= dirty << 30
    w1 = np.int64(rec['delayed']) & DELAYED_MASK
    w2 = np.int64(rec['appeal'])
    if w1 != 0 or w2 != 0:
        out |= PENDING_BIT
        if (mem & 255) == 0:
            out |= wake_day(w1, w2, t) << 8
    elif (mem & 255) == 0:
        out |= (np.int64(rec['bands']) & 127) << 8
    pub[1 - par, li] = np.uint32(out)
