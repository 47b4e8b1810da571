"""The ``subjects`` table: every subject of a run with its demographics (issue 15, item 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialcredit.engine import build_model
from socialcredit.population import describe
from socialcredit.run import simulate
from socialcredit.scenario import Scenario
from socialcredit.store import Run

CITIZENS = 1200


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("subjects") / "run"
    return Run.open(simulate("default", out=out, citizens=CITIZENS, days=20, ledger=True))


def test_every_subject_once_in_id_order(run: Run) -> None:
    pop = run.manifest["population"]
    n = pop["citizens"] + pop["businesses"]
    assert run.manifest["row_counts"]["subjects"] == n
    ids = run.table("subjects", ["subject_id"]).column(0).to_pylist()
    assert ids == list(range(n))
    kinds = run.sql("SELECT kind, count(*) FROM subjects GROUP BY 1 ORDER BY 1").to_pylist()
    assert kinds == [{"kind": "business", "count_star()": pop["businesses"]},
                     {"kind": "citizen", "count_star()": pop["citizens"]}]


def test_rows_say_what_describe_says(run: Run) -> None:
    model = build_model(Scenario.load("default"), citizens=CITIZENS)
    pop = model.population
    C = pop.n_citizens
    rows = {r["subject_id"]: r for r in run.table("subjects").to_pylist()}
    for sid in [0, 1, 2, 7, 8, 500, C - 1, C, C + 1, pop.n_subjects - 1]:
        d, r = describe(pop, sid), rows[sid]
        assert r["kind"] == d["kind"] and r["region"] == d["region"]
        if d["kind"] == "citizen":
            for k in ("income_band", "education_band", "age_band", "urban", "consent"):
                assert r[k] == d[k], (sid, k)
            assert r["household"] == d["household_first_member"]
            assert r["employer"] == (d["employer"] or {}).get("subject_id")
            assert r["uscc"] is None and r["sector"] is None and r["representative"] is None
        else:
            assert (r["size_band"], r["sector"]) == (d["size_band"], d["sector"])
            assert r["uscc"] == d["uscc"] and r["representative"] == d["representative"]
            assert r["household"] is None and r["income_band"] is None


def test_every_code_is_the_one_uscc_gives(run: Run) -> None:
    from socialcredit.uscc import code_for, valid

    model = build_model(Scenario.load("default"), citizens=CITIZENS)
    pop = model.population
    rows = run.sql("SELECT subject_id, region, uscc FROM subjects WHERE kind = 'business'"
                   ).to_pylist()
    assert len(rows) == pop.n_businesses > 0
    admin = dict(zip(pop.region_ids, pop.admin_codes, strict=True))
    for r in rows:
        assert r["uscc"] == code_for(r["subject_id"], admin[r["region"]]) and valid(r["uscc"])


def test_bands_match_the_snapshots_and_join_in_sql(run: Run) -> None:
    # the integer band columns use the same codes as `snapshots` and `daily`
    mismatched = run.sql(
        "SELECT count(*) AS n FROM snapshots s JOIN subjects u USING (subject_id) "
        "WHERE s.region <> u.region OR s.kind <> u.kind OR s.income IS DISTINCT FROM u.income "
        "OR s.age IS DISTINCT FROM u.age OR s.urban IS DISTINCT FROM u.urban").to_pylist()
    assert mismatched == [{"n": 0}]
    joined = run.sql("SELECT u.income_band, count(*) AS n FROM decisions d "
                     "JOIN subjects u USING (subject_id) GROUP BY 1").to_pylist()
    assert sum(r["n"] for r in joined) == run.manifest["row_counts"]["decisions"]


def test_a_run_without_ledger_has_it_too_and_it_can_be_turned_off(tmp_path: Path) -> None:
    plain = Run.open(simulate("default", out=tmp_path / "plain", citizens=400, days=2))
    assert plain.tables() == ["daily", "subjects"]
    sc = Scenario.load("default")
    off = sc.model_copy(update={"recording": sc.recording.model_copy(update={"subjects": False})})
    assert Run.open(simulate(off, out=tmp_path / "off", citizens=400, days=2)).tables() == ["daily"]
