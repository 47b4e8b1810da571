"""``simulate``: a scenario in, a finished run directory out (DESIGN 8).

The engine computes; this module streams what it produces to the recorder, checkpoints the
state every so many days, and writes the manifest with the census. A run interrupted at any
point leaves only a hidden ``.NAME.partial`` folder, which ``resume=True`` continues from its
last checkpoint to the identical result.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from socialcredit import __version__
from socialcredit.errors import UserError

ProgressFn = Callable[[int, int], None]
NoticeFn = Callable[[str], None]

#: What the progress line says while the CPU kernels compile (the first run after an install
#: or a change to the kernel's sources; later runs load them from the cache).
COMPILING = "compiling the day kernel, once: about a minute"


@contextlib.contextmanager
def progress_bar(title: str, unit: str = "days") -> Iterator[tuple[ProgressFn, NoticeFn]]:
    """A Rich progress bar (on stderr, or in the notebook's output) for the API's
    ``progress=True`` (``simulate``, ``explain``, ``run_sweep``): yields its ``progress`` and
    ``notice`` callbacks; ``unit`` is what it counts."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn(unit), TimeElapsedColumn(), console=Console(stderr=True)) as bar:
        task = bar.add_task(title, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        def notice(text: str) -> None:
            bar.update(task, description=f"{title}: {text}" if text else title)

        yield progress, notice


def cpu_kernels_compiled() -> bool:
    """Whether a CPU run would load its kernels from the cache rather than compile them."""
    from socialcredit import population
    from socialcredit.jitcache import is_compiled
    from socialcredit.kernel.cpu import run_day

    return is_compiled(run_day, population._generate_into)

#: Days between checkpoints of a run written to disk.
#: By default a CPU run saves its state at the end of the first day that finds this many
#: seconds passed since the loop began or since the last checkpoint: at most that much work
#: is lost to a crash, and a run shorter than that writes none (it is quicker to rerun).
CHECKPOINT_SECONDS = 60.0


def run_slug(scenario_name: str) -> str:
    """A scenario's name as one safe path component: letters, digits, ``.``, ``_`` and ``-``
    only, never ``.`` or ``..``, at most 64 characters (``scenario`` if nothing is left).

    A scenario's name is a name, not a path: ``../../x``, ``/tmp/x``, ``a/b`` or a name with a
    newline all become one folder under ``runs/``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", scenario_name).strip("-.")[:64].rstrip("-.")
    return slug or "scenario"


def default_out(scenario_name: str) -> Path:
    """``runs/<scenario>-<YYYYmmdd-HHMMSS>`` under the current directory (DESIGN 8), with
    the scenario's name made a safe slug (:func:`run_slug`)."""
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{run_slug(scenario_name)}-{stamp}"


def load_scenario(scenario: Any, *, seed: int | None = None, days: int | None = None) -> Any:
    """A scenario (a loaded one, a shipped name or a path), checked against the catalogue
    and, when given, with ``--seed`` and ``--days`` checked by the scenario's own limits."""
    from socialcredit.catalogue import load_catalogue
    from socialcredit.scenario import Scenario, validate_against_catalogue, validate_extensions

    sc = scenario if isinstance(scenario, Scenario) else Scenario.load(scenario)
    validate_against_catalogue(sc, load_catalogue())
    validate_extensions(sc)
    sc.check_options(seed=seed, days=days)
    return sc


def check_out(out: Path, *, resume: bool = False) -> None:
    """Refuse a run directory that cannot be made, before any work starts (see
    :func:`socialcredit.recorder.check_run_dir`)."""
    from socialcredit.recorder import check_run_dir

    check_run_dir(out, resume=resume)


def check_threads(threads: int | None) -> None:
    """``--threads`` of a run in this process: from 1 to the threads numba may start."""
    if threads is None:
        return
    import numba

    most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    if not 1 <= threads <= most:
        raise UserError(f"--threads must be from 1 to {most} (the threads numba may use "
                        f"here; NUMBA_NUM_THREADS raises it), not {threads}")


def with_reforms(scenario: Any, reforms: list[str] | tuple[str, ...]) -> Any:
    """The scenario with ``reforms`` layered on top of its own, in order (``run --reform``).

    Each is a shipped reform's name or a path to a reform file (relative to the working
    directory). A reform that does not load, or a policy that is not a reform, is a
    :class:`UserError` with one sentence, raised before anything runs."""
    from socialcredit.policy import load_policy

    if not reforms:
        return scenario
    names: list[str] = []
    for ref in reforms:
        path = Path(ref).expanduser()
        looks_like_file = path.suffix in (".yaml", ".yml") or "/" in ref or path.exists()
        if looks_like_file and not path.exists():
            raise UserError(f"the reform file {ref} does not exist")
        text = str(path.resolve()) if looks_like_file else ref
        doc = load_policy(text)
        if doc.kind != "reform":
            raise UserError(f"--reform {ref}: the policy {doc.name} is a {doc.kind}, not a reform")
        names.append(text)
    merged = list(dict.fromkeys([*scenario.reforms, *names]))
    return scenario.model_copy(update={"reforms": merged})


def check_options(citizens: int | None, days: int | None, threads: int | None,
                  backend: str) -> None:
    if citizens is not None and citizens <= 0:
        raise UserError(f"--citizens must be a positive number, not {citizens}")
    if days is not None and days <= 0:
        raise UserError(f"--days must be a positive number, not {days}")
    if threads is not None and threads <= 0:
        raise UserError(f"--threads must be a positive number, not {threads}")
    if backend not in ("cpu", "gpu", "auto"):
        raise UserError(f"--backend must be cpu, gpu or auto, not {backend!r}")


def check_backend_here(backend: str) -> None:
    """Refuse ``--backend gpu`` in one sentence where this machine cannot run it (no CUDA
    driver or device, or no numba-cuda), rather than with numba's own text.

    Only for a run in this process: the workers of a Dask cluster may have the GPU that the
    machine starting the run lacks. numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) runs
    the GPU backend anywhere."""
    import os

    from socialcredit.kernel import gpu_available

    if backend != "gpu" or os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return
    if not gpu_available():
        raise UserError("--backend gpu needs an NVIDIA GPU with its CUDA driver and the [gpu] "
                        "extra (numba-cuda), and this machine has none; use --backend cpu or "
                        "auto")


def policy_digest(model: Any) -> str:
    """A hash of everything the kernels read and the names that label it."""
    h = hashlib.sha256()
    h.update(model.packed.P.tobytes())
    h.update(model.packed.O.tobytes())
    pol = model.policy
    h.update(json.dumps([pol.act_names, pol.list_names, pol.measure_names, pol.rule_names,
                         pol.rule_references, pol.region_names]).encode())
    return h.hexdigest()


def manifest_for(model: Any, *, backend: str, threads: int, ledger: bool, timings: dict,
                 census: dict, scenario_source: str) -> dict[str, Any]:
    """The manifest (DESIGN 8): scenario, resolved policy and hash, seed, census, …"""
    from socialcredit.recording import grade_labels

    pol = model.policy
    sc = model.scenario
    pop = model.population
    resolved: Any = None
    try:
        from socialcredit.policy import resolved_summary

        resolved = resolved_summary(sc.policy, [(r.id, r.extension) for r in sc.regions],
                                    list(sc.reforms))
    except ImportError:
        resolved = None
    return {
        "kind": "socialcredit-run",
        "version": __version__,
        "scenario": sc.to_dict(),
        "scenario_source": scenario_source,
        "seed": int(model.seed),
        "backend": backend,
        "threads": int(threads),
        "ledger": bool(ledger),
        "calendar": {
            "start": model.start.isoformat(),
            "days": int(model.days),
            "end": (model.start + dt.timedelta(days=model.days - 1)).isoformat(),
            "burn_in_days": int(model.burn_in),
        },
        "population": {
            "citizens": int(pop.n_citizens),
            "businesses": int(pop.n_businesses),
            "scale": float(getattr(pop, "scale", 1.0) or 1.0),
            "regions": [
                {"id": pop.region_ids[r], "name": pop.region_names[r],
                 "citizens": int(pop.region_citizen_start[r + 1] - pop.region_citizen_start[r]),
                 "businesses": int(pop.region_business_start[r + 1]
                                   - pop.region_business_start[r]),
                 "extension": sc.regions[r].extension}
                for r in range(len(pop.region_ids))
            ],
        },
        "policy": {
            "name": pol.policy_name,
            "hash": policy_digest(model),
            "reforms": list(sc.reforms),
            "resolved": resolved,
            "acts": list(pol.act_names),
            "channels": list(pol.channel_names),
            "services": list(pol.service_names),
            "lists": list(pol.list_names),
            "list_subjects": {n: ("citizen", "business")[int(k)]
                              for n, k in zip(pol.list_names, pol.list_subject_kind, strict=True)},
            "measures": list(pol.measure_names),
            "rules": [{"name": n, "reference": ref}
                      for n, ref in zip(pol.rule_names, pol.rule_references, strict=False)],
            "grades": {pol.region_names[r]: {"citizen": list(pol.grade_names[r][0]),
                                             "business": list(pol.grade_names[r][1])}
                       for r in range(len(pol.region_names))},
            "epochs": [str(np.datetime64(int(d), "D")) for d in pol.epoch_start],
        },
        "grade_labels": grade_labels(model),
        "timings": timings,
        "census": census,
    }


def writes_subjects(model: Any) -> bool:
    """Whether the run writes its ``subjects`` table (``recording.subjects``, default yes)."""
    return bool(getattr(getattr(model.scenario, "recording", None), "subjects", True))


def run_tables(ledger: bool, subjects: bool = True) -> dict[str, Any]:
    """The tables of a run directory and their schemas (``daily``'s comes from its first rows)."""
    from socialcredit.recording import SCHEMAS

    tables: dict[str, Any] = {"daily": None}
    if subjects:
        from socialcredit.subjects import SCHEMA

        tables["subjects"] = SCHEMA
    if ledger:
        for name in ("records", "ledger", "list_events", "decisions", "restrictions", "snapshots"):
            tables[name] = SCHEMAS[name]
    return tables


def snapshot_due(model: Any, t: int, ledger: bool) -> bool:
    """Whether a run writes the ``snapshots`` of every subject at the end of day index ``t``."""
    if not ledger or t < model.burn_in:
        return False
    sc = model.scenario
    every = int(getattr(getattr(sc, "recording", None), "snapshot_every_days", 30) or 0)
    k = t - model.burn_in
    return bool(every) and (k % every == every - 1 or t == model.total_days - 1)


class DayRecorder:
    """Turns a run's days into rows of its tables, in order, through one :class:`RunWriter`.

    The one place where counters and events become ``daily`` rows, ledger tables and the
    census: :func:`simulate` feeds it day by day from its backend, and the distributed run
    (``socialcredit.distributed``) from the merged results of its shards, so both write the
    same tables."""

    def __init__(self, model: Any, writer: Any, *, ledger: bool):
        from socialcredit.recording import DailyCollector

        self.model = model
        self.writer = writer
        self.ledger = ledger
        self.collector = DailyCollector(model)

    def add_day(self, t: int, counts: np.ndarray, events: np.ndarray) -> None:
        """Day index ``t``'s counters (all subjects, summed) and events (sorted by subject)."""
        from socialcredit.recording import event_tables

        model = self.model
        self.collector.add(t, counts)
        if self.ledger and t >= model.burn_in:
            day = int(model.first_day + t)
            for name, tab in event_tables(model, day, events).items():
                self.writer.append(name, tab)

    def add_snapshot(self, table: Any) -> None:
        self.writer.append("snapshots", table)

    def flush(self) -> None:
        """Hand the buffered ``daily`` rows to the writer."""
        tab = self.collector.take()
        if tab is not None:
            self.writer.append("daily", tab)

    def finish(self, *, backend: str, threads: int, timings: dict, source: str,
               t_start: float, extra: dict[str, Any] | None = None) -> Path:
        """Write the ``subjects`` table and the manifest (with the census), and complete the
        run directory."""
        self.flush()
        if writes_subjects(self.model):
            from socialcredit.subjects import subject_tables

            for tab in subject_tables(self.model.population.layout):
                self.writer.append("subjects", tab)
        manifest = manifest_for(self.model, backend=backend, threads=threads, ledger=self.ledger,
                                timings=timings, census=self.collector.census_dict(),
                                scenario_source=source)
        if extra:
            manifest.update(extra)
        manifest["timings"]["total_s"] = round(time.perf_counter() - t_start, 3)
        path: Path = self.writer.finish(manifest)
        return path


def simulate(scenario: Any = "default", *, out: str | Path | None = None, seed: int | None = None,
             citizens: int | None = None, days: int | None = None, threads: int | None = None,
             ledger: bool = False, resume: bool = False, backend: str = "cpu",
             progress: ProgressFn | bool | None = None,
             notice: NoticeFn | None = None,
             checkpoint_every: int | None = None,
             stop_after: int | None = None) -> Path:
    """Run a scenario and write its run directory; returns the directory's path.

    ``checkpoint_every`` days the state is saved so that an interrupted run can be resumed
    (default: on the CPU about once a minute, ``CHECKPOINT_SECONDS``; never on a GPU).
    ``resume=True`` continues from the last checkpoint, or from the start if the run was cut
    off before its first. ``progress(done, total)`` is called after every day; ``notice(text)``
    when the run starts something slow that is not a day (compiling the kernels), and with
    ``""`` when it is over. ``progress=True`` draws a progress bar instead (Rich's, which
    works in a terminal and in a Jupyter notebook), saying so while the kernels compile.
    ``stop_after`` (tests) stops after that many days, as a crash would,
    leaving a partial directory whose last checkpoint ``resume=True`` continues from."""
    from socialcredit.engine import (
        Calendar,
        build_model,
        make_backend,
        new_state,
        require_gpu,
        resolve_backend,
        whole,
    )
    from socialcredit.kernel import layout as LY
    from socialcredit.recorder import RunWriter
    from socialcredit.recording import snapshot_table

    if progress is True:
        with progress_bar(f"simulating {getattr(scenario, 'name', scenario)}") as (bar, note):
            return simulate(scenario, out=out, seed=seed, citizens=citizens, days=days,
                            threads=threads, ledger=ledger, resume=resume, backend=backend,
                            progress=bar, notice=notice or note,
                            checkpoint_every=checkpoint_every, stop_after=stop_after)
    if progress is False:
        progress = None
    t_start = time.perf_counter()
    check_options(citizens, days, threads, backend)
    check_threads(threads)
    check_backend_here(backend)
    sc = load_scenario(scenario, seed=seed, days=days)
    source = str(scenario) if not hasattr(scenario, "name") else sc.name
    out_path = Path(out) if out is not None else default_out(sc.name)
    if resume and out is None:
        raise UserError("--resume needs --out naming the run to continue")
    check_out(out_path, resume=resume)
    backend = resolve_backend(backend)
    if backend == "gpu":  # refused before the run directory is begun
        require_gpu()
    # a fresh GPU run generates its population on the device and keeps its state there; by
    # default it is not checkpointed (a checkpoint copies the whole state back to the host)
    on_device = backend == "gpu" and not resume
    # checkpoint every N days when asked; by default by the clock, on the CPU only
    by_clock = checkpoint_every is None and backend != "gpu"
    if checkpoint_every is None:
        checkpoint_every = 0
    compiling = notice is not None and backend == "cpu" and not cpu_kernels_compiled()
    if compiling and notice is not None:
        notice(COMPILING)
    model = build_model(sc, seed=seed, citizens=citizens, days=days, lazy_population=on_device)
    t_built = time.perf_counter()
    shard = whole(model)
    t0 = 0
    state = None if on_device else new_state(model, shard)
    sim_seconds = 0.0
    with RunWriter(out_path, tables=run_tables(ledger, writes_subjects(model)),
                   resume=resume) as writer:
        rec = DayRecorder(model, writer, ledger=ledger)
        if resume:
            cp = writer.latest_checkpoint()
            if cp is not None:  # without one (cut off before its first), start again
                t0, saved, meta = cp
                assert state is not None
                check_resume(out_path, meta, resume_meta(model))
                for k in state:
                    state[k][...] = saved[k]
                rec.collector.load_state({k[len("collector."):]: v for k, v in saved.items()
                                          if k.startswith("collector.")})
        emit = LY.EMIT_TABLES if ledger else LY.EMIT_NONE
        t_load = time.perf_counter()
        be = make_backend(backend, model, shard, state, threads=threads, emit=emit)
        load_seconds = time.perf_counter() - t_load
        if compiling and notice is not None:
            notice("")
        cal = Calendar(model)
        subject_ids = np.concatenate([np.arange(shard.c_lo, shard.c_hi, dtype=np.int64),
                                      model.n_citizens + np.arange(shard.b_lo, shard.b_hi,
                                                                   dtype=np.int64)])
        total = model.total_days
        last_saved = time.perf_counter()
        for t in range(t0, total):
            ts = time.perf_counter()
            res = be.run_day(t, cal)
            sim_seconds += time.perf_counter() - ts
            rec.add_day(t, res.counts, res.events)
            if snapshot_due(model, t, ledger):
                if hasattr(be, "sync_state"):
                    be.sync_state()
                rec.add_snapshot(snapshot_table(model, int(model.first_day + t), subject_ids,
                                                be.state, (t + 1) & 1))
            if progress:
                progress(t + 1, total)
            done = t + 1
            due = (done % checkpoint_every == 0) if checkpoint_every else \
                (by_clock and time.perf_counter() - last_saved >= CHECKPOINT_SECONDS)
            if done < total and due:
                rec.flush()
                if hasattr(be, "sync_state"):
                    be.sync_state()
                saved = dict(be.state)
                saved.update({f"collector.{k}": v for k, v in rec.collector.state().items()})
                writer.checkpoint(done, saved, resume_meta(model))
                last_saved = time.perf_counter()
                if stop_after is not None and done >= stop_after:
                    raise _Stopped()
            elif stop_after is not None and done >= stop_after and not checkpoint_every:
                raise _Stopped()
        t_sim = time.perf_counter()
        # build: scenario, policy and population; load: the backend and its compiled kernel;
        # simulate: the days themselves; loop: the days with their recording and checkpoints
        timings = {"build_s": round(t_built - t_start, 3), "load_s": round(load_seconds, 3),
                   "simulate_s": round(sim_seconds, 3), "loop_s": round(t_sim - t_built, 3)}
        return rec.finish(backend=getattr(be, "name", backend),
                          threads=getattr(be, "threads", 1), timings=timings, source=source,
                          t_start=t_start)


def resume_meta(model: Any) -> dict[str, Any]:
    """What a resumed run must share with the run it continues, as saved in a checkpoint."""
    return {"policy_hash": policy_digest(model), "seed": int(model.seed),
            "days": int(model.days), "citizens": int(model.n_citizens),
            "start": model.start.isoformat(), "burn_in_days": int(model.burn_in)}


def check_resume(out: Path, was: dict[str, Any], now: dict[str, Any]) -> None:
    """Refuse to continue a partial run with settings other than those it was started with
    (its checkpoint's ``was``): the result would be neither run."""
    options = {"seed": "--seed", "days": "--days", "citizens": "--citizens"}
    for key, option in options.items():
        if key in was and was[key] != now[key]:
            raise UserError(f"the unfinished run {out} was started with {option} {was[key]}, "
                            f"not {now[key]}; resume it with the settings it was started with")
    for key in ("start", "burn_in_days", "policy_hash"):
        if was.get(key, now[key]) != now[key]:
            raise UserError(f"the unfinished run {out} was started with another scenario or "
                            "policy; resume it with the scenario it was started with")


class _Stopped(Exception):
    """Raised by ``stop_after`` to imitate a crash in tests."""
