"""In the shipped scenarios every mechanism fires (the issue's first "must hold").

The manifest's census of a run of the default scenario must show a non-zero count for every
act, every channel's true records, false records (overall and for every channel that makes
them), objections, appeals won and lost (of true and of false records), credit repair,
expiries, overrides, entries and exits of every list, every measure, every service outcome
the policies can produce, and wrongful decisions; a run of the unified scenario the same for
its own policy (which has no objections or appeals).

What "can" fire is read from the compiled policy and the calendar, not written down by
hand: a list entered only after D days on another list cannot be entered in a run shorter
than D days, and then neither can the measures it alone triggers, its exits, or repair if
only that list offers it. But every list and every measure that a shipped scenario's policy
holds must be within reach of that scenario's calendar: one that is not is named, and the
test fails (``test_every_shipped_list_and_measure_is_in_reach``). The default scenario burns
in from 2014-01-01, so the serious dishonesty list (1,095 days on the abnormal operations
list) is entered, and its measures and "moved" exits fire, in the reported years.

Runs use one thread: on a busy two-core machine, waking a second thread every day costs
more than it saves at this size (results are identical, see test_engine_determinism).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest

from socialcredit.engine import Calendar, build_model
from socialcredit.kernel import layout as LY
from socialcredit.run import simulate
from socialcredit.scenario import Scenario
from socialcredit.store import Run

RUNS = {
    # the default scenario as shipped: a million citizens, 2018-2021 after a year of burn-in
    "default": dict(citizens=None),
    # the popular account over the same calendar, rescaled to a fifth
    "unified": dict(citizens=200_000),
}


def scenario_of(name: str) -> Scenario:
    return Scenario.load(name)


@pytest.fixture(scope="module", params=list(RUNS))
def census_run(request: Any, tmp_path_factory: Any) -> tuple[str, dict[str, Any], Any]:
    name = request.param
    sc = scenario_of(name)
    citizens = RUNS[name]["citizens"]
    before = numba.get_num_threads()
    try:
        path = simulate(sc, out=tmp_path_factory.mktemp("census") / name, citizens=citizens,
                        threads=1)
    finally:
        numba.set_num_threads(before)
    with Run.open(path) as run:
        census = run.manifest["census"]
    # the policy tables and calendar of the same run (a tiny population suffices)
    model = build_model(sc, citizens=800)
    return name, census, model


def _earliest(model: Any) -> dict[int, int]:
    """list -> the earliest day index of the run's calendar on which it can be entered."""
    pol = model.policy
    cal = Calendar(model)
    every = sorted(set(cal.epochs.tolist()))
    R, L = len(pol.region_names), len(pol.list_names)
    last = model.total_days - 1
    on = [(e, r) for e in every for r in range(R)]
    earliest: dict[int, int] = {}
    for lst in range(L):
        if any(pol.list_active[e, r, lst] and (pol.list_acts[e, r, lst].any()
                                               or pol.list_grade_lo[e, r, lst] >= 0)
               for e, r in on):
            earliest[lst] = 0
    for _ in range(L):  # entry after time on another list, to a fixed point
        for lst in range(L):
            for e, r in on:
                src = int(pol.list_from[e, r, lst])
                if pol.list_active[e, r, lst] and src in earliest:
                    day = earliest[src] + int(pol.list_from_days[e, r, lst])
                    if day <= last:
                        earliest[lst] = min(earliest.get(lst, day), day)
    return earliest


def _measures_in_reach(model: Any, earliest: dict[int, int]) -> set[int]:
    """Measures in force in a reported epoch somewhere, with a trigger that can hold."""
    pol = model.policy
    cal = Calendar(model)
    reported = sorted(set(cal.epochs[model.burn_in:].tolist()))
    measures: set[int] = set()
    for e in reported:
        for r in range(len(pol.region_names)):
            for m in range(len(pol.measure_names)):
                if not pol.measure_active[e, r, m]:
                    continue
                lists = int(pol.measure_lists[e, r, m])
                if any((lists >> lst) & 1 for lst in earliest) or pol.measure_grade_lo[e, r, m] >= 0:
                    measures.add(m)
    return measures


def out_of_reach(model: Any) -> list[str]:
    """The lists and measures of the compiled policy that its calendar can never set off."""
    pol = model.policy
    earliest = _earliest(model)
    measures = _measures_in_reach(model, earliest)
    return ([f"list {n}" for j, n in enumerate(pol.list_names) if j not in earliest]
            + [f"measure {n}" for m, n in enumerate(pol.measure_names) if m not in measures])


def reachable(model: Any) -> dict[str, set[str]]:
    """What the compiled policy lets happen within the run's calendar (see the module doc)."""
    pol = model.policy
    cal = Calendar(model)
    every = sorted(set(cal.epochs.tolist()))
    reported = sorted(set(cal.epochs[model.burn_in:].tolist()))
    R, L = len(pol.region_names), len(pol.list_names)
    last = model.total_days - 1
    on = [(e, r) for e in every for r in range(R)]
    earliest = _earliest(model)
    by_acts = {lst for lst in range(L) if any(pol.list_acts[e, r, lst].any() for e, r in on)}
    exits: dict[str, bool] = {k: False for k in
                              ("term", "obligation", "repair", "appeal", "grade", "moved", "policy")}
    leaves: set[int] = set()
    for lst, day in earliest.items():
        for e, r in on:
            if not pol.list_active[e, r, lst]:
                continue
            term = int(pol.list_term[e, r, lst])
            rmin = int(pol.list_repair_min[e, r, lst])
            if 0 < term and day + term <= last:
                exits["term"] = True
                leaves.add(lst)
            if pol.list_exit_obligation[e, r, lst]:
                exits["obligation"] = True
                leaves.add(lst)
            if rmin > 0 and day + rmin <= last:
                exits["repair"] = True
                leaves.add(lst)
            if lst in by_acts and pol.objection_window[e, r] > 0:
                exits["appeal"] = True
                leaves.add(lst)
            if pol.list_grade_lo[e, r, lst] >= 0 and term == 0:
                exits["grade"] = True
                leaves.add(lst)
        for e, r in on:
            src = int(pol.list_from[e, r, lst])
            if src >= 0 and pol.list_from_moves[e, r, lst] and lst in earliest:
                exits["moved"] = True
                leaves.add(src)
    for r in range(R):
        for a, b in zip(every, every[1:], strict=False):
            gone = (pol.list_active[a, r] == 1) & (pol.list_active[b, r] == 0)
            for lst in np.nonzero(gone)[0]:
                if int(lst) in earliest:
                    exits["policy"] = True
                    leaves.add(int(lst))
    measures = _measures_in_reach(model, earliest)
    outcomes = {f"granted_{s}" for s in pol.service_names}
    scalars = set()
    for m in measures:
        effect = int(pol.measure_effect[m])
        if effect == LY.EFFECT_THROTTLE:
            # granted, with a throttled connection that ends when its trigger does
            scalars |= {"throttled_grants", "throttle_starts", "throttled_days"}
            if any((int(pol.measure_lists[e, r, m]) >> lst) & 1 for lst in leaves
                   for e, r in on):
                scalars.add("throttle_ends")
            continue
        what = "denied" if effect == LY.EFFECT_DENY else "fast_tracked"
        outcomes.add(f"{what}_{pol.service_names[pol.measure_service[m]]}")
    cat = model.catalogue
    if any(pol.objection_window[e, r] > 0 for e in reported for r in range(R)):
        scalars |= {"objections", "appeals_won_true", "appeals_won_false", "appeals_lost_true",
                    "appeals_lost_false"}
    if (pol.act_validity[reported] > 0).any():
        scalars.add("expired_points")
    if (pol.override_grade[reported] >= 0).any():
        scalars.add("overrides")
    return {
        "scalars": scalars,
        "acts": set(pol.act_names),
        "records_true": set(pol.channel_names),
        "records_false": {c.id for c in cat.channels if c.false_acts
                          and ((c.false_per_year or 0) > 0 or (c.misid_per_year or 0) > 0)},
        "list_enter": {pol.list_names[lst] for lst in earliest},
        "list_exit": {pol.list_names[lst] for lst in leaves},
        "exit_reason": {k for k, v in exits.items() if v},
        "measure_fired": {pol.measure_names[m] for m in measures},
        "decisions": outcomes,
    }


def test_every_mechanism_that_can_fire_does(census_run: tuple[str, dict[str, Any], Any]) -> None:
    name, census, model = census_run
    want = reachable(model)
    scalars = want.pop("scalars")
    silent = [f"{family}.{key}" for family, keys in want.items() for key in sorted(keys)
              if census[family].get(key, 0) <= 0]
    silent += [key for key in sorted(scalars) if census[key] <= 0]
    if "repair" in want["exit_reason"] and census["repairs"] <= 0:
        silent.append("repairs")
    if sum(census["records_false"].values()) <= 0:
        silent.append("records_false (all channels)")
    if sum(census["wrongful"].values()) <= 0:
        silent.append("wrongful (all services)")
    assert not silent, f"in the run '{name}' these never fired: {', '.join(silent)}"


@pytest.mark.parametrize("name", Scenario.shipped())
def test_every_shipped_list_and_measure_is_in_reach(name: str) -> None:
    """A list or measure that a shipped scenario's policy holds but its calendar can never set
    off (a list entered after more days on another than the run has, a measure in force
    only outside the reported days) is named here: lengthen the calendar or change the rule."""
    model = build_model(scenario_of(name), citizens=800 * len(Scenario.load(name).regions))
    missing = out_of_reach(model)
    assert not missing, f"the scenario '{name}' can never set off: {', '.join(missing)}"


def test_the_checklist_is_not_empty(census_run: tuple[str, dict[str, Any], Any]) -> None:
    """Guard against a reachability analysis that quietly requires nothing."""
    name, _, model = census_run
    want = reachable(model)
    pol = model.policy
    # every list and every measure of the run's policy is on the checklist
    assert want["list_enter"] == set(pol.list_names)
    assert want["measure_fired"] == set(pol.measure_names)
    assert len(want["acts"]) >= 40 and len(want["records_true"]) >= 15
    assert "repair" in want["exit_reason"] and "term" in want["exit_reason"]
    if name == "default":
        assert {"judgment_debtors", "train_ban", "abnormal_operations", "honour_roll",
                "serious_dishonesty"} <= want["list_exit"]
        assert {"obligation", "appeal", "moved"} <= want["exit_reason"]
        assert len(want["measure_fired"]) >= 35
        assert {"sd_no_procurement", "sd_no_tenders", "sd_no_senior_posts",
                "hangzhou_hospital", "rongcheng_aaa_heating", "rongcheng_low_grade_loans",
                "jd_represented_firm_no_procurement"} <= want["measure_fired"]
        assert {"objections", "appeals_won_false", "expired_points", "overrides"} <= want["scalars"]
    else:
        assert want["list_exit"] == {"blacklist", "business_blacklist"}
        assert len(want["measure_fired"]) >= 13
        assert {"expired_points", "overrides"} <= want["scalars"]
        assert "objections" not in want["scalars"]  # the popular account has no appeals


def test_the_census_counts_reported_days_only(tmp_path: Path) -> None:
    """Burn-in days are simulated but not reported: a run that is all burn-in but one day
    counts one day's acts."""
    sc = Scenario.load("default").model_copy(update={"burn_in_days": 30})
    before = numba.get_num_threads()
    try:
        one = simulate(sc, out=tmp_path / "one", citizens=4000, days=1, threads=1)
    finally:
        numba.set_num_threads(before)
    with Run.open(one) as run:
        census = run.manifest["census"]
        daily = run.table("daily")
    acts = sum(census["acts"].values())
    assert daily.num_rows > 0 and len(set(daily.column("day").to_pylist())) == 1
    cols = [c for c in daily.column_names if c.startswith("acts_")]
    assert acts == sum(sum(daily.column(c).to_pylist()) for c in cols)
