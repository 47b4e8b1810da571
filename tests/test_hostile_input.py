"""Hostile but fair input (issue 16): every bad file or value is one plain sentence with exit
code 2, before any work starts, never a hang, a crash, or a write outside the run.

One test per class of input, each through the command a user would type."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.cli_support import invoke

POLICY = "name: hostile\nkind: baseline\nreference: test\n"
BOMB = "name: bomb\n" + "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9))


def _files(folder: Path) -> dict[str, tuple[Path, str]]:
    """Hostile YAML files by name, each with a fragment of the sentence it must give."""
    out: dict[str, tuple[Path, str]] = {}

    def put(name: str, data: bytes, fragment: str) -> None:
        path = folder / f"{name}.yaml"
        path.write_bytes(data)
        out[name] = (path, fragment)

    put("alias bomb", BOMB.encode(), "expands to more than 1,000,000 values")
    put("too large", (POLICY + "description: '" + "a" * (3 << 20) + "'\n").encode(),
        "larger than 2 MB")
    put("nested deep", (POLICY + "x: " + "[" * 100 + "]" * 100 + "\n").encode(),
        "nested more than 64 deep")
    put("recursive alias", (POLICY + "x: &r [1, *r]\n").encode(), "alias")
    put("NUL byte", (POLICY + "\x00\n").encode(), "line 4: the file holds a NUL byte")
    put("not UTF-8", (POLICY + "description: \xff\xfe\n").encode("latin-1"),
        "line 4: the file is not UTF-8 text")
    put("byte-order mark", b"\xef\xbb\xbf" + POLICY.encode(), "byte-order mark")
    put("custom tag", (POLICY + "description: !secret x\n").encode(), "the tag '!secret'")
    fifo = folder / "fifo.yaml"
    os.mkfifo(fifo)  # no writer: reading it would wait forever
    out["pipe"] = (fifo, "not a regular file")
    out["device"] = (Path("/dev/zero"), "not a regular file")
    return out


@pytest.mark.parametrize("command", [["policy", "check"], ["run"], ["sweep"]])
def test_hostile_yaml_files_are_one_sentence(tmp_path: Path, command: list[str],
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    for name, (path, fragment) in _files(tmp_path).items():
        code, out, err = invoke([*command, str(path)], monkeypatch, capsys)
        said = [line for line in (out + err).splitlines() if line.strip()]
        assert code == 2, (name, out, err)
        assert fragment in said[0] and str(path) in said[0], (name, said)
        assert "Traceback" not in out + err and "Error:" not in out + err, name
        assert not (tmp_path / "runs").exists(), name


DEFAULT = (Path(__file__).resolve().parents[1] / "src/socialcredit/scenarios/default.yaml"
           ).read_text(encoding="utf-8")
BEHAVIOUR = "  repayment_per_year: 0.5"

#: Scenario values that must be refused before any work starts: (old, new, line, fragment).
BAD_SCENARIO_VALUES = {
    "NaN share": ("income_shares: [0.25, 0.25, 0.25, 0.25]",
                  "income_shares: [.nan, 0.25, 0.25, 0.25]", 91, "finite number"),
    "act rates too high": (BEHAVIOUR, "  acts: {jaywalking: {rate_per_year: 300}, "
                           "debt_default: {rate_per_year: 300}}\n" + BEHAVIOUR, 33,
                           "act rates are too high"),
    "act rate over one a day": (BEHAVIOUR, "  acts: {jaywalking: {rate_per_year: 1.0e300}}\n"
                                + BEHAVIOUR, 33, "less than or equal to 365"),
    "huge modifier": (BEHAVIOUR, "  acts: {jaywalking: {modifiers: {age: [1.0e300, 1, 1, 1]}}}\n"
                      + BEHAVIOUR, 33, "less than or equal to 8"),
    "service rates too high": (BEHAVIOUR, "  services: {flight: {requests_per_year: 365}, "
                               "train: {requests_per_year: 365}}\n" + BEHAVIOUR, 33,
                               "service request rates are too high"),
    "days: 10**9": ("days: 1461", "days: 1000000000", 17, "would end after 2099-12-31"),
    "endless burn-in": ("burn_in_days: 365", "burn_in_days: 1000000000", 18,
                        "would begin before 1970-01-01"),
    "start centuries away": ("start: 2018-01-01", "start: 2818-01-01", 16, "outside 1970-01-01"),
    "string seed": ("seed: 2018", "seed: '2018'", 19, "valid integer"),
    "unknown act": (BEHAVIOUR, "  acts: {jaywalkin: {rate_per_year: 1}}\n" + BEHAVIOUR, 33,
                    "unknown act 'jaywalkin' (did you mean 'jaywalking'?)"),
    "met at once without an obligation": (
        BEHAVIOUR, "  acts: {jaywalking: {met_at_once: 0.5}}\n" + BEHAVIOUR, 33,
        "act jaywalking creates no obligation, so none of its obligations can be met at once"),
    "met at once above one": (BEHAVIOUR, "  acts: {traffic_ticket: {met_at_once: 1.2}}\n"
                              + BEHAVIOUR, 33, "less than or equal to 1"),
    "unknown channel": ("camera: 1.5", "camra: 1.5", 67,
                        "unknown channel 'camra' (did you mean 'camera'?)"),
    "extension of another region": ("extension: hangzhou", "extension: rongcheng", 74,
                                    "written for the region 'rongcheng', not for 'hangzhou'"),
}


@pytest.mark.parametrize("what", list(BAD_SCENARIO_VALUES))
def test_bad_scenario_values_are_refused_with_file_and_line(
        tmp_path: Path, what: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    old, new, line, fragment = BAD_SCENARIO_VALUES[what]
    assert DEFAULT.count(old) == 1
    path = tmp_path / "bad.yaml"
    path.write_text(DEFAULT.replace(old, new), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke(["run", str(path), "--citizens", "800", "--days", "2"],
                            monkeypatch, capsys)
    assert code == 2, err
    assert err.strip().splitlines() == [err.strip()], err
    assert f"{path}, line {line}: " in err and fragment in err, err
    assert not (tmp_path / "runs").exists()


SWEEP = "scenario: default\ncitizens: 800\ndays: 2\n"
BAD_SWEEPS = {
    "NaN range": (SWEEP + "random:\n  samples: 2\n  parameters:\n"
                  "    behaviour.awareness: {uniform: [0, .nan]}\n", 7, "finite number"),
    "infinite range": (SWEEP + "random:\n  samples: 2\n  parameters:\n"
                       "    behaviour.awareness: {loguniform: [0.1, .inf]}\n", 7, "finite number"),
    "huge grid": (SWEEP + "grid:\n" + "".join(
        f"  behaviour.{k}: [{', '.join(str(i / 1000) for i in range(1000))}]\n"
        for k in ("awareness", "uptake_strength", "chilling_strength")), 4,
        "the grid makes 1,000,000,000 runs"),
    "endless days": (SWEEP.replace("days: 2", "days: 1000000000") + "grid:\n  seed: [1, 2]\n",
                     3, "would end after 2099-12-31"),
    "NaN value": (SWEEP + "grid:\n  behaviour.awareness: [.nan]\n", 5, "finite number"),
}


@pytest.mark.parametrize("what", list(BAD_SWEEPS))
def test_bad_sweep_values_are_refused_with_file_and_line(
        tmp_path: Path, what: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    text, line, fragment = BAD_SWEEPS[what]
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = invoke(["sweep", str(path), "--out", str(tmp_path / "sw")], monkeypatch,
                            capsys)
    assert code == 2, err
    assert f"{path}, line {line}: " in err and fragment in err, err
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize("name", ["../../esc_traversal", "/tmp/esc_absolute", "a/b/c",
                                  "new\nline", ".."])
def test_a_scenario_name_is_a_name_not_a_path(tmp_path: Path, name: str,
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from socialcredit.run import default_out

    work = tmp_path / "a" / "b" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    out = default_out(name)
    assert out.parent == Path("runs") and len(out.parts) == 2 and "\n" not in str(out)
    path = work / "named.yaml"
    path.write_text(DEFAULT.replace("name: default", f"name: {json.dumps(name)}"),
                    encoding="utf-8")
    code, _, err = invoke(["run", str(path), "--citizens", "800", "--days", "2"], monkeypatch,
                          capsys)
    assert code == 0, err
    made = [p for p in tmp_path.rglob("manifest.json")]
    assert len(made) == 1 and made[0].parent.parent == work / "runs", made


def test_run_options_out_of_range_are_one_sentence(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    import numba

    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    small = ["--citizens", "800", "--days", "2"]
    most = numba.config.NUMBA_NUM_THREADS
    cases = {
        "--out under a file": (["--out", "afile/run"], "afile is a file, not a folder"),
        "--threads too many": (["--threads", str(most + 997), "--out", "t"],
                               f"--threads must be from 1 to {most}"),
        "--seed 2**63": (["--seed", str(2**63), "--out", "s"],
                         "--seed must be a whole number from 0 to 9223372036854775807"),
        "--days 10**9": (["--days", "1000000000", "--out", "d"], "would end after 2099-12-31"),
        "--resume on a folder that is not a run": (["--resume", "--out", "notrun"],
                                                    "is not a run"),
    }
    (tmp_path / "notrun").mkdir()
    for what, (args, fragment) in cases.items():
        code, out, err = invoke(["run", *small, *args], monkeypatch, capsys)
        assert code == 2, (what, err)
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, (what, err)
        assert fragment in err, (what, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "notrun"]

    # a read-only place: the check before any work, and the writer itself
    monkeypatch.setattr("os.access", lambda *a, **k: False)
    code, out, err = invoke(["run", *small, "--out", "ro/run"], monkeypatch, capsys)
    assert code == 2 and "is not writable" in err, err


def test_resume_refuses_settings_other_than_the_partial_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from socialcredit.run import _Stopped, simulate
    from socialcredit.store import partial_path

    cut = tmp_path / "cut"
    with pytest.raises(_Stopped):
        simulate("default", out=cut, citizens=800, days=6, seed=5, checkpoint_every=2,
                 stop_after=2)
    assert partial_path(cut).is_dir()
    for args, fragment in ((["--seed", "6", "--days", "6"], "was started with --seed 5, not 6"),
                           (["--seed", "5", "--days", "7"], "was started with --days 6, not 7"),
                           (["--seed", "5", "--days", "6", "--citizens", "1600"],
                            "was started with --citizens 800, not 1600")):
        code, out, err = invoke(["run", "--resume", "--out", str(cut), "--citizens", "800",
                                 *args], monkeypatch, capsys)
        assert code == 2 and fragment in err, err
        assert partial_path(cut).is_dir() and not cut.exists()
    code, out, err = invoke(["run", "--resume", "--out", str(cut), "--citizens", "800",
                             "--seed", "5", "--days", "6"], monkeypatch, capsys)
    assert code == 0, err
    assert (cut / "manifest.json").is_file()


@pytest.mark.parametrize("where", ["a table part", "the manifest"])
def test_a_full_disk_stops_the_run_with_one_sentence_and_nothing_finished(
        tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import errno

    import socialcredit.recorder as recorder

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "a table part":
        monkeypatch.setattr(recorder.pq, "ParquetWriter", full)
    else:
        monkeypatch.setattr(recorder, "_write_json_atomic", full)
    code, out, err = invoke(["run", "--citizens", "800", "--days", "2", "--out",
                             str(tmp_path / "run")], monkeypatch, capsys)
    assert code == 1, err
    assert err.strip().splitlines() == [f"error: cannot write the run {tmp_path / 'run'}: the "
                                        "disk is full; the run stopped and nothing of it is "
                                        "marked complete"], err
    assert list(tmp_path.iterdir()) == [], "nothing may be left that looks finished"


REFORM = ("name: probe\nkind: reform\nextends: national\ndescription: probe\n"
          "reference: probe\nlists:\n")
BAD_POLICIES = {
    "two lists entering each other": (
        "  - {id: train_ban, entry: {after: {list: flight_ban, days: 10}}, reference: r}\n"
        "  - {id: flight_ban, entry: {after: {list: train_ban, days: 10}}, reference: r}\n",
        7, "the lists 'train_ban' and 'flight_ban' enter each other"),
    "three lists entering each other": (
        "  - {id: train_ban, entry: {after: {list: flight_ban, days: 10}}, reference: r}\n"
        "  - {id: flight_ban, entry: {after: {list: judgment_debtors, days: 10}}, reference: r}\n"
        "  - {id: judgment_debtors, entry: {after: {list: train_ban, days: 10}}, reference: r}\n",
        9, "'flight_ban' → 'train_ban' → 'judgment_debtors' → 'flight_ban'"),
    "firms ping-ponging": (
        "  - id: abnormal_operations\n"
        "    entry: {after: {list: serious_dishonesty, days: 10, moves: true}}\n"
        "    reference: r\n", 8,
        "'serious_dishonesty' → 'abnormal_operations' → 'serious_dishonesty'"),
    "after 0 days": (
        "  - id: serious_dishonesty\n"
        "    entry: {after: {list: abnormal_operations, days: 0, moves: true}}\n"
        "    reference: r\n", 8, "give 'days' of at least 1"),
    "a boolean for a name": ("  - {id: train_ban, name: true, reference: r}\n", 7,
                             "valid string (got True)"),
}


@pytest.mark.parametrize("what", list(BAD_POLICIES))
def test_wrong_policies_are_refused_at_load(tmp_path: Path, what: str,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    text, line, fragment = BAD_POLICIES[what]
    path = tmp_path / "probe.yaml"
    path.write_text(REFORM + text, encoding="utf-8")
    code, out, err = invoke(["policy", "check", str(path)], monkeypatch, capsys)
    assert code == 2, out + err
    assert f"{path}, line {line}: " in out and fragment in out, out


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from socialcredit.run import simulate

    return simulate("default", out=tmp_path_factory.mktemp("runs") / "run", citizens=800,
                    days=3)


def test_runs_that_are_not_what_they_claim_are_refused(
        small_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import shutil

    def copy(name: str, change: object) -> Path:
        run = tmp_path / name
        shutil.copytree(small_run, run)
        manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
        change(manifest)  # type: ignore[operator]
        (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        return run

    other = copy("other", lambda m: m.update(version="0.0.1"))
    blind = copy("blind", lambda m: m.pop("census"))
    for run, fragment in ((other, "was made by socialcredit 0.0.1, but this is socialcredit"),
                          (blind, "has no census")):
        for args in (["explain", str(run), "5"], ["report", str(run)]):
            code, out, err = invoke(args, monkeypatch, capsys)
            assert code == 2 and fragment in err, (args, err)
            assert len(err.strip().splitlines()) == 1, err
        assert not (run / "report.html").exists()

    for subject in (" 5", "٥", "5 ", "+5"):
        code, out, err = invoke(["explain", str(small_run), subject], monkeypatch, capsys)
        assert code == 2 and ("names no subject of this run: it is not an id" in err
                              or subject == "+5"), (subject, err)

    (tmp_path / "afile").write_text("x", encoding="utf-8")
    for target, fragment in ((tmp_path, "is a folder; --out names the report's HTML file"),
                             (tmp_path / "afile" / "r.html", "afile is a file, not a folder")):
        code, out, err = invoke(["report", str(small_run), "--out", str(target)], monkeypatch,
                                capsys)
        assert code == 2 and fragment in err, err
    made = tmp_path / "new" / "folder" / "r.html"
    code, out, err = invoke(["report", str(small_run), "--out", str(made)], monkeypatch, capsys)
    assert code == 0 and made.is_file(), err
