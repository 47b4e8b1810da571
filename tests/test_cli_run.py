"""``socialcredit run`` from the outside: bad input, help, and a run killed midway.

Bad input (DESIGN 8): one plain sentence on stderr, no traceback, exit code 2, and nothing
written. A run killed midway leaves no directory that looks like a finished run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from socialcredit.errors import UserError
from socialcredit.store import Run, partial_path

BIN = Path(sys.executable).parent / "socialcredit"
ENV = dict(os.environ)  # the compile cache is the same one the tests' own process uses


def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    command = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "socialcredit"]
    return subprocess.run([*command, *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def bad_scenario_with_missing_policy(folder: Path) -> Path:
    text = (Path(__file__).resolve().parents[1] / "src/socialcredit/scenarios/default.yaml"
            ).read_text(encoding="utf-8")
    path = folder / "no_policy.yaml"
    path.write_text(text.replace("policy: national", "policy: policies/missing.yaml"),
                    encoding="utf-8")
    return path


BAD = {
    "unknown scenario name": (["run", "nosuch", "--out", "out"], "unknown scenario 'nosuch'"),
    "missing scenario file": (["run", "missing.yaml", "--out", "out"], "missing.yaml does not exist"),
    "missing policy file": (["run", "no_policy.yaml", "--out", "out", "--citizens", "800"],
                            "policies/missing.yaml"),
    "out exists": (["run", "--out", "taken", "--citizens", "800", "--days", "2"], "already exists"),
    "zero citizens": (["run", "--citizens", "0", "--out", "out"], "--citizens must be a positive"),
    "negative citizens": (["run", "--citizens", "-8", "--out", "out"], "--citizens must be a positive"),
    "zero days": (["run", "--days", "0", "--out", "out"], "--days must be a positive"),
    "negative days": (["run", "--days", "-1", "--out", "out"], "--days must be a positive"),
    "no --out, zero days": (["run", "default", "--days", "0"], "--days must be a positive"),
    "unknown option": (["run", "--nope", "--out", "out"], "No such option: --nope"),
    "unknown command": (["simulate"], "No such command 'simulate'"),
    "not a number": (["run", "--citizens", "many", "--out", "out"], "--citizens"),
}


@pytest.mark.parametrize("what", list(BAD))
def test_bad_input_is_one_sentence_exit_2_and_nothing_written(tmp_path: Path, what: str) -> None:
    args, fragment = BAD[what]
    bad_scenario_with_missing_policy(tmp_path)
    (tmp_path / "taken").mkdir()
    before = tree(tmp_path)
    res = cli(*args, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert fragment in lines[0] and lines[0].startswith("error: ")
    assert "Traceback" not in res.stderr + res.stdout
    assert tree(tmp_path) == before, "bad input must not write anything"


def test_a_short_run_from_the_command_line(tmp_path: Path) -> None:
    """The command as typed: exit 0, the summary on stdout, nothing on stderr, and a
    complete run directory (the process ends without the interpreter's teardown)."""
    res = cli("run", "--citizens", "2000", "--days", "20", "--out", "short", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "citizens" in res.stdout and "finished in " in res.stdout
    assert res.stderr.strip() == "", res.stderr
    run = Run.open(tmp_path / "short")
    assert run.manifest["census"]["requests"] > 0


def test_help_is_fast_and_imports_nothing_heavy(tmp_path: Path) -> None:
    for args in (["--help"], ["run", "--help"]):
        t0 = time.perf_counter()
        res = cli(*args, cwd=tmp_path)
        took = time.perf_counter() - t0
        assert res.returncode == 0 and "--citizens" in cli("run", "--help", cwd=tmp_path).stdout
        assert took < 5.0, f"socialcredit {' '.join(args)} took {took:.1f} s"
    probe = ("import sys, socialcredit.cli\n"
             "heavy = ('numba', 'numpy', 'duckdb', 'pyarrow', 'plotly', 'dask', 'fastapi')\n"
             "print(','.join(m for m in heavy if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=ENV, cwd=tmp_path, timeout=60)
    assert res.returncode == 0 and res.stdout.strip() == "", res.stdout


def test_a_run_killed_midway_leaves_nothing_that_looks_finished(tmp_path: Path) -> None:
    out = tmp_path / "killed"
    partial = partial_path(out)
    command = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "socialcredit"]
    proc = subprocess.Popen([*command, "run", "--citizens", "300000", "--threads", "1",
                             "--ledger", "--out", str(out)], cwd=tmp_path, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        assert partial.exists(), "the run never started writing"
        time.sleep(1.5)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not out.exists(), "a killed run must not leave its run directory"
    assert not (partial / "manifest.json").exists()
    with pytest.raises(UserError) as info:
        Run.open(out)
    sentence = info.value.sentence()
    assert "not complete" in sentence and "--resume" in sentence and "\n" not in sentence
    with pytest.raises(UserError, match="still being written or was interrupted"):
        Run.open(partial)


def test_ctrl_c_exits_130_with_one_sentence_and_nothing_finished(tmp_path: Path) -> None:
    """SIGINT, as Ctrl-C sends it, a moment into the days (before the first checkpoint):
    exit code 130, one sentence saying so and how to start again, and no run left."""
    out = tmp_path / "stopped"
    partial = partial_path(out)
    command = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "socialcredit"]
    # SIGINT as a terminal delivers it, even when the suite itself was started in the
    # background (a shell's background job inherits SIGINT ignored, and Python then installs
    # no KeyboardInterrupt handler)
    proc = subprocess.Popen([*command, "run", "--citizens", "300000", "--days", "3650",
                             "--threads", "1", "--out", str(out)], cwd=tmp_path, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert stderr == ("the run was interrupted before its first checkpoint, so nothing was "
                      f"kept; start it again with: socialcredit run default --out {out} "
                      "--citizens 300000 --days 3650\n")
    assert stdout == ""
    assert not out.exists() and not partial.exists()


def test_an_interrupted_run_says_how_to_resume_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Interrupted after a checkpoint: exit code 130, the sentence gives the command that
    resumes it, nothing looks finished, and that command completes the run."""
    import shlex

    from cli_support import invoke
    from socialcredit import run as run_module

    out = tmp_path / "halfway"
    monkeypatch.setattr(run_module, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint every day
    add_day = run_module.DayRecorder.add_day

    def interrupted_on_day_5(self: Any, t: int, *args: Any) -> None:
        if t == 5:
            raise KeyboardInterrupt
        add_day(self, t, *args)

    monkeypatch.setattr(run_module.DayRecorder, "add_day", interrupted_on_day_5)
    args = ["run", "--citizens", "2000", "--days", "20", "--seed", "7", "--ledger",
            "--out", str(out)]
    code, stdout, stderr = invoke(args, monkeypatch, capsys)
    assert code == 130, stderr
    head = "the run was interrupted; resume it from its last checkpoint with: "
    assert stderr.startswith(head) and stderr.count("\n") == 1 and stdout == ""
    again = shlex.split(stderr[len(head):])
    assert again == ["socialcredit", "run", "default", "--out", str(out), "--seed", "7",
                     "--citizens", "2000", "--days", "20", "--ledger", "--resume"]
    assert not out.exists() and partial_path(out).exists()
    with pytest.raises(UserError, match="not complete"):
        Run.open(out)
    monkeypatch.setattr(run_module.DayRecorder, "add_day", add_day)
    code, stdout, stderr = invoke(again[1:], monkeypatch, capsys)
    assert code == 0, stderr
    assert Run.open(out).manifest["calendar"]["days"] == 20
    assert not partial_path(out).exists()


def test_backend_gpu_without_a_gpu_is_one_sentence_exit_2(tmp_path: Path) -> None:
    from socialcredit.kernel import gpu_available

    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0") or gpu_available():
        pytest.skip("this machine can run the GPU backend")
    before = tree(tmp_path)
    res = cli("run", "--backend", "gpu", "--citizens", "500", "--days", "2", "--out", "out",
              cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "--backend gpu needs an NVIDIA GPU" in lines[0], res.stderr
    assert tree(tmp_path) == before


def test_tables_are_whole_when_stdout_is_piped(tmp_path: Path) -> None:
    # issue 15: piped, Rich assumed 80 columns and cut the tables; now nothing is cut
    env = {k: v for k, v in ENV.items() if k != "COLUMNS"}
    command = [str(BIN)] if BIN.exists() else [sys.executable, "-m", "socialcredit"]
    res = subprocess.run([*command, "policy", "audit", "unified"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    why = ("deducts 50 points, 50 % more for each earlier offence in the year, for each record "
           "of criticise_government, an act of expression (category speech)")
    assert any(why in line for line in res.stdout.splitlines()), res.stdout[:2000]
    assert "\x1b[" not in res.stdout  # no colour codes in a file
    assert max(len(line) for line in res.stdout.splitlines()) < 1000  # natural width


def test_report_burn_in_reports_the_same_simulation_from_its_first_day(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``--report-burn-in``: the tables start on the burn-in's first day, and the days both
    runs report are the same days, count for count (the simulation is the same)."""

    from cli_support import invoke

    base = ["run", "--citizens", "2000", "--days", "20", "--seed", "3"]
    code, _, err = invoke([*base, "--out", str(tmp_path / "plain")], monkeypatch, capsys)
    assert code == 0, err
    code, _, err = invoke([*base, "--report-burn-in", "--out", str(tmp_path / "all")],
                          monkeypatch, capsys)
    assert code == 0, err
    plain, every = Run.open(tmp_path / "plain"), Run.open(tmp_path / "all")
    burn = plain.manifest["calendar"]["burn_in_days"]
    assert burn > 0 and every.manifest["calendar"]["burn_in_days"] == 0
    assert every.manifest["calendar"]["days"] == burn + 20

    def days(run: Run) -> list[Any]:
        return run.sql("SELECT DISTINCT day FROM daily ORDER BY day").column(0).to_pylist()

    first, shared = days(every), days(plain)
    assert len(first) == burn + 20 and first[burn:] == shared
    query = ("SELECT * EXCLUDE (day) FROM daily WHERE day >= ? ORDER BY ALL")
    left = plain.sql(query, [shared[0]]).to_pylist()
    right = every.sql(query, [shared[0]]).to_pylist()
    assert left and left == right
