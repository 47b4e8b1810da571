"""RunWriter: streamed tables, atomic completion, checkpoints and resume (DESIGN 8)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from socialcredit.errors import RunError, UserError
from socialcredit.recorder import RunWriter
from socialcredit.store import Run, partial_path

D = pa.dictionary(pa.int16(), pa.string())
START = np.datetime64("2014-01-01")

SCHEMAS: dict[str, pa.Schema] = {
    "daily": pa.schema(
        [
            ("day", pa.date32()),
            ("region", D),
            ("kind", D),
            ("income_band", pa.int8()),
            ("acts", pa.int64()),
            ("denied", pa.int64()),
        ]
    ),
    "records": pa.schema(
        [
            ("day", pa.date32()),
            ("subject_id", pa.int64()),
            ("act", D),
            ("channel", D),
            ("true_record", pa.bool_()),
        ]
    ),
    "ledger": pa.schema(
        [
            ("day", pa.date32()),
            ("subject_id", pa.int64()),
            ("rule", D),
            ("points", pa.int16()),
            ("score", pa.int16()),
        ]
    ),
    "list_events": pa.schema(
        [
            ("day", pa.date32()),
            ("subject_id", pa.int64()),
            ("list", D),
            ("event", D),
            ("reason", D),
        ]
    ),
    "decisions": pa.schema(
        [
            ("day", pa.date32()),
            ("subject_id", pa.int64()),
            ("service", D),
            ("outcome", D),
            ("measure", D),
            ("wrongful", pa.bool_()),
        ]
    ),
    "snapshots": pa.schema(
        [
            ("day", pa.date32()),
            ("subject_id", pa.int64()),
            ("score", pa.int16()),
            ("grade", D),
            ("on_debtors", pa.bool_()),
        ]
    ),
}


def day_rows(name: str, day: int) -> dict[str, Any]:
    """Synthetic rows of table ``name`` for ``day``: a pure function of (name, day)."""
    rng = np.random.default_rng([day, len(name), ord(name[0])])
    n = int(rng.integers(20, 60))
    days = np.full(n, START + day)
    ids = rng.integers(0, 1000, n)
    pick = lambda *words: np.array(words)[rng.integers(0, len(words), n)]  # noqa: E731
    if name == "daily":
        return {
            "day": days,
            "region": pick("11", "31", "44"),
            "kind": pick("citizen", "business"),
            "income_band": rng.integers(0, 5, n).astype(np.int8),
            "acts": rng.integers(0, 10_000, n),
            "denied": rng.integers(0, 100, n),
        }
    if name == "records":
        return {
            "day": days,
            "subject_id": ids,
            "act": pick("jaywalking", "late_bill", "donation"),
            "channel": pick("camera", "utilities", "courts"),
            "true_record": rng.random(n) < 0.9,
        }
    if name == "ledger":
        return {
            "day": days,
            "subject_id": ids,
            "rule": pick("jaywalking", "donation"),
            "points": rng.integers(-50, 20, n).astype(np.int16),
            "score": rng.integers(600, 1300, n).astype(np.int16),
        }
    if name == "list_events":
        return {
            "day": days,
            "subject_id": ids,
            "list": pick("debtors", "redlist"),
            "event": pick("enter", "extend", "exit"),
            "reason": pick("act", "term"),
        }
    if name == "decisions":
        outcome = pick("granted", "denied", "fast_tracked")
        measure = np.where(outcome == "granted", None, pick("flight_ban", "green_lane"))
        return {
            "day": days,
            "subject_id": ids,
            "service": pick("flight", "train", "loan"),
            "outcome": outcome,
            "measure": pa.array(measure.tolist(), pa.string()),
            "wrongful": rng.random(n) < 0.05,
        }
    assert name == "snapshots"
    return {
        "day": days,
        "subject_id": ids,
        "score": rng.integers(600, 1300, n).astype(np.int16),
        "grade": pick("A", "B", "C", "D"),
        "on_debtors": rng.random(n) < 0.1,
    }


def state_at(day: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(day)
    return {
        "score": rng.integers(0, 2000, 100).astype(np.int16),
        "flags": rng.integers(0, 255, (100, 3)).astype(np.uint8),
        "listed": rng.random(100) < 0.5,
    }


def write_days(writer: RunWriter, days: range, *, checkpoint_at: int | None = None) -> None:
    for day in days:
        if day == checkpoint_at:
            writer.checkpoint(day, state_at(day), {"next_day": day, "note": "x"})
        for name in SCHEMAS:
            writer.append(name, day_rows(name, day))


def run_uninterrupted(out: Path, **kwargs: Any) -> Path:
    with RunWriter(out, tables=SCHEMAS, **kwargs) as writer:
        write_days(writer, range(10), checkpoint_at=5)
        return writer.finish({"seed": 7, "scenario": "test"})


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def plain(table: pa.Table) -> pa.Table:
    """``table`` with dictionary columns decoded, to compare values rather than encodings."""
    fields = [
        pa.field(f.name, f.type.value_type) if pa.types.is_dictionary(f.type) else f
        for f in table.schema
    ]
    return table.cast(pa.schema(fields))


def tables_equal(a: Path, b: Path) -> None:
    ra, rb = Run.open(a), Run.open(b)
    assert ra.tables() == rb.tables() == sorted(SCHEMAS)
    for name in SCHEMAS:
        assert ra.table(name).equals(rb.table(name)), name
    ra.close()
    rb.close()


# -- a complete run ---------------------------------------------------------------------------


def test_finished_run_layout_manifest_and_contents(tmp_path: Path) -> None:
    out = run_uninterrupted(tmp_path / "runs" / "r1")
    assert out == (tmp_path / "runs" / "r1").absolute()
    assert not partial_path(out).exists()
    assert sorted(os.listdir(tmp_path / "runs")) == ["r1"]

    files = files_under(out)
    assert "manifest.json" in files and "run.duckdb" in files
    parquet = [f for f in files if f.endswith(".parquet")]
    assert all(f.split("/")[0] in SCHEMAS and f.count("/") == 1 for f in parquet)
    assert not [f for f in files if f not in parquet and f not in ("manifest.json", "run.duckdb")]
    # The checkpoint at day 5 cut every table into two parts; checkpoints are gone.
    for name in SCHEMAS:
        assert sorted(os.listdir(out / name)) == ["part-00000.parquet", "part-00001.parquet"]
    assert not (out / "checkpoint").exists()

    text = (out / "manifest.json").read_text()
    manifest = json.loads(text)
    assert text == json.dumps(manifest, sort_keys=True, indent=2) + "\n"
    assert manifest["seed"] == 7 and manifest["scenario"] == "test"
    assert manifest["format_version"] == 1
    assert manifest["tables"] == {name: f"{name}/" for name in SCHEMAS}
    assert manifest["created"].endswith("+00:00")
    expected = {n: sum(len(day_rows(n, d)["day"]) for d in range(10)) for n in SCHEMAS}
    assert manifest["row_counts"] == expected

    run = Run.open(out)
    for name in SCHEMAS:
        count = run.sql(f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py()
        assert count == expected[name]
        parts = [pq.read_table(out / name / p) for p in sorted(os.listdir(out / name))]
        assert pa.concat_tables(parts).num_rows == expected[name]
    decisions = run.table("decisions")
    granted = run.table("decisions", where="outcome = ?", params=["granted"])
    assert granted.column("measure").null_count == granted.num_rows > 0
    assert decisions.column("day")[0].as_py().isoformat() == "2014-01-01"
    run.close()


def test_string_columns_are_dictionary_encoded(tmp_path: Path) -> None:
    out = run_uninterrupted(tmp_path / "r")
    meta = pq.ParquetFile(out / "records" / "part-00000.parquet").metadata
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    for column in ("act", "channel"):
        chunk = meta.row_group(0).column(names.index(column))
        assert chunk.has_dictionary_page and chunk.compression == "ZSTD"
    assert pq.read_schema(out / "records" / "part-00000.parquet").field("act").type == D


def test_declared_table_without_rows_exists_and_is_empty(tmp_path: Path) -> None:
    with RunWriter(tmp_path / "r", tables=SCHEMAS) as writer:
        writer.append("daily", day_rows("daily", 0))
        out = writer.finish({})
    run = Run.open(out)
    assert run.tables() == sorted(SCHEMAS)
    assert run.table("ledger").num_rows == 0
    assert run.table("ledger").schema.names == SCHEMAS["ledger"].names
    assert json.loads((out / "manifest.json").read_text())["row_counts"]["ledger"] == 0


def test_parts_and_row_groups_are_bounded(tmp_path: Path) -> None:
    schema = {"records": SCHEMAS["records"]}
    rows = [day_rows("records", d) for d in range(40)]
    with RunWriter(tmp_path / "r", tables=schema, row_group_rows=100, part_rows=250) as writer:
        for batch in rows:
            writer.append("records", pa.table(batch))
        out = writer.finish({})
    total = sum(len(b["day"]) for b in rows)
    parts = sorted(os.listdir(out / "records"))
    assert len(parts) == -(-total // 250)
    for part in parts:
        meta = pq.ParquetFile(out / "records" / part).metadata
        assert meta.num_rows <= 250
        assert all(meta.row_group(i).num_rows <= 100 for i in range(meta.num_row_groups))
    written = Run.open(out).table("records")
    expected = pa.concat_tables([pa.table(b) for b in rows]).cast(SCHEMAS["records"])
    assert written.equals(plain(expected))  # in the order written


def test_append_accepts_tables_batches_and_arrays_and_checks_columns(tmp_path: Path) -> None:
    schema = {"ledger": SCHEMAS["ledger"]}
    rows = day_rows("ledger", 0)
    with RunWriter(tmp_path / "r", tables=schema) as writer:
        writer.append("ledger", rows)
        writer.append("ledger", pa.table(rows).to_batches()[0])
        writer.append("ledger", pa.table({k: rows[k] for k in reversed(list(rows))}))
        with pytest.raises(ValueError, match="missing columns"):
            writer.append("ledger", {k: v for k, v in rows.items() if k != "score"})
        with pytest.raises(KeyError):
            writer.append("nope", rows)
        out = writer.finish({})
    assert Run.open(out).table("ledger").num_rows == 3 * len(rows["day"])


# -- failures leave nothing that looks complete -----------------------------------------------


def test_existing_out_dir_is_a_user_error_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "r"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    before = files_under(tmp_path)
    with pytest.raises(UserError, match="already exists"):
        RunWriter(out, tables=SCHEMAS)
    assert files_under(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == ["r"]


def test_exception_inside_the_context_manager_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with pytest.raises(RuntimeError), RunWriter(out, tables=SCHEMAS) as writer:
        write_days(writer, range(3))
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_exception_after_a_checkpoint_keeps_only_a_resumable_partial(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with pytest.raises(RuntimeError), RunWriter(out, tables=SCHEMAS) as writer:
        write_days(writer, range(7), checkpoint_at=5)
        raise RuntimeError("boom")
    assert not out.exists()
    assert os.listdir(tmp_path) == [partial_path(out).name]
    with pytest.raises(UserError, match="not complete"):
        Run.open(out)
    with pytest.raises(UserError, match="resume"):
        RunWriter(out, tables=SCHEMAS)


def test_resume_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no unfinished run"):
        RunWriter(tmp_path / "r", tables=SCHEMAS, resume=True)
    out = run_uninterrupted(tmp_path / "r")
    with pytest.raises(UserError, match="already complete"):
        RunWriter(out, tables=SCHEMAS, resume=True)


def test_a_second_writer_of_the_same_run_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with RunWriter(out, tables=SCHEMAS) as writer:
        with pytest.raises(UserError, match="another process"):
            RunWriter(out, tables=SCHEMAS)
        writer.finish({})
    assert Run.open(out).tables() == sorted(SCHEMAS)


def test_a_stale_partial_without_checkpoint_is_replaced(tmp_path: Path) -> None:
    out = tmp_path / "r"
    stale = partial_path(out)
    (stale / "records").mkdir(parents=True)
    (stale / "records" / "part-00000.parquet").write_bytes(b"torn")
    out = run_uninterrupted(out)
    assert Run.open(out).table("records").num_rows > 0


# -- checkpoints and resume -------------------------------------------------------------------


def test_checkpoint_roundtrip(tmp_path: Path) -> None:
    with RunWriter(tmp_path / "r", tables=SCHEMAS) as writer:
        assert writer.latest_checkpoint() is None
        write_days(writer, range(3), checkpoint_at=1)
        write_days(writer, range(3, 5), checkpoint_at=4)
        found = writer.latest_checkpoint()
        assert found is not None
        day, state, meta = found
        assert day == 4 and meta == {"next_day": 4, "note": "x"}
        for key, value in state_at(4).items():
            assert state[key].dtype == value.dtype and np.array_equal(state[key], value)
        folder = writer.partial_dir / "checkpoint"
        assert not [p for p in folder.rglob("*") if p.suffix == ".parquet"]
        assert len([p for p in folder.iterdir() if p.suffix == ".json"]) == 1  # older dropped
        out = writer.finish({})
    assert not (out / "checkpoint").exists()


def test_resume_after_a_crash_reproduces_the_uninterrupted_run(tmp_path: Path) -> None:
    small = {"row_group_rows": 50}  # so that rows reach part files between checkpoints
    reference = run_uninterrupted(tmp_path / "ref", **small)

    out = tmp_path / "r"
    with pytest.raises(RuntimeError), RunWriter(out, tables=SCHEMAS, **small) as writer:
        write_days(writer, range(8), checkpoint_at=5)
        raise RuntimeError("crash")
    # Parts written after the checkpoint are on disk until the resume drops them.
    assert (partial_path(out) / "records" / "part-00001.parquet").exists()

    with RunWriter(out, tables=SCHEMAS, resume=True, **small) as writer:
        found = writer.latest_checkpoint()
        assert found is not None
        day, state, meta = found
        assert day == 5 and meta["next_day"] == 5
        assert all(np.array_equal(state[k], v) for k, v in state_at(5).items())
        assert not (partial_path(out) / "records" / "part-00001.parquet").exists()
        write_days(writer, range(day, 10))
        finished = writer.finish({"seed": 7, "scenario": "test"})

    tables_equal(reference, finished)
    assert files_under(reference) == files_under(finished)
    for name in SCHEMAS:  # the same parts, byte for byte
        assert os.listdir(reference / name), name
        for part in os.listdir(reference / name):
            assert (reference / name / part).read_bytes() == (finished / name / part).read_bytes()
    ref_manifest = json.loads((reference / "manifest.json").read_text())
    new_manifest = json.loads((finished / "manifest.json").read_text())
    assert ref_manifest["row_counts"] == new_manifest["row_counts"]


def test_resume_refuses_other_tables(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with pytest.raises(RuntimeError), RunWriter(out, tables=SCHEMAS) as writer:
        write_days(writer, range(3), checkpoint_at=2)
        raise RuntimeError("crash")
    other = dict(SCHEMAS)
    other["ledger"] = SCHEMAS["ledger"].append(pa.field("extra", pa.int8()))
    with pytest.raises(UserError, match="cannot be resumed"):
        RunWriter(out, tables=other, resume=True)


KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_recorder import SCHEMAS, write_days
    from socialcredit.recorder import RunWriter

    writer = RunWriter(Path({out!r}), tables=SCHEMAS)
    write_days(writer, range(7), checkpoint_at=5)
    writer._flush(writer._tables["records"])  # a part file open, half written
    print("ready", flush=True)
    day = 7
    while True:  # keep writing until killed
        write_days(writer, range(day, day + 1))
        day += 1
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_leaves_nothing_complete_and_the_run_resumes(tmp_path: Path) -> None:
    out = tmp_path / "r"
    script = KILLED_WRITER.format(tests=str(Path(__file__).parent), out=str(out))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", proc.stderr.read() if proc.stderr else ""
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    partial = partial_path(out)
    assert not out.exists()
    assert os.listdir(tmp_path) == [partial.name]
    assert not (partial / "manifest.json").exists() and not (partial / "run.duckdb").exists()
    with pytest.raises(UserError, match="still being written or was interrupted"):
        Run.open(out)
    with pytest.raises(UserError, match="still being written or was interrupted"):
        Run.open(partial)

    with RunWriter(out, tables=SCHEMAS, resume=True) as writer:
        found = writer.latest_checkpoint()
        assert found is not None and found[0] == 5
        write_days(writer, range(found[0], 10))
        finished = writer.finish({"seed": 7, "scenario": "test"})
    tables_equal(run_uninterrupted(tmp_path / "ref"), finished)


def test_a_run_whose_path_has_a_comma(tmp_path: Path) -> None:
    out = run_uninterrupted(tmp_path / "a,b" / "r")
    run = Run.open(out)
    assert (
        run.table("records").num_rows
        == json.loads((out / "manifest.json").read_text())["row_counts"]["records"]
    )


def test_a_checkpoint_killed_before_its_commit_is_ignored(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with pytest.raises(RuntimeError), RunWriter(out, tables=SCHEMAS) as writer:
        write_days(writer, range(4), checkpoint_at=2)
        raise RuntimeError("crash")
    folder = partial_path(out) / "checkpoint"
    # What a kill between writing the next checkpoint's arrays and its JSON leaves behind.
    (folder / "000001").mkdir()
    np.save(folder / "000001" / "score.npy", np.zeros(3))
    (folder / "000002.tmp").mkdir()
    (folder / ".000001.json.tmp").write_text("{")
    with RunWriter(out, tables=SCHEMAS, resume=True) as writer:
        found = writer.latest_checkpoint()
        assert found is not None and found[0] == 2
        assert sorted(os.listdir(folder)) == ["000000", "000000.json"]
        write_days(writer, range(2, 10), checkpoint_at=5)
        finished = writer.finish({"seed": 7, "scenario": "test"})
    tables_equal(run_uninterrupted(tmp_path / "ref"), finished)


def test_a_schema_can_come_from_the_first_batch(tmp_path: Path) -> None:
    tables: dict[str, pa.Schema | None] = {**SCHEMAS, "daily": None}
    reference = run_uninterrupted(tmp_path / "ref")
    out = tmp_path / "r"
    with pytest.raises(RuntimeError), RunWriter(out, tables=tables) as writer:
        write_days(writer, range(7), checkpoint_at=5)
        raise RuntimeError("crash")
    with RunWriter(out, tables=tables, resume=True) as writer:
        write_days(writer, range(5, 10))
        finished = writer.finish({})
    daily = pq.read_schema(finished / "daily" / "part-00001.parquet")
    assert daily.names == SCHEMAS["daily"].names
    assert daily.field("acts").type == pa.int64()
    assert Run.open(finished).table("daily").equals(Run.open(reference).table("daily"))


def test_a_table_without_schema_or_rows_cannot_be_finished(tmp_path: Path) -> None:
    out = tmp_path / "r"
    with pytest.raises(RunError, match="no rows and no schema"):
        with RunWriter(out, tables={"daily": None}) as writer:
            writer.finish({})
    assert os.listdir(tmp_path) == []
