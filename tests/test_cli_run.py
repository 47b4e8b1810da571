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
