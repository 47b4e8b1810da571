"""The runs the explorer serves: found under one folder, opened once, and known by an id.

A run's id is its path relative to the runs folder, with ``~`` between the parts
(``default-20250101-120000``, or ``sweep~point-003`` for a run in a subfolder). Requests name
runs only by id, and an id is only ever looked up in the map built by walking the folder, so
no request can reach a path outside it: there is nothing to traverse.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from socialcredit.errors import UserError
from socialcredit.store import CHECKPOINT_DIR, DUCKDB_FILE, MANIFEST_FILE, Run

if TYPE_CHECKING:
    from socialcredit.population import Layout, Population
    from socialcredit.web.index import SubjectIndex

log = logging.getLogger(__name__)

#: How deep below the runs folder runs are looked for (a sweep's points sit two levels down).
MAX_DEPTH = 4
#: Seconds a scan of the runs folder stays fresh.
RESCAN_AFTER_S = 2.0
#: Separator of the parts of a run id (a path separator cannot appear in a URL segment).
ID_SEP = "~"
#: How many runs keep a subject index in memory at once (least recently used go first).
MAX_INDEXED_RUNS = 4

#: Serialises every call into numba's parallel functions (DESIGN 9): the threading layer
#: aborts when several threads enter it at once, and a web server serves from many threads.
NUMBA_LOCK = threading.Lock()

#: Serialises the first import of the modules that load numba (:func:`prepare_numba`).
_IMPORT_LOCK = threading.Lock()
_prepared = False


def prepare_numba() -> None:
    """Import, once and in one thread, every module of the explorer's paths into numba: the
    population (codes, attributes), the engine and its kernel (replays), the analyses that
    read the population's bands (policy audit, compare).

    numba cannot be imported by two threads at once: the second sees it half-initialised,
    the import fails, and numba stays broken for the life of the process (every later replay
    answers "module 'numba' has no attribute 'core'"). :func:`create_app` calls this before
    the server starts; every path into numba here calls it first, so a catalog used without
    an app is safe too. It takes its own lock, never :data:`NUMBA_LOCK`, so it may be called
    while that is held."""
    global _prepared
    if _prepared:
        return
    with _IMPORT_LOCK:
        if _prepared:
            return
        import socialcredit.analysis.audit
        import socialcredit.analysis.explain
        import socialcredit.analysis.metrics
        import socialcredit.engine
        import socialcredit.population  # noqa: F401
        _prepared = True


class NotFound(Exception):
    """Something a request names does not exist; the message is one plain sentence."""


class Unavailable(Exception):
    """The thing exists but this run cannot show it (no ledger, not comparable, …)."""


def _is_run_dir(path: Path) -> bool:
    return (
        (path / MANIFEST_FILE).is_file()
        and (path / DUCKDB_FILE).is_file()
        and not (path / CHECKPOINT_DIR).exists()
    )


def discover(root: Path, max_depth: int = MAX_DEPTH) -> dict[str, Path]:
    """Run directories under ``root`` (itself included), by id; hidden folders are skipped
    (a run being written is a hidden ``.NAME.partial``), and so is anything whose real path
    lies outside ``root`` (a symbolic link pointing elsewhere)."""
    root = root.resolve()
    found: dict[str, Path] = {}
    if _is_run_dir(root):
        found[root.name] = root
        return found

    def walk(folder: Path, parts: tuple[str, ...]) -> None:
        if len(parts) >= max_depth:
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(".") or ID_SEP in entry.name:
                continue
            try:
                if not entry.is_dir():
                    continue
                real = Path(entry.path).resolve()
            except OSError:
                continue
            if not real.is_relative_to(root):
                continue
            here = (*parts, entry.name)
            if _is_run_dir(real):
                found[ID_SEP.join(here)] = real
            else:
                walk(real, here)

    walk(root, ())
    return found


def _manifest_problem(m: dict[str, Any]) -> str | None:
    """What the explorer needs from a manifest and this one lacks (None: nothing)."""
    try:
        dt.date.fromisoformat(str(m["calendar"]["start"]))
        if int(m["calendar"]["days"]) <= 0:
            return "has no days"
        int(m["population"]["citizens"])
        int(m["population"]["businesses"])
        for reg in m["population"]["regions"]:
            str(reg["id"])
            int(reg["citizens"])
            int(reg["businesses"])
        if not isinstance(m.get("scenario", {}), dict) or not isinstance(m.get("policy", {}),
                                                                             dict):
            return "has no valid scenario or policy"
    except (KeyError, TypeError, ValueError):
        return "has no valid calendar or population"
    return None


@dataclass
class RunHandle:
    """One run as the explorer holds it: the open run and what is computed once about it."""

    id: str
    run: Run
    mtime: float
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _pop_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _index: SubjectIndex | None = field(default=None, repr=False)
    _population: Population | None = field(default=None, repr=False)
    _population_failed: bool = field(default=False, repr=False)
    _model: Any = field(default=None, repr=False)
    _validation: Any = field(default=None, repr=False)

    @property
    def manifest(self) -> dict[str, Any]:
        return self.run.manifest

    # -- the calendar --------------------------------------------------------------------

    @cached_property
    def start(self) -> dt.date:
        return dt.date.fromisoformat(self.manifest["calendar"]["start"])

    @cached_property
    def days(self) -> int:
        return int(self.manifest["calendar"]["days"])

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    def date(self, text: str | None, default: dt.date | None = None) -> dt.date:
        """A date of the run from ``YYYY-MM-DD`` text; NotFound for any other date."""
        if text is None or text == "":
            return default if default is not None else self.end
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            raise NotFound(
                f"{text!r} is not a date of the run {self.id}: write YYYY-MM-DD between "
                f"{self.start} and {self.end}"
            ) from None
        if not self.start <= day <= self.end:
            raise NotFound(
                f"the run {self.id} has no day {day}: it covers {self.start} to {self.end}"
            )
        return day

    # -- the population ------------------------------------------------------------------

    @cached_property
    def n_citizens(self) -> int:
        return int(self.manifest["population"]["citizens"])

    @cached_property
    def n_businesses(self) -> int:
        return int(self.manifest["population"]["businesses"])

    @cached_property
    def regions(self) -> list[dict[str, Any]]:
        """Each region with its id, name and subject id ranges ``[c_lo, c_hi)``, ``[b_lo, b_hi)``."""
        out = []
        c = 0
        b = self.n_citizens
        for reg in self.manifest["population"]["regions"]:
            nc, nb = int(reg["citizens"]), int(reg["businesses"])
            out.append({"id": str(reg["id"]), "name": str(reg.get("name") or reg["id"]),
                        "c_lo": c, "c_hi": c + nc, "b_lo": b, "b_hi": b + nb})
            c += nc
            b += nb
        return out

    def region_of(self, subject: int) -> str:
        for reg in self.regions:
            if reg["c_lo"] <= subject < reg["c_hi"] or reg["b_lo"] <= subject < reg["b_hi"]:
                return str(reg["id"])
        return ""

    def region_index(self, region: str | None) -> dict[str, Any] | None:
        """The region named ``region`` (None: every region); NotFound when the run has none."""
        if region is None or region == "":
            return None
        for reg in self.regions:
            if reg["id"] == region:
                return reg
        names = ", ".join(r["id"] for r in self.regions)
        raise NotFound(f"the run {self.id} has no region {region!r} (it has {names})")

    @cached_property
    def layout(self) -> Layout | None:
        """The population layout rebuilt from the manifest (cheap), or None if it cannot be."""
        try:
            prepare_numba()
            from socialcredit.population import layout
            from socialcredit.scenario import Scenario

            sc = Scenario.from_dict(self.manifest["scenario"])
            lay = layout(sc, seed=int(self.manifest["seed"]))
        except Exception as exc:  # noqa: BLE001 - codes are a courtesy; ids still work
            log.info("no population layout for run %s: %s", self.id, exc)
            return None
        if (lay.n_citizens, lay.n_businesses) != (self.n_citizens, self.n_businesses):
            return None
        return lay

    def population(self, timeout: float = -1) -> Population | None:
        """The run's population, generated once (a parallel numba loop, under the lock);
        None when it cannot be rebuilt, or is still being generated after ``timeout`` s."""
        prepare_numba()
        if not self._pop_lock.acquire(timeout=timeout):
            return None
        try:
            if self._population is not None or self._population_failed:
                return self._population
            lay = self.layout
            pop = None
            if lay is not None:
                try:
                    from socialcredit.population import populate

                    with NUMBA_LOCK:
                        pop = populate(lay)
                except Exception as exc:  # noqa: BLE001 - attributes are optional
                    log.info("no population for run %s: %s", self.id, exc)
            self._population = pop
            self._population_failed = pop is None
            return pop
        finally:
            self._pop_lock.release()

    def model(self) -> Any:
        """The run's model rebuilt from the manifest, for replays (built once; the caller
        holds :data:`NUMBA_LOCK`). Unavailable, with the sentence, when it cannot be."""
        if self._model is None:
            prepare_numba()
            from socialcredit.analysis.common import build_run_model

            try:
                self._model = build_run_model(self.run)
            except UserError as err:
                raise Unavailable(err.message) from None
        return self._model

    def uscc(self, subject: int) -> str | None:
        """The Unified Social Credit Code of a business subject (None for a citizen)."""
        lay = self.layout
        if lay is None or subject < self.n_citizens:
            return None
        from socialcredit.population import uscc_of

        try:
            return uscc_of(lay, subject)
        except (UserError, ValueError):
            return None

    def subject(self, text: str) -> int:
        """A subject id from a URL: an integer id or a business's USCC (the command line's
        parser, :func:`socialcredit.uscc.parse_subject`); NotFound otherwise."""
        from socialcredit.uscc import parse_subject

        try:
            return parse_subject(text, self.n_citizens, self.n_businesses, self.uscc,
                                 where=f"the run {self.id}")
        except UserError as err:
            raise NotFound(err.message) from None

    # -- the ledger ----------------------------------------------------------------------

    @cached_property
    def has_ledger(self) -> bool:
        return all(self.run.has(t) for t in ("records", "ledger", "list_events", "decisions"))

    @cached_property
    def has_snapshots(self) -> bool:
        return self.run.has("snapshots")

    def require_ledger(self, what: str) -> None:
        if not self.has_ledger or not self.has_snapshots:
            raise Unavailable(
                f"the run {self.id} has no ledger, so {what} cannot be shown; "
                "make the run again with --ledger"
            )

    @cached_property
    def snapshot_days(self) -> list[dt.date]:
        if not self.has_snapshots:
            return []
        rows = self.run.sql("SELECT DISTINCT day FROM snapshots ORDER BY day").column(0)
        return [d for d in rows.to_pylist() if d is not None]

    @cached_property
    def rule_references(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for r in (self.manifest.get("policy") or {}).get("rules") or []:
            if isinstance(r, dict) and "name" in r:
                out.setdefault(str(r["name"]), str(r.get("reference") or ""))
        return out

    @cached_property
    def measure_references(self) -> dict[str, str]:
        """Measure id -> reference, from the run's baseline, extensions and reforms."""
        refs: dict[str, str] = {}
        sc = self.manifest.get("scenario") or {}
        names = [sc.get("policy")]
        names += [r.get("extension") for r in sc.get("regions") or [] if isinstance(r, dict)]
        names += list(sc.get("reforms") or [])
        try:
            from socialcredit.policy import load_policy
        except ImportError:  # pragma: no cover - the policy layer is part of the package
            return refs
        for name in names:
            if not name:
                continue
            try:
                doc = load_policy(name)
            except Exception:  # noqa: BLE001 - references are a courtesy
                continue
            for meas in getattr(doc, "measures", None) or []:
                if getattr(meas, "id", None) and getattr(meas, "reference", None):
                    refs[str(meas.id)] = str(meas.reference)
        return refs

    @cached_property
    def summary(self) -> dict[str, Any]:
        """Headline figures (``socialcredit.summary.summarize``), computed once."""
        from socialcredit.summary import summarize

        try:
            figures = summarize(self.run.path)
        except Exception as exc:  # noqa: BLE001 - a run whose figures fail still lists
            log.warning("no headline figures for run %s: %s", self.id, exc)
            return {}
        figures.pop("path", None)
        return figures

    def index(self) -> SubjectIndex:
        """The run's subject index (built in the background on first use, together with the
        population that describes subjects)."""
        with self._lock:
            if self._index is None:
                from socialcredit.web.index import SubjectIndex

                self._index = SubjectIndex(self.run)
                threading.Thread(target=self.population, name=f"population {self.id}",
                                 daemon=True).start()
            return self._index

    def drop_index(self) -> None:
        with self._lock:
            if self._index is not None:
                self._index.close()
                self._index = None

    def close(self) -> None:
        self.drop_index()
        self.run.close()


class RunCatalog:
    """Every run under a folder, discovered again when a lookup misses or every few seconds."""

    def __init__(self, root: str | Path):
        path = Path(root).expanduser()
        if not path.is_dir():
            raise UserError(f"there is no folder {path} to serve runs from")
        self.root = path.resolve()
        self._lock = threading.Lock()
        self._paths: dict[str, Path] = {}
        self._scanned = 0.0
        self._handles: dict[str, RunHandle] = {}
        self._indexed: list[str] = []  # ids with an index, least recently used first

    def ids(self) -> list[str]:
        """Ids of the runs under the folder, sorted (the folder is scanned every few s)."""
        self._scan(force=False)
        return sorted(self._paths)

    def _scan(self, force: bool) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and now - self._scanned < RESCAN_AFTER_S:
                return
            self._paths = discover(self.root)
            self._scanned = now
            for gone in [k for k in self._handles if k not in self._paths]:
                self._handles.pop(gone).close()

    def get(self, run_id: str) -> RunHandle:
        """The run with this id; NotFound (one sentence) for any other id."""
        self._scan(force=False)
        if run_id not in self._paths:
            self._scan(force=True)
        path = self._paths.get(run_id)
        if path is None:
            raise NotFound(f"there is no run {run_id!r} in {self.root.name}/")
        with self._lock:
            manifest = path / MANIFEST_FILE
            try:
                mtime = manifest.stat().st_mtime
            except OSError:
                raise NotFound(f"there is no run {run_id!r} in {self.root.name}/") from None
            handle = self._handles.get(run_id)
            if handle is not None and handle.mtime == mtime:
                return handle
            if handle is not None:
                handle.close()
                self._handles.pop(run_id, None)
            try:
                run = Run.open(path)
            except UserError as err:
                raise NotFound(f"the run {run_id!r} cannot be opened: {err.message}") from None
            problem = _manifest_problem(run.manifest)
            if problem:
                run.close()
                raise NotFound(f"the run {run_id!r} cannot be shown: its manifest {problem}")
            handle = RunHandle(id=run_id, run=run, mtime=mtime)
            self._handles[run_id] = handle
            return handle

    def touch_index(self, handle: RunHandle) -> None:
        """Note that ``handle``'s index is in use; drop the least recently used beyond
        :data:`MAX_INDEXED_RUNS`."""
        drop: list[RunHandle] = []
        with self._lock:
            if handle.id in self._indexed:
                self._indexed.remove(handle.id)
            self._indexed.append(handle.id)
            while len(self._indexed) > MAX_INDEXED_RUNS:
                old = self._indexed.pop(0)
                if old in self._handles:
                    drop.append(self._handles[old])
        for h in drop:
            h.drop_index()

    def close(self) -> None:
        with self._lock:
            for h in self._handles.values():
                h.close()
            self._handles.clear()
