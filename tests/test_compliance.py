"""Compliance under pressure (DESIGN 2.8), measured from a run's events.

With the feedback switch off, a listed debtor meets its obligations at the same daily rate
as an unlisted one; with it on, at ``compliance_factor`` times that rate. The rates are
measured, not read from the tables: every subject-day with an open obligation is at risk,
classed by whether the subject was on a list at the start of the day.
"""

from __future__ import annotations

import math

import numpy as np

from engine_support import run_every_event
from socialcredit.engine import build_model
from socialcredit.kernel import layout as LY
from socialcredit.scenario import Scenario


def measured_rates(compliance: bool, factor: float = 3.0) -> dict[str, tuple[int, int]]:
    """(repayments, subject-days at risk) for listed and unlisted debtors."""
    data = Scenario.load("default").to_dict()
    data.update(seed=5, days=365, burn_in_days=0, start="2018-01-01",
                feedback={"compliance": compliance})
    beh = data["behaviour"]
    beh["repayment_per_year"] = 4.0
    beh["compliance_factor"] = factor
    # many debtors, so that the listed ones are counted in thousands of days
    beh["acts"] = {"court_default": {"rate_per_year": 0.08},
                   "firm_court_default": {"rate_per_year": 0.4}}
    model = build_model(Scenario.from_dict(data).rescaled(12000))
    res = run_every_event(model)
    T = model.total_days
    by_subject: dict[int, list[tuple[int, np.ndarray]]] = {}
    for t, ev in enumerate(res.events):
        for row in ev:
            if row[0] in (LY.EV_ACT, LY.EV_REPAY, LY.EV_LIST):
                by_subject.setdefault(int(row[1]), []).append((t, row))
    out = {"listed": [0, 0], "unlisted": [0, 0]}
    for rows in by_subject.values():
        ob, lists, last = 0, 0, 0
        k = 0
        while k < len(rows):
            day = rows[k][0]
            # days (last, day] are at risk with the state at the end of the day before
            if ob > 0:
                out["listed" if lists else "unlisted"][1] += day - last
            status = "listed" if lists else "unlisted"
            had = ob
            while k < len(rows) and rows[k][0] == day:
                typ, a, b = int(rows[k][1][0]), int(rows[k][1][2]), int(rows[k][1][3])
                if typ == LY.EV_ACT and b:
                    ob = min(15, ob + 1)
                elif typ == LY.EV_REPAY:
                    if had > 0:
                        out[status][0] += 1
                    ob = a
                elif typ == LY.EV_LIST and b == LY.LIST_ENTER:
                    lists += 1
                elif typ == LY.EV_LIST and b == LY.LIST_EXIT:
                    lists -= 1
                k += 1
            last = day
        if ob > 0:
            out["listed" if lists else "unlisted"][1] += T - 1 - last
    return {k: (v[0], v[1]) for k, v in out.items()}


def ratio_with_error(r: dict[str, tuple[int, int]]) -> tuple[float, float]:
    (nl, dl), (nu, du) = r["listed"], r["unlisted"]
    assert nl > 200 and nu > 200, r
    ratio = (nl / dl) / (nu / du)
    return ratio, ratio * math.sqrt(1 / nl + 1 / nu)  # Poisson error of a ratio of rates


def test_compliance_off_listed_debtors_repay_as_fast_as_the_others() -> None:
    ratio, err = ratio_with_error(measured_rates(False))
    assert abs(ratio - 1.0) < 4 * err + 0.05, (ratio, err)


def test_compliance_on_listed_debtors_repay_at_the_configured_factor() -> None:
    ratio, err = ratio_with_error(measured_rates(True, 3.0))
    assert abs(ratio - 3.0) < 4 * err + 0.15, (ratio, err)
