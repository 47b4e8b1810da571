"""The Python API as a notebook uses it (issue 15, item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

import socialcredit


def test_the_main_names_come_from_the_top_package() -> None:
    from socialcredit import (  # noqa: F401
        Run,
        Scenario,
        compare_runs,
        explain,
        export_changed,
        load_sweep,
        run_sweep,
        simulate,
        write_report,
    )

    for name in ("Run", "Scenario", "simulate", "explain", "compare_runs", "export_changed",
                 "write_report", "load_sweep", "run_sweep"):
        assert name in dir(socialcredit) and name in socialcredit.__all__
    assert explain.__module__ == "socialcredit.analysis.explain"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> socialcredit.Run:
    out = tmp_path_factory.mktemp("nb") / "run"
    return socialcredit.Run.open(socialcredit.simulate(socialcredit.Scenario.load("default"),
                                                       out=out, citizens=600, days=10,
                                                       ledger=True))


def test_query_gives_dataframes(run: socialcredit.Run) -> None:
    q = "SELECT service, count(*) AS n FROM decisions GROUP BY 1 ORDER BY 1"
    rel = run.query(q)
    assert rel.fetchall() == [tuple(r.values()) for r in run.sql(q).to_pylist()]
    assert "service" in str(rel)  # a notebook cell shows the rows
    pd = pytest.importorskip("pandas")
    df = run.query(q).df()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == ["service", "n"]
    assert int(df["n"].sum()) == run.manifest["row_counts"]["decisions"]
    got = run.query("SELECT count(*) AS n FROM subjects WHERE kind = ?", ["citizen"]).df()
    assert int(got["n"][0]) == run.manifest["population"]["citizens"]


def test_query_gives_polars_frames(run: socialcredit.Run) -> None:
    pl = pytest.importorskip("polars")
    frame = run.query("SELECT * FROM subjects").pl()
    assert isinstance(frame, pl.DataFrame) and frame.height == run.manifest["row_counts"]["subjects"]


def test_simulate_draws_a_progress_bar_when_asked(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = socialcredit.simulate("default", out=tmp_path / "r", citizens=300, days=3,
                                 progress=True)
    assert socialcredit.Run.open(path).manifest["calendar"]["days"] == 3
    err = capsys.readouterr().err
    assert "simulating default" in err and "days" in err
    socialcredit.simulate("default", out=tmp_path / "s", citizens=300, days=3, progress=False)
    assert capsys.readouterr().err == ""


def test_explain_draws_a_progress_bar_when_asked(run: socialcredit.Run,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    quiet = socialcredit.explain(run, 3)
    assert capsys.readouterr().err == ""
    shown = socialcredit.explain(run, 3, progress=True)
    err = capsys.readouterr().err
    assert "explaining subject 3" in err and "days" in err
    assert shown["days"] == quiet["days"] and shown["summary"] == quiet["summary"]


def test_run_sweep_draws_a_progress_bar_of_runs(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    plan = tmp_path / "tiny.yaml"
    plan.write_text("name: tiny\nscenario: default\ncitizens: 300\ndays: 3\n"
                    "grid:\n  behaviour.awareness: [0.11, 0.5]\n")
    result = socialcredit.run_sweep(plan, out=tmp_path / "out", progress=True)
    assert len(result.finished) == 2
    err = capsys.readouterr().err
    assert "sweep tiny" in err and "2/2" in err and "runs" in err
