"""Writing a run directory: streamed Parquet tables, checkpoints, atomic completion.

Everything is written under a hidden sibling ``.<name>.partial/`` of the run directory and
renamed to the run directory only by :meth:`RunWriter.finish`, after the Parquet parts, the
DuckDB file and (last) the manifest are complete: a run killed at any moment leaves nothing
that looks finished. The layout is described in docs/run-directory.md (DESIGN section 8).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import functools
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeAlias, TypeVar, cast

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from socialcredit.errors import RunError, UserError
from socialcredit.store import (
    CHECKPOINT_DIR,
    DUCKDB_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    PART_PATTERN,
    TABLE_NAME,
    partial_path,
    quote_ident,
    quote_literal,
    table_glob,
)

try:  # advisory lock on the partial directory; POSIX only
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunWriter", "Batch"]

log = logging.getLogger(__name__)

#: What :meth:`RunWriter.append` accepts: Arrow data, or a mapping of column name to array.
Batch: TypeAlias = "pa.Table | pa.RecordBatch | Mapping[str, Any]"

_PART = re.compile(r"^part-(\d{5,})\.parquet$")
_ARRAY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_CHECKPOINT_JSON = re.compile(r"^(\d{6,})\.json$")
_PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "use_dictionary": True,
    "write_statistics": True,
}


_F = TypeVar("_F", bound=Callable[..., Any])


def _disk_errors(method: _F) -> _F:
    """A failure to write (a full disk, a quota, a device gone read-only) becomes one
    sentence (:class:`RunError`, exit code 1); the writer is then aborted by its context, so
    nothing that looks finished is left (an earlier checkpoint stays, to resume from)."""

    @functools.wraps(method)
    def wrapper(self: RunWriter, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                why = "the disk is full"
            elif err.errno == errno.EROFS:
                why = "the disk became read-only"
            else:
                why = err.strerror or str(err) or type(err).__name__
            raise RunError(f"cannot write the run {self.out_dir}: {why}; the run stopped "
                           "and nothing of it is marked complete") from None

    return cast(_F, wrapper)


@dataclass
class _Table:
    name: str
    schema: pa.Schema | None  # None: taken from the first batch appended
    folder: Path
    parts: int = 0  # closed part files: part-00000 … part-{parts-1}
    rows: int = 0  # rows appended, buffered ones included
    writer: pq.ParquetWriter | None = None
    part_rows: int = 0  # rows in the open part
    buffer: list[pa.Table] = field(default_factory=list)
    buffered_rows: int = 0
    buffered_bytes: int = 0


class RunWriter:
    """Writes one run directory. See the module docstring and docs/run-directory.md.

    ``tables`` maps each table name to its Arrow schema, or to None to take the schema of the
    first batch appended (for wide tables whose columns depend on the policy). Every declared
    table exists in the finished run, with no rows if nothing was appended (which needs a
    schema). Memory is bounded: each table buffers at most ``row_group_rows`` rows or
    ``buffer_bytes`` bytes before writing a row group, and a part file holds at most
    ``part_rows`` rows. A part is also closed at every checkpoint.

    Usable as a context manager: leaving it by an exception calls :meth:`abort`. One writer
    is used from one thread; a second writer of the same run is refused.
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        tables: Mapping[str, pa.Schema | None],
        resume: bool = False,
        row_group_rows: int = 1 << 20,
        part_rows: int = 1 << 24,
        buffer_bytes: int = 64 << 20,
    ):
        if not tables:
            raise ValueError("a run needs at least one table")
        for name in tables:
            if not TABLE_NAME.match(name) or name == CHECKPOINT_DIR:
                raise ValueError(f"invalid table name {name!r}")
        if row_group_rows < 1 or part_rows < 1 or buffer_bytes < 1:
            raise ValueError("row_group_rows, part_rows and buffer_bytes must be positive")
        self.out_dir = Path(out_dir).expanduser().absolute()
        self.partial_dir = partial_path(self.out_dir)
        self._row_group_rows = row_group_rows
        self._part_rows = part_rows
        self._buffer_bytes = buffer_bytes
        self._closed = False
        self._lock_fd: int | None = None
        self._tables = {
            name: _Table(name, schema, self.partial_dir / name) for name, schema in tables.items()
        }

        check_run_dir(self.out_dir, resume=resume)
        if resume:
            self._lock()
            try:
                self._restore()
            except BaseException:
                self._unlock()
                raise
        else:
            self._start()

    # -- public API --------------------------------------------------------------------------

    @property
    def row_counts(self) -> dict[str, int]:
        """Rows appended so far, per table."""
        return {name: t.rows for name, t in self._tables.items()}

    @_disk_errors
    def append(self, name: str, batch: Batch) -> None:
        """Append rows to table ``name``. Columns are matched by name and cast to the schema."""
        self._check_open()
        table = self._tables.get(name)
        if table is None:
            raise KeyError(f"the run has no table {name!r}")
        data = _conform(name, batch, table.schema)
        if table.schema is None:
            table.schema = data.schema.remove_metadata()
        if data.num_rows == 0:
            return
        table.buffer.append(data)
        table.rows += data.num_rows
        table.buffered_rows += data.num_rows
        table.buffered_bytes += data.nbytes
        if (
            table.buffered_rows >= self._row_group_rows
            or table.buffered_bytes >= self._buffer_bytes
        ):
            self._flush(table)

    @_disk_errors
    def checkpoint(
        self, day_index: int, state: dict[str, np.ndarray], meta: dict[str, Any]
    ) -> None:
        """Close every table's open part, then save ``state`` and ``meta`` as the point a
        resumed run continues from. ``meta`` must be JSON-serialisable."""
        self._check_open()
        for name in state:
            if not _ARRAY_NAME.match(name):
                raise ValueError(f"invalid state array name {name!r}")
        for table in self._tables.values():
            self._flush(table, close_part=True)

        folder = self.partial_dir / CHECKPOINT_DIR
        folder.mkdir(exist_ok=True)
        previous = _committed_checkpoints(folder)
        seq = previous[-1] + 1 if previous else 0
        tag = f"{seq:06d}"

        # Arrays first, into a temporary folder renamed once complete; the JSON, renamed into
        # place last, is what commits the checkpoint.
        arrays = folder / f"{tag}.tmp"
        _remove(arrays)
        _remove(folder / tag)  # arrays of a checkpoint killed before its commit
        arrays.mkdir()
        described = {}
        for name, value in state.items():
            array = np.ascontiguousarray(value)
            with open(arrays / f"{name}.npy", "wb") as fh:
                np.save(fh, array, allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
            described[name] = {"dtype": array.dtype.str, "shape": list(array.shape)}
        _fsync_dir(arrays)
        os.replace(arrays, folder / tag)
        record = {
            "format_version": FORMAT_VERSION,
            "sequence": seq,
            "day_index": int(day_index),
            "parts": {name: t.parts for name, t in self._tables.items()},
            "rows": {name: t.rows for name, t in self._tables.items()},
            "schemas": {name: _schema_ipc(t.schema) for name, t in self._tables.items()},
            "arrays": described,
            "meta": meta,
        }
        _write_json_atomic(folder / f"{tag}.json", record)
        for old in previous:
            _remove_checkpoint(folder, old)

    def latest_checkpoint(self) -> tuple[int, dict[str, np.ndarray], dict[str, Any]] | None:
        """``(day_index, state, meta)`` of the latest checkpoint, or None if there is none."""
        folder = self.partial_dir / CHECKPOINT_DIR
        record = _latest_record(folder)
        if record is None:
            return None
        arrays = folder / f"{record['sequence']:06d}"
        state = {}
        for name, described in record["arrays"].items():
            array = np.load(arrays / f"{name}.npy", allow_pickle=False)
            if array.dtype.str != described["dtype"] or list(array.shape) != described["shape"]:
                raise RunError(f"the checkpoint array {arrays / name}.npy is damaged")
            state[name] = array
        return int(record["day_index"]), state, record["meta"]

    @_disk_errors
    def finish(self, manifest: dict[str, Any]) -> Path:
        """Complete the run: close all parts, write ``run.duckdb`` and the manifest (adding
        ``row_counts``, ``tables``, ``created`` and ``format_version``), delete the checkpoints
        and rename the partial directory to the run directory, which is returned."""
        self._check_open()
        for table in self._tables.values():
            self._flush(table, close_part=True)
            if table.parts == 0:  # every declared table exists, even when empty
                if table.schema is None:
                    raise RunError(
                        f"the table {table.name} has no rows and no schema, so it cannot be "
                        "written; declare its schema"
                    )
                self._open_part(table)
                self._close_part(table)
        paths = {name: f"{name}/" for name in self._tables}
        _write_views(self.partial_dir, paths)

        full = dict(manifest)
        full["row_counts"] = self.row_counts
        full["tables"] = paths
        full["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        full["format_version"] = FORMAT_VERSION
        _write_json_atomic(self.partial_dir / MANIFEST_FILE, full)

        if self.out_dir.exists() or self.out_dir.is_symlink():
            raise UserError(f"the run directory {self.out_dir} already exists")
        shutil.rmtree(self.partial_dir / CHECKPOINT_DIR, ignore_errors=True)
        _fsync_dir(self.partial_dir)
        os.rename(self.partial_dir, self.out_dir)
        _fsync_dir(self.out_dir.parent)
        # now that the files are where they stay, point the views at them by absolute path,
        # so that any DuckDB client opens run.duckdb from any working directory (a kill
        # before this leaves the relative views, which Run.open reads just as well)
        with contextlib.suppress(OSError, ImportError):
            _write_views(self.out_dir, paths, absolute=True)
        self._closed = True
        self._unlock()
        return self.out_dir

    def abort(self) -> None:
        """Stop writing after a failure. The partial directory is kept (for a resume) only if
        it holds a checkpoint; otherwise it is deleted. Nothing looks complete either way."""
        if self._closed:
            return
        self._closed = True
        for table in self._tables.values():
            table.buffer.clear()
            if table.writer is not None:
                with contextlib.suppress(Exception):
                    table.writer.close()
                table.writer = None
        try:
            if _latest_record(self.partial_dir / CHECKPOINT_DIR) is None:
                shutil.rmtree(self.partial_dir, ignore_errors=True)
        finally:
            self._unlock()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._closed:
            if exc_type is None:
                log.warning("run writer for %s left without finish(); aborting", self.out_dir)
            self.abort()

    # -- setting up ----------------------------------------------------------------------------

    def _start(self) -> None:
        partial = self.partial_dir
        if partial.exists():
            self._lock()
            if _latest_record(partial / CHECKPOINT_DIR) is not None:
                self._unlock()
                raise UserError(
                    f"an unfinished run of {self.out_dir} is in {partial}; resume it "
                    "(--resume) or delete that folder"
                )
            for child in partial.iterdir():  # leftovers of a run killed before any checkpoint
                _remove(child)
        else:
            try:
                partial.parent.mkdir(parents=True, exist_ok=True)
                partial.mkdir()
            except OSError as err:
                raise UserError(
                    f"cannot make the run directory {self.out_dir} ({err.strerror})"
                ) from None
            self._lock()
        for table in self._tables.values():
            table.folder.mkdir()

    def _restore(self) -> None:
        partial = self.partial_dir
        folder = partial / CHECKPOINT_DIR
        record = _latest_record(folder)
        # Leftovers of a run killed while finishing.
        for leftover in (MANIFEST_FILE, DUCKDB_FILE, f"{DUCKDB_FILE}.wal"):
            _remove(partial / leftover)
        if record is None:
            for child in partial.iterdir():
                _remove(child)
            for table in self._tables.values():
                table.folder.mkdir()
            return
        stored: dict[str, str | None] = record["schemas"]
        if set(stored) != set(self._tables):
            raise UserError(
                f"the unfinished run in {partial} was written with other tables; it cannot be "
                "resumed"
            )
        for name, table in self._tables.items():
            was = _schema_from_ipc(stored[name])
            if table.schema is None:
                table.schema = was
            elif was is not None and not was.equals(table.schema, check_metadata=False):
                raise UserError(
                    f"the unfinished run in {partial} was written with other columns in the "
                    f"table {name}; it cannot be resumed"
                )
        # Checkpoints that were never committed.
        keep = {f"{record['sequence']:06d}", f"{record['sequence']:06d}.json"}
        for child in folder.iterdir():
            if child.name not in keep:
                _remove(child)
        for name, table in self._tables.items():
            table.parts = int(record["parts"][name])
            table.rows = int(record["rows"][name])
            table.folder.mkdir(exist_ok=True)
            for child in table.folder.iterdir():
                match = _PART.match(child.name)
                if match is None or int(match.group(1)) >= table.parts:
                    _remove(child)  # written after the checkpoint
            for index in range(table.parts):
                if not (table.folder / PART_PATTERN.format(index)).is_file():
                    raise RunError(
                        f"the unfinished run in {partial} is damaged: "
                        f"{name}/{PART_PATTERN.format(index)} is missing"
                    )

    def _lock(self) -> None:
        if fcntl is None:  # pragma: no cover - Windows
            return
        fd = os.open(self.partial_dir, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UserError(f"another process is writing the run {self.out_dir}") from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None

    def _check_open(self) -> None:
        if self._closed:
            raise RunError(f"the run writer for {self.out_dir} is already closed")

    # -- parts ---------------------------------------------------------------------------------

    def _flush(self, table: _Table, *, close_part: bool = False) -> None:
        if table.buffer:
            data = pa.concat_tables(table.buffer)
            table.buffer.clear()
            table.buffered_rows = table.buffered_bytes = 0
            offset = 0
            while offset < data.num_rows:
                if table.writer is None:
                    self._open_part(table)
                assert table.writer is not None
                take = min(data.num_rows - offset, self._part_rows - table.part_rows)
                table.writer.write_table(
                    data.slice(offset, take), row_group_size=self._row_group_rows
                )
                table.part_rows += take
                offset += take
                if table.part_rows >= self._part_rows:
                    self._close_part(table)
        if close_part and table.writer is not None:
            self._close_part(table)

    def _open_part(self, table: _Table) -> None:
        path = table.folder / PART_PATTERN.format(table.parts)
        assert table.schema is not None
        table.writer = pq.ParquetWriter(path, table.schema, **_PARQUET_OPTIONS)
        table.part_rows = 0

    def _close_part(self, table: _Table) -> None:
        assert table.writer is not None
        table.writer.close()
        table.writer = None
        path = table.folder / PART_PATTERN.format(table.parts)
        # Durable before any checkpoint or manifest that counts it.
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
        table.parts += 1


# -- helpers -------------------------------------------------------------------------------------


def check_run_dir(out_dir: str | Path, *, resume: bool = False) -> None:
    """Refuse, with one sentence, a run directory that cannot be written or resumed.

    The one check of where runs go, made before any work starts (by ``socialcredit run``)
    and again by :class:`RunWriter`: a new run needs ``out_dir`` not to exist and its
    nearest existing parent to be a folder it may write in; a resumed run needs the hidden
    partial folder of an unfinished run, and a folder at ``out_dir`` is either a finished
    run (nothing to resume) or not a run at all."""
    out = Path(out_dir).expanduser().absolute()
    if out.exists() or out.is_symlink():
        if not resume:
            raise UserError(f"the run directory {out} already exists")
        if (out / MANIFEST_FILE).is_file():
            raise UserError(f"the run directory {out} is already complete; there is nothing "
                            "to resume")
        raise UserError(f"{out} is not a run (it has no {MANIFEST_FILE}); there is nothing to "
                        "resume")
    if resume:
        if not partial_path(out).is_dir():
            raise UserError(f"there is no unfinished run to resume at {out}")
        return
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"cannot make the run directory {out}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot make the run directory {out}: {parent} is not writable")


def _conform(name: str, batch: Batch, schema: pa.Schema | None) -> pa.Table:
    if isinstance(batch, pa.RecordBatch):
        data = pa.Table.from_batches([batch])
    elif isinstance(batch, pa.Table):
        data = batch
    elif isinstance(batch, Mapping):
        data = pa.table({key: batch[key] for key in batch})
    else:
        raise TypeError(f"cannot append a {type(batch).__name__} to table {name!r}")
    if schema is None:
        return data
    have, want = set(data.column_names), set(schema.names)
    if have != want:
        missing, extra = sorted(want - have), sorted(have - want)
        raise ValueError(f"table {name!r}: missing columns {missing}, unexpected columns {extra}")
    if data.column_names != schema.names:
        data = data.select(schema.names)
    if not data.schema.equals(schema, check_metadata=False):
        data = data.cast(schema)
    return data


def _schema_ipc(schema: pa.Schema | None) -> str | None:
    if schema is None:
        return None
    return base64.b64encode(schema.remove_metadata().serialize().to_pybytes()).decode("ascii")


def _schema_from_ipc(text: str | None) -> pa.Schema | None:
    if text is None:
        return None
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def resumable(out_dir: str | Path) -> bool:
    """True when an interrupted run of ``out_dir`` left a committed checkpoint, which
    ``RunWriter(out_dir, ..., resume=True)`` continues from."""
    out = Path(out_dir).expanduser().absolute()
    if out.exists():
        return False
    return _latest_record(partial_path(out) / CHECKPOINT_DIR) is not None


def _committed_checkpoints(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        match = _CHECKPOINT_JSON.match(child.name)
        if match and (folder / match.group(1)).is_dir():
            found.append(int(match.group(1)))
    return sorted(found)


def _latest_record(folder: Path) -> dict[str, Any] | None:
    committed = _committed_checkpoints(folder)
    if not committed:
        return None
    record: dict[str, Any] = json.loads((folder / f"{committed[-1]:06d}.json").read_text("utf-8"))
    return record


def _remove_checkpoint(folder: Path, seq: int) -> None:
    # The JSON first: without it, the arrays are an uncommitted leftover, never a checkpoint.
    _remove(folder / f"{seq:06d}.json")
    _remove(folder / f"{seq:06d}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot write a {type(value).__name__} to JSON")


def _write_json_atomic(path: Path, value: Any) -> None:
    text = json.dumps(value, sort_keys=True, indent=2, default=_json_default) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _write_views(root: Path, paths: dict[str, str], *, absolute: bool = False) -> None:
    """Create ``root/run.duckdb`` with one view per table over paths relative to ``root``,
    or, ``absolute``, over the absolute paths of the files in ``root`` (the finished run).

    DuckDB binds a view when it is created, resolving relative paths against
    ``file_search_path`` (else the CWD), and stores the SQL text as written: a relative path
    is re-resolved by whoever opens the file, an absolute one works from any working
    directory (see docs/run-directory.md). The file is built aside and renamed into place.
    """
    import duckdb

    target = root / DUCKDB_FILE
    if absolute:
        building = root / f".{DUCKDB_FILE}.tmp"
        _remove(building)
        try:
            con = duckdb.connect(str(building), config={"storage_compatibility_version": "v1.0.0"})
        except duckdb.Error:
            con = duckdb.connect(str(building))
        try:
            for name, relative in sorted(paths.items()):
                glob = quote_literal(str(root.resolve() / table_glob(relative)))
                con.execute(f"CREATE VIEW {quote_ident(name)} AS SELECT * FROM read_parquet({glob})")
        finally:
            con.close()
        _remove(building.with_name(building.name + ".wal"))
        os.replace(building, target)
        _fsync_dir(root)
        return
    _remove(target)
    # file_search_path is a comma-separated list; a directory whose path has a comma is reached
    # through symlinks in a temporary directory instead.
    with contextlib.ExitStack() as stack:
        base = root
        if "," in str(root):
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="socialcredit-")))
            for name in paths:
                os.symlink(root / name, base / name, target_is_directory=True)
        building = base / f".{DUCKDB_FILE}.tmp"
        _remove(building)
        try:  # the storage format of DuckDB 1.0, so that older clients open the file too
            con = duckdb.connect(str(building), config={"storage_compatibility_version": "v1.0.0"})
        except duckdb.Error:  # a DuckDB that predates the option writes that format anyway
            con = duckdb.connect(str(building))
        try:
            con.execute(f"SET file_search_path = {quote_literal(str(base))}")
            for name, relative in sorted(paths.items()):
                con.execute(
                    f"CREATE VIEW {quote_ident(name)} AS SELECT * FROM "
                    f"read_parquet({quote_literal(table_glob(relative))})"
                )
        except duckdb.IOException as err:  # DuckDB's own error for a write that failed
            raise OSError(errno.EIO, f"cannot write {DUCKDB_FILE} ({err})") from None
        finally:
            con.close()
        _remove(building.with_name(building.name + ".wal"))
        shutil.move(building, target)
