"""Run: opening run directories, querying them through DuckDB, moved or copied (DESIGN 8)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from socialcredit.errors import UserError
from socialcredit.recorder import RunWriter
from socialcredit.store import Run, partial_path

D = pa.dictionary(pa.int16(), pa.string())
SCHEMAS = {
    "daily": pa.schema([("day", pa.date32()), ("region", D), ("kind", D), ("acts", pa.int64())]),
    "records": pa.schema(
        [
            ("day", pa.date32()),
            ("subject_id", pa.int64()),
            ("act", D),
            ("channel", D),
            ("true_record", pa.bool_()),
        ]
    ),
}


def write_run(out: Path, *, seed: int = 1, days: int = 4) -> Path:
    rng = np.random.default_rng(seed)
    with RunWriter(out, tables=SCHEMAS) as writer:
        for day in range(days):
            date = np.datetime64("2014-01-01") + day
            writer.append(
                "daily",
                {
                    "day": np.full(2, date),
                    "region": np.array(["11", "31"]),
                    "kind": np.array(["citizen", "business"]),
                    "acts": rng.integers(0, 100, 2),
                },
            )
            n = 10
            writer.append(
                "records",
                {
                    "day": np.full(n, date),
                    "subject_id": np.arange(n) + 100 * seed,
                    "act": np.array(["jaywalking", "late_bill"])[rng.integers(0, 2, n)],
                    "channel": np.array(["camera", "utilities"])[rng.integers(0, 2, n)],
                    "true_record": rng.random(n) < 0.8,
                },
            )
        return writer.finish({"seed": seed, "scenario": "store-test"})


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "runs" / "one")


def fingerprint(root: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_open_and_query(run_dir: Path) -> None:
    with Run.open(run_dir) as run:
        assert run.path == run_dir.resolve()
        assert run.manifest["seed"] == 1
        assert run.manifest["row_counts"] == {"daily": 8, "records": 40}
        assert run.tables() == ["daily", "records"]
        assert run.has("records") and not run.has("ledger")
        assert run.columns("records") == SCHEMAS["records"].names

        records = run.table("records")
        assert records.num_rows == 40
        assert records.column("subject_id").to_pylist()[:3] == [100, 101, 102]  # order written
        picked = run.table("records", ["subject_id", "act"], "subject_id < ?", [103])
        assert picked.column_names == ["subject_id", "act"]
        assert picked.num_rows == 12
        total = run.sql("SELECT sum(acts) AS s FROM daily WHERE region = ?", ["11"])
        assert total.column("s")[0].as_py() == sum(
            r["acts"] for r in run.table("daily").to_pylist() if r["region"] == "11"
        )
        joined = run.sql(
            "SELECT d.day, count(*) AS n FROM records r JOIN daily d USING (day) "
            "WHERE d.kind = 'citizen' GROUP BY d.day ORDER BY d.day"
        )
        assert joined.column("n").to_pylist() == [10, 10, 10, 10]


def test_open_accepts_the_manifest_or_duckdb_file(run_dir: Path) -> None:
    assert Run.open(run_dir / "manifest.json").path == run_dir.resolve()
    assert Run.open(str(run_dir / "run.duckdb")).path == run_dir.resolve()


def test_unknown_table_or_column_is_a_user_error(run_dir: Path) -> None:
    run = Run.open(run_dir)
    with pytest.raises(UserError, match="no table 'ledger'"):
        run.table("ledger")
    with pytest.raises(UserError, match="no column score"):
        run.table("records", ["subject_id", "score"])


@pytest.mark.parametrize("how", ["move", "copy"])
def test_a_moved_or_copied_run_opens_from_any_directory(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    expected = Run.open(run_dir).table("records")
    target = tmp_path / "elsewhere" / "deeper" / "renamed"
    target.parent.mkdir(parents=True)
    if how == "move":
        shutil.move(run_dir, target)
    else:
        shutil.copytree(run_dir, target)
    # A working directory that is itself another run, with tables of the same names: the
    # views must still read the opened run's files, not the CWD's.
    other = write_run(tmp_path / "other", seed=2)
    monkeypatch.chdir(other)
    run = Run.open(target)
    assert run.table("records").equals(expected)
    monkeypatch.chdir(tmp_path / "elsewhere")
    relative = Run.open(Path("deeper") / "renamed")
    assert relative.table("records").equals(expected)
    monkeypatch.chdir(target)
    assert Run.open(".").table("records").equals(expected)


def test_plain_duckdb_opens_run_duckdb_from_any_working_directory(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What docs/run-directory.md tells users of the duckdb CLI and other clients (issue 15):
    # from the run directory, from an unrelated one, and from inside another run.
    other = write_run(tmp_path / "other", seed=2)
    for cwd in (run_dir, tmp_path, other):
        monkeypatch.chdir(cwd)
        con = duckdb.connect(str(run_dir / "run.duckdb"), read_only=True)
        assert con.sql("SELECT count(*) FROM records").fetchall() == [(40,)]
        assert con.sql("SELECT min(subject_id) FROM records").fetchall() == [(100,)]
        con.close()
    monkeypatch.chdir(run_dir)
    con = duckdb.connect("run.duckdb", read_only=True)
    assert con.sql("SELECT count(*) FROM records").fetchall() == [(40,)]
    con.close()


def test_a_run_with_relative_views_still_opens(run_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # runs written before issue 15 hold relative views (and so does one killed in finish()
    # between the rename and the absolute views)
    from socialcredit.recorder import _write_views

    expected = Run.open(run_dir).table("records")
    _write_views(run_dir, {"daily": "daily/", "records": "records/"})
    monkeypatch.chdir(tmp_path)
    assert Run.open(run_dir).table("records").equals(expected)


def test_views_are_absolute_and_readable_by_duckdb_1_0(run_dir: Path) -> None:
    con = duckdb.connect(str(run_dir / "run.duckdb"), read_only=True)
    views = dict(con.sql("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())
    assert sorted(views) == ["daily", "records"]
    assert f"read_parquet('{run_dir.resolve()}/records/*.parquet')" in views["records"]
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]
    tags = dict(con.sql("SELECT database_name, tags FROM duckdb_databases()").fetchall())
    assert tags["run"]["storage_version"] == "v1.0.0+"
    con.close()


def test_reading_never_modifies_the_run(run_dir: Path) -> None:
    before = fingerprint(run_dir)
    names = sorted(os.listdir(run_dir))
    run = Run.open(run_dir)
    run.table("records")
    run.sql("SELECT * FROM daily")
    with pytest.raises(duckdb.Error):
        run.sql("CREATE TABLE scratch AS SELECT 1")
    with pytest.raises(duckdb.Error):
        run.sql("DROP VIEW daily")
    run.close()
    assert fingerprint(run_dir) == before
    assert sorted(os.listdir(run_dir)) == names


def test_queries_from_several_threads(run_dir: Path) -> None:
    run = Run.open(run_dir)
    results: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                results.append(run.table("records", where="true_record").num_rows)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1 and len(results) == 20


# -- what is not a finished run ----------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="there is no run at"):
        Run.open(tmp_path / "nope")


def test_not_a_run_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a run directory: it has no manifest.json"):
        Run.open(tmp_path / "empty")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(UserError, match="is not a run directory"):
        Run.open(tmp_path / "file.txt")


def test_a_run_still_being_written(tmp_path: Path) -> None:
    out = tmp_path / "r"
    writer = RunWriter(out, tables=SCHEMAS)
    writer.append("daily", {"day": [], "region": [], "kind": [], "acts": []})
    with pytest.raises(UserError, match="still being written or was interrupted"):
        Run.open(out)
    with pytest.raises(UserError, match="still being written or was interrupted"):
        Run.open(partial_path(out))
    writer.finish({})
    assert Run.open(out).table("daily").num_rows == 0


def test_a_damaged_or_newer_manifest(run_dir: Path) -> None:
    manifest = run_dir / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(UserError, match="format 99"):
        Run.open(run_dir)
    manifest.write_text("{not json")
    with pytest.raises(UserError, match="cannot be read"):
        Run.open(run_dir)
