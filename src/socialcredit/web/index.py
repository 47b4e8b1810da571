"""Fast look-ups of one subject's rows in a run's per-subject tables.

A run writes its tables day by day, so every Parquet row group holds nearly every subject and
a query for one subject reads the whole table (about a second for a run of a million citizens
over a year). The explorer therefore copies the per-subject tables once into an in-memory
DuckDB database, sorted by subject: DuckDB's zone maps then skip every row group but the one
holding the subject, and a look-up takes milliseconds. The copy is compressed (a checkpoint of
the in-memory database), about 90 MB for a million citizens over a year.

The copy is built in a background thread the first time a run's subjects are asked for;
until it is ready, look-ups read the Parquet files directly, with the same query and the same
answer. Rows keep the order in which the run wrote them (file, then row within the file).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from socialcredit.store import quote_ident, quote_literal, table_glob

if TYPE_CHECKING:
    import duckdb

    from socialcredit.store import Run

log = logging.getLogger(__name__)

#: How often, and how many seconds apart, a busy checkpoint is tried again.
CHECKPOINT_TRIES = 50
CHECKPOINT_PAUSE = 0.02

#: The tables indexed by subject, and the columns kept of each (None: all of them).
TABLES: dict[str, list[str] | None] = {
    "list_events": None,
    "ledger": None,
    "records": None,
    "snapshots": ["day", "subject_id", "score", "grade", "lists", "false_lists"],
    "decisions": None,
    "restrictions": None,
}


def _paths(run: Run, name: str) -> str | None:
    """The ``read_parquet`` argument of a table of the run, or None when the table is missing
    or its path would lead outside the run directory."""
    relative = run.manifest.get("tables", {}).get(name)
    if not isinstance(relative, str):
        return None
    target = (run.path / relative).resolve()
    if not target.is_relative_to(run.path):
        return None
    return str(run.path / table_glob(relative))


class SubjectIndex:
    """The per-subject tables of one run, sorted by subject in memory (built in the
    background), with the same look-up against the Parquet files until then."""

    def __init__(self, run: Run, *, background: bool = True, build: bool = True):
        """``background``: build in a thread (else before returning); ``build``: False never
        builds (every look-up reads the Parquet files; for tests)."""
        import duckdb

        self.run = run
        self.con: duckdb.DuckDBPyConnection = duckdb.connect(":memory:")
        self.tables: dict[str, str] = {}  # table -> column list of the look-up
        self._globs: dict[str, str] = {}
        self._done: set[str] = set()  # tables copied so far (looked up in memory already)
        self._ready = threading.Event()
        self._closed = False
        self.error: str | None = None
        self.build_seconds: float | None = None
        for name, keep in TABLES.items():
            glob = _paths(run, name)
            if glob is None:
                continue
            source = f"read_parquet({quote_literal(glob)}, file_row_number = true)"
            try:
                have = [r[0] for r in self.con.execute(
                    f"DESCRIBE SELECT * FROM read_parquet({quote_literal(glob)})").fetchall()]
            except Exception as exc:  # noqa: BLE001 - a missing table is simply not indexed
                log.info("table %s of run %s not indexed: %s", name, run.path, exc)
                continue
            cols = [c for c in (keep or have) if c in have]
            if "subject_id" not in cols or "day" not in cols:
                continue
            listed = ", ".join(quote_ident(c) for c in cols)
            self.con.execute(
                f"CREATE VIEW {quote_ident('src_' + name)} AS SELECT {listed}, "
                f"file_index AS fi, file_row_number AS fr FROM {source}"
            )
            self.tables[name] = listed
            self._globs[name] = glob
        self._thread: threading.Thread | None = None
        if not build:
            return
        if background:
            self._thread = threading.Thread(target=self._build, name=f"index {run.path.name}",
                                            daemon=True)
            self._thread.start()
        else:
            self._build()

    # -- building ----------------------------------------------------------------------------

    def _copy(self, cur: duckdb.DuckDBPyConnection, name: str) -> None:
        """Copy one table into ``idx``, sorted by subject, then compress it.

        Strings (act, channel, rule, service, …; a few distinct values each) become ENUMs,
        which sort and compress far better. The sort key is one 64-bit number — subject,
        file, row within the file — when parts and rows fit its bits (at most 256 parts of
        at most 16 Mi rows, as the recorder writes them); the file and row numbers order
        the sort but are not kept, since a scan returns rows in insertion order."""
        glob = quote_literal(self._globs[name])
        kinds = dict(cur.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * "
                                 f"FROM read_parquet({glob}))").fetchall())
        select = []
        for col in (c.strip('"') for c in self.tables[name].split(", ")):
            expr = quote_ident(col)
            if kinds.get(col) == "VARCHAR":
                values = [r[0] for r in cur.execute(
                    f"SELECT DISTINCT {expr} FROM read_parquet({glob}) WHERE {expr} IS NOT NULL "
                    "LIMIT 10001").fetchall()]
                if len(values) <= 10000:
                    enum = quote_ident(f"enum_{name}_{col}")
                    listed = ", ".join(quote_literal(str(v)) for v in values)
                    cur.execute(f"CREATE TYPE {enum} AS ENUM ({listed})")
                    expr = f"{expr}::{enum} AS {expr}"
            select.append(expr)
        files, rows = cur.execute(f"SELECT count(*), max(num_rows) FROM "
                                  f"parquet_file_metadata({glob})").fetchone() or (0, 0)
        if int(files or 0) <= 256 and int(rows or 0) < 1 << 24:
            order = "(subject_id::UBIGINT << 32) | (fi::UBIGINT << 24) | fr::UBIGINT"
        else:
            order = "subject_id, fi, fr"
        cur.execute(f"CREATE TABLE idx.{quote_ident(name)} AS SELECT {', '.join(select)} "
                    f"FROM {quote_ident('src_' + name)} ORDER BY {order}")
        self._checkpoint(cur, name)

    @staticmethod
    def _checkpoint(cur: duckdb.DuckDBPyConnection, name: str) -> None:
        """Compress what was copied (DuckDB compresses at a checkpoint). A checkpoint waits
        for no one: while a request's write transaction is open it fails, so it is tried
        again for a while, and then left out (the table is whole, only larger)."""
        import duckdb

        for _ in range(CHECKPOINT_TRIES):
            try:
                cur.execute("CHECKPOINT idx")
                return
            except duckdb.TransactionException:
                time.sleep(CHECKPOINT_PAUSE)
        log.info("subject index: %s left uncompressed (the database stayed busy)", name)

    def _build(self) -> None:
        t0 = time.perf_counter()
        cur = self.con.cursor()
        try:
            try:
                cur.execute("ATTACH ':memory:' AS idx (COMPRESS)")
            except Exception:  # noqa: BLE001 - older DuckDB: compression happens anyway or not
                cur.execute("ATTACH ':memory:' AS idx")
            for name in self.tables:  # small tables first: they are ready in seconds
                if self._closed:
                    return
                self._copy(cur, name)
                self._done.add(name)
            if {"records", "decisions"} <= self._done:
                # the few rows the overview's "wrongful decisions by channel" joins
                cur.execute("CREATE TABLE idx.wrongful AS SELECT subject_id, day FROM "
                            "idx.decisions WHERE wrongful")
                cur.execute("CREATE TABLE idx.false_records AS SELECT subject_id, day, channel "
                            "FROM idx.records WHERE NOT true_record")
                self._done.add("wrongful")
            self.build_seconds = time.perf_counter() - t0
            log.info("subject index of %s built in %.1f s", self.run.path, self.build_seconds)
            self._ready.set()
        except Exception as exc:  # noqa: BLE001 - the Parquet look-up keeps working
            if not self._closed:
                self.error = str(exc)
                log.warning("subject index of %s failed: %s", self.run.path, exc)
        finally:
            cur.close()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the index is built (True) or ``timeout`` seconds pass (False)."""
        return self._ready.wait(timeout)

    # -- look-ups ----------------------------------------------------------------------------

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()

    def rows(self, cur: duckdb.DuckDBPyConnection, table: str, subject: int,
             limit: int) -> list[dict[str, Any]]:
        """The rows of ``table`` for one subject in the order written (at most ``limit``)."""
        cols = self.tables.get(table)
        if cols is None:
            return []
        if table in self._done:
            query = f"SELECT {cols} FROM idx.{quote_ident(table)} WHERE subject_id = ? LIMIT ?"
        else:
            query = (f"SELECT {cols} FROM {quote_ident('src_' + table)} WHERE subject_id = ? "
                     "ORDER BY fi, fr LIMIT ?")
        rel = cur.execute(query, [int(subject), int(limit)])
        names = [d[0] for d in rel.description]
        return [dict(zip(names, r, strict=True)) for r in rel.fetchall()]

    def has(self, table: str) -> bool:
        """Whether ``table`` (or the derived ``wrongful``) is already copied into memory."""
        return table in self._done

    def close(self) -> None:
        self._closed = True
        try:
            self.con.interrupt()
        except Exception:  # noqa: BLE001
            pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.con.close()
        except Exception:  # noqa: BLE001
            pass
