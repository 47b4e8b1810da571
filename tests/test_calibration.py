"""calibrate, sensitivity, scenario overlays and dated behaviour values, at tiny sizes."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli_support import invoke
from socialcredit.errors import UserError
from socialcredit.scenario import Scenario

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
TARGETS = FIXTURES / "targets_small.yaml"
PARAMS = FIXTURES / "params_small.yaml"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]),
    "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))}


def _calibrate_cmd(out: Path, trials: int) -> list[str]:
    return [sys.executable, "-m", "socialcredit", "calibrate", "china", str(TARGETS),
            "--params", str(PARAMS), "--trials", str(trials), "--out", str(out)]


def _complete(out: Path) -> list[tuple[int, dict[str, float], float]]:
    import optuna

    study = optuna.load_study(study_name="calibration", storage=f"sqlite:///{out / 'study.db'}")
    return [(t.number, dict(t.params), float(t.value or 0)) for t in study.get_trials()
            if t.state == optuna.trial.TrialState.COMPLETE]


def test_calibrate_killed_after_its_first_trial_resumes_keeping_it(tmp_path: Path) -> None:
    out = tmp_path / "cal"
    shipped = Scenario.load("china").path
    assert shipped is not None
    shipped_text = shipped.read_bytes()
    proc = subprocess.Popen(_calibrate_cmd(out, 4), env=ENV, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = out / "trials" / "0000.json"
    deadline = time.monotonic() + 300
    while not first.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert first.is_file(), proc.stderr.read().decode() if proc.stderr else ""
    kept = json.loads(first.read_text())
    before = _complete(out)
    assert 1 <= len(before) < 4, "the kill came too late to test resuming"
    assert not (out / "overlay.yaml").exists()

    res = subprocess.run(_calibrate_cmd(out, 4), env=ENV, cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    after = _complete(out)
    assert len(after) == 4
    assert all(t in after for t in before)  # finished trials kept, values and losses alike
    assert json.loads(first.read_text()) == kept
    assert kept["loss"] == pytest.approx(before[0][2])
    assert {"loss", "loss_held_out", "comparisons", "values"} <= set(kept)
    assert len(list((out / "trials").glob("*.json"))) == 4

    # the overlay: the best trial's values with provenance, accepted by `run`
    overlay = Scenario.load(out / "overlay.yaml")
    best = min(after, key=lambda t: t[2])
    assert overlay.provenance is not None
    assert overlay.provenance["best_trial"] == best[0]
    assert overlay.provenance["fitted"] == ["listed_2013_11"]
    assert overlay.provenance["held_out"] == ["listed_2013_12"]
    assert overlay.behaviour.repayment_per_year == pytest.approx(
        best[1]["behaviour.repayment_per_year"])
    rate = overlay.behaviour.acts["court_default"].rate_per_year
    assert rate is not None and rate.first == pytest.approx(
        best[1]["behaviour.acts.court_default.rate_per_year.2013-10-01"])
    refs = overlay.provenance["references"]
    assert all("calibrated" in refs[k] and "small" in refs[k] for k in best[1])
    # the shipped scenario itself is never edited
    assert shipped.read_bytes() == shipped_text

    # another plan in the same directory is refused, and nothing is written
    res = subprocess.run([*_calibrate_cmd(out, 4), "--citizens", "4000"], env=ENV, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "holds another calibration" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_calibrate_on_dask_runs_its_trials_on_the_workers(tmp_path: Path, client: object) -> None:
    from socialcredit.calibration import calibrate

    seen: list[tuple[int, int]] = []
    result = calibrate("china", TARGETS, PARAMS, trials=3, out=tmp_path / "cal", client=client,
                       progress=lambda d, t, b: seen.append((d, t)))
    assert result.finished == 3 and result.new == 3 and result.failed == 0
    assert seen[-1] == (3, 3)
    pids = {json.loads(p.read_text())["pid"] for p in (tmp_path / "cal" / "trials").glob("*.json")}
    assert os.getpid() not in pids


def test_a_new_study_starts_from_the_scenario_and_judges_the_mean_of_its_seeds(
        tmp_path: Path) -> None:
    """Trial 0 of a new study is the scenario's own values; with ``seeds`` each trial runs
    once per seed and its figures are the mean of the runs' (each run's table kept too)."""
    from socialcredit.calibration import calibrate
    from socialcredit.scenario import get_path

    p = tmp_path / "p.yaml"
    p.write_text("citizens: 2000\nseeds: [11, 12]\nparameters:\n"
                 "  - {path: behaviour.acts.court_default.rate_per_year.2013-10-01, "
                 "low: 0.0001, high: 0.02, log: true}\n"
                 "  - {path: behaviour.repayment_per_year, low: 0.05, high: 2.0}\n",
                 encoding="utf-8")
    # a frequent figure (court defaults among 2,000 citizens, and every act), so that the
    # seeds' runs differ
    t = tmp_path / "t.yaml"
    t.write_text(TARGETS.read_text(encoding="utf-8").replace(
        "enter_judgment_debtors + enter_judgment_debtor_firms",
        "acts_jaywalking + acts_traffic_ticket + acts_court_default"), encoding="utf-8")
    result = calibrate("china", t, p, trials=2, out=tmp_path / "cal")
    assert result.finished == 2
    base = Scenario.load("china").to_dict()
    first = json.loads((tmp_path / "cal" / "trials" / "0000.json").read_text())
    assert first["values"] == {k: pytest.approx(float(get_path(base, k))) for k in first["values"]}
    assert first["seeds"] == [11, 12]
    runs = first["comparisons_by_seed"]
    assert len(runs) == 2
    for k, row in enumerate(first["comparisons"]):
        models = [r[k]["model"] for r in runs]
        if None in models:
            assert row["model"] is None
            continue
        assert row["model"] == pytest.approx(sum(models) / 2)
        assert row["ratio"] == pytest.approx(row["model"] / row["published"])
    # the two seeds are two different runs, not one run twice
    assert [r[0]["model"] for r in runs][0] != [r[0]["model"] for r in runs][1]
    plan = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert plan["seeds"] == [11, 12]
    overlay = Scenario.load(tmp_path / "cal" / "overlay.yaml")
    assert overlay.provenance is not None and overlay.provenance["seeds"] == [11, 12]
    assert "the mean of seeds 11, 12" in next(iter(overlay.provenance["references"].values()))
    assert plan["targets"] == "small"


def test_a_trial_runs_through_the_last_figure_that_weighs() -> None:
    """A study that fits the debt list runs through its last fitted or held-out figure (end
    2017), not through the tax grades of 2019 that weigh nothing in its loss."""
    from socialcredit.calibration.calibrate import prepare

    sc = Scenario.load("china")
    debt = prepare("china", "china", "china_debt", citizens=None, days=None, seed=None)
    assert sc.start + dt.timedelta(days=debt["days"] - 1) == dt.date(2017, 12, 31)
    tax = prepare("china", "china", "china_tax", citizens=None, days=None, seed=None)
    assert sc.start + dt.timedelta(days=tax["days"] - 1) == dt.date(2019, 6, 30)
    assert prepare("china", "china", "china_debt", citizens=None, days=None,
                   seed=7)["seeds"] == [7]


def test_run_accepts_an_overlay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    ov = tmp_path / "o.yaml"
    ov.write_text("overlay: china\nset:\n  behaviour.repayment_per_year: 0.25\n"
                  "provenance: {method: by hand}\n", encoding="utf-8")
    code, out, err = invoke(["run", str(ov), "--citizens", "2000", "--days", "20", "--out",
                             str(tmp_path / "run")], monkeypatch, capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["scenario"]["behaviour"]["repayment_per_year"] == 0.25
    assert manifest["scenario"]["provenance"] == {"method": "by hand"}


@pytest.mark.parametrize(("text", "line", "words"), [
    ("overlay: china\nset:\n  behaviour.nope: 1\n", 3, "not a value of the scenario china"),
    ("overlay: china\nset:\n  behaviour.repayment_per_year: -1\n", 3, "greater than or equal"),
    ("overlay: china\nsets: {}\n", 2, "unknown key 'sets'"),
    ("overlay: nowhere\n", 1, "unknown scenario"),
])
def test_bad_overlays_are_one_sentence_with_file_and_line(tmp_path: Path, text: str, line: int,
                                                          words: str) -> None:
    p = tmp_path / "o.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as info:
        Scenario.load(p)
    assert info.value.path == str(p) and info.value.line == line, info.value.sentence()
    assert words in info.value.sentence()


@pytest.mark.parametrize(("text", "line", "words"), [
    ("parameters:\n  - {path: behaviour.nope, low: 0, high: 1}\n", 2, "not a value"),
    ("parameters:\n  - {path: behaviour.awareness, low: 1, high: 0}\n", 2, "low < high"),
    ("parameters:\n  - {path: behaviour.feedback_x, low: 0, high: 1, log: true}\n", 2,
     "positive"),
    ("parameters:\n  - path: behaviour.objection\n    low: 0\n    high: 1\n", 2, "not a number"),
    ("seeds: [3, 3]\nparameters:\n  - {path: behaviour.awareness, low: 0, high: 1}\n", 1,
     "seed appears twice"),
])
def test_bad_parameter_files(tmp_path: Path, text: str, line: int, words: str,
                             monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(text, encoding="utf-8")
    code, out, err = invoke(["calibrate", "china", str(TARGETS), "--params", str(p),
                             "--trials", "1", "--out", str(tmp_path / "cal")], monkeypatch, capsys)
    assert code == 2, err
    assert err.startswith(f"error: {p}, line {line}:") and words in err, err
    assert not (tmp_path / "cal").exists()


@pytest.mark.parametrize(("fit", "words"), [
    ("[nope]", "is not in the targets"), ("[listed_2013_12]", "is held out"),
])
def test_bad_targets_to_fit(tmp_path: Path, fit: str, words: str,
                            monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "p.yaml"
    p.write_text(PARAMS.read_text(encoding="utf-8") + f"fit: {fit}\n", encoding="utf-8")
    line = len(p.read_text(encoding="utf-8").splitlines())
    code, out, err = invoke(["calibrate", "china", str(TARGETS), "--params", str(p),
                             "--trials", "1", "--out", str(tmp_path / "cal")], monkeypatch, capsys)
    assert code == 2, err
    assert err.startswith(f"error: {p}, line {line}:") and words in err, err
    assert not (tmp_path / "cal").exists()


def test_a_study_fits_only_the_targets_it_names() -> None:
    """``fit`` weighs the other fitted targets zero: the loss is that of the named ones."""
    import math

    from socialcredit.calibration.calibrate import prepare
    from socialcredit.targets import TargetSet, load_targets
    from socialcredit.targets.compare import loss

    tax = prepare("china", "china", "china_tax", citizens=None, days=None, seed=None)
    assert tax["fitted"] == ["tax_grade_a_2019", "tax_grade_d_2019"]
    debt = prepare("china", "china", "china_debt", citizens=None, days=None, seed=None)
    first = prepare("china", "china", "china_first_quarter", citizens=None, days=None,
                    seed=None)
    assert first["fitted"] == ["listed_2013_11", "listed_persons_2013_11"]
    assert first["citizens"] == 1_000_000 and first["days"] == 61
    measures = prepare("china", "china", "china_measures", citizens=None, days=None,
                       seed=None)
    assert debt["seeds"] == measures["seeds"] == [2013, 2014]
    # the four studies together fit every fitted target, each once
    every = [t.id for t in load_targets("china").fitted]
    assert sorted(debt["fitted"] + measures["fitted"] + first["fitted"]
                  + tax["fitted"]) == sorted(every)
    ts = TargetSet.model_validate(tax["targets_data"])
    assert {t.id for t in ts.targets if t.weight > 0} == {
        "tax_grade_a_2019", "tax_grade_d_2019", *(t.id for t in ts.targets if t.holdout)}

    class C:  # a comparison as loss reads it
        def __init__(self, target: object, ratio: float) -> None:
            self.holdout, self.weight, self.ratio = target.holdout, target.weight, ratio

    rows = [C(t, 2.0 if t.id.startswith("tax_") else 5.0) for t in ts.targets]
    assert loss(rows) == pytest.approx(math.log(2.0) ** 2)


def test_shipped_china_parameters_name_values_of_the_scenario() -> None:
    from socialcredit.calibration import load_params

    pf = load_params(ROOT / "src" / "socialcredit" / "calibration" / "china.yaml")
    pf.check_against(Scenario.load("china"))
    assert "behaviour.acts.court_default.rate_per_year.2016-01-01" in pf.names


@pytest.mark.parametrize("name", ["china", "china_debt", "china_measures",
                                  "china_measures_refine", "china_first_quarter", "china_tax"])
def test_shipped_studies_start_from_the_shipped_values(name: str) -> None:
    """Each shipped study's bounds hold china's shipped values, so that its first trial is
    the shipped fit and a rerun can only improve on it."""
    from socialcredit.calibration.calibrate import prepare

    plan = prepare("china", "china", name, citizens=None, days=None, seed=None)
    outside = [p["path"] for p in plan["parameters"]
               if not p["low"] <= plan["start"][p["path"]] <= p["high"]]
    assert not outside


def test_the_measures_refinement_is_the_same_study_in_narrower_bounds() -> None:
    from socialcredit.calibration.calibrate import prepare

    wide = prepare("china", "china", "china_measures", citizens=None, days=None, seed=None)
    fine = prepare("china", "china", "china_measures_refine", citizens=None, days=None,
                   seed=None)
    for key in ("fitted", "seeds", "citizens", "days"):
        assert fine[key] == wide[key], key
    bounds = {p["path"]: (p["low"], p["high"]) for p in wide["parameters"]}
    narrow = {p["path"]: (p["low"], p["high"]) for p in fine["parameters"]}
    assert set(narrow) == set(bounds)
    for path, (low, high) in narrow.items():
        assert high - low < bounds[path][1] - bounds[path][0], path


def test_sensitivity_morris_smallest_sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # 200,000 citizens: the first two months' listings are a few dozen, never zero
    code, out, err = invoke(["sensitivity", "china", "--params", str(PARAMS), "--method",
                             "morris", "--targets", str(TARGETS), "--samples", "2", "--citizens",
                             "200000", "--out", str(tmp_path / "sens")], monkeypatch, capsys)
    assert code == 0, err
    doc = json.loads((tmp_path / "sens" / "sensitivity.json").read_text())
    assert doc["runs"] == 2 * (2 + 1)
    rows = {r["parameter"]: r for r in doc["rows"]}
    assert {r["output"] for r in doc["rows"]} == {"listed_2013_11"}
    assert set(rows) == {
        "behaviour.acts.court_default.rate_per_year.2013-10-01", "behaviour.repayment_per_year"}
    # the courts' capacity moves the first listings; repayment, before any is due, does not
    assert rows["behaviour.acts.court_default.rate_per_year.2013-10-01"]["index"] > 1.0
    assert rows["behaviour.repayment_per_year"]["index"] == 0.0
    # the held-out figure of 2013-12 lies after the runs' last day: left out, and said so
    assert set(doc["skipped"]) == {"listed_2013_12"}
    assert "mu_star" in out and "left out: listed_2013_12 (not computed" in out
    assert "plotly" in (tmp_path / "sens" / "sensitivity.html").read_text()
    code, out, err = invoke(["sensitivity", "china", "--params", str(PARAMS), "--method",
                             "fast", "--out", str(tmp_path / "s2")], monkeypatch, capsys)
    assert code == 2 and "morris or sobol" in err


def test_sensitivity_leaves_out_outputs_it_cannot_compare(tmp_path: Path) -> None:
    """A figure after the runs' last day has no value, and one that is zero in some runs no
    logarithm: neither is given elementary effects (a floor's effects are not the model's);
    both are named, with why, in the table's file and page. At 2,000 citizens the first two
    months list nobody."""
    from socialcredit.calibration.sensitivity import sensitivity, why_left_out

    res = sensitivity("china", PARAMS, targets=TARGETS, samples=2, days=61,
                      out=tmp_path / "sens")
    assert res.rows == []
    assert res.skipped == {
        "listed_2013_11": "zero in 6 of 6 runs: too few events at 2,000 citizens for a log "
                          "scale",
        "listed_2013_12": "not computed: the runs end on 2013-11-30, before its date"}
    doc = json.loads((tmp_path / "sens" / "sensitivity.json").read_text())
    assert doc["skipped"] == res.skipped
    page = (tmp_path / "sens" / "sensitivity.html").read_text()
    assert "Outputs left out" in page and "No output could be compared" in page
    assert why_left_out([3.0, 0.0, 5.0], 50_000, "2019-06-30") == (
        "zero in 1 of 3 runs: too few events at 50,000 citizens for a log scale")
    assert why_left_out([3.0, 4.0], 50_000, "2019-06-30") is None


# --- dated behaviour values -----------------------------------------------------------------


def test_a_dated_act_rate_follows_its_history_by_epoch() -> None:
    from socialcredit.behaviour import build_behaviour
    from socialcredit.catalogue import load_catalogue
    from socialcredit.engine import _behaviour_dates
    from socialcredit.policy import compile_policy

    base = Scenario.load("default").to_dict()
    base["behaviour"]["acts"] = {"jaywalking": {"rate_per_year": {"2017-01-01": 1.0,
                                                                   "2018-03-01": 4.0}}}
    sc = Scenario.from_dict(base)
    assert [d.isoformat() for d in sc.behaviour_dates()] == ["2017-01-01", "2018-03-01"]
    cat = load_catalogue()
    regions = [(r.id, r.extension) for r in sc.regions]
    pol = compile_policy(sc.policy, regions, sc.reforms, sc.start_with_burn_in, sc.end, cat,
                         extra_dates=_behaviour_dates(sc))
    starts = [str(np.datetime64(int(d), "D")) for d in pol.epoch_start]
    assert "2018-03-01" in starts
    t, _ = build_behaviour(cat, sc, pol)
    k = [a.id for a in cat.acts].index("jaywalking")
    e_late = starts.index("2018-03-01")
    e_early = e_late - 1
    # the threshold is that of the largest rate; the earlier epoch carries a quarter of it
    assert t["act_thr"][0, k] == build_behaviour(cat, Scenario.from_dict({
        **base, "behaviour": {"acts": {"jaywalking": {"rate_per_year": 4.0}}}}), pol)[0][
        "act_thr"][0, k]
    ratio = t["act_mod_policy"][e_early, :, k] / t["act_mod_policy"][e_late, :, k]
    assert np.allclose(ratio, 0.25, atol=0.01)


def test_dated_awareness_follows_its_history_and_moves_listed_requests() -> None:
    """The share of listed subjects who know it may be dated: the tables carry one threshold
    per epoch, and listed subjects ask less once more of them know."""
    from engine_support import run_every_event
    from socialcredit.engine import build_model
    from socialcredit.kernel import layout as LY
    from socialcredit.rng import threshold

    def requests(aware: object) -> tuple[Any, int, int]:
        base = Scenario.load("default").to_dict()
        base.update(seed=3, start="2018-01-01", days=240, burn_in_days=0)
        base["behaviour"]["awareness"] = aware
        base["behaviour"]["listed_request_factor"] = 0.1
        base["behaviour"]["acts"] = {"court_default": {"rate_per_year": 0.3}}
        model = build_model(Scenario.from_dict(base).rescaled(3000))
        res = run_every_event(model)
        listed: set[int] = set()
        n = [0, 0]  # requests of listed subjects before and after 2018-05-01
        switch = (dt.date(2018, 5, 1) - dt.date(2018, 1, 1)).days
        for t, ev in enumerate(res.events):
            for row in ev:
                if row[0] == LY.EV_LIST and row[3] == LY.LIST_ENTER:
                    listed.add(int(row[1]))
                elif row[0] == LY.EV_LIST and row[3] == LY.LIST_EXIT:
                    listed.discard(int(row[1]))
                elif row[0] == LY.EV_DECISION and int(row[1]) in listed:
                    n[t >= switch] += 1
        return model, n[0], n[1]

    model, before, after = requests({"2018-01-01": 0.0, "2018-05-01": 1.0})
    thr = model.packed.P[model.packed.P[LY.OFF_O + LY.T_AWARE_THR]:][:len(model.policy.epoch_start)]
    starts = [str(np.datetime64(int(d), "D")) for d in model.policy.epoch_start]
    late = starts.index("2018-05-01")
    assert thr[late] == threshold(1.0) and all(thr[e] == 0 for e in range(late))
    _, before0, after0 = requests(0.0)
    # the same draws: before the date nothing differs; after it, listed subjects ask less
    assert before == before0 and after0 > 0
    assert after < 0.4 * after0, (after, after0)


def test_constant_rates_leave_the_behaviour_tables_unchanged() -> None:
    """A scenario without dated values gets the tables it always had (factor 1 exactly)."""
    from socialcredit.behaviour import build_behaviour
    from socialcredit.catalogue import load_catalogue
    from socialcredit.policy import compile_policy

    sc = Scenario.load("default")
    base = sc.to_dict()
    base["behaviour"]["acts"] = {"jaywalking": {"rate_per_year": {"2010-01-01": 2.0}}}
    dated = Scenario.from_dict(base)
    plain = base | {"behaviour": {**base["behaviour"],
                                  "acts": {"jaywalking": {"rate_per_year": 2.0}}}}
    cat = load_catalogue()
    regions = [(r.id, r.extension) for r in sc.regions]
    pol = compile_policy(sc.policy, regions, sc.reforms, sc.start_with_burn_in, sc.end, cat)
    a, _ = build_behaviour(cat, dated, pol)
    b, _ = build_behaviour(cat, Scenario.from_dict(plain), pol)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_the_china_scenario_follows_the_record_from_2013() -> None:
    import datetime as dt

    from socialcredit.policy import compile_policy

    sc = Scenario.load("china")
    assert sc.start == dt.date(2013, 10, 1) and sc.burn_in_days == 0
    assert sc.end == dt.date(2019, 12, 31)
    rate = sc.behaviour.acts["court_default"].rate_per_year
    assert rate is not None and not rate.is_constant
    regions = [(r.id, r.extension) for r in sc.regions]
    pol = compile_policy(sc.policy, regions, sc.reforms, sc.start, sc.end)
    starts = [str(np.datetime64(int(d), "D")) for d in pol.epoch_start]
    jd = pol.list_names.index("judgment_debtors")
    loans = pol.measure_names.index("jd_no_loans")
    flights = pol.measure_names.index("jd_no_flights")
    e2015 = max(i for i, s in enumerate(starts) if s <= "2015-06-01")
    e2016 = starts.index("2016-01-21")
    assert pol.list_active[0, 0, jd]  # the list from 2013-10-01
    assert pol.measure_active[e2015, 0, flights] and not pol.measure_active[e2015, 0, loans]
    # airlines stopped listed debtors from 2014-07-01, when their system began to run
    assert not pol.measure_active[0, 0, flights]
    assert pol.measure_active[starts.index("2014-07-01"), 0, flights]
    assert pol.measure_active[0, 0, pol.measure_names.index("jd_no_high_speed_trains")]
    # travel demand follows the published passenger series, relative to 2016
    for service in ("flight", "train", "soft_sleeper"):
        demand = sc.behaviour.services[service].demand
        assert demand.at(dt.date(2016, 6, 1)) == 1.0
        assert demand.at(dt.date(2013, 10, 1)) < 0.8 < 1.25 < demand.at(dt.date(2019, 6, 1))
    assert pol.measure_active[e2016, 0, loans]  # the joint punishment memorandum
