"""Compilation to PolicyTables: shapes, dtypes, epochs and exact values."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from socialcredit import rng
from socialcredit.catalogue import load_catalogue
from socialcredit.errors import UserError
from socialcredit.policy import PolicyTables, compile_policy, day_number
from socialcredit.policy.tables import (
    CADENCE_MONTHLY,
    CADENCE_YEARLY,
    EFFECT_DENY,
    EFFECT_FAST_TRACK,
    LIST_BLACK,
    LIST_RED,
    MAX_CAPPED_CATEGORIES,
    REACH_CHILDREN,
    REACH_REPRESENTATIVE,
    REACH_SUBJECT,
)

FIRST, LAST = dt.date(2014, 1, 1), dt.date(2022, 12, 31)
REGIONS = [("control", None), ("rongcheng", "rongcheng"), ("suqian", "suqian"), ("hangzhou", "hangzhou")]

# dtype and the axes of every array, as the docstrings of tables.py give them
SPEC = {
    "epoch_start": ("int32", "E"), "scoring": ("uint8", "ERK"), "score_start": ("int16", "ERK"),
    "score_floor": ("int16", "ERK"), "score_ceiling": ("int16", "ERK"),
    "consent_required": ("uint8", "ER"), "min_age_band": ("uint8", "ER"),
    "cadence": ("uint8", "ERK"), "n_grades": ("uint8", "ERK"), "grade_floor": ("int16", "ERKG"),
    "act_points": ("int16", "ERA"), "act_rule": ("int16", "ERA"), "act_validity": ("uint8", "ERA"),
    "act_escalation_pct": ("int16", "ERA"), "act_category": ("int16", "A"),
    "cap_category": ("int16", "ERC"), "cap_points": ("int16", "ERC"),
    "override_grade": ("int8", "ERA"), "override_days": ("int16", "ERA"), "override_rule": ("int16", "ERA"),
    "list_kind": ("uint8", "L"), "list_subject_kind": ("uint8", "L"), "list_active": ("uint8", "ERL"),
    "list_acts": ("uint8", "ERLA"), "list_k": ("uint8", "ERL"), "list_window": ("uint16", "ERL"),
    "list_entry_rule": ("int16", "ERL"), "list_grade_lo": ("int8", "ERL"), "list_grade_hi": ("int8", "ERL"),
    "list_grade_rule": ("int16", "ERL"), "list_from": ("int8", "ERL"), "list_from_days": ("uint16", "ERL"),
    "list_from_moves": ("uint8", "ERL"), "list_from_rule": ("int16", "ERL"), "list_term": ("uint16", "ERL"),
    "list_extend": ("uint16", "ERL"), "list_exit_obligation": ("uint8", "ERL"),
    "list_repair_min": ("uint16", "ERL"), "list_repair_thr": ("uint64", "ERL"),
    "measure_service": ("int16", "M"), "measure_effect": ("uint8", "M"), "measure_active": ("uint8", "ERM"),
    "measure_lists": ("uint16", "ERM"), "measure_grade_lo": ("int8", "ERM"), "measure_grade_hi": ("int8", "ERM"),
    "measure_reach": ("uint8", "ERM"), "objection_window": ("uint16", "ER"), "appeal_delay": ("uint16", "ER"),
    "appeal_win_true_thr": ("uint64", "ER"), "appeal_win_false_thr": ("uint64", "ER"),
}


@pytest.fixture(scope="module")
def tables() -> PolicyTables:
    return compile_policy("national", REGIONS, ["list_term_one_year"], FIRST, LAST)


def _epoch(t: PolicyTables, day: dt.date) -> int:
    return int(np.searchsorted(t.epoch_start, day_number(day), side="right") - 1)


def test_every_array_has_its_dtype_and_shape(tables: PolicyTables) -> None:
    t = tables
    cat = load_catalogue()
    sizes = {
        "E": len(t.epoch_start), "R": len(REGIONS), "K": 2, "A": len(cat.acts),
        "L": len(t.list_names), "M": len(t.measure_names), "C": MAX_CAPPED_CATEGORIES,
        "G": t.grade_floor.shape[-1],
    }
    arrays = t.arrays()
    numeric = {f.name for f in dataclasses.fields(t)} - {
        "policy_name", "region_names", "act_names", "channel_names", "service_names", "list_names",
        "measure_names", "rule_names", "rule_references", "category_names", "grade_names",
    }
    assert set(arrays) == numeric == set(SPEC)
    for name, (dtype, axes) in SPEC.items():
        arr = arrays[name]
        assert arr.dtype == np.dtype(dtype), name
        assert arr.shape == tuple(sizes[a] for a in axes), name
        assert arr.flags.c_contiguous, name
    assert sizes["G"] >= 8  # Suqian has 8 grades
    assert len(t.rule_names) == len(t.rule_references)
    assert t.act_rule.max() < len(t.rule_names) and t.list_entry_rule.max() < len(t.rule_names)


def test_epochs_cut_where_values_change(tables: PolicyTables) -> None:
    starts = [dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in tables.epoch_start]
    # 2014-07-01: airlines' block of listed debtors; 2016-01-21: the joint punishment
    # memorandum; 2018-05-01: the transport blacklists
    assert starts == [FIRST, dt.date(2014, 7, 1), dt.date(2016, 1, 21), dt.date(2018, 5, 1),
                      dt.date(2021, 1, 1)]
    assert np.all(np.diff(tables.epoch_start) > 0)


def test_traffic_ticket_costs_five_in_rongcheng_and_nothing_in_control(tables: PolicyTables) -> None:
    t = tables
    a = t.act_names.index("traffic_ticket")
    r_control, r_rc = t.region_names.index("control"), t.region_names.index("rongcheng")
    assert (t.act_points[:, r_rc, a] == -5).all()
    assert (t.act_points[:, r_control, a] == 0).all()
    assert (t.act_rule[:, r_control, a] == -1).all()
    assert t.rule_names[t.act_rule[0, r_rc, a]] == "rongcheng.score.traffic_ticket"
    assert "[R]" in t.rule_references[t.act_rule[0, r_rc, a]]
    s = t.region_names.index("suqian")
    assert t.act_points[0, s, a] == -10


def test_consent_required_changes_at_2021_in_rongcheng(tables: PolicyTables) -> None:
    t = tables
    r = t.region_names.index("rongcheng")
    h = t.region_names.index("hangzhou")
    assert t.consent_required[_epoch(t, dt.date(2020, 12, 31)), r] == 0
    assert t.consent_required[_epoch(t, dt.date(2021, 1, 1)), r] == 1
    assert (t.consent_required[:, h] == 1).all()
    assert (t.consent_required[:, t.region_names.index("control")] == 0).all()


def test_scores_grades_and_cadence(tables: PolicyTables) -> None:
    t = tables
    c, rc = t.region_names.index("control"), t.region_names.index("rongcheng")
    assert (t.scoring[:, c, 0] == 0).all() and (t.scoring[:, c, 1] == 1).all()
    assert (t.n_grades[:, c, 0] == 0).all()
    assert t.grade_names[c] == [[], ["A", "B", "C", "D"]]
    assert t.grade_names[rc][0] == ["AAA", "AA", "A", "B", "C", "D"]
    assert list(t.grade_floor[0, rc, 0, :6]) == [1050, 1030, 960, 850, 600, 0]
    assert list(t.grade_floor[0, c, 1, :4]) == [90, 70, 40, 0]
    assert t.score_start[0, rc, 0] == 1000 and t.score_start[0, c, 1] == 100
    assert t.cadence[0, rc, 0] == CADENCE_MONTHLY and t.cadence[0, c, 1] == CADENCE_YEARLY
    a = t.act_names.index("drunk_driving")
    assert t.override_grade[0, rc, a] == 4  # C
    assert t.override_days[0, rc, a] == 365
    assert t.override_grade[0, c, a] == -1
    ev = t.act_names.index("tax_evasion")
    assert (t.override_grade[:, :, ev] == 3).all()  # D, mandatory nationally
    s = t.region_names.index("suqian")
    assert t.cap_category[0, s, 0] == t.category_names.index("traffic") and t.cap_points[0, s, 0] == 50
    assert (t.cap_category[0, s, 1:] == -1).all()
    assert t.act_category[a] == t.category_names.index("traffic")


def test_lists_and_their_switches(tables: PolicyTables) -> None:
    t = tables
    L = {name: i for i, name in enumerate(t.list_names)}
    assert t.list_names[:2] == ["judgment_debtors", "judgment_debtor_firms"]
    jd, train, ab, sd = L["judgment_debtors"], L["train_ban"], L["abnormal_operations"], L["serious_dishonesty"]
    assert t.list_kind[jd] == LIST_BLACK and t.list_kind[L["honour_roll"]] == LIST_RED
    assert t.list_subject_kind[jd] == 0 and t.list_subject_kind[ab] == 1
    e_before, e_after = _epoch(t, dt.date(2018, 4, 30)), _epoch(t, dt.date(2018, 5, 1))
    assert (t.list_active[e_before, :, train] == 0).all() and (t.list_active[e_after, :, train] == 1).all()
    assert (t.list_term[:, :, jd] == 365).all()  # the reform
    assert (t.list_extend[:, :, jd] == 365).all()
    assert (t.list_exit_obligation[:, :, jd] == 1).all()
    assert t.list_acts[0, 0, jd, t.act_names.index("court_default")] == 1
    assert t.list_acts[0, 0, jd].sum() == 1
    assert t.rule_names[t.list_entry_rule[0, 0, jd]] == "national.list.judgment_debtors.acts"
    assert t.list_term[e_after, 0, train] == 180 and t.list_term[e_after, 0, L["flight_ban"]] == 365
    assert t.list_from[0, 0, sd] == ab and t.list_from_days[0, 0, sd] == 1095 and t.list_from_moves[0, 0, sd] == 1
    assert t.list_repair_min[0, 0, sd] == 365
    assert t.list_repair_thr[0, 0, sd] == rng.threshold(0.002)
    assert t.list_from[0, 0, jd] == -1 and t.list_grade_lo[0, 0, jd] == -1


def test_measures_reach_and_triggers(tables: PolicyTables) -> None:
    t = tables
    M = {name: i for i, name in enumerate(t.measure_names)}
    L = {name: i for i, name in enumerate(t.list_names)}
    flights = M["jd_no_flights"]
    assert t.service_names[t.measure_service[flights]] == "flight"
    assert t.measure_effect[flights] == EFFECT_DENY
    on = t.measure_active[:, :, flights] == 1  # from 2014-07-01
    assert on.any() and not on.all()
    assert (t.measure_lists[:, :, flights][on] == (1 << L["judgment_debtors"]) | (1 << L["judgment_debtor_firms"])).all()
    assert (t.measure_reach[:, :, flights][on] == REACH_SUBJECT | REACH_REPRESENTATIVE).all()
    assert (t.measure_reach[:, :, M["jd_no_private_school"]] == REACH_CHILDREN).all()
    rc = t.region_names.index("rongcheng")
    heat = M["rongcheng_aaa_heating"]
    assert t.measure_effect[heat] == EFFECT_FAST_TRACK
    assert (t.measure_active[:, rc, heat] == 1).all()
    assert (t.measure_active[:, t.region_names.index("control"), heat] == 0).all()
    assert t.measure_grade_lo[0, rc, heat] == 0 and t.measure_grade_hi[0, rc, heat] == 0
    low = M["rongcheng_low_grade_loans"]
    assert t.measure_active[_epoch(t, dt.date(2020, 12, 31)), rc, low] == 1
    assert t.measure_active[_epoch(t, dt.date(2021, 1, 1)), rc, low] == 0
    tax_a = M["tax_a_business_loans"]
    assert (t.measure_grade_lo[:, :, tax_a] == 0).all() and (t.measure_lists[:, :, tax_a] == 0).all()


def test_appeals_become_thresholds(tables: PolicyTables) -> None:
    t = tables
    assert (t.objection_window == 10).all() and (t.appeal_delay == 14).all()
    assert (t.appeal_win_false_thr == rng.threshold(0.6)).all()
    assert (t.appeal_win_true_thr == rng.threshold(0.05)).all()


def test_unified_scores_everyone_from_2020() -> None:
    """Consenting subjects before 2020, everyone from 2020-01-01: one dated switch, two epochs."""
    t = compile_policy("unified", [("beijing", None), ("control", None)], [], FIRST, LAST)
    days = [dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in t.epoch_start]
    assert days == [FIRST, dt.date(2020, 1, 1)]
    assert (t.scoring == 1).all()
    assert t.consent_required.tolist() == [[1, 1], [0, 0]]
    a = t.act_names.index("criticise_government")
    assert (t.act_points[:, :, a] == -50).all() and (t.act_escalation_pct[:, :, a] == 50).all()
    assert t.act_validity[0, 0, t.act_names.index("jaywalking")] == 1
    bl = t.list_names.index("blacklist")
    assert t.list_grade_lo[0, 0, bl] == 4 and t.list_grade_hi[0, 0, bl] == 5  # C and D
    assert t.rule_names[t.list_grade_rule[0, 0, bl]] == "unified.list.blacklist.grades"
    assert (t.objection_window == 0).all()


def test_compiling_twice_gives_identical_tables() -> None:
    a = compile_policy("national", REGIONS, [], FIRST, LAST)
    b = compile_policy("national", REGIONS, [], FIRST, LAST)
    for name, arr in a.arrays().items():
        assert np.array_equal(arr, b.arrays()[name]), name
    assert a.rule_names == b.rule_names


def test_run_inside_one_epoch_has_one_epoch() -> None:
    t = compile_policy("national", REGIONS, [], dt.date(2019, 1, 1), dt.date(2019, 12, 31))
    assert list(t.epoch_start) == [day_number(dt.date(2019, 1, 1))]


def test_more_than_eight_lists_across_regions(tmp_path: Path) -> None:
    for region, name in (("suqian", "ext_a"), ("hangzhou", "ext_b")):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\nkind: extension\nextends: national\nregion: {region}\nlists:\n"
            f"  - {{id: {name}_list, kind: black, subject: citizen, authority: t,\n"
            f"     entry: {{acts: [fraud]}}, reference: t}}\n",
            encoding="utf-8",
        )
    regions = [("suqian", str(tmp_path / "ext_a.yaml")), ("hangzhou", str(tmp_path / "ext_b.yaml"))]
    with pytest.raises(UserError) as info:
        compile_policy("national", regions, [], FIRST, LAST)
    assert "more than 8 lists" in info.value.message
    assert info.value.path == str(tmp_path / "ext_b.yaml") and info.value.line == 6


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ((["rongcheng"], [("control", None)], []), "is an extension, not a baseline"),
        (("national", [("atlantis", None)], []), "unknown region 'atlantis'"),
        (("national", [("control", None), ("control", None)], []), "listed twice"),
        (("national", [("control", None)], ["rongcheng_opt_in"]), "which no region of this run uses"),
        (("unified", [("rongcheng", "rongcheng")], []), "not the baseline 'unified'"),
        (("national", [("control", None)], ["national"]), "is a baseline, not a reform"),
    ],
)
def test_compile_errors(args: tuple, fragment: str) -> None:
    baseline, regions, reforms = args
    if isinstance(baseline, list):
        baseline = baseline[0]
    with pytest.raises(UserError) as info:
        compile_policy(baseline, regions, reforms, FIRST, LAST)
    assert fragment in info.value.message
