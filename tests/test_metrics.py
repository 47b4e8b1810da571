"""Metrics of a run: scores, disparities by band, mistakes, time on lists, chilling,
compliance — checked against the run's own tables and census."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from socialcredit.analysis import metrics as M
from socialcredit.run import simulate
from socialcredit.scenario import Scenario
from socialcredit.store import Run


def short(name: str) -> Scenario:
    d = Scenario.load(name).to_dict()
    d.update(days=120, burn_in_days=90)
    return Scenario.from_dict(d)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    root = tmp_path_factory.mktemp("metrics")
    return {
        "national": Run.open(simulate(short("default"), out=root / "national", citizens=4000,
                                      ledger=True)),
        "unified": Run.open(simulate(short("unified"), out=root / "unified", citizens=4000)),
    }


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A short run with denials (the two above have none)."""
    from test_explain import busy_scenario

    return Run.open(simulate(busy_scenario(), out=tmp_path_factory.mktemp("busy") / "run",
                             citizens=4000))


def test_gini() -> None:
    assert M.gini([]) == 0.0
    assert M.gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert M.gini([0, 0, 0, 10]) == pytest.approx(0.75)
    assert M.gini([1, 2, 3, 4]) == pytest.approx(0.25)
    # negative scores are shifted to start at zero
    assert M.gini([-3, -2, -1, 0]) == pytest.approx(M.gini([0, 1, 2, 3]))


def test_all_metrics_is_json(runs: dict[str, Run]) -> None:
    for run in runs.values():
        data = M.all_metrics(run)
        text = json.dumps(data)
        assert "NaN" not in text
        assert {"scores", "disparities", "wrongful", "time_to_exit", "chilling", "compliance",
                "top_rules", "decisions"} <= set(data)
    assert M.all_metrics(runs["national"])["ledger"] is True
    assert M.all_metrics(runs["unified"])["ledger"] is False


def test_score_inequality(runs: dict[str, Run]) -> None:
    run = runs["national"]
    s = M.score_inequality(run)
    assert s["available"]
    last = run.sql("SELECT max(day) FROM snapshots").column(0)[0].as_py()
    assert any(g["region"] == "all" for g in s["groups"]), s["groups"]
    for g in s["groups"]:
        where = f"kind = '{g['kind']}' AND grade <> 'none'"
        if g["region"] != "all":
            where += f" AND region = '{g['region']}'"
        scores = np.array(run.sql(f"SELECT score FROM snapshots WHERE day = ? AND {where}",
                                  [last]).column(0).to_pylist(), dtype=float)
        assert g["n"] == scores.size
        assert g["gini"] == pytest.approx(M.gini(scores))
        assert g["p10"] <= g["p50"] <= g["p90"]
    assert M.score_inequality(runs["unified"])["available"] is False


def test_grade_shares_sum_to_one(runs: dict[str, Run]) -> None:
    totals: dict[tuple[Any, ...], float] = {}
    for r in M.grade_shares(runs["unified"]):
        key = (r["day"], r["region"], r["kind"])
        totals[key] = totals.get(key, 0.0) + r["share"]
    assert totals and all(v == pytest.approx(1.0) for v in totals.values())


def test_disparities_add_up(runs: dict[str, Run]) -> None:
    d = M.band_disparities(runs["national"])
    assert d["note"] is None
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in d["rows"]:
        groups.setdefault((r["axis"], r["what"], r["target"]), []).append(r)
    assert {"income", "urban", "size", "education", "age"} <= {k[0] for k in groups}
    for (axis, what, target), rows in groups.items():
        assert sum(r["population_share"] for r in rows) == pytest.approx(1.0)
        if what == "list":
            # rates over subject-days: the population-weighted mean of the bands is the whole
            mean = sum(r["population_share"] * r["rate"] for r in rows)
            assert mean == pytest.approx(rows[0]["overall"]), (axis, target)
        for r in rows:
            if r["rate"] is None:  # a band with nothing to count (no request)
                assert r["disparity"] is None and r["count"] == 0 and what == "denied"
            else:
                assert r["disparity"] == pytest.approx(r["rate"] / r["overall"])
    plain = M.band_disparities(runs["unified"])
    assert "education and age" in plain["note"]
    assert not {r["axis"] for r in plain["rows"]} & {"education", "age"}


def test_disparity_counts_match_the_daily_table(busy: Run) -> None:
    run = busy
    d = M.band_disparities(run)
    denied = [r for r in d["rows"] if r["axis"] == "income" and r["what"] == "denied"]
    assert denied, "the run has income rows of denials"
    for r in denied:
        total = run.sql(f'SELECT sum("denied_{r["target"]}") FROM daily '
                        "WHERE kind = 'citizen'").column(0)[0].as_py()
        rows = [x for x in denied if x["target"] == r["target"]]
        assert sum(x["count"] for x in rows) == total


def test_wrongful_decisions(runs: dict[str, Run]) -> None:
    run = runs["national"]
    w = M.wrongful_decisions(run)
    census = run.manifest["census"]
    assert w["wrongful"] == sum(census["wrongful"].values())
    assert w["denied"] == sum(v for k, v in census["decisions"].items() if k.startswith("denied_"))
    stored = run.sql("SELECT count(*) FROM decisions WHERE wrongful").column(0)[0].as_py()
    assert w["wrongful"] == stored
    assert sum(r["wrongful"] for r in w["by_channel"]) == stored
    by_channel = {r["channel"]: (r["true"], r["false"]) for r in w["false_records"]}
    used = [ch for ch, n in census["records_false"].items()
            if n or census["records_true"].get(ch)]
    assert used, "the run has records"
    for ch in used:
        assert by_channel[ch] == (census["records_true"].get(ch, 0), census["records_false"][ch])
    assert M.wrongful_decisions(runs["unified"])["by_channel"] is None


def test_time_to_exit(runs: dict[str, Run], busy: Run) -> None:
    run = runs["national"]
    rows = {r["list"]: r for r in M.time_to_exit(run)}
    entries = {r["list"]: r["n"] for r in run.sql(
        "SELECT list, count(*) AS n FROM list_events WHERE event = 'enter' GROUP BY 1").to_pylist()}
    assert entries, "the test run has list entries"
    for name, n in entries.items():
        r = rows[name]
        assert r["method"] == "ledger" and r["entries"] == n
        assert r["exits"] + r["still_listed"] == n
        if r["exits"]:
            assert 0 <= r["median_days"] <= r["p90_days"]
            assert sum(r["by_reason"].values()) == r["exits"]
    assert any(rows[name]["exits"] for name in entries), "some list has exits"
    # without the ledger: estimated from the daily stocks and flows
    estimated = M.time_to_exit(busy)
    enter = busy.manifest["census"]["list_enter"]
    assert estimated and {r["list"]: r["entries"] for r in estimated} == {
        name: n for name, n in enter.items() if n}
    for r in estimated:
        assert r["method"].startswith("estimate")


def test_chilling(runs: dict[str, Run]) -> None:
    # the national baseline does not penalise speech: nothing to chill
    national = M.chilling(runs["national"])["acts"]
    assert {a["act"] for a in national} == {"spread_rumours", "criticise_government"}
    assert sum(a["actual"] for a in national) > 0
    for a in national:
        assert a["suppressed"] == pytest.approx(0.0)
    ch = M.chilling(runs["unified"])
    assert ch["feedback"] == {"chilling": True, "deterrence": True}
    speech = {a["act"]: a for a in ch["acts"]}
    assert set(speech) == {"spread_rumours", "criticise_government"}
    for a in speech.values():
        assert a["expected"] > a["actual"] > 0
        assert 0.1 < a["suppressed_share"] < 0.6
        assert a["actual"] == runs["unified"].manifest["census"]["acts"][a["act"]]


def test_compliance(runs: dict[str, Run]) -> None:
    run = runs["national"]
    co = M.compliance(run)
    assert "judgment_debtors" in co["lists"] and co["method"] == "ledger"
    assert 0 <= co["repaid"] <= co["entered"]
    # listed debtors repay at 0.5 a year, three times as fast while listed: in a 120-day run
    # most of them are still listed (they once all left within days: the factor was 256)
    assert co["entered"] > 0 and co["repaid"] < 0.9 * co["entered"]
    assert co["induced_share_of_repayments"] == pytest.approx(1 - 1 / 3.0)
    assert co["induced"] == pytest.approx(co["repaid"] * (1 - 1 / 3.0))
    assert M.compliance(runs["unified"])["lists"] == []


def test_top_rules(runs: dict[str, Run]) -> None:
    run = runs["national"]
    top = M.top_rules(run, n=5)
    assert 0 < len(top) <= 5
    refs = {r["name"] for r in run.manifest["policy"]["rules"]}
    for r in top:
        assert r["rule"] in refs and r["reference"]
        moved = run.sql("SELECT sum(abs(points)) FROM ledger WHERE rule = ?",
                        [r["rule"]]).column(0)[0].as_py()
        assert r["moved"] == moved
    assert [r["moved"] for r in top] == sorted((r["moved"] for r in top), reverse=True)
    assert M.top_rules(runs["unified"]) == []


def test_list_series_ends_with_the_last_stock(runs: dict[str, Run]) -> None:
    run = runs["national"]
    series = M.list_series(run)
    last = max(r["day"] for r in series["stock"])
    assert run.manifest["policy"]["lists"]
    for name in run.manifest["policy"]["lists"]:
        want = run.sql(f'SELECT sum("listed_{name}") FROM daily WHERE day = ?',
                       [last]).column(0)[0].as_py()
        got = next(r["listed"] for r in series["stock"] if r["day"] == last and r["list"] == name)
        assert got == want
        flows = [r for r in series["flows"] if r["list"] == name]
        assert sum(r["entries"] for r in flows) == run.manifest["census"]["list_enter"][name]
    assert not any(isinstance(v, float) and math.isnan(v)
                   for r in M.mean_scores(runs["unified"]) for v in r.values())
