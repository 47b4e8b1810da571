"""Targets as data: the shipped figures, one-sentence errors, and validate on a small run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import invoke
from socialcredit.errors import UserError
from socialcredit.targets import load_targets, loss, validate_run

FIXTURES = Path(__file__).parent / "fixtures"


def test_shipped_china_targets_carry_the_facts_figures() -> None:
    ts = load_targets("china")
    by_id = {t.id: t for t in ts.targets}
    assert by_id["listed_2015"].value == 3_080_000 and by_id["listed_2017"].value == 9_590_000
    assert by_id["flights_blocked_2017"].value == 9_360_000
    assert by_id["rail_blocked_2015"].value == 600_000
    assert by_id["complied_share_2015"].value == pytest.approx(0.20)
    assert by_id["tax_grade_a_2019"].value == pytest.approx(0.0489)
    assert by_id["tax_grade_d_2019"].value == pytest.approx(0.0701)
    # the figures of FACTS.md (2013 to 2017) are fitted, but for the last figure of
    # compliance; every later figure, beyond FACTS.md, is held out: 2018 and 2019, and the
    # Supreme People's Court's figures between them
    later = {t.id for t in ts.targets if t.date.year >= 2018 and t.series in (
        "listed", "flights_blocked", "rail_blocked")}
    assert later == {f"{s}_{d}" for s in ("listed", "flights_blocked", "rail_blocked")
                     for d in ("2018_09", "2018", "2019_07")}
    assert by_id["flights_blocked_2018"].value == 17_460_000
    assert by_id["flights_blocked_2018_09"].value == 14_630_000
    assert by_id["listed_2019_07"].value == 14_500_000
    assert by_id["flights_blocked_2018_01_05"].value == 2_290_000
    # and so is the first month of the airlines' block (2014-08, beyond FACTS.md too)
    first = "flights_blocked_2014_08"
    assert by_id[first].value == 108_000 and by_id[first].date.isoformat() == "2014-08-03"
    beyond = {t.id for t in ts.targets if not t.source.startswith("FACTS.md")}
    assert later | {first, "listed_2017_07", "flights_blocked_2017_07",
                    "rail_blocked_2017_07"} <= beyond
    for t in ts.targets:
        if t.id in beyond:
            assert t.holdout, t.id
    for t in ts.targets:
        if t.series in ("listed", "flights_blocked", "rail_blocked"):
            assert t.holdout == (t.id in beyond), t.id
    complied = sorted((t.date, t.id) for t in ts.targets
                      if t.series == "complied" and t.id not in beyond)
    assert all(by_id[i].holdout == (i == complied[-1][1]) for _, i in complied)
    assert ts.fitted and ts.held_out


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "t.yaml"
    p.write_text(text, encoding="utf-8")
    return p


GOOD = (FIXTURES / "targets_small.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "line", "words"),
    [
        ("    value: 31259\n", "    value: -3\n", 14, "greater than 0"),
        ("    tag: R\n", "    tag: Q\n", 17, "tag"),
        ("    date: 2013-11-30\n", "    date: 2013-11-31\n", 13, "valid"),
        ("    query: listed\n    scale: people\n  - id: listed_2013_12",
         "    query: lsted\n    scale: people\n  - id: listed_2013_12", 18, "neither SQL"),
        ("    scale: people\n  - id: listed_2013_12",
         "    scale: persons\n  - id: listed_2013_12", 19, "scale"),
        ("    WHERE day <= $date\n", "    WHERE day <= $when\n", 6, "$when"),
        ("    unit: person-times\n    source: \"FACTS",
         "    units: person-times\n    source: \"FACTS", 10, "'unit' is missing"),
    ],
)
def test_bad_target_files_are_one_sentence_with_file_and_line(
        tmp_path: Path, old: str, new: str, line: int, words: str) -> None:
    assert old in GOOD
    p = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(UserError) as info:
        load_targets(p)
    err = info.value
    assert err.path == str(p) and err.line == line, err.sentence()
    assert words in err.sentence()
    assert "\n" not in err.sentence()


def test_a_missing_target_file_and_an_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_targets(tmp_path / "nope.yaml")
    with pytest.raises(UserError, match="shipped target files are china"):
        load_targets("nowhere")


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from socialcredit.run import simulate

    out = tmp_path_factory.mktemp("targets") / "run"
    return simulate("china", out=out, citizens=2000, days=80)


def test_validate_compares_and_marks_held_out_figures(small_run: Path) -> None:
    rows = validate_run(small_run, FIXTURES / "targets_small.yaml")
    assert [r.id for r in rows] == ["listed_2013_11", "listed_2013_12"]
    assert [r.holdout for r in rows] == [False, True]
    import duckdb

    con = duckdb.connect(str(small_run / "run.duckdb"), read_only=True)
    con.execute(f"SET file_search_path = '{small_run}'")
    raw = con.execute("SELECT sum(enter_judgment_debtors + enter_judgment_debtor_firms) "
                      "FROM daily WHERE day <= DATE '2013-11-30'").fetchone()[0]
    scale = json.loads((small_run / "manifest.json").read_text())["population"]["scale"]
    assert rows[0].model == pytest.approx(raw / scale)
    assert loss(rows) >= 0 and loss(rows, holdout=True) >= 0


def test_a_figure_outside_the_run_has_no_model_value(small_run: Path) -> None:
    rows = {r.id: r for r in validate_run(small_run, "china")}
    assert rows["listed_2017"].model is None and rows["listed_2017"].within is False
    assert rows["listed_2013_11"].model is not None


def test_validate_cli_table_json_and_bad_input(small_run: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = invoke(["validate", str(small_run), str(FIXTURES / "targets_small.yaml")],
                            monkeypatch, capsys)
    assert code == 0, err
    assert "listed_2013_11" in out and "held out" in out and "fitted" in out
    code, out, err = invoke(["validate", str(small_run), str(FIXTURES / "targets_small.yaml"),
                             "--json"], monkeypatch, capsys)
    assert code == 0
    doc = json.loads(out)
    assert [c["holdout"] for c in doc["comparisons"]] == [False, True]
    assert {"published", "model", "ratio", "within"} <= set(doc["comparisons"][0])
    bad = _write(tmp_path, GOOD.replace("FROM daily\n", "FROM dialy\n", 1))
    code, out, err = invoke(["validate", str(small_run), str(bad)], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {bad}, line 6: the query of listed_2013_11 fails")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, out, err = invoke(["validate", str(tmp_path / "no-run")], monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_the_validation_table_fits_80_columns(small_run: Path) -> None:
    """Every row of the shipped targets' table, figures in the millions included, is whole in
    an 80-column terminal: no ratio or figure cut short."""
    import dataclasses
    import io

    from rich.console import Console

    from socialcredit.commands.calibration import print_validation

    rows = [dataclasses.replace(r, model=r.published * 1.2345, ratio=1.2345)
            for r in validate_run(small_run, "china")]
    buf = io.StringIO()
    print_validation(rows, Console(file=buf, width=80, color_system=None), "a run")
    lines = buf.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    body = [line for line in lines if line.strip().startswith(tuple(r.id for r in rows))]
    assert len(body) == len(rows)  # one line each: no id folded over two
    assert all("1.23" in line for line in body)
    assert any("9.59 M" in line and "11.84 M" in line for line in body)


def test_report_shows_the_run_against_its_scenarios_targets(small_run: Path) -> None:
    from socialcredit.analysis.report import build_report

    html = build_report(small_run)
    assert "Model against published figures" in html
    assert "Judgment debtors listed" in html and "held out" in html


@pytest.fixture(scope="module")
def seed_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep of the china scenario over three seeds, small and short."""
    from socialcredit.sweep import run_sweep

    root = tmp_path_factory.mktemp("sweep")
    file = root / "seeds.yaml"
    file.write_text("name: seeds\nscenario: china\ncitizens: 2000\ndays: 80\n"
                    "grid:\n  seed: [11, 12, 13]\n", encoding="utf-8")
    result = run_sweep(file, out=root / "out", progress=False)
    assert result.ok, result
    # the small target file, on a count large enough at 2,000 citizens to differ by seed
    (root / "acts.yaml").write_text(GOOD.replace(
        "sum(enter_judgment_debtors + enter_judgment_debtor_firms)", "sum(acts_jaywalking)")
        .replace("value: 31259", "value: 421000000").replace("value: 60000", "value: 525000000"),
        encoding="utf-8")
    return root / "out"


def test_validate_sweep_compares_every_run_and_spreads_the_ratios(seed_sweep: Path) -> None:
    from socialcredit.targets import spread, validate_sweep

    acts = seed_sweep.parent / "acts.yaml"
    runs = validate_sweep(seed_sweep, acts)
    assert [r.seed for r in runs] == [11, 12, 13]
    # each run's comparisons are validate_run's on that run
    for r in runs:
        assert r.comparisons == validate_run(r.path, acts)
    ratios = [r.comparisons[0].ratio for r in runs]
    assert all(x is not None for x in ratios) and len(set(ratios)) > 1  # seeds differ
    first = spread([r.comparisons for r in runs])[0]
    import statistics

    assert first.id == "listed_2013_11" and first.runs == 3 and first.valued == 3
    assert first.mean_ratio == pytest.approx(statistics.mean(ratios))
    assert first.sd_ratio == pytest.approx(statistics.stdev(ratios))
    assert (first.min_ratio, first.max_ratio) == (min(ratios), max(ratios))
    assert first.within == sum(r.comparisons[0].within for r in runs)
    # a figure after the runs' end has no value in any run, and is never within
    late = {c.id: c for c in spread([r.comparisons for r in validate_sweep(seed_sweep)])}
    gone = late["listed_2017"]
    assert (gone.valued, gone.within, gone.mean_ratio, gone.sd_ratio) == (0, 0, None, None)
    assert not gone.mean_within


def test_validate_cli_on_a_sweep_table_json_and_bad_input(
        seed_sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    small = str(seed_sweep.parent / "acts.yaml")
    code, out, err = invoke(["validate", str(seed_sweep), small], monkeypatch, capsys)
    assert code == 0, err
    assert "3 runs" in out and "listed_2013_11" in out and "runs with every figure" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    # the commands that read one run say what a sweep directory is
    code, out, err = invoke(["report", str(seed_sweep)], monkeypatch, capsys)
    assert code == 2 and "is a sweep directory, not a run directory" in err
    assert len(err.strip().splitlines()) == 1
    code, out, err = invoke(["validate", str(seed_sweep), small, "--json"], monkeypatch, capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert [r["seed"] for r in doc["runs"]] == [11, 12, 13]
    assert [s["id"] for s in doc["spread"]] == ["listed_2013_11", "listed_2013_12"]
    assert doc["spread"][0]["runs"] == 3 and "mean_within" in doc["spread"][0]
    # an unfinished run is left out; a sweep with none finished is refused in one sentence
    part = tmp_path / "part"
    shutil.copytree(seed_sweep, part)
    first = json.loads((part / "sweep.json").read_text())["runs"][0]["name"]
    shutil.rmtree(part / "runs" / first)
    code, out, err = invoke(["validate", str(part), small, "--json"], monkeypatch, capsys)
    assert code == 0 and [r["seed"] for r in json.loads(out)["runs"]] == [12, 13]
    shutil.rmtree(part / "runs")
    code, out, err = invoke(["validate", str(part), small], monkeypatch, capsys)
    assert code == 2 and out == "" and "no finished run" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    (part / "sweep.json").write_text("{not json", encoding="utf-8")
    code, out, err = invoke(["validate", str(part), small], monkeypatch, capsys)
    assert code == 2 and "sweep.json cannot be read" in err
    assert len(err.strip().splitlines()) == 1


def test_the_shipped_seed_sweep_is_the_shipped_china_over_unfitted_seeds() -> None:
    """china_seeds runs china as shipped at the size of the bar, on seeds that neither the
    studies (2013, 2014) nor the validation of docs/calibration.md (2015, 2016) used."""
    import yaml

    import socialcredit.calibration
    from socialcredit.sweep import load_sweep

    plan = load_sweep("china_seeds")
    assert plan.scenario == "china" and plan.citizens == 1_000_000 and plan.days is None
    seeds = [r.seed for r in plan.runs]
    assert len(seeds) == len(set(seeds)) == 8
    assert plan.parameters == ["seed"]
    used: set[int] = {2015, 2016}
    for f in sorted(Path(socialcredit.calibration.__file__).parent.glob("*.yaml")):
        used |= set(yaml.safe_load(f.read_text(encoding="utf-8")).get("seeds") or [])
    assert used >= {2013, 2014} and not used & set(seeds)
