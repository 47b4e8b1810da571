"""Names of the packed tables, dimensions, events and metrics shared by kernels and engine.

Kernels receive every rule and behaviour table packed into one int64 array ``P`` with an
offset array ``O`` (``P[O[T_X] + flat_index]``), the dimensions in ``D``, and the metric
offsets in ``MO``. One packed array instead of a hundred arguments keeps a CUDA kernel's
parameter block small and lets one compiled kernel serve every policy: the tables are
arguments, never globals, so numba's cache holds across policies.

The constants below are plain module-level integers, which numba folds at compile time.
"""

from __future__ import annotations

# --- dimensions: D[...] --------------------------------------------------------------------
D_E, D_R, D_A, D_H, D_S, D_L, D_M, D_G, D_P, D_T, D_C, D_B, D_CELLS = range(13)
N_DIMS = 13
MAX_ACT_CHANNELS = 4
#: The draw layout (DESIGN 2.9, docs/design-notes.md). A subject-day's 32-bit act draw (and
#: its false-record draw) is cut into ``ACT_SLOTS`` fixed slots of ``ACT_W``: the j-th act of
#: a kind in catalogue order owns slot j, whose number is the draw's top bits; the act happens
#: when the draw's low bits fall below the act's own threshold. The request draw is cut into
#: ``SVC_SLOTS`` slots of ``SVC_W`` the same way (rows padded to ``SVC_COLS``). No slot's
#: place depends on any rate, so no act, channel or service moves another's draws.
ACT_SLOTS = 64
ACT_SHIFT = 26
ACT_W = 1 << ACT_SHIFT
ACT_LOW = ACT_W - 1
SVC_SLOTS = 24
SVC_W = (1 << 32) // SVC_SLOTS
SVC_COLS = 32
#: An act (or service) likelier than its slot is wide gets the rest from a draw of its own
#: (``behaviour.overflow_q``): these are ``ONE // width`` for the two widths.
ACT_PER = (1 << 32) // ACT_W
SVC_PER = (1 << 32) // SVC_W
assert ACT_SLOTS * ACT_W == 1 << 32 and SVC_SLOTS < SVC_COLS
RETRY_MAX = 3  # further attempts after a denial on the same day
NO_GRADE = 15

# --- the packed array P: a header, then the tables -----------------------------------------
# P[0:N_DIMS] dims; P[OFF_O + T_X] the offset of table X in P; P[OFF_MO + M_X] the first
# counter column of metric family X (P[OFF_MO + N_METRICS] the number of counter columns).
OFF_O = 16
OFF_MO = 144
TABLE_BASE = 208

# --- packed tables: P[P[OFF_O + T_X] + ...] -----------------------------------------------
TABLES = [
    # policy, per epoch and region (see socialcredit.policy.tables.PolicyTables)
    "scoring", "score_start", "score_floor", "score_ceiling", "consent_required", "min_age_band",
    "cadence", "n_grades", "grade_floor",
    "act_points", "act_rule", "act_validity", "act_escalation_pct", "act_category",
    "cap_category", "cap_points", "override_grade", "override_days", "override_rule",
    "list_kind", "list_subject_kind", "list_active", "list_acts", "list_k", "list_window",
    "list_entry_rule", "list_grade_lo", "list_grade_hi", "list_grade_rule", "list_from",
    "list_from_days", "list_from_moves", "list_from_rule", "list_term", "list_extend",
    "list_exit_obligation", "list_repair_min", "list_repair_thr",
    "measure_service", "measure_effect", "measure_active", "measure_lists",
    "measure_grade_lo", "measure_grade_hi", "measure_reach",
    "objection_window", "appeal_delay", "appeal_win_true_thr", "appeal_win_false_thr",
    # behaviour (scenario + catalogue), see socialcredit.behaviour
    "act_kind", "act_obligation", "act_met_thr", "act_thr", "act_slot", "act_max", "act_slot_max",
    "act_mod_income", "act_mod_edu", "act_mod_age", "act_mod_urban", "act_mod_listed",
    "act_mod_policy", "act_channels", "mod_cap",
    "chan_cov", "chan_delay",
    "pair_act", "pair_chan", "pair_kind", "pair_thr", "pair_misid", "pair_slot", "pair_max",
    "pair_slot_max", "chan_misid_age", "chan_misid_income",
    "svc_kind", "svc_thr_b", "svc_slot", "svc_col", "svc_retry_thr",
    "svc_economic",
    "aware_thr", "listed_request_factor", "obj_thr", "obj_mod_edu", "obj_mod_income",
    "repay_thr", "repay_listed_mod", "econ_drop_thr",
    "svc_measures", "svc_nmeasures",
    "svc_plain", "act_over", "act_over_n", "act_over_q", "svc_over", "svc_over_n", "svc_over_q",
]  # fmt: skip
T = {name: i for i, name in enumerate(TABLES)}

(
    T_SCORING, T_SCORE_START, T_SCORE_FLOOR, T_SCORE_CEILING, T_CONSENT_REQUIRED, T_MIN_AGE_BAND,
    T_CADENCE, T_N_GRADES, T_GRADE_FLOOR,
    T_ACT_POINTS, T_ACT_RULE, T_ACT_VALIDITY, T_ACT_ESCALATION_PCT, T_ACT_CATEGORY,
    T_CAP_CATEGORY, T_CAP_POINTS, T_OVERRIDE_GRADE, T_OVERRIDE_DAYS, T_OVERRIDE_RULE,
    T_LIST_KIND, T_LIST_SUBJECT_KIND, T_LIST_ACTIVE, T_LIST_ACTS, T_LIST_K, T_LIST_WINDOW,
    T_LIST_ENTRY_RULE, T_LIST_GRADE_LO, T_LIST_GRADE_HI, T_LIST_GRADE_RULE, T_LIST_FROM,
    T_LIST_FROM_DAYS, T_LIST_FROM_MOVES, T_LIST_FROM_RULE, T_LIST_TERM, T_LIST_EXTEND,
    T_LIST_EXIT_OBLIGATION, T_LIST_REPAIR_MIN, T_LIST_REPAIR_THR,
    T_MEASURE_SERVICE, T_MEASURE_EFFECT, T_MEASURE_ACTIVE, T_MEASURE_LISTS,
    T_MEASURE_GRADE_LO, T_MEASURE_GRADE_HI, T_MEASURE_REACH,
    T_OBJECTION_WINDOW, T_APPEAL_DELAY, T_APPEAL_WIN_TRUE_THR, T_APPEAL_WIN_FALSE_THR,
    T_ACT_KIND, T_ACT_OBLIGATION, T_ACT_MET_THR, T_ACT_THR, T_ACT_SLOT, T_ACT_MAX, T_ACT_SLOT_MAX,
    T_ACT_MOD_INCOME, T_ACT_MOD_EDU, T_ACT_MOD_AGE, T_ACT_MOD_URBAN, T_ACT_MOD_LISTED,
    T_ACT_MOD_POLICY, T_ACT_CHANNELS, T_MOD_CAP,
    T_CHAN_COV, T_CHAN_DELAY,
    T_PAIR_ACT, T_PAIR_CHAN, T_PAIR_KIND, T_PAIR_THR, T_PAIR_MISID, T_PAIR_SLOT, T_PAIR_MAX,
    T_PAIR_SLOT_MAX, T_CHAN_MISID_AGE, T_CHAN_MISID_INCOME,
    T_SVC_KIND, T_SVC_THR_B, T_SVC_SLOT, T_SVC_COL, T_SVC_RETRY_THR,
    T_SVC_ECONOMIC,
    T_AWARE_THR, T_LISTED_REQUEST_FACTOR, T_OBJ_THR, T_OBJ_MOD_EDU, T_OBJ_MOD_INCOME,
    T_REPAY_THR, T_REPAY_LISTED_MOD, T_ECON_DROP_THR,
    T_SVC_MEASURES, T_SVC_NMEASURES,
    T_SVC_PLAIN, T_ACT_OVER, T_ACT_OVER_N, T_ACT_OVER_Q, T_SVC_OVER, T_SVC_OVER_N, T_SVC_OVER_Q,
) = range(len(TABLES))  # fmt: skip

# --- events: one int32 row of EV_WIDTH per event --------------------------------------------
EV_WIDTH = 6  # type, subject, a, b, c, d
EV_ACT = 1  # a=act, b=obligation left open (0/1), c=obligation met at once (0/1)
EV_RECORD = 2  # a=act, b=channel, c=true (1) / false (0), d=delayed (1) / immediate (0) /
#               corroborating (2: another channel's record of an act already on file)
EV_LEDGER = 3  # a=rule (-2 expiry, -3 appeal reversal, -4 scoring starts), b=points, c=score
EV_LIST = 4  # a=list, b=event (0 enter, 1 extend, 2 exit), c=reason (rule or EXIT_*), d=false
EV_DECISION = 5  # a=service, b=outcome (0 granted, 1 denied, 2 fast-tracked), c=measure, d=wrong
EV_GRADE = 6  # a=old grade, b=new grade, c=override rule or -1, d=honest grade
EV_OBJECTION = 7  # a=act, b=channel, c=true, d=overflow (1: no free appeal slot)
EV_APPEAL = 8  # a=act, b=channel, c=true, d=won
EV_REPAY = 9  # a=obligations still open
EV_INCOME = 10  # a=old income band, b=new income band
EV_OVERRIDE = 11  # a=act, b=grade, c=rule, d=until day index
EV_RESTRICTION = 12  # a=service, b=1 starts / 0 ends, c=measure (start) or -1, d=wrongful
EV_NAMES = {
    EV_ACT: "act", EV_RECORD: "record", EV_LEDGER: "points", EV_LIST: "list",
    EV_DECISION: "decision", EV_GRADE: "grade", EV_OBJECTION: "objection",
    EV_APPEAL: "appeal", EV_REPAY: "repayment", EV_INCOME: "income", EV_OVERRIDE: "override",
    EV_RESTRICTION: "restriction",
}  # fmt: skip

RULE_EXPIRY = -2
RULE_APPEAL = -3
RULE_START = -4

LIST_ENTER, LIST_EXTEND, LIST_EXIT = 0, 1, 2
# exit reasons are negative so they never collide with rule indices
EXIT_TERM, EXIT_OBLIGATION, EXIT_REPAIR, EXIT_APPEAL, EXIT_GRADE, EXIT_MOVED, EXIT_POLICY = (
    -10, -11, -12, -13, -14, -15, -16,
)
EXIT_NAMES = {
    EXIT_TERM: "term served", EXIT_OBLIGATION: "obligation met", EXIT_REPAIR: "credit repair",
    EXIT_APPEAL: "appeal won", EXIT_GRADE: "grade changed", EXIT_MOVED: "moved to another list",
    EXIT_POLICY: "list abolished",
}  # fmt: skip
OUT_GRANTED, OUT_DENIED, OUT_FAST = 0, 1, 2
OUTCOME_NAMES = ["granted", "denied", "fast_tracked"]
#: A measure's effect (``policy.tables``): deny the request, fast-track it, or grant it with
#: a throttled connection that stays throttled while the measure's trigger holds.
EFFECT_DENY, EFFECT_FAST_TRACK, EFFECT_THROTTLE = 0, 1, 2
RESTRICTION_END, RESTRICTION_START = 0, 1

# emit levels
EMIT_NONE, EMIT_TABLES, EMIT_ALL = 0, 1, 2

# --- metrics: counters per day and cell (region x kind x band) ------------------------------
# MO[M_X] is the first column of a metric family; families sized by the dimensions.
METRICS = [
    "acts", "records_true", "records_false", "list_enter", "list_extend", "list_exit",
    "exit_reason", "decisions", "wrongful", "measure_fired", "points_up", "points_down",
    "expired_points", "objections", "objection_overflow", "appeals_won_true",
    "appeals_won_false", "appeals_lost_true", "appeals_lost_false", "repairs", "overrides",
    "obligations_created", "obligations_met", "delay_overflow", "list_overflow",
    "income_drops", "requests", "retries", "records_corroborating", "throttle_starts",
    "throttle_ends", "throttled_grants",
    # stocks (kept as daily deltas; the engine sums them)
    "grade_count", "listed", "listed_false", "score_sum", "scored", "subjects", "throttled",
]  # fmt: skip
(
    M_ACTS, M_RECORDS_TRUE, M_RECORDS_FALSE, M_LIST_ENTER, M_LIST_EXTEND, M_LIST_EXIT,
    M_EXIT_REASON, M_DECISIONS, M_WRONGFUL, M_MEASURE_FIRED, M_POINTS_UP, M_POINTS_DOWN,
    M_EXPIRED_POINTS, M_OBJECTIONS, M_OBJECTION_OVERFLOW, M_APPEALS_WON_TRUE,
    M_APPEALS_WON_FALSE, M_APPEALS_LOST_TRUE, M_APPEALS_LOST_FALSE, M_REPAIRS, M_OVERRIDES,
    M_OBLIGATIONS_CREATED, M_OBLIGATIONS_MET, M_DELAY_OVERFLOW, M_LIST_OVERFLOW,
    M_INCOME_DROPS, M_REQUESTS, M_RETRIES, M_RECORDS_CORROBORATING, M_THROTTLE_STARTS,
    M_THROTTLE_ENDS, M_THROTTLED_GRANTS,
    M_GRADE_COUNT, M_LISTED, M_LISTED_FALSE, M_SCORE_SUM, M_SCORED, M_SUBJECTS, M_THROTTLED,
) = range(len(METRICS))  # fmt: skip
N_METRICS = len(METRICS)
STOCK_METRICS = {"grade_count", "listed", "listed_false", "score_sum", "scored", "subjects",
                 "throttled"}
N_EXIT_REASONS = 7

# cells: (region, kind, band) with band = income*2 + urban for citizens, size for businesses
CELLS_PER_REGION = 16  # 8 citizen bands + 8 (4 used) business bands


def metric_sizes(A: int, H: int, S: int, L: int, M: int, G: int) -> dict[str, int]:
    """How many columns each metric family has."""
    sizes = {name: 1 for name in METRICS}
    sizes.update(
        acts=A, records_true=H, records_false=H, records_corroborating=H, list_enter=L, list_extend=L, list_exit=L,
        exit_reason=N_EXIT_REASONS, decisions=S * 3, wrongful=S, measure_fired=M,
        grade_count=NO_GRADE + 1, listed=L, listed_false=L,
    )  # fmt: skip
    return sizes
