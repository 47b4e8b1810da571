"""The compiled form of a policy: dense integer tables that the day kernel reads.

The policy layer (YAML, validation, layering, dated values) compiles into one
:class:`PolicyTables` for a run. The kernel never sees YAML or names, only these arrays;
names live in the ``*_names`` lists for the recorder, ``explain`` and the reports.

Axes (all arrays are C-contiguous numpy arrays with the dtype given):

- ``E`` epochs: the run's calendar is cut wherever any dated value of the policy changes;
  ``epoch_start[e]`` is the first day of epoch ``e`` as days since 1970-01-01 (int32,
  ascending, ``epoch_start[0]`` is a day on or before the first simulated day).
- ``R`` regions, in the scenario's order (``region_names``).
- ``K`` = 2 subject kinds: 0 citizen, 1 business.
- ``A`` acts, ``H`` channels, ``S`` services, in catalogue order.
- ``L`` lists (at most :data:`MAX_LISTS`), ``M`` measures, ``G`` grades (at most
  :data:`MAX_GRADES` per region and kind), ``Q`` rules (every rule that can move points,
  force a grade or enter a list), ``T`` act categories.

Conventions: days and terms are whole days (int32 or uint16); points are int16; probabilities
are uint64 thresholds in ``[0, 2**32]`` (see :func:`socialcredit.rng.threshold`); ``-1``
means "none" in signed index arrays. Grade index 0 is the best grade; larger is worse.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

MAX_LISTS = 8
MAX_GRADES = 15
MAX_CAPPED_CATEGORIES = 2
MAX_VALIDITY_YEARS = 2

CADENCE_DAILY = 0
CADENCE_MONTHLY = 1
CADENCE_YEARLY = 2

LIST_BLACK = 0
LIST_RED = 1

EFFECT_DENY = 0
EFFECT_FAST_TRACK = 1
EFFECT_THROTTLE = 2  # granted, but the connection stays throttled while the trigger holds

REACH_SUBJECT = 1  # the subject whose list or grade triggers the measure
REACH_CHILDREN = 2  # the children (age band 0) of a household whose adult triggers it
REACH_REPRESENTATIVE = 4  # the legal representative of a business that triggers it
REACH_REPRESENTED_BUSINESS = 8  # the businesses of a representative who triggers it


@dataclass
class PolicyTables:
    """Everything the kernel needs to know about the rules, as integers."""

    # --- names, for humans (not passed to kernels) ---------------------------------------
    policy_name: str
    region_names: list[str]
    act_names: list[str]
    channel_names: list[str]
    service_names: list[str]
    list_names: list[str]
    measure_names: list[str]
    rule_names: list[str]  # Q rule ids, e.g. "rongcheng.score.traffic_ticket"
    rule_references: list[str]  # Q references, one per rule
    category_names: list[str]  # T act categories
    grade_names: list[list[list[str]]]  # [R][K] -> grade names best first, e.g. ["AAA", ...]

    # --- calendar ------------------------------------------------------------------------
    epoch_start: np.ndarray  # int32[E] days since 1970-01-01

    # --- score (per epoch, region, kind) --------------------------------------------------
    scoring: np.ndarray  # uint8[E,R,K] 1 if subjects of this kind carry points and grades
    score_start: np.ndarray  # int16[E,R,K] starting points (used when scoring starts)
    score_floor: np.ndarray  # int16[E,R,K]
    score_ceiling: np.ndarray  # int16[E,R,K]
    consent_required: np.ndarray  # uint8[E,R] citizens without consent carry no points
    min_age_band: np.ndarray  # uint8[E,R] citizens below this age band carry no points
    cadence: np.ndarray  # uint8[E,R,K] CADENCE_* : when grades are recalculated
    n_grades: np.ndarray  # uint8[E,R,K] number of grades (0 when not scoring)
    grade_floor: np.ndarray  # int16[E,R,K,G] lowest score of grade g (descending in g);
    #                          scores below the last grade's floor still get the last grade

    # --- points per act (per epoch, region, act) ------------------------------------------
    act_points: np.ndarray  # int16[E,R,A] points per record of the act (0: no rule)
    act_rule: np.ndarray  # int16[E,R,A] index into rule_names of the points rule, -1 none
    act_validity: np.ndarray  # uint8[E,R,A] 0 permanent, else whole calendar years (1..2)
    act_escalation_pct: np.ndarray  # int16[E,R,A] extra % of a deduction per earlier
    #                                 penalised record of the subject in the same year
    act_category: np.ndarray  # int16[A] category index of each act (catalogue)
    cap_category: np.ndarray  # int16[E,R,MAX_CAPPED_CATEGORIES] capped category, -1 none
    cap_points: np.ndarray  # int16[E,R,MAX_CAPPED_CATEGORIES] max |deduction| per year
    override_grade: np.ndarray  # int8[E,R,A] grade forced by a record of the act, -1 none
    override_days: np.ndarray  # int16[E,R,A] how long the forced grade lasts
    override_rule: np.ndarray  # int16[E,R,A] rule index of the override, -1 none

    # --- lists (per epoch, region, list) --------------------------------------------------
    list_kind: np.ndarray  # uint8[L] LIST_BLACK or LIST_RED
    list_subject_kind: np.ndarray  # uint8[L] 0 citizens, 1 businesses
    list_active: np.ndarray  # uint8[E,R,L] 1 if the list exists here and now
    list_acts: np.ndarray  # uint8[E,R,L,A] 1 if a record of the act counts towards entry
    list_k: np.ndarray  # uint8[E,R,L] records needed within the window (1: one is enough)
    list_window: np.ndarray  # uint16[E,R,L] the window in days for k > 1
    list_entry_rule: np.ndarray  # int16[E,R,L] rule index of the act or k-in-window entry
    list_grade_lo: np.ndarray  # int8[E,R,L] enter while grade index in [lo, hi]; -1 none
    list_grade_hi: np.ndarray  # int8[E,R,L]
    list_grade_rule: np.ndarray  # int16[E,R,L] rule index of the grade entry, -1 none
    list_from: np.ndarray  # int8[E,R,L] enter after list_from_days on this list, -1 none
    list_from_days: np.ndarray  # uint16[E,R,L]
    list_from_moves: np.ndarray  # uint8[E,R,L] 1: leaving list_from on the move
    list_from_rule: np.ndarray  # int16[E,R,L]
    list_term: np.ndarray  # uint16[E,R,L] days listed; 0 = until another exit applies
    list_extend: np.ndarray  # uint16[E,R,L] days added by a new qualifying record
    list_exit_obligation: np.ndarray  # uint8[E,R,L] 1: leave once no obligation is open
    list_repair_min: np.ndarray  # uint16[E,R,L] days before repair can be granted, 0 none
    list_repair_thr: np.ndarray  # uint64[E,R,L] daily chance of repair once eligible

    # --- measures (per epoch, region, measure) -------------------------------------------
    measure_service: np.ndarray  # int16[M] service index the measure decides
    measure_effect: np.ndarray  # uint8[M] EFFECT_DENY, EFFECT_FAST_TRACK or EFFECT_THROTTLE
    measure_active: np.ndarray  # uint8[E,R,M]
    measure_lists: np.ndarray  # uint16[E,R,M] bitmask of lists that trigger it (any of)
    measure_grade_lo: np.ndarray  # int8[E,R,M] also triggered by a grade in [lo, hi], -1
    measure_grade_hi: np.ndarray  # int8[E,R,M]
    measure_reach: np.ndarray  # uint8[E,R,M] bitmask of REACH_*

    # --- objections and appeals (per epoch, region) ---------------------------------------
    objection_window: np.ndarray  # uint16[E,R] days to object; 0: records cannot be objected
    appeal_delay: np.ndarray  # uint16[E,R] days from objection to decision (<= 1023)
    appeal_win_true_thr: np.ndarray  # uint64[E,R] chance an objection to a true record wins
    appeal_win_false_thr: np.ndarray  # uint64[E,R] chance an objection to a false record wins

    def arrays(self) -> dict[str, np.ndarray]:
        """The numeric tables by field name (what kernels receive)."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
