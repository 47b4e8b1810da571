"""Reading a finished run directory: the manifest, and the tables through DuckDB.

The layout is the contract of DESIGN section 8, described in docs/run-directory.md. Reading
never modifies a run: the DuckDB file is opened read-only. duckdb and pyarrow are imported
lazily so that importing this module (the CLI does) stays cheap.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from socialcredit.errors import UserError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

__all__ = ["FORMAT_VERSION", "Run", "partial_path"]

#: Version of the run-directory layout written by this package (``manifest["format_version"]``).
FORMAT_VERSION = 1

MANIFEST_FILE = "manifest.json"
DUCKDB_FILE = "run.duckdb"
CHECKPOINT_DIR = "checkpoint"
PARTIAL_SUFFIX = ".partial"
PART_PATTERN = "part-{:05d}.parquet"

TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def partial_path(out_dir: Path) -> Path:
    """Where a run that will become ``out_dir`` is written until it completes.

    A hidden sibling, so that a run killed midway leaves nothing at ``out_dir`` itself.
    """
    return out_dir.parent / f".{out_dir.name}{PARTIAL_SUFFIX}"


def is_partial_name(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(PARTIAL_SUFFIX)


def table_glob(relative: str) -> str:
    """The ``read_parquet`` argument for a table stored at ``relative`` (a file or a folder)."""
    if relative.endswith(".parquet"):
        return relative
    return relative.rstrip("/") + "/*.parquet"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class Run:
    """A finished run directory, opened for reading.

    Use :meth:`Run.open`. Queries go through DuckDB over the views of ``run.duckdb``, which
    name the tables' files by absolute path. When the run has moved or been copied since (or
    was written with relative views, as older versions did), the connection shadows each view
    with a temporary one over the files where the run is now, so that it opens from any
    working directory and always reads its own files.
    """

    path: Path
    manifest: dict[str, Any]

    def __init__(self, path: Path, manifest: dict[str, Any]):
        self.path = path
        self.manifest = manifest
        self._con: duckdb.DuckDBPyConnection | None = None
        self._shadows: list[str] = []  # CREATE TEMP VIEW statements, run on every cursor
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """Open the run directory at ``path`` (or its ``manifest.json`` or ``run.duckdb``).

        Raises UserError with one sentence when the path is missing, is not a run directory,
        or holds a run that is still being written or was interrupted.
        """
        given = Path(path).expanduser()
        if given.is_file() and given.name in (MANIFEST_FILE, DUCKDB_FILE):
            given = given.parent
        if not given.exists():
            partial = partial_path(given.absolute())
            if partial.is_dir():
                raise UserError(
                    f"the run {given} is not complete: it is still being written or was "
                    f"interrupted (its files are in {partial}; resume it with --resume)"
                )
            raise UserError(f"there is no run at {given}")
        if not given.is_dir():
            raise UserError(f"{given} is not a run directory")
        root = given.resolve()
        if is_partial_name(root) or (root / CHECKPOINT_DIR).exists():
            raise UserError(
                f"{given} holds a run that is still being written or was interrupted, "
                "not a finished run"
            )
        manifest_file = root / MANIFEST_FILE
        if not manifest_file.is_file():
            from socialcredit.sweep import PLAN_FILE

            if (root / PLAN_FILE).is_file():
                raise UserError(f"{given} is a sweep directory, not a run directory: its runs "
                                "are in its runs/ folder (socialcredit validate compares "
                                "them all)")
            raise UserError(f"{given} is not a run directory: it has no {MANIFEST_FILE}")
        try:
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"the manifest of the run {given} cannot be read ({exc})") from None
        if not isinstance(manifest, dict):
            raise UserError(f"the manifest of the run {given} is not a JSON object")
        version = manifest.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise UserError(
                f"the run {given} has run-directory format {version!r}, which this version "
                f"of socialcredit cannot read (it reads format {FORMAT_VERSION} and older)"
            )
        tables = manifest.get("tables")
        if not isinstance(tables, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tables.items()
        ):
            raise UserError(f"the manifest of the run {given} has no valid 'tables' map")
        if not (root / DUCKDB_FILE).is_file():
            raise UserError(f"the run {given} is incomplete: it has no {DUCKDB_FILE}")
        return cls(root, manifest)

    # -- what the run holds ------------------------------------------------------------------

    def tables(self) -> list[str]:
        """Names of the run's tables, sorted."""
        return sorted(self._table_paths())

    def has(self, name: str) -> bool:
        """Whether the run has a table ``name``."""
        return name in self._table_paths()

    def columns(self, name: str) -> list[str]:
        """Column names of table ``name``, in order."""
        self._require(name)
        return list(self.sql(f"SELECT * FROM {quote_ident(name)} LIMIT 0").schema.names)

    # -- queries -----------------------------------------------------------------------------

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The run's read-only DuckDB connection, shared by this Run.

        Its views resolve relative paths against the run directory, whatever the CWD. A
        DuckDB connection is not thread-safe: in other threads, use :meth:`cursor`.
        """
        with self._lock:
            if self._con is None:
                self._con = self._connect()
            return self._con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new read-only connection to the run (close it when done), for use in one thread."""
        cursor = self.connection().cursor()
        for statement in self._shadows:  # temporary views belong to one connection
            cursor.execute(statement)
        return cursor

    def sql(self, query: str, params: list[Any] | None = None) -> pa.Table:
        """Run ``query`` (DuckDB SQL over the run's views) and return the result as Arrow."""
        import pyarrow as pa

        cursor = self.cursor()
        try:
            relation = cursor.sql(query, params=params)
            if relation is None:
                return pa.table({})
            to_arrow = getattr(relation, "to_arrow_table", None)
            return to_arrow() if to_arrow is not None else relation.arrow()
        finally:
            cursor.close()

    def query(self, query: str, params: list[Any] | None = None) -> duckdb.DuckDBPyRelation:
        """Run ``query`` and return DuckDB's relation, for notebooks: ``.df()`` gives a pandas
        DataFrame, ``.pl()`` a polars one, ``.arrow()`` Arrow, ``.fetchall()`` tuples, and
        printing it shows the first rows as a table. (pandas and polars are needed only by
        the calls that return them.)

        The relation belongs to the run's shared connection (:meth:`connection`): use it in
        one thread, and :meth:`sql` where a plain Arrow table is wanted."""
        return self.connection().sql(query, params=params)

    def table(
        self,
        name: str,
        columns: list[str] | None = None,
        where: str | None = None,
        params: list[Any] | None = None,
    ) -> pa.Table:
        """Read table ``name`` (optionally some ``columns``, rows matching the SQL ``where``
        with ``?`` marks bound to ``params``), in the order the rows were written."""
        self._require(name)
        if columns is None:
            selected = "*"
        else:
            known = set(self.columns(name))
            unknown = [c for c in columns if c not in known]
            if unknown:
                raise UserError(
                    f"the table {name} of the run {self.path} has no column " + ", ".join(unknown)
                )
            selected = ", ".join(quote_ident(c) for c in columns)
        query = f"SELECT {selected} FROM {quote_ident(name)}"
        if where:
            query += f" WHERE {where}"
        return self.sql(query, params)

    def close(self) -> None:
        """Close the DuckDB connection (a later query opens a new one)."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r})"

    # -- internals ---------------------------------------------------------------------------

    def _table_paths(self) -> dict[str, str]:
        tables: dict[str, str] = self.manifest["tables"]
        return tables

    def _require(self, name: str) -> None:
        if not self.has(name):
            raise UserError(f"the run {self.path} has no table {name!r}")

    def _connect(self) -> duckdb.DuckDBPyConnection:
        import duckdb

        con = duckdb.connect(str(self.path / DUCKDB_FILE), read_only=True)
        stored = dict(con.sql("SELECT view_name, sql FROM duckdb_views() "
                              "WHERE NOT internal AND database_name = current_database()"
                              ).fetchall())
        shadows = []
        for name, relative in self._table_paths().items():
            if not TABLE_NAME.match(name):
                continue
            target = quote_literal(str(self.path / table_glob(relative)))
            if f"read_parquet({target})" not in str(stored.get(name, "")):
                # moved, copied, or relative views: read the files where the run is now
                shadows.append(f"CREATE TEMP VIEW {quote_ident(name)} AS "
                               f"SELECT * FROM read_parquet({target})")
        for statement in shadows:
            con.execute(statement)
        self._shadows = shadows
        return con
