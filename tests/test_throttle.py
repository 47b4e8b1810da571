"""A throttled connection is a restriction with a state (docs/policy-language.md, section 6).

``unified`` throttles the internet connection of blacklisted and D-graded citizens. A throttle
begins with a throttled grant, lasts while a throttle measure's trigger holds for the subject,
and ends on the first day none does. The tests follow every subject's lists and grade through
a run's events and check that the kernel's starts, ends, daily stock and census agree with
that meaning, and that ``explain`` tells the same story.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine_support import run_every_event
from socialcredit.engine import build_model
from socialcredit.errors import UserError
from socialcredit.kernel import layout as LY
from socialcredit.policy import compile_policy
from socialcredit.scenario import Scenario


def throttling_scenario(seed: int = 11, citizens: int = 6000) -> Scenario:
    """``unified`` with internet contracts asked for often and a blacklist reached quickly,
    so that a small run starts and ends many throttles."""
    d = Scenario.load("unified").to_dict()
    d.update(seed=seed, days=540, burn_in_days=0, start="2019-01-01")
    beh = d.setdefault("behaviour", {})
    beh.setdefault("services", {})["internet"] = {"requests_per_year": 24.0}
    acts = beh.setdefault("acts", {})
    for act in ("court_default", "fraud", "traffic_ticket"):
        acts.setdefault(act, {})["rate_per_year"] = 0.3
    return Scenario.from_dict(d).rescaled(citizens)


@pytest.fixture(scope="module")
def result() -> tuple[Any, Any]:
    model = build_model(throttling_scenario())
    return model, run_every_event(model)


def test_throttles_follow_their_trigger(result: tuple[Any, Any]) -> None:
    model, res = result
    pol = model.policy
    throttles = [m for m in range(len(pol.measure_names))
                 if int(pol.measure_effect[m]) == LY.EFFECT_THROTTLE]
    assert [pol.measure_names[m] for m in throttles] == ["low_score_slow_internet"]
    m = throttles[0]
    internet = pol.service_names.index("internet")
    # per subject: lists held and grade, from the events
    lists: dict[int, set[int]] = {}
    grade: dict[int, int] = {}
    since: dict[int, int] = {}
    starts = ends = 0
    durations: list[int] = []
    stock = np.asarray(res.counts[:, :, model.packed.MO[LY.M_THROTTLED]].sum(axis=1).cumsum())

    def holds(i: int, t: int) -> bool:
        e = max(0, int(np.searchsorted(pol.epoch_start, model.first_day + t, side="right")) - 1)
        r = int(model.population.region[i])
        if not pol.measure_active[e, r, m]:
            return False
        mask = int(pol.measure_lists[e, r, m])
        if any((mask >> k) & 1 for k in lists.get(i, ())):
            return True
        lo, hi = int(pol.measure_grade_lo[e, r, m]), int(pol.measure_grade_hi[e, r, m])
        g = grade.get(i, LY.NO_GRADE)
        return lo >= 0 and g != LY.NO_GRADE and lo <= g <= hi

    for t, ev in enumerate(res.events):
        throttled_today: set[int] = set()
        for row in ev:
            typ, i, a, b, c, d = (int(x) for x in row)
            if typ == LY.EV_LIST and b == LY.LIST_ENTER:
                lists.setdefault(i, set()).add(a)
            elif typ == LY.EV_LIST and b == LY.LIST_EXIT:
                lists.get(i, set()).discard(a)
            elif typ == LY.EV_GRADE:
                grade[i] = b
            elif typ == LY.EV_DECISION and c == m:
                assert b == LY.OUT_GRANTED and a == internet
                throttled_today.add(i)
            elif typ == LY.EV_RESTRICTION:
                assert a == internet
                if b == LY.RESTRICTION_START:
                    assert i not in since, f"subject {i} throttled twice at once"
                    assert i in throttled_today, "a throttle starts with a throttled grant"
                    assert c == m
                    since[i] = t
                    starts += 1
                else:
                    assert i in since, f"subject {i}'s throttle ends before it began"
                    durations.append(t - since.pop(i))
                    ends += 1
        # at the end of each day: every throttled subject's trigger holds, and the lifted
        # ones' does not (their lists and grade are the day's last)
        for i in since:
            assert holds(i, t), f"subject {i} stays throttled on day {t} without its trigger"
        for row in ev:
            if int(row[0]) == LY.EV_RESTRICTION and int(row[3]) == LY.RESTRICTION_END:
                assert not holds(int(row[1]), t)
        assert stock[t] == len(since), f"day {t}: stock {stock[t]}, throttled {len(since)}"
    assert starts >= 30 and ends >= 10, (starts, ends)
    assert min(durations) >= 1
    census_starts = int(res.counts[:, :, model.packed.MO[LY.M_THROTTLE_STARTS]].sum())
    census_ends = int(res.counts[:, :, model.packed.MO[LY.M_THROTTLE_ENDS]].sum())
    assert (census_starts, census_ends) == (starts, ends)


def test_a_throttled_subject_is_throttled_once(result: tuple[Any, Any]) -> None:
    """A throttled subject that asks again is granted throttled again, but its restriction
    does not start again."""
    model, res = result
    m = model.policy.measure_names.index("low_score_slow_internet")
    grants: dict[int, int] = {}
    starts: dict[int, int] = {}
    for ev in res.events:
        for row in ev:
            if int(row[0]) == LY.EV_DECISION and int(row[4]) == m:
                grants[int(row[1])] = grants.get(int(row[1]), 0) + 1
            elif int(row[0]) == LY.EV_RESTRICTION and int(row[3]) == LY.RESTRICTION_START:
                starts[int(row[1])] = starts.get(int(row[1]), 0) + 1
    assert sum(grants.values()) > sum(starts.values())
    assert all(grants[i] >= n for i, n in starts.items())


def test_a_run_records_restrictions_and_explain_tells_them(tmp_path: Path) -> None:
    from socialcredit import simulate
    from socialcredit.analysis.explain import explain
    from socialcredit.store import Run

    out = simulate(throttling_scenario(citizens=4000), out=tmp_path / "run", ledger=True)
    run = Run.open(out)

    def q(query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return run.cursor().execute(query, params or []).fetchall()

    census = json.loads((out / "manifest.json").read_text())["census"]
    counts = dict(q("SELECT event, count(*) FROM restrictions GROUP BY 1"))
    assert counts["start"] == census["throttle_starts"] > 0
    assert counts["end"] == census["throttle_ends"] > 0
    daily = q("SELECT sum(throttled) FROM daily")[0][0]
    assert daily == census["throttled_days"] > 0
    throttled = q("SELECT count(*) FROM decisions WHERE throttled")[0][0]
    assert throttled >= counts["start"]
    # a subject whose throttle began and ended: explain's days match the tables
    sid = q("""SELECT subject_id FROM restrictions GROUP BY 1
               HAVING count(*) FILTER (event = 'end') > 0 ORDER BY 1 LIMIT 1""")[0][0]
    story = explain(run, int(sid))
    assert story["ledger_check"]["status"] == "identical"
    assert story["ledger_check"]["tables"]["restrictions"]["stored"] >= 2
    told = [e for d in story["days"] for e in d["events"] if e["type"] == "restriction"]
    assert told[0]["event"] == "start" and told[0]["measure"] == "low_score_slow_internet"
    ended = [e for e in told if e["event"] == "end"]
    assert ended and all(e["days"] >= 1 for e in ended)
    # the story's throttled days are the subject's rows of the daily stock's sum
    per_subject = q("""
        WITH s AS (SELECT day, event, lead(day) OVER (ORDER BY day, event DESC) AS nxt
                   FROM restrictions WHERE subject_id = ?)
        SELECT sum(CASE WHEN nxt IS NULL THEN (SELECT max(day) FROM daily) - day + 1
                        ELSE nxt - day END)
        FROM s WHERE event = 'start'""", [int(sid)])[0][0]
    assert story["summary"]["throttled_days"] == per_subject
    # the explorer: the overview's chart of throttled subjects, and the credit file from
    # the ledger tells the same throttles as the replay
    from fastapi.testclient import TestClient

    from socialcredit.web import create_app

    with TestClient(create_app(out.parent)) as client:
        fig = client.get(f"/api/runs/{out.name}/overview").json()["figures"]["throttled"]
        assert sum(fig["data"][0]["y"]) == census["throttled_days"]
        assert f"{census['throttled_days']:,} subject-days" in fig["layout"]["title"]["text"]
        page = client.get(f"/api/runs/{out.name}/subjects/{sid}?source=ledger").json()
        assert [(d["day"], e["event"]) for d in page["days"] for e in d["events"]
                if e["type"] == "restriction"] == \
            [(d["day"], e["event"]) for d in story["days"] for e in d["events"]
             if e["type"] == "restriction"]
        assert page["summary"]["throttled_days"] == story["summary"]["throttled_days"]
        # the ledger holds no grade events: its starting grade says which snapshot it is from
        first_snapshot = q("SELECT min(day) FROM snapshots")[0][0].isoformat()
        assert page["at_start"]["grade_as_of"] == first_snapshot > page["period"]["start"]
        head = client.get(f"/api/runs/{out.name}").json()["headline"]
        assert head["throttled_days"] == census["throttled_days"]
        assert head["throttled"] == census["throttled_grants"] == throttled
    # whole-run check: the stories of every throttled subject add up to the census
    ids = [r[0] for r in q("SELECT DISTINCT subject_id FROM restrictions ORDER BY 1")]
    total = sum(explain(run, int(i), check=False)["summary"]["throttled_days"] for i in ids[:40])
    assert 0 < total <= census["throttled_days"]


def policy_with(measures: str) -> dict[str, Any]:
    """``unified`` with its measures replaced."""
    import yaml

    from socialcredit.policy.loading import find_policy

    doc = yaml.safe_load(find_policy("unified").read_text())
    doc["measures"] = json.loads(measures)
    return doc


@pytest.mark.parametrize(("measures", "message"), [
    ('[{"id": "m", "service": "internet", "effect": "throttle", "trigger": {"lists": ["blacklist"]},'
     ' "reach": ["subject", "representative"], "authority": "x", "reference": "x"}]',
     "reaches only its subject"),
    ('[{"id": "m", "service": "internet", "effect": "throttle", "trigger": {"lists": ["blacklist"]},'
     ' "reach": ["subject"], "authority": "x", "reference": "x"},'
     ' {"id": "n", "service": "flight", "effect": "throttle", "trigger": {"lists": ["blacklist"]},'
     ' "reach": ["subject"], "authority": "x", "reference": "x"}]',
     "may throttle one service only"),
])
def test_throttle_measures_are_checked(tmp_path: Path, measures: str, message: str) -> None:
    import yaml

    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(policy_with(measures)))
    with pytest.raises(UserError, match=message):
        compile_policy(path, [("control", None)])


def test_a_resumed_run_keeps_its_throttles(tmp_path: Path) -> None:
    """The throttled bit is part of the checkpointed state: a run cut off and resumed logs
    the same restrictions as the uninterrupted run."""
    from socialcredit import simulate
    from socialcredit.store import Run

    sc = throttling_scenario(citizens=3000)
    kw: dict[str, Any] = dict(ledger=True, checkpoint_every=200)
    full = simulate(sc, out=tmp_path / "full", **kw)
    cut = tmp_path / "cut"
    with pytest.raises(Exception) as info:
        simulate(sc, out=cut, stop_after=300, **kw)
    assert type(info.value).__name__ == "_Stopped"
    resumed = simulate(sc, out=cut, resume=True, **kw)
    a, b = Run.open(full), Run.open(resumed)
    ta, tb = a.table("restrictions"), b.table("restrictions")
    assert ta.num_rows > 0 and ta.equals(tb)
    assert a.manifest["census"] == b.manifest["census"]
