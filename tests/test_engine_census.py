"""In the default scenario every mechanism fires (the issue's first "must hold").

The manifest's census of a run of the default scenario must show a non-zero count for every
act, every channel's true records, false records (overall and for every channel that makes
them), objections, appeals won and lost (of true and of false records), credit repair,
expiries, overrides, entries and exits of every list, every measure, every service outcome
the policies can produce, and wrongful decisions.

What "can" fire is read from the compiled policy and the calendar, not written down by
hand: a list entered only after D days on another list cannot be entered in a run shorter
than D days, and then neither can the measures it alone triggers, its exits, or repair if
only that list offers it. As shipped, the default scenario runs 1,095 days (a year of
burn-in, two reported years) and the serious dishonesty list needs 1,095 days on the
abnormal operations list, so that list, its measures and "moved" exits cannot fire (credit
repair can: the flight ban offers it too); the second run shows they do once the burn-in is
long enough (four years, from 2014-01-01, the start of the 2014-2020 Planning Outline).

A few grade perks of the city pilots cannot be reached with the shipped point tables; they
are listed in ``OUT_OF_REACH`` with the reason.

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
from socialcredit.run import simulate
from socialcredit.scenario import Scenario
from socialcredit.store import Run

#: Measures that the shipped policies and behaviour make practically unreachable, and why.
OUT_OF_REACH = {
    "hangzhou_deposit_free_rental": "Hangzhou starts everyone at 600 and its perks need 700; "
    "its rewards (blood donation +20, volunteering +5, returned money +10, heroic act +30) "
    "add a few points a year",
    "hangzhou_bikes": "as hangzhou_deposit_free_rental (700 or more)",
    "hangzhou_hospital": "as hangzhou_deposit_free_rental (more than 750)",
    "rongcheng_low_grade_loans": "grade D needs 400 points deducted, far beyond what the "
    "shipped deduction rates give in a few years; the measure ends on 2020-12-31",
    "rongcheng_aaa_heating": "AAA needs +50, i.e. two heroic acts (+30 each, about 0.05 % "
    "of adults a year): about one resident in a million-citizen, six-year run",
    "rongcheng_aaa_loans": "AAA, as rongcheng_aaa_heating",
    "rongcheng_aaa_bikes": "AAA, as rongcheng_aaa_heating",
}
#: Of those, the ones no seed will reach in these runs (asserted to stay silent).
NEVER = ("hangzhou_deposit_free_rental", "hangzhou_bikes", "hangzhou_hospital",
         "rongcheng_low_grade_loans")

RUNS = {
    # the default scenario as shipped: a million citizens, 2018-2019 after a year of burn-in
    "default": dict(citizens=None, burn_in=None),
    # the same with four years of burn-in, rescaled to a fifth
    "default_burn_in_from_2014": dict(citizens=200_000, burn_in=1461),
}


def scenario_of(name: str) -> Scenario:
    sc = Scenario.load("default")
    burn_in = RUNS[name]["burn_in"]
    if burn_in is not None:
        sc = sc.model_copy(update={"burn_in_days": burn_in})
    return sc


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


def reachable(model: Any) -> dict[str, set[str]]:
    """What the compiled policy lets happen within the run's calendar (see the module doc)."""
    pol = model.policy
    cal = Calendar(model)
    every = sorted(set(cal.epochs.tolist()))
    reported = sorted(set(cal.epochs[model.burn_in:].tolist()))
    R, L = len(pol.region_names), len(pol.list_names)
    last = model.total_days - 1
    on = [(e, r) for e in every for r in range(R)]
    earliest: dict[int, int] = {}  # list -> earliest day index it can be entered
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
    measures: set[int] = set()
    for e in reported:
        for r in range(R):
            for m in range(len(pol.measure_names)):
                if not pol.measure_active[e, r, m]:
                    continue
                lists = int(pol.measure_lists[e, r, m])
                if any((lists >> lst) & 1 for lst in earliest) or pol.measure_grade_lo[e, r, m] >= 0:
                    measures.add(m)
    measures = {m for m in measures if pol.measure_names[m] not in OUT_OF_REACH}
    outcomes = {f"granted_{s}" for s in pol.service_names}
    for m in measures:
        what = "denied" if pol.measure_effect[m] == 0 else "fast_tracked"
        outcomes.add(f"{what}_{pol.service_names[pol.measure_service[m]]}")
    cat = model.catalogue
    return {
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


SCALARS = ("objections", "appeals_won_true", "appeals_won_false", "appeals_lost_true",
           "appeals_lost_false", "expired_points", "overrides")


def test_every_mechanism_that_can_fire_does(census_run: tuple[str, dict[str, Any], Any]) -> None:
    name, census, model = census_run
    want = reachable(model)
    if name != "default":
        # the longer run is there to show what only its calendar makes reachable (the
        # serious-dishonesty list, its measures, "moved" exits); what the shipped run can
        # reach, the shipped run shows, and rare events (a listed debtor asking for honours,
        # about one in this run) are left to it
        base = reachable(build_model(scenario_of("default"), citizens=800))
        want = {family: keys - base.get(family, set()) for family, keys in want.items()}
    silent = [f"{family}.{key}" for family, keys in want.items() for key in sorted(keys)
              if census[family].get(key, 0) <= 0]
    silent += [key for key in SCALARS if census[key] <= 0]
    if "repair" in want["exit_reason"] and census["repairs"] <= 0:
        silent.append("repairs")
    if sum(census["records_false"].values()) <= 0:
        silent.append("records_false (all channels)")
    if sum(census["wrongful"].values()) <= 0:
        silent.append("wrongful (all services)")
    assert not silent, f"in the run '{name}' these never fired: {', '.join(silent)}"


def test_the_checklist_is_not_empty(census_run: tuple[str, dict[str, Any], Any]) -> None:
    """Guard against a reachability analysis that quietly requires nothing."""
    name, _, model = census_run
    want = reachable(model)
    assert len(want["acts"]) >= 40 and len(want["records_true"]) >= 15
    assert {"judgment_debtors", "train_ban", "abnormal_operations", "honour_roll"} <= want["list_exit"]
    assert {"term", "obligation", "appeal"} <= want["exit_reason"]
    assert len(want["measure_fired"]) >= 20
    four_years = name == "default_burn_in_from_2014"
    # credit repair of the flight ban is in reach of every calendar; the serious dishonesty
    # list needs 1,095 days on abnormal operations: out of reach of the shipped calendar,
    # within reach of four years
    assert "repair" in want["exit_reason"]
    assert ("serious_dishonesty" in want["list_exit"]) == four_years
    assert ("moved" in want["exit_reason"]) == four_years
    assert ({"sd_no_procurement", "sd_no_tenders", "sd_no_senior_posts"}
            <= want["measure_fired"]) == four_years


def test_what_the_shipped_point_tables_cannot_reach_stays_silent(
        census_run: tuple[str, dict[str, Any], Any]) -> None:
    """If one of these starts to fire, the policy or behaviour changed: move it back into the
    checklist by deleting it from OUT_OF_REACH."""
    _, census, _ = census_run
    assert {m: census["measure_fired"][m] for m in NEVER} == dict.fromkeys(NEVER, 0)


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
