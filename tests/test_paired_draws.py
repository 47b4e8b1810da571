"""Paired comparison on the same random numbers (DESIGN 2.9), as perturbation properties.

An act's occurrence on a subject-day depends only on (seed, day, subject), the act's slot
and the act's own rate for that subject; a record's existence only on its own channel's
coverage and error; a request only on its own service's rate. So two runs that differ in
one act's rate, one channel's coverage, one feedback switch or the policy must agree on
every other act, record and request, subject by subject, wherever the subject's own rates
are equal in both. Each property perturbs one thing and compares the two runs' events.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine_support import run_every_event
from socialcredit.behaviour import build_behaviour
from socialcredit.catalogue import load_catalogue
from socialcredit.engine import build_model
from socialcredit.kernel import layout as LY
from socialcredit.scenario import Scenario

CAT = load_catalogue()
ACTS = [a.id for a in CAT.acts if a.rate_per_year > 0]
CHANNELS = [c.id for c in CAT.channels]
SERVICES = [s.id for s in CAT.services]
OFF = {k: False for k in ("deterrence", "chilling", "uptake", "economic", "compliance")}
SETTINGS = settings(max_examples=6, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


def scenario(name: str = "default", *, seed: int = 11, feedback: dict | None = None,
             acts: dict | None = None, channels: dict | None = None,
             services: dict | None = None, citizens: int = 3000, days: int = 240) -> Scenario:
    data = Scenario.load(name).to_dict()
    data.update(seed=seed, days=days, burn_in_days=0, start="2018-01-01",
                feedback=feedback if feedback is not None else dict(OFF))
    beh = data.setdefault("behaviour", {})
    beh["acts"] = {**(beh.get("acts") or {}), **(acts or {})}
    beh["channels"] = {**(beh.get("channels") or {}), **(channels or {})}
    beh["services"] = {**(beh.get("services") or {}), **(services or {})}
    return Scenario.from_dict(data).rescaled(citizens)


def events(sc: Scenario) -> tuple[Any, np.ndarray]:
    """The run's model and its events as one array with the day index in column 0."""
    model = build_model(sc)
    res = run_every_event(model)
    rows = [np.column_stack([np.full(len(ev), t), ev]) for t, ev in enumerate(res.events)
            if len(ev)]
    return model, np.concatenate(rows).astype(np.int64)


def rows(ev: np.ndarray, typ: int, keep: Any = None) -> set[tuple[int, ...]]:
    """(day, subject, a, b, c) of the events of one type, filtered by ``keep(row)``."""
    sel = ev[ev[:, 1] == typ]
    return {tuple(int(x) for x in r[[0, 2, 3, 4, 5]]) for r in sel if keep is None or keep(r)}


def act_ix(act: str) -> int:
    return CAT.act_index[act]


def acts_except(ev: np.ndarray, skip: set[int]) -> set[tuple[int, ...]]:
    return {(d, s, a) for d, s, a, _b, _c in rows(ev, LY.EV_ACT) if a not in skip}


def records(ev: np.ndarray, *, skip_acts: set[int] = frozenset(),  # type: ignore[assignment]
            skip_channels: set[int] = frozenset()) -> set[tuple[int, ...]]:  # type: ignore[assignment]
    """Records as (day, subject, act, channel, true): which channel made which record when."""
    return {r[:5] for r in rows(ev, LY.EV_RECORD)
            if r[2] not in skip_acts and r[3] not in skip_channels}


def base_ev() -> tuple[Any, np.ndarray]:
    global _BASE
    if _BASE is None:
        _BASE = events(scenario())
    return _BASE


_BASE: tuple[Any, np.ndarray] | None = None


@SETTINGS
@given(act=st.sampled_from(ACTS), factor=st.sampled_from([0.0, 0.25, 1.7]))
def test_one_acts_rate_moves_no_other_acts_draws(act: str, factor: float) -> None:
    _, ev0 = base_ev()
    rate = CAT.act(act).rate_per_year * factor
    _, ev1 = events(scenario(acts={act: {"rate_per_year": rate}}))
    k = act_ix(act)
    other0, other1 = acts_except(ev0, {k}), acts_except(ev1, {k})
    assert len(other0) > 500
    assert other0 == other1
    # every other act's records, true and false, are the same records
    assert records(ev0, skip_acts={k}) == records(ev1, skip_acts={k})
    mine0 = acts_except(ev0, set(range(len(CAT.acts))) - {k})
    mine1 = acts_except(ev1, set(range(len(CAT.acts))) - {k})
    if factor == 0.0:
        assert not mine1
    elif factor < 1:
        assert mine1 <= mine0  # a lower rate keeps a subset of the same draws
    else:
        assert mine0 <= mine1


@SETTINGS
@given(channel=st.sampled_from(CHANNELS), coverage=st.sampled_from([0.0, 0.3, 1.0]))
def test_one_channels_coverage_moves_no_other_channels_records(channel: str,
                                                               coverage: float) -> None:
    _, ev0 = base_ev()
    _, ev1 = events(scenario(channels={channel: {"coverage": coverage}}))
    h = CAT.channels.index(next(c for c in CAT.channels if c.id == channel))
    assert acts_except(ev0, set()) == acts_except(ev1, set())
    r0 = records(ev0, skip_channels={h})
    assert len(r0) > 500
    assert r0 == records(ev1, skip_channels={h})


@SETTINGS
@given(switch=st.sampled_from(["chilling", "uptake"]))
def test_a_feedback_switch_moves_only_the_acts_it_touches(switch: str) -> None:
    # under the popular account, which penalises speech and rewards civic acts
    _, ev0 = events(scenario("unified"))
    _, ev1 = events(scenario("unified", feedback={**OFF, switch: True}))
    touched = {act_ix(a.id) for a in CAT.acts
               if (switch == "chilling" and a.category == "speech")
               or (switch == "uptake" and a.valence == "rewarded")}
    assert touched
    other0 = acts_except(ev0, touched)
    assert len(other0) > 500
    assert other0 == acts_except(ev1, touched)
    assert records(ev0, skip_acts=touched) == records(ev1, skip_acts=touched)
    # and the switch did change the acts it touches
    assert acts_except(ev0, set(range(len(CAT.acts))) - touched) != \
        acts_except(ev1, set(range(len(CAT.acts))) - touched)


@SETTINGS
@given(service=st.sampled_from(SERVICES), factor=st.sampled_from([0.0, 0.5, 1.5]))
def test_one_services_rate_moves_no_other_services_requests(service: str, factor: float) -> None:
    _, ev0 = base_ev()
    svc = next(s for s in CAT.services if s.id == service)
    _, ev1 = events(scenario(services={service: {"requests_per_year":
                                                 svc.requests_per_year * factor}}))
    s = [x.id for x in CAT.services].index(service)
    # (day, subject, service, outcome, measure): the same requests, decided the same way
    d0 = {r[:5] for r in rows(ev0, LY.EV_DECISION) if r[2] != s}
    assert len(d0) > 500
    assert d0 == {r[:5] for r in rows(ev1, LY.EV_DECISION) if r[2] != s}
    assert acts_except(ev0, set()) == acts_except(ev1, set())


@SETTINGS
@given(service=st.sampled_from(SERVICES), factor=st.sampled_from([0.0, 0.5, 2.0]))
def test_one_services_dated_demand_moves_no_other_services_requests(service: str,
                                                                    factor: float) -> None:
    """A dated demand (a passenger series, say) changes its own service's requests from its
    date on and nothing else: the other services' requests and every act stay the same,
    subject by subject, and its own requests before the date are the same requests."""
    _, ev0 = base_ev()
    changed = 120  # 2018-05-01, the run's day 120
    _, ev1 = events(scenario(services={service: {"demand": {"2018-01-01": 1.0,
                                                            "2018-05-01": factor}}}))
    s = [x.id for x in CAT.services].index(service)
    d0 = {r[:5] for r in rows(ev0, LY.EV_DECISION) if r[2] != s}
    assert len(d0) > 500
    assert d0 == {r[:5] for r in rows(ev1, LY.EV_DECISION) if r[2] != s}
    assert acts_except(ev0, set()) == acts_except(ev1, set())
    mine0 = {r[:2] for r in rows(ev0, LY.EV_DECISION) if r[2] == s}
    mine1 = {r[:2] for r in rows(ev1, LY.EV_DECISION) if r[2] == s}
    assert {r for r in mine0 if r[0] < changed} == {r for r in mine1 if r[0] < changed}
    after0 = {r for r in mine0 if r[0] >= changed}
    after1 = {r for r in mine1 if r[0] >= changed}
    if factor == 0.0:
        assert not after1
    elif factor < 1:
        assert after1 < after0 or not after0
    elif after0:
        assert after0 < after1


def test_a_constant_demand_is_no_demand() -> None:
    """A demand of 1 on every date is the service as written: the same events, bit for bit
    (one period of service tables, the calendar's months unchanged)."""
    _, ev0 = base_ev()
    m1, ev1 = events(scenario(services={"flight": {"demand": {"2018-01-01": 1.0,
                                                               "2018-03-01": 1.0}}}))
    assert int(m1.extra["svc_period"].max()) == 0
    assert np.array_equal(ev0, ev1)


def test_policies_compared_on_the_same_acts() -> None:
    """``default`` against ``unified`` (another policy, feedback on): on a day when a
    subject's own rate of an act is the same in both runs (no list or income event before
    that day in either run, and both policies' feedback treats the act alike), it commits
    the same acts, court defaults among them, and the channels make the same records."""
    fb = {**OFF, "deterrence": True, "chilling": True, "uptake": True, "economic": True}
    m0, ev0 = events(scenario("default", feedback=fb, days=365, citizens=20000))
    m1, ev1 = events(scenario("unified", feedback=fb, days=365, citizens=20000))
    assert m0.n_citizens == m1.n_citizens and m0.n_businesses == m1.n_businesses
    # the acts whose policy factor on their rate (deterrence, chilling, uptake) is the same
    # in both runs, region by region and over the whole run
    pol0 = build_behaviour(m0.catalogue, m0.scenario, m0.policy)[0]["act_mod_policy"]
    pol1 = build_behaviour(m1.catalogue, m1.scenario, m1.policy)[0]["act_mod_policy"]
    ks = {k for k in range(len(CAT.acts))
          if all(set(pol0[:, r, k]) == set(pol1[:, r, k]) and len(set(pol0[:, r, k])) == 1
                 for r in range(pol0.shape[1]))}
    assert act_ix("court_default") in ks
    assert len(ks) < len(CAT.acts)  # the policies do differ on some acts' rates
    # the first day each subject's state could differ between the runs
    first: dict[int, int] = {}
    for ev in (ev0, ev1):
        for d, s in ev[(ev[:, 1] == LY.EV_LIST) | (ev[:, 1] == LY.EV_INCOME)][:, [0, 2]]:
            first[int(s)] = min(first.get(int(s), 1 << 30), int(d))

    def same_rate(d: int, s: int) -> bool:
        return d <= first.get(s, 1 << 30)

    def debts(ev: np.ndarray) -> set[tuple[int, int, int]]:
        return {(d, s, a) for d, s, a in acts_except(ev, set()) if a in ks and same_rate(d, s)}

    c0 = debts(ev0)
    assert len({x for x in c0 if x[2] == act_ix("court_default")}) > 10
    assert c0 == debts(ev1)

    def debt_records(ev: np.ndarray) -> set[tuple[int, ...]]:
        return {r for r in records(ev) if r[2] in ks and r[4] == 1 and same_rate(r[0], r[1])}

    r0 = debt_records(ev0)
    assert len(r0) > 30
    assert r0 == debt_records(ev1)


#: citizens' acts that open obligations often enough to be counted in the small run
OBLIGATION_ACTS = [a.id for a in CAT.acts
                   if a.obligation and a.kind == "citizen" and a.rate_per_year >= 0.05]


def met_flags(ev: np.ndarray) -> dict[tuple[int, int, int], int]:
    """(day, subject, act) -> 1 if the act's obligation was met at once, 0 if left open."""
    sel = ev[(ev[:, 1] == LY.EV_ACT) & ((ev[:, 4] != 0) | (ev[:, 5] != 0))]
    return {(int(r[0]), int(r[2]), int(r[3])): int(r[5]) for r in sel}


@SETTINGS
@given(act=st.sampled_from(OBLIGATION_ACTS), share=st.sampled_from([0.0, 0.5, 1.0]))
def test_one_acts_share_met_at_once_moves_no_other_acts_draws(act: str, share: float) -> None:
    _, ev0 = base_ev()
    _, ev1 = events(scenario(acts={act: {"met_at_once": share}}))
    k = act_ix(act)
    f0, f1 = met_flags(ev0), met_flags(ev1)
    both = f0.keys() & f1.keys()
    other = [key for key in both if key[2] != k]
    assert len(other) > 300
    # every other act's obligation is met at once, or left open, in both runs alike
    assert all(f0[key] == f1[key] for key in other)
    mine = [key for key in both if key[2] == k]
    assert len(mine) > 20
    met1 = {key for key in mine if f1[key]}
    met0 = {key for key in mine if f0[key]}
    if share == 0.0:
        assert not met1
    elif share == 1.0:
        assert met1 == set(mine)
    # the act's own draw decides: a larger share keeps the same met obligations and adds some
    if share <= CAT.act(act).met_at_once:
        assert met1 <= met0
    else:
        assert met0 <= met1


def test_the_share_met_at_once_is_the_catalogues() -> None:
    _, ev = base_ev()
    flags = met_flags(ev)
    for act in OBLIGATION_ACTS:
        k, p = act_ix(act), CAT.act(act).met_at_once
        mine = [f for key, f in flags.items() if key[2] == k]
        n = len(mine)
        assert n > 50
        # within four standard errors of the binomial share
        assert abs(sum(mine) / n - p) <= 4 * (p * (1 - p) / n) ** 0.5 + 1e-9, act
