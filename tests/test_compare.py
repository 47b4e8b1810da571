"""``socialcredit compare``: two runs on the same random numbers, subject by subject."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import invoke
from socialcredit.analysis.compare import changed_subjects, compare_runs
from socialcredit.errors import UserError
from socialcredit.run import simulate
from socialcredit.scenario import Scenario
from socialcredit.store import Run

REFORM = """\
name: no_jaywalking_points
kind: reform
extends: unified
description: "Test reform: jaywalking costs no points."
reference: "Test reform [U]"
score:
  citizen:
    rules:
      - id: jaywalking
        remove: true
"""
RULE = "unified.score.jaywalking"


def open_loop(**changes: object) -> Scenario:
    """The unified score with every feedback off and no burn-in, January to March.

    Feedback off: removing a penalty must not change anyone's behaviour rates (deterrence
    would), so the act draws of both runs stay the same. No burn-in and no September: the one
    measure of the policy that reaches across a household (children's school places) is asked
    for in September only, so every difference stays with the subject the rule touched."""
    d = Scenario.load("unified").to_dict()
    d.update(name="open_loop", start="2018-01-01", days=90, burn_in_days=0)
    d["feedback"] = dict.fromkeys(d["feedback"], False)
    d.update(changes)
    return Scenario.from_dict(d)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    reform = root / "no_jaywalking_points.yaml"
    reform.write_text(REFORM, encoding="utf-8")
    base = open_loop()
    return {
        "a": simulate(base, out=root / "a", citizens=4000, ledger=True),
        "b": simulate(open_loop(reforms=[str(reform)]), out=root / "b", citizens=4000,
                      ledger=True),
        "other_seed": simulate(base, out=root / "other_seed", citizens=4000, seed=base.seed + 1),
        "bigger": simulate(base, out=root / "bigger", citizens=4800),
        "plain": simulate(base, out=root / "plain", citizens=4000),
    }


def test_a_run_compared_with_itself_shows_no_difference(runs: dict[str, Path]) -> None:
    c = compare_runs(runs["a"], runs["a"])
    assert c["same_policy"]
    assert all(r["diff"] == 0 for r in c["aggregate"]["headline"] + c["aggregate"]["last_day"])
    assert c["aggregate"]["census"] == []
    s = c["subjects"]
    assert s["available"] and s["changed"] == 0 and s["changed_sample"] == []
    assert s["grade_transitions"] and all(r["from"] == r["to"] for r in s["grade_transitions"])
    assert s["lists"] == [] and s["rules"] == []
    assert changed_subjects(runs["a"], runs["a"]).size == 0


def test_a_run_without_a_ledger_compares_in_aggregate(runs: dict[str, Path]) -> None:
    c = compare_runs(runs["plain"], runs["a"])
    assert c["aggregate"]["census"] == [], "a ledger changes nothing that was simulated"
    assert c["subjects"]["available"] is False and "--ledger" in c["subjects"]["note"]
    with pytest.raises(UserError, match="has no ledger"):
        changed_subjects(runs["plain"], runs["a"])


def test_removing_a_rule_changes_exactly_the_subjects_it_touched(runs: dict[str, Path]) -> None:
    a, b = Run.open(runs["a"]), Run.open(runs["b"])
    touched = set(a.sql(f"SELECT DISTINCT subject_id FROM ledger WHERE rule = '{RULE}'")
                  .column(0).to_pylist())
    assert len(touched) > 50
    assert b.sql(f"SELECT count(*) FROM ledger WHERE rule = '{RULE}'").column(0)[0].as_py() == 0
    assert set(changed_subjects(a, b).tolist()) == touched
    # the records, the truth of what the system knows, are the same in both runs
    assert a.manifest["census"]["records_true"] == b.manifest["census"]["records_true"]
    c = compare_runs(a, b)
    assert not c["same_policy"]
    assert c["subjects"]["changed"] == len(touched)
    rules = {r["rule"]: r for r in c["subjects"]["rules"]}
    assert rules[RULE]["subjects_a"] == len(touched) and rules[RULE]["subjects_b"] == 0
    lost = next(r for r in c["aggregate"]["headline"] if r["what"] == "points lost")
    assert lost["diff"] < 0


def test_grade_transitions_account_for_everyone(runs: dict[str, Path]) -> None:
    c = compare_runs(runs["a"], runs["b"])
    total = sum(r["subjects"] for r in c["subjects"]["grade_transitions"])
    pop = Run.open(runs["a"]).manifest["population"]
    assert total == pop["citizens"] + pop["businesses"]
    # without the jaywalking deduction nobody ends on a worse grade than with it
    scale = c["grade_scales"]["a"]
    graded = [r for r in c["subjects"]["grade_transitions"]
              if r["from"] in scale[r["region"]][r["kind"]]
              and r["to"] in scale[r["region"]][r["kind"]]]
    assert graded, "some subjects are graded in both runs"
    for r in graded:
        names = scale[r["region"]][r["kind"]]
        assert names.index(r["to"]) <= names.index(r["from"]), r


def test_runs_that_do_not_share_random_numbers_are_refused(runs: dict[str, Path]) -> None:
    with pytest.raises(UserError, match="seeds differ"):
        compare_runs(runs["a"], runs["other_seed"])
    with pytest.raises(UserError, match="populations differ"):
        compare_runs(runs["a"], runs["bigger"])


def cli(args: list[str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return invoke(args, monkeypatch, capsys, columns=160)


def test_cli(runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> None:
    a, b = str(runs["a"]), str(runs["b"])
    code, out, err = cli(["compare", a, a], monkeypatch, capsys)
    assert code == 0, err
    assert "No subject's story differs" in out
    code, out, err = cli(["compare", a, b], monkeypatch, capsys)
    assert code == 0, err
    assert "subjects' stories differ" in out and RULE in out
    code, out, err = cli(["compare", a, b, "--json"], monkeypatch, capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["subjects"]["changed"] > 0 and data["seed"] == Run.open(a).manifest["seed"]
    for args, sentence in (([a, str(runs["other_seed"])], "seeds differ"),
                           ([a, str(tmp_path / "missing")], "there is no run at")):
        code, out, err = cli(["compare", *args], monkeypatch, capsys)
        assert code == 2 and sentence in err and err.count("\n") == 1
        assert "Traceback" not in out + err


def test_the_header_names_each_reform_once(runs: dict[str, Path],
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(["compare", str(runs["a"]), str(runs["b"])], monkeypatch, capsys)
    assert code == 0, err
    header_b = next(line for line in out.splitlines() if line.startswith("B "))
    assert header_b.count("no_jaywalking_points") == 1, header_b
    assert header_b.endswith("(unified+no_jaywalking_points)")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_out_writes_every_changed_subject(runs: dict[str, Path], tmp_path: Path, suffix: str,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    target = tmp_path / f"changed{suffix}"
    code, out, err = cli(["compare", str(runs["a"]), str(runs["b"]), "--out", str(target)],
                         monkeypatch, capsys)
    assert code == 0, err
    expected = changed_subjects(runs["a"], runs["b"]).tolist()
    assert len(expected) > 10  # more than the sample the terminal shows
    assert f"wrote {len(expected):,} changed subjects to {target}" in out
    tab = pacsv.read_csv(target) if suffix == ".csv" else pq.read_table(target)
    assert tab.column("subject_id").to_pylist() == expected
    for col in ("kind", "region", "income_band", "age_band", "grade_a", "grade_b",
                "points_a", "points_b", "denied_a", "denied_b"):
        assert col in tab.column_names, col
    rows = {r["subject_id"]: r for r in tab.to_pylist()}
    a = Run.open(runs["a"])
    sid = expected[0]
    assert rows[sid]["points_a"] == (a.sql("SELECT coalesce(sum(points), 0) AS p FROM ledger "
                                           "WHERE subject_id = ?", [sid]).to_pylist()[0]["p"])
    assert rows[sid]["income_band"] == a.sql("SELECT income_band FROM subjects WHERE "
                                             "subject_id = ?", [sid]).to_pylist()[0]["income_band"]
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_out_refuses_what_it_cannot_write(runs: dict[str, Path], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    a, b = str(runs["a"]), str(runs["b"])
    for target, words in ((tmp_path / "x.xlsx", "name a .csv or a .parquet file"),
                          (tmp_path / "no" / "x.csv", "does not exist")):
        code, out, err = cli(["compare", a, b, "--out", str(target)], monkeypatch, capsys)
        assert code == 2 and words in err and err.count("\n") == 1, err
    code, out, err = cli(["compare", a, str(runs["plain"]), "--out", str(tmp_path / "x.csv")],
                         monkeypatch, capsys)
    assert code == 2 and "has no ledger" in err
    assert not any(tmp_path.iterdir())
