"""An open-loop run drifts as its rates, coverage, false records and points say it should.

With every feedback off, a purpose-made policy (tests/fixtures/drift_policy.yaml: three acts
with known points, nothing else) and a scenario whose three scored acts have Q8-exact
modifiers and channels without delay (tests/fixtures/drift_scenario.yaml), a scored
citizen's expected daily change of score is, in floating point,

    sum over scored acts a of  points(a) * [ rate(a)/365 * prod of its band modifiers
                                             * (1 - prod over its channels h of (1 - cov(h)))
                                           + sum over channels h that make false records of a:
                                             (false(h) + misid(h) * misid modifiers) * d(h)
                                             / (acts h makes false records of) / 365 ]

(cov(h) = coverage times the region's density, capped at 1). The kernel works in 32-bit
thresholds and Q8 modifiers; its mean drift per scored citizen-day must match within four
standard errors of the simulated mean, for the total and for points up and down apart.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest

from socialcredit.catalogue import load_catalogue
from socialcredit.engine import build_model, run_memory
from socialcredit.kernel import layout as LY
from socialcredit.scenario import Scenario

FIXTURES = Path(__file__).parent / "fixtures"
AXES = ("income", "education", "age", "urban")


def drift_scenario() -> Scenario:
    sc = Scenario.load(FIXTURES / "drift_scenario.yaml")
    return sc.model_copy(update={"policy": str(FIXTURES / "drift_policy.yaml")})


def expected_per_citizen(model: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per scored citizen, the mean and variance of its daily points up, points down
    (positive) and change of score, from the scenario's and catalogue's float values."""
    sc = model.scenario
    cat = load_catalogue()
    beh = sc.behaviour
    region = sc.regions[0]
    pol = model.policy
    points = {a: int(pol.act_points[0, 0, k]) for k, a in enumerate(pol.act_names)
              if pol.act_points[0, 0, k] != 0}
    assert set(points) == {"jaywalking", "volunteering", "criticise_government"}

    def chan(c: Any, name: str) -> float:
        over = beh.channels.get(c.id)
        v = getattr(over, name, None) if over is not None else None
        return float(getattr(c, name) if v is None else v)

    density = {c.id: float(region.surveillance.get(c.id, 1.0)) for c in cat.channels}
    cov = {c.id: min(1.0, chan(c, "coverage") * density[c.id]) for c in cat.channels}
    bands = model.population.bands[: model.n_citizens].astype(np.int64)
    band = {"income": bands & 3, "education": (bands >> 2) & 3, "age": (bands >> 4) & 3,
            "urban": (bands >> 6) & 1}
    scored = band["age"] >= 1
    n = int(scored.sum())
    true_p: dict[str, np.ndarray] = {}  # chance a day brings a true record of the act
    false_p: dict[str, np.ndarray] = {}  # ... a false one
    for act_id in points:
        act = cat.act(act_id)
        over = beh.acts[act_id]
        given = over.rate_per_year if over.rate_per_year is not None else act.rate_per_year
        assert not hasattr(given, "at") or given.is_constant  # the fixture's rates are constant
        rate = float(given.at(dt.date(2000, 1, 1)) if hasattr(given, "at") else given)
        m = np.ones(n)
        for axis in AXES:
            values = over.modifiers.get(axis) or act.modifiers.get(axis) or [1.0] * 4
            m *= np.asarray(values)[band[axis][scored]]
        seen = 1.0 - np.prod([1.0 - cov[h] for h in act.channels])
        true_p[act_id] = rate / 365.0 * np.minimum(m, 8.0) * seen
        f = np.zeros(n)
        for c in cat.channels:
            if act_id not in c.false_acts:
                continue
            mis = np.full(n, chan(c, "misid_per_year"))
            for axis in ("age", "income"):
                if c.misid_modifiers.get(axis):
                    mis *= np.asarray(c.misid_modifiers[axis])[band[axis][scored]]
            f += (chan(c, "false_per_year") + mis) * density[c.id] / len(c.false_acts) / 365.0
        false_p[act_id] = f

    def moments(weights: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        # a day has at most one act (disjoint intervals of one draw) and at most one false
        # record (another, independent draw): the variance is the sum of the two parts'
        mean = np.zeros(n)
        var = np.zeros(n)
        for probs in (true_p, false_p):
            m1 = sum(w * probs[a] for a, w in weights.items())
            m2 = sum(w * w * probs[a] for a, w in weights.items())
            mean += m1
            var += m2 - m1 * m1
        return mean, var

    return {
        "up": moments({a: p for a, p in points.items() if p > 0}),
        "down": moments({a: -p for a, p in points.items() if p < 0}),
        "drift": moments(dict(points)),
    }


@pytest.fixture(scope="module")
def drift_run() -> tuple[Any, Any]:
    model = build_model(drift_scenario())
    before = numba.get_num_threads()
    try:
        run = run_memory(model, threads=1)
    finally:
        numba.set_num_threads(before)
    return model, run


def test_the_fixture_is_open_loop_and_simple(drift_run: tuple[Any, Any]) -> None:
    model, _ = drift_run
    pol = model.policy
    assert not any(model.scenario.feedback.model_dump().values())
    assert pol.epoch_start.shape[0] == 1 and len(pol.region_names) == 1
    assert not pol.list_names and not pol.measure_names
    assert (pol.act_validity == 0).all() and (pol.act_escalation_pct == 0).all()
    assert (pol.cap_category < 0).all() and (pol.override_grade < 0).all()
    assert (pol.objection_window == 0).all()
    # the channels of the scored acts report at once
    pk = model.packed
    delay = pk.P[pk.O[LY.T["chan_delay"]]:][: len(pol.channel_names)]
    cat = load_catalogue()
    for a in ("jaywalking", "volunteering", "criticise_government"):
        assert cat.act(a).channels, a
        for h in cat.act(a).channels:
            assert delay[cat.channel_index[h]] == 0, h


def test_mean_drift_matches_rates_coverage_and_points(drift_run: tuple[Any, Any]) -> None:
    model, run = drift_run
    days = model.total_days
    want = expected_per_citizen(model)
    n = want["up"][0].shape[0]
    cd = n * days  # scored citizen-days
    C = model.n_citizens
    scored = ((run.state["pub"][days & 1][:C].astype(np.int64) >> 29) & 1) == 1
    assert int(scored.sum()) == n, "every adult is scored every day"
    totals = run.counts.sum(axis=(0, 1))
    mo = model.packed.MO
    seen = {"up": int(totals[mo[LY.M_POINTS_UP]]) / cd,
            "down": int(totals[mo[LY.M_POINTS_DOWN]]) / cd,
            "drift": int(run.state["st"]["score"][:C][scored].astype(np.int64).sum()) / cd}
    assert seen["drift"] == pytest.approx(seen["up"] - seen["down"], abs=1e-12)  # no clamping
    for what, (mean, var) in want.items():
        expected = float(mean.mean())
        err = float(np.sqrt(var.sum() * days) / cd)
        assert abs(seen[what] - expected) <= 4 * err, (
            f"points {what} per scored citizen-day: simulated {seen[what]:.6f}, expected "
            f"{expected:.6f} (standard error {err:.6f})")
    # the test has power: the drift is many standard errors away from zero
    mean, var = want["drift"]
    assert abs(float(mean.mean())) > 20 * float(np.sqrt(var.sum() * days) / cd)
