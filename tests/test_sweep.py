"""Sweeps: a plan of runs checked before anything runs, executed on Dask, summarised."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from socialcredit.errors import UserError

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.filterwarnings("ignore:Port 8787 is already in use")

GRID = """\
name: tiny
scenario: default
citizens: 4000
days: 30
replicates: 2
set:
  burn_in_days: 0
grid:
  behaviour.awareness: [0.11, 0.5]
  feedback.deterrence: [false, true]
"""


def write(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def summary_rows(root: Path) -> list[dict[str, Any]]:
    from socialcredit.sweep import open_summary

    con = open_summary(root)
    try:
        return con.sql("SELECT * FROM summary ORDER BY run").to_arrow_table().to_pylist()
    finally:
        con.close()


# --- plans ---------------------------------------------------------------------------------


def test_grid_plan_has_every_combination_and_replicate(tmp_path: Path) -> None:
    from socialcredit.sweep import load_sweep

    plan = load_sweep(write(tmp_path, GRID))
    assert len(plan.runs) == 8
    assert plan.parameters == ["behaviour.awareness", "feedback.deterrence"]
    assert plan.types == {"behaviour.awareness": "float64", "feedback.deterrence": "bool"}
    points = {(r.params["behaviour.awareness"], r.params["feedback.deterrence"]) for r in plan.runs}
    assert points == {(0.11, False), (0.11, True), (0.5, False), (0.5, True)}
    # replicate r of every point runs with seed (scenario seed + r): common random numbers
    assert {(r.replicate, r.seed) for r in plan.runs} == {(0, 2018), (1, 2019)}
    assert len({r.name for r in plan.runs}) == 8
    assert plan.base["burn_in_days"] == 0
    # the same file always gives the same plan and names
    assert load_sweep(write(tmp_path, GRID, "again.yaml")).to_json()["runs"] == \
        plan.to_json()["runs"]


def test_random_plan_is_drawn_from_its_seed(tmp_path: Path) -> None:
    from socialcredit.sweep import load_sweep

    text = """\
    scenario: default
    random:
      samples: 5
      seed: 3
      parameters:
        behaviour.awareness: {uniform: [0.1, 0.9]}
        regions.rongcheng.consent_share: {uniform: [0.2, 1.0]}
        behaviour.acts.jaywalking.rate_per_year: {loguniform: [0.5, 4.0]}
        seed: {integers: [1, 1000]}
        feedback.uptake: {choice: [true, false]}
    replicates: 2
    """
    a = load_sweep(write(tmp_path, text, "a.yaml"))
    b = load_sweep(write(tmp_path, text, "b.yaml"))
    assert a.to_json()["runs"] == b.to_json()["runs"]
    assert len(a.runs) == 10
    assert a.types["seed"] == "int64" and a.types["feedback.uptake"] == "bool"
    for run in a.runs:
        assert 0.1 <= run.params["behaviour.awareness"] <= 0.9
        assert run.seed == run.params["seed"] + run.replicate
        sc = a.scenario_dict(run)
        assert sc["seed"] == run.seed
        assert sc["regions"][0]["consent_share"] == run.params["regions.rongcheng.consent_share"]
        assert sc["behaviour"]["acts"]["jaywalking"]["rate_per_year"] == \
            run.params["behaviour.acts.jaywalking.rate_per_year"]


def test_citizens_and_days_can_be_varied(tmp_path: Path) -> None:
    from socialcredit.sweep import load_sweep

    plan = load_sweep(write(tmp_path, """\
    scenario: default
    citizens: 800
    days: 30
    grid:
      citizens: [800, 1600]
      days: [10, 20]
    """))
    assert len(plan.runs) == 4
    for run in plan.runs:
        assert plan.citizens_of(run) == run.params["citizens"]
        assert plan.days_of(run) is None  # the varied days are in the run's scenario
        assert plan.scenario_dict(run)["days"] == run.params["days"]
        assert "citizens" not in plan.scenario_dict(run)


@pytest.mark.parametrize("grid, message", [
    ("grid:\n  behaviour.awarenes: [0.1]\n",
     r"line 4: behaviour.awarenes is not a parameter of the scenario default"),
    ("grid:\n  regions.atlantis.consent_share: [0.1]\n",
     r"line 4: regions.atlantis.consent_share names no region of the scenario default"),
    ("grid:\n  behaviour.awareness.deep: [0.1]\n", r"is not a parameter of the scenario"),
    ("grid: {}\n", r"line 3: the grid is empty"),
    ("grid:\n  behaviour.awareness: []\n", r"line 4: the grid gives behaviour.awareness no values"),
    ("grid:\n  behaviour.awareness: 0.5\n", r"must give behaviour.awareness a list"),
    ("grid:\n  behaviour.awareness: [0.5, 2.0]\n",
     r"behaviour.awareness = 2.0 does not give a valid scenario"),
    ("grid:\n  behaviour.acts.teleporting.rate_per_year: [1.0]\n", r"unknown act 'teleporting'"),
    ("grid:\n  policy: [national, nowhere]\n", r"policy = \"nowhere\" does not give a valid policy"),
    ("", r"the sweep varies nothing"),
    ("grids:\n  behaviour.awareness: [0.5]\n", r"line 3: unknown key 'grids'"),
    ("random:\n  samples: 2\n  parameters:\n    behaviour.awareness: {uniform: [0.9, 0.1]}\n",
     r"uniform for behaviour.awareness needs two bounds"),
])
def test_bad_sweeps_are_one_sentence_and_write_nothing(tmp_path: Path, grid: str,
                                                       message: str) -> None:
    from socialcredit.sweep import run_sweep

    path = write(tmp_path, "scenario: default\nreplicates: 1\n" + grid)
    out = tmp_path / "out"
    with pytest.raises(UserError, match=message) as info:
        run_sweep(path, out=out)
    assert "\n" not in info.value.sentence()
    assert str(path) in info.value.sentence()
    assert not out.exists()


def test_bad_base_scenario_and_set(tmp_path: Path) -> None:
    from socialcredit.sweep import load_sweep

    path = write(tmp_path, "scenario: atlantis\ngrid:\n  behaviour.awareness: [0.5]\n")
    with pytest.raises(UserError, match=r"line 1: unknown scenario 'atlantis'"):
        load_sweep(path)
    path = write(tmp_path, "set:\n  behaviour.awareness: 7\ngrid:\n  seed: [1]\n")
    with pytest.raises(UserError, match=r"the values under set do not give a valid scenario"):
        load_sweep(path)
    path = write(tmp_path, "set:\n  behaviour.aware: 0.5\ngrid:\n  seed: [1]\n")
    with pytest.raises(UserError, match=r"line 2: behaviour.aware is not a parameter"):
        load_sweep(path)
    with pytest.raises(UserError, match=r"sweep file nowhere.yaml does not exist"):
        load_sweep("nowhere.yaml")


def test_cli_bad_sweep_exits_2_with_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from socialcredit import cli

    path = write(tmp_path, "scenario: default\ngrid:\n  feedback.deterrent: [true]\n")
    monkeypatch.setattr(sys, "argv", ["socialcredit", "sweep", str(path), "--out",
                                      str(tmp_path / "out")])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {path}, line 3: feedback.deterrent is not a parameter of the "
                   "scenario default")
    assert not (tmp_path / "out").exists()


def test_unreachable_scheduler_writes_nothing(tmp_path: Path) -> None:
    from socialcredit.sweep import run_sweep

    out = tmp_path / "out"
    with pytest.raises(UserError, match=r"cannot reach a Dask scheduler at tcp://127\.0\.0\.1:9"):
        run_sweep(write(tmp_path, GRID), out=out, scheduler="tcp://127.0.0.1:9",
                  connect_timeout=1)
    assert not out.exists()


def test_another_sweep_in_the_directory_is_refused(tmp_path: Path) -> None:
    from socialcredit.sweep import run_sweep

    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"name": "other", "runs": []}))
    with pytest.raises(UserError, match="holds another sweep"):
        run_sweep(write(tmp_path, GRID), out=out)


# --- execution -----------------------------------------------------------------------------


def test_two_by_two_grid_with_two_replicates_on_dask(client: Any, tmp_path: Path) -> None:
    from socialcredit.store import Run
    from socialcredit.summary import summarize
    from socialcredit.sweep import load_sweep, run_sweep

    path = write(tmp_path, GRID)
    out = tmp_path / "sweep"
    seen: list[tuple[int, int]] = []
    result = run_sweep(path, out=out, client=client,
                       progress=lambda done, total: seen.append((done, total)))
    assert result.ok and len(result.finished) == 8 and not result.skipped
    assert seen[-1] == (8, 8)
    plan = load_sweep(path)
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == sorted(r.name for r in plan.runs)  # 8 run directories, nothing else
    assert json.loads((out / "sweep.json").read_text())["runs"] == plan.to_json()["runs"]
    assert json.loads((out / "status.json").read_text())["failed"] == {}
    rows = summary_rows(out)
    assert [r["run"] for r in rows] == sorted(r.name for r in plan.runs)
    by_name = {r.name: r for r in plan.runs}
    for row in rows:
        planned = by_name[row["run"]]
        assert row["behaviour.awareness"] == planned.params["behaviour.awareness"]
        assert row["feedback.deterrence"] == planned.params["feedback.deterrence"]
        assert (row["replicate"], row["seed"]) == (planned.replicate, planned.seed)
        run = Run.open(out / row["path"])
        scenario = run.manifest["scenario"]
        assert scenario["behaviour"]["awareness"] == row["behaviour.awareness"]
        assert scenario["feedback"]["deterrence"] == row["feedback.deterrence"]
        assert run.manifest["seed"] == row["seed"]
        assert run.manifest["population"]["citizens"] == 4000
        assert run.manifest["calendar"]["days"] == 30
        s = summarize(out / row["path"])
        for metric in ("acts", "records", "records_false", "decisions", "denied", "wrongful",
                       "false_share", "wrongful_share"):
            assert row[metric] == s[metric], metric
        assert s["lists"]
        for name, n in s["lists"].items():
            assert row[f"listed_{name}"] == n
        run.close()

    # The same sweep again: everything is finished, nothing runs (and no cluster is needed).
    again = run_sweep(path, out=out, scheduler="tcp://127.0.0.1:9", connect_timeout=1)
    assert again.ok and not again.finished and len(again.skipped) == 8
    assert len(summary_rows(out)) == 8


def test_failed_runs_are_reported_and_retried_alone(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import socialcredit.run as run_module
    from socialcredit.sweep import run_sweep

    path = write(tmp_path, GRID.replace("replicates: 2", "replicates: 1"))
    out = tmp_path / "sweep"
    real = run_module.simulate

    def flaky(scenario: Any, **kw: Any) -> Path:
        if scenario.behaviour.awareness == 0.5 and scenario.feedback.deterrence:
            raise RuntimeError("the disk is full")
        return real(scenario, **kw)

    monkeypatch.setattr(run_module, "simulate", flaky)
    first = run_sweep(path, out=out, threads=1)
    assert len(first.finished) == 3 and list(first.failed.values()) == [
        "RuntimeError: the disk is full"]
    (failed,) = first.failed
    assert json.loads((out / "status.json").read_text())["failed"] == first.failed
    assert len(summary_rows(out)) == 3
    monkeypatch.setattr(run_module, "simulate", real)
    second = run_sweep(path, out=out, threads=1)
    assert second.finished == [failed] and len(second.skipped) == 3 and second.ok
    assert json.loads((out / "status.json").read_text())["failed"] == {}
    assert len(summary_rows(out)) == 4


def test_a_worker_killed_mid_sweep_loses_and_duplicates_nothing(client: Any,
                                                                tmp_path: Path) -> None:
    from socialcredit.run import simulate
    from socialcredit.scenario import Scenario
    from socialcredit.store import Run
    from socialcredit.sweep import load_sweep, run_sweep

    # Runs long enough (a long burn-in) to be caught in the middle.
    path = write(tmp_path, GRID.replace("citizens: 4000", "citizens: 16000")
                 .replace("burn_in_days: 0", "burn_in_days: 600")
                 .replace("  feedback.deterrence: [false, true]\n", ""))
    plan = load_sweep(path)
    assert len(plan.runs) == 4
    out = tmp_path / "sweep"
    pids = client.run(os.getpid)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = run_sweep(plan, out=out, client=client, threads=1)
        except BaseException as err:  # noqa: BLE001 - handed to the test thread
            box["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    victim = killed_run = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline and thread.is_alive():
        partials = list((out / "runs").glob(".*.partial")) if (out / "runs").exists() else []
        for partial in partials:
            name = partial.name[1:-len(".partial")]
            for addr, keys in client.processing().items():
                if addr in pids and any(name in str(k) for k in keys):
                    victim, killed_run = addr, name
        if victim is None:
            time.sleep(0.002)
    assert victim is not None, "no run was caught in the middle"
    assert (out / "runs" / f".{killed_run}.partial").is_dir()
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(180)
    assert not thread.is_alive()
    assert "error" not in box, box.get("error")
    result = box["result"]
    assert result.ok, result.failed
    assert sorted(result.finished) == sorted(r.name for r in plan.runs)
    # every run once, complete, nothing half-written left behind
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(r.name for r in plan.runs)
    rows = summary_rows(out)
    assert sorted(r["run"] for r in rows) == sorted(r.name for r in plan.runs)
    # the run cut off by the kill is the same as the same run in one process
    (run,) = [r for r in plan.runs if r.name == killed_run]
    sc = Scenario.from_dict(plan.scenario_dict(run), path=plan.scenario_path)
    ref = simulate(sc, out=tmp_path / "ref", citizens=plan.citizens, days=plan.days, threads=1)
    with Run.open(ref) as a, Run.open(out / "runs" / killed_run) as b:
        assert a.table("daily").equals(b.table("daily"))
        assert a.manifest["census"] == b.manifest["census"]


def test_shipped_example_sweep_loads() -> None:
    from socialcredit.sweep import load_sweep, shipped_sweeps

    assert "example" in shipped_sweeps()
    plan = load_sweep("example")
    assert len(plan.runs) == 8


def test_cli_sweep_runs_and_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    import socialcredit.run as run_module
    from socialcredit import cli

    path = write(tmp_path, GRID.replace("replicates: 2", "replicates: 1")
                 .replace("  feedback.deterrence: [false, true]\n", ""))
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["socialcredit", "sweep", str(path), "--out", str(out)])
    cli.main()
    printed = capsys.readouterr().out
    assert "finished" in printed
    assert len(list((out / "runs").iterdir())) == 2
    # the results: printed (one row per run, with its parameters) and stored (results.csv)
    import pyarrow.csv as pacsv

    results = pacsv.read_csv(out / "results.csv")
    names = sorted(p.name for p in (out / "runs").iterdir())
    assert results.column("run").to_pylist() == names
    assert {"seed", "replicate", "decisions", "wrongful_share"} <= set(results.column_names)
    assert "results of sweep" in printed and all(n in printed for n in names)

    # a failing run: reported on stderr, exit code 1; the same command retries it
    victim = next((out / "runs").iterdir())
    shutil.rmtree(victim)

    def broken(*args: Any, **kw: Any) -> Path:
        raise RuntimeError("no space left")

    monkeypatch.setattr(run_module, "simulate", broken)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert f"failed {victim.name}: RuntimeError: no space left" in err
    monkeypatch.undo()
    monkeypatch.setattr(sys, "argv", ["socialcredit", "sweep", str(path), "--out", str(out)])
    cli.main()
    assert victim.is_dir()


def test_sweep_duckdb_opens_from_anywhere_and_after_a_move(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``sweep.duckdb`` names the summary parts by absolute path (a plain DuckDB client opens
    it from any working directory); ``open_summary`` reads a moved sweep where it is now."""
    import duckdb

    from socialcredit.sweep import open_summary, run_sweep

    plan = write(tmp_path, "name: anywhere\nscenario: default\ncitizens: 300\ndays: 3\n"
                           "grid:\n  behaviour.awareness: [0.11, 0.5]\n")
    root = tmp_path / "sw"
    assert len(run_sweep(plan, out=root).finished) == 2
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    con = duckdb.connect(str(root / "sweep.duckdb"), read_only=True)
    ((sql,),) = con.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'summary'").fetchall()
    assert str(root.resolve() / "summary") in sql
    assert con.sql("SELECT count(*) FROM summary").fetchall() == [(2,)]
    con.close()
    moved = tmp_path / "moved"
    root.rename(moved)
    con = open_summary(moved)
    rows = con.sql("SELECT run, decisions FROM summary ORDER BY run").fetchall()
    assert len(rows) == 2 and all(d > 0 for _, d in rows)
    con.close()
