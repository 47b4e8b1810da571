"""Sweeps: one base scenario, some parameters varied, every run in its own run directory.

A sweep file (YAML) names a base scenario, the parameters to vary — a ``grid`` of values (every
combination) or ``random`` samples drawn from a seed — and how many ``replicates`` of each
point to run. :func:`load_sweep` checks all of it against the scenario model (every parameter
path must exist, every point must give a valid scenario) and returns the plan, a plain list of
runs; nothing runs or is written before that succeeds.

:func:`run_sweep` executes a plan into a sweep directory::

    SWEEP/
    ├── sweep.json            the plan: base scenario, parameters, and every run
    ├── status.json           what the last execution left unfinished, and why
    ├── sweep.duckdb          a view ``summary`` over summary/*.parquet
    ├── results.csv           the same rows in one file: one per finished run, by name
    ├── summary/part-NAME.parquet   one row of headline metrics per finished run
    └── runs/NAME/            one run directory per run (DESIGN 8)

Each run is an independent task: the worker that runs it writes its run directory with
:func:`socialcredit.simulate` and then its summary row, so no process ever gathers the runs'
data. A run directory appears by an atomic rename only when complete, and a summary part
replaces itself atomically, so a run re-executed after its worker died is written once.
Executing the same sweep again skips the finished runs and retries the others.

Run names are made from the varied values, the replicate and a short hash of both, so the
same point always lands in the same directory. Replicate ``r`` runs with seed ``s + r``, where
``s`` is the point's seed (the scenario's unless ``seed`` is varied): every point sees the same
random numbers in the same replicate (DESIGN 2.9), so points differ by their parameters only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import logging
import math
import os
import re
import time
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from socialcredit.errors import UserError
from socialcredit.scenario import plain_value, read_yaml_mapping

__all__ = [
    "PlannedRun",
    "SweepPlan",
    "SweepResult",
    "load_sweep",
    "open_summary",
    "run_name",
    "run_sweep",
    "shipped_sweeps",
]

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]

PLAN_FILE = "sweep.json"
STATUS_FILE = "status.json"
SUMMARY_DIR = "summary"
RUNS_DIR = "runs"
DUCKDB_FILE = "sweep.duckdb"
RESULTS_FILE = "results.csv"
#: Parameters that are not scenario fields: ``citizens`` rescales the regions, as ``--citizens``.
EXTRA_PARAMETERS = ("citizens",)
#: Headline metrics of each run, from :func:`socialcredit.summary.summarize`.
METRICS = ("citizens", "businesses", "days", "acts", "records", "records_false", "false_share",
           "decisions", "denied", "fast_tracked", "throttled", "throttled_days", "wrongful",
           "wrongful_share")


# --- the sweep file ------------------------------------------------------------------------


#: Most runs one sweep may plan (points times replicates): each is a run directory, and the
#: plan is checked point by point before anything runs.
MAX_RUNS = 10_000


class _Strict(BaseModel):
    # a bound or a sample count is a finite number: NaN and infinity would be drawn from
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Distribution(_Strict):
    """One random parameter: exactly one of the four keys."""

    uniform: list[float] | None = None
    loguniform: list[float] | None = None
    integers: list[int] | None = None
    choice: list[Any] | None = None


class RandomSamples(_Strict):
    samples: Annotated[int, Field(ge=1, le=MAX_RUNS)]
    seed: Annotated[int, Field(ge=0)] = 0
    parameters: dict[str, Distribution]


class SweepFile(_Strict):
    """The sweep file's keys (see docs/distributed.md)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] | None = None
    description: str = ""
    scenario: Annotated[str, Field(min_length=1)] = "default"
    citizens: Annotated[int, Field(gt=0)] | None = None
    days: Annotated[int, Field(gt=0)] | None = None
    ledger: bool = False
    replicates: Annotated[int, Field(ge=1, le=MAX_RUNS)] = 1
    set: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, Any] | None = None
    random: RandomSamples | None = None


# --- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: the varied values, the replicate and the seed."""

    name: str
    params: dict[str, Any]
    replicate: int
    seed: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params, "replicate": self.replicate,
                "seed": self.seed}


@dataclass
class SweepPlan:
    """A checked sweep: the base scenario (with ``set`` applied) and every run."""

    name: str
    source: str
    scenario: str
    scenario_path: str | None
    base: dict[str, Any]
    citizens: int | None
    days: int | None
    ledger: bool
    parameters: list[str]
    types: dict[str, str]
    runs: list[PlannedRun]
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        from socialcredit import __version__

        return {
            "kind": "socialcredit-sweep",
            "version": __version__,
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "scenario": self.scenario,
            "base": self.base,
            "citizens": self.citizens,
            "days": self.days,
            "ledger": self.ledger,
            "parameters": [{"path": p, "type": self.types[p]} for p in self.parameters],
            "runs": [r.to_json() for r in self.runs],
        }

    def scenario_dict(self, run: PlannedRun) -> dict[str, Any]:
        """The scenario of ``run`` as a mapping (its seed included)."""
        data = json.loads(json.dumps(self.base))
        for path, value in run.params.items():
            if path not in EXTRA_PARAMETERS:
                _assign(data, path, value)
        data["seed"] = run.seed
        return data

    def citizens_of(self, run: PlannedRun) -> int | None:
        """``--citizens`` of ``run``: varied, or the sweep's."""
        value = run.params.get("citizens", self.citizens)
        return None if value is None else int(value)

    def days_of(self, run: PlannedRun) -> int | None:
        """``--days`` of ``run``: the sweep's, unless ``days`` is varied (then it is in the
        run's scenario)."""
        return None if "days" in run.params else self.days


#: Keys of sweep.json that must match for a sweep directory to be executed again.
_SAME_PLAN = ("name", "scenario", "base", "citizens", "days", "ledger", "parameters", "runs")


def shipped_sweeps() -> list[str]:
    """Names of the example sweeps shipped with the package."""
    folder = resources.files("socialcredit") / "sweeps"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_sweep(file: str | Path) -> SweepPlan:
    """Read and check a sweep file (a path, or a shipped sweep's name) and return its plan.

    Every mistake is a :class:`UserError` naming the file and, where it can, the line: an
    unknown key, a parameter path the scenario does not have, an empty grid, a value that
    makes the scenario invalid."""
    from socialcredit.scenario import Scenario, validate_against_catalogue

    path = _resolve_sweep(file)
    tree, lines = _read_yaml(path)
    try:
        spec = SweepFile.model_validate(tree)
    except ValidationError as err:
        raise _validation_error(err, path, lines) from None

    def fail(message: str, *loc: Any) -> UserError:
        return UserError(message, path=path, line=_line(lines, loc))

    try:
        base_sc = Scenario.load(_scenario_ref(spec.scenario, path))
    except UserError as err:
        if err.path is not None:  # a mistake inside the scenario file: say where it is
            raise
        raise fail(err.message, "scenario") from None
    if spec.days is not None:
        from socialcredit.scenario import calendar_problem

        problem = calendar_problem(base_sc.start, base_sc.burn_in_days, spec.days)
        if problem:
            raise fail(f"days: {problem}", "days")
    name = spec.name or re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-.") or "sweep"
    base = base_sc.to_dict()
    scenario_path = str(base_sc.path.resolve()) if base_sc.path is not None else None

    citizens = spec.citizens
    for key, value in spec.set.items():
        _check_path(key, base_sc, fail, "set", key)
        if key == "citizens":
            citizens = _positive_int(value, fail, "set", key)
        else:
            _assign(base, key, value)
    if spec.set:
        _scenario_from(base, scenario_path, fail, "set")

    if spec.grid is not None and spec.random is not None:
        raise fail("a sweep has either a grid or random samples, not both", "random")
    if spec.grid is None and spec.random is None:
        raise fail("the sweep varies nothing; give a grid of values or random samples")
    points: list[dict[str, Any]]
    where: dict[str, tuple[Any, ...]] = {}
    if spec.grid is not None:
        if not spec.grid:
            raise fail("the grid is empty; give each parameter to vary a list of values", "grid")
        for key, values in spec.grid.items():
            where[key] = ("grid", key)
            _check_path(key, base_sc, fail, "grid", key)
            if not isinstance(values, list):
                raise fail(f"the grid must give {key} a list of values", "grid", key)
            if not values:
                raise fail(f"the grid gives {key} no values, so the sweep would be empty",
                           "grid", key)
        keys = list(spec.grid)
        planned = math.prod(len(spec.grid[k]) for k in keys) * spec.replicates
        if planned > MAX_RUNS:
            raise fail(f"the grid makes {planned:,} runs (every combination of its values, "
                       f"times the replicates); a sweep may make at most {MAX_RUNS:,}", "grid")
        points = [dict(zip(keys, combo, strict=True))
                  for combo in itertools.product(*(spec.grid[k] for k in keys))]
    else:
        assert spec.random is not None
        if not spec.random.parameters:
            raise fail("the random samples vary no parameters", "random", "parameters")
        for key, dist in spec.random.parameters.items():
            where[key] = ("random", "parameters", key)
            _check_path(key, base_sc, fail, *where[key])
            _check_distribution(key, dist, fail, *where[key])
        planned = spec.random.samples * spec.replicates
        if planned > MAX_RUNS:
            raise fail(f"the random samples make {planned:,} runs (samples times replicates); "
                       f"a sweep may make at most {MAX_RUNS:,}", "random", "samples")
        points = _draw(spec.random)
    parameters = list(points[0]) if points else []

    # Every point must make a valid scenario; check each distinct one once.
    catalogue = None
    checked_policies: set[str] = set()
    for point in points:
        data = json.loads(json.dumps(base))
        for key, value in point.items():
            if key == "citizens":
                _positive_int(value, fail, *where[key])
            else:
                _assign(data, key, value)
        sc = _scenario_from(data, scenario_path, fail, *where[parameters[0]],
                            point=point)
        if catalogue is None:
            from socialcredit.catalogue import load_catalogue

            catalogue = load_catalogue()
        try:
            validate_against_catalogue(sc, catalogue)
        except UserError as err:
            raise fail(f"{_describe(point)} does not give a valid scenario: {err.message}",
                       *where[parameters[0]]) from None
        key = json.dumps([sc.policy, list(sc.reforms), [(r.id, r.extension) for r in sc.regions],
                          sc.start.isoformat(), sc.days, sc.burn_in_days])
        if key not in checked_policies:
            checked_policies.add(key)
            _check_policy(sc, catalogue, None if "days" in point else spec.days, fail, where,
                          point)

    seeds = _seeds(points, base)
    runs: list[PlannedRun] = []
    for point, seed in zip(points, seeds, strict=True):
        for r in range(spec.replicates):
            s = seed + r
            if s >= 2**63:
                raise fail(f"the seed {s} of replicate {r} is too large", "replicates")
            runs.append(PlannedRun(name=run_name(point, r), params=point, replicate=r, seed=s))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise fail(f"two runs of the sweep would both be {dup}: the grid repeats a point", "grid")
    return SweepPlan(name=name, source=str(path), scenario=spec.scenario,
                     scenario_path=scenario_path, base=base, citizens=citizens, days=spec.days,
                     ledger=spec.ledger, parameters=parameters,
                     types={p: _column_type([pt[p] for pt in points]) for p in parameters},
                     runs=runs, description=spec.description)


def run_name(params: Mapping[str, Any], replicate: int) -> str:
    """The folder of a run: the varied values, the replicate, and a hash of both."""
    canon = json.dumps({"params": dict(params), "replicate": replicate}, sort_keys=True)
    digest = hashlib.sha256(canon.encode()).hexdigest()[:6]
    parts = [f"{key.rsplit('.', 1)[-1]}-{_short(value)}" for key, value in params.items()]
    slug = re.sub(r"[^A-Za-z0-9.+_-]+", "-", "_".join(parts)).strip("-._")
    slug = re.sub(r"-{2,}", "-", slug)[:64].rstrip("-._")
    return f"{slug}_r{replicate}_{digest}" if slug else f"r{replicate}_{digest}"


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "+".join(_short(v) for v in value) or "none"
    if value is None:
        return "none"
    return str(value)


def _resolve_sweep(file: str | Path) -> Path:
    text = str(file)
    p = Path(text).expanduser()
    if p.exists():
        return p  # a folder, a device or a pipe is refused by the reader
    looks_like_path = p.suffix in (".yaml", ".yml") or "/" in text or "\\" in text
    if not looks_like_path:
        shipped = resources.files("socialcredit") / "sweeps" / f"{text}.yaml"
        if shipped.is_file():
            return Path(str(shipped))
    raise UserError(f"sweep file {text} does not exist")


def _scenario_ref(ref: str, sweep_path: Path) -> str:
    """A scenario named in a sweep file: a path relative to the sweep file, or a name."""
    p = Path(ref).expanduser()
    if not p.is_absolute() and (sweep_path.parent / p).is_file():
        return str(sweep_path.parent / p)
    return ref


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    tree = read_yaml_mapping(path, "sweep")
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: Any, loc: tuple[Any, ...]) -> None:
        if isinstance(node, Mapping) and hasattr(node, "lc"):
            for k, v in node.items():
                with contextlib.suppress(KeyError, TypeError, AttributeError):
                    lines[(*loc, str(k))] = node.lc.key(k)[0] + 1
                walk(v, (*loc, str(k)))

    walk(tree, ())
    return plain_value(tree, dates_as_text=True), lines


def _line(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int | None:
    loc = tuple(x for x in loc if isinstance(x, str))
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


def _validation_error(err: ValidationError, path: Path,
                      lines: dict[tuple[Any, ...], int]) -> UserError:
    first = err.errors(include_url=False)[0]
    loc = tuple(first.get("loc", ()))
    msg = str(first.get("msg", "is not valid"))
    msg = msg.removeprefix("Value error, ")
    named = ".".join(str(x) for x in loc if isinstance(x, str | int))
    if first.get("type") == "extra_forbidden":
        parent = ".".join(str(x) for x in loc[:-1])
        hint = "" if parent else "; a sweep file has " + ", ".join(SweepFile.model_fields)
        sentence = f"unknown key {loc[-1]!r}" + (f" in {parent}" if parent else "") + hint
    else:
        sentence = f"{named}: {msg[:1].lower()}{msg[1:]}" if named else msg
    return UserError(sentence, path=path, line=_line(lines, loc))


# --- parameter paths -----------------------------------------------------------------------


def _unwrap(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return tp


def _check_path(key: str, scenario: Any, fail: Callable[..., UserError], *loc: Any) -> None:
    """Check that ``key`` (``behaviour.awareness``, ``regions.rongcheng.consent_share``,
    ``behaviour.acts.jaywalking.rate_per_year`` …) names a parameter of the scenario model."""
    from socialcredit.scenario import Scenario

    if key in EXTRA_PARAMETERS:
        return
    parts = key.split(".")
    if not all(parts):
        raise fail(f"{key!r} is not a parameter path; write dotted names such as "
                   "behaviour.awareness", *loc)

    def unknown() -> UserError:
        return fail(f"{key} is not a parameter of the scenario {scenario.name}", *loc)

    tp: Any = Scenario
    value: Any = scenario
    for part in parts:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if part not in tp.model_fields:
                raise unknown()
            value = getattr(value, part, None) if value is not None else None
            tp = tp.model_fields[part].annotation
        elif origin is dict:
            value = value.get(part) if isinstance(value, Mapping) else None
            tp = typing.get_args(tp)[1]
        elif origin is list:
            item = _unwrap(typing.get_args(tp)[0])
            seq = list(value) if isinstance(value, list) else []
            if isinstance(item, type) and issubclass(item, BaseModel) and "id" in item.model_fields:
                found = [x for x in seq if getattr(x, "id", None) == part]
                if not found:
                    ids = ", ".join(str(getattr(x, "id", "?")) for x in seq)
                    raise fail(f"{key} names no region of the scenario {scenario.name}; its "
                               f"regions are {ids}", *loc)
                value = found[0]
            elif part.isdigit() and int(part) < len(seq):
                value = seq[int(part)]
            else:
                raise unknown()
            tp = item
        else:
            raise unknown()


def _assign(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (a checked path) in a scenario mapping, making missing mappings on the way."""
    node: Any = data
    parts = key.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if part.isdigit():
                idx = int(part)
            else:
                idx = next(j for j, x in enumerate(node) if isinstance(x, Mapping)
                           and x.get("id") == part)
            if last:
                node[idx] = value
            else:
                node = node[idx]
        else:
            if last:
                node[part] = value
            else:
                if not isinstance(node.get(part), dict | list):
                    node[part] = {}
                node = node[part]


def _scenario_from(data: dict[str, Any], scenario_path: str | None,
                   fail: Callable[..., UserError], *loc: Any,
                   point: dict[str, Any] | None = None) -> Any:
    from socialcredit.scenario import Scenario

    try:
        return Scenario.from_dict(data, path=scenario_path)
    except UserError as err:
        what = f"{_describe(point)} does" if point else "the values under set do"
        raise fail(f"{what} not give a valid scenario: {err.message}", *loc) from None


def _describe(point: Mapping[str, Any] | None) -> str:
    if not point:
        return "the sweep"
    return ", ".join(f"{k} = {json.dumps(v)}" for k, v in point.items())


def _check_policy(sc: Any, catalogue: Any, days: int | None, fail: Callable[..., UserError],
                  where: dict[str, tuple[Any, ...]], point: dict[str, Any]) -> None:
    """Load and compile the point's policy (its name, reforms and extensions may be varied)."""
    from socialcredit.policy import compile_policy

    n_days = int(days or sc.days)
    first = sc.start - dt.timedelta(days=int(sc.burn_in_days))
    last = sc.start + dt.timedelta(days=n_days - 1)
    try:
        compile_policy(sc.policy, [(r.id, r.extension) for r in sc.regions], list(sc.reforms),
                       first, last, catalogue)
    except UserError as err:
        loc = where.get("policy") or where.get("reforms") or next(iter(where.values()), ())
        raise fail(f"{_describe(point)} does not give a valid policy: {err.sentence()}",
                   *loc) from None


def _positive_int(value: Any, fail: Callable[..., UserError], *loc: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise fail(f"citizens must be a positive whole number, not {value!r}", *loc)
    return value


def _check_distribution(key: str, dist: Distribution, fail: Callable[..., UserError],
                        *loc: Any) -> None:
    given = [k for k in ("uniform", "loguniform", "integers", "choice")
             if getattr(dist, k) is not None]
    if len(given) != 1:
        raise fail(f"{key} needs exactly one of uniform, loguniform, integers or choice", *loc)
    kind = given[0]
    values = getattr(dist, kind)
    if kind == "choice":
        if not values:
            raise fail(f"the choice for {key} is empty", *loc)
        return
    if len(values) != 2 or values[0] > values[1]:
        raise fail(f"{kind} for {key} needs two bounds [low, high] with low <= high", *loc)
    if kind == "loguniform" and values[0] <= 0:
        raise fail(f"loguniform for {key} needs positive bounds", *loc)


def _draw(spec: RandomSamples) -> list[dict[str, Any]]:
    """The random points, drawn in file order from one generator seeded by ``spec.seed``."""
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(spec.seed))
    points = []
    for _ in range(spec.samples):
        point: dict[str, Any] = {}
        for key, dist in spec.parameters.items():
            if dist.uniform is not None:
                lo, hi = dist.uniform
                point[key] = float(rng.uniform(lo, hi))
            elif dist.loguniform is not None:
                lo, hi = dist.loguniform
                point[key] = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
            elif dist.integers is not None:
                lo, hi = dist.integers
                point[key] = int(rng.integers(lo, hi, endpoint=True))
            else:
                assert dist.choice is not None
                point[key] = dist.choice[int(rng.integers(len(dist.choice)))]
        points.append(point)
    return points


def _seeds(points: list[dict[str, Any]], base: dict[str, Any]) -> list[int]:
    out = []
    for point in points:
        seed = point.get("seed", base.get("seed", 0))
        out.append(int(seed))
    return out


def _column_type(values: list[Any]) -> str:
    """The summary column type of a parameter's values."""
    if all(isinstance(v, bool) for v in values):
        return "bool"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "int64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "float64"
    if all(isinstance(v, str) for v in values):
        return "string"
    return "json"


# --- executing a plan ----------------------------------------------------------------------


@dataclass
class SweepResult:
    """What an execution of a sweep did."""

    path: Path
    runs: int
    finished: list[str] = field(default_factory=list)  # finished by this execution
    skipped: list[str] = field(default_factory=list)  # finished before it
    failed: dict[str, str] = field(default_factory=dict)  # name -> one sentence
    seconds: float = 0.0
    #: one row per finished run (this execution's and earlier ones'), by name: the run, its
    #: replicate, seed and varied parameters, then its headline figures (``results.csv``)
    results: Any = None
    parameters: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def default_sweep_out(plan: SweepPlan) -> Path:
    """``sweeps/<name>`` under the current directory: the same for every execution, so that
    running a sweep again continues it."""
    return Path("sweeps") / plan.name


def run_sweep(file: str | Path | SweepPlan, *, out: str | Path | None = None,
              scheduler: str | None = None, client: Any = None, threads: int | None = None,
              progress: ProgressFn | bool | None = None, retries: int = 0,
              connect_timeout: float | None = None) -> SweepResult:
    """Execute a sweep into its sweep directory and return what happened.

    Runs already finished there are skipped; the others (never started, failed, or cut off)
    run now. Without ``scheduler`` or ``client`` the runs go one after another in this
    process; ``scheduler`` (``local[:N]`` or an address) or ``client`` sends each run to a
    Dask worker. ``threads`` is numba's threads per run (default: all the worker's cores, or
    its ``NUMBA_NUM_THREADS``). ``retries`` re-runs a failed run that many times (a worker
    that dies is not a failure: Dask re-runs its task elsewhere). A run that still fails is
    reported in the result and in ``status.json``, not raised. ``progress(done, total)`` is
    called as runs finish; ``progress=True`` draws a progress bar of runs instead (in a
    terminal or a notebook)."""
    from socialcredit.distributed import connect, parse_scheduler

    if progress is True:
        from socialcredit.run import progress_bar

        name = file.name if isinstance(file, SweepPlan) else Path(file).stem
        with progress_bar(f"sweep {name}", unit="runs") as (bar, _note):
            return run_sweep(file, out=out, scheduler=scheduler, client=client,
                             threads=threads, progress=bar, retries=retries,
                             connect_timeout=connect_timeout)
    if progress is False:
        progress = None

    t_start = time.perf_counter()
    plan = file if isinstance(file, SweepPlan) else load_sweep(file)
    if threads is not None and threads <= 0:
        raise UserError(f"--threads must be a positive number, not {threads}")
    root = Path(out) if out is not None else default_sweep_out(plan)
    root = root.expanduser().absolute()
    _check_sweep_dir(root, plan)
    spec = parse_scheduler(scheduler) if scheduler and client is None else None
    result = SweepResult(path=root, runs=len(plan.runs))
    todo = []
    for run in plan.runs:
        if (root / RUNS_DIR / run.name).is_dir() and _summary_part(root, run.name).is_file():
            result.skipped.append(run.name)
        else:
            todo.append(_task_spec(plan, run, root, threads))
    with contextlib.ExitStack() as stack:
        if spec is not None and todo:
            client = stack.enter_context(connect(spec, timeout=connect_timeout))
        # Only now, with the plan checked and the scheduler reached, is anything written.
        (root / RUNS_DIR).mkdir(parents=True, exist_ok=True)
        (root / SUMMARY_DIR).mkdir(exist_ok=True)
        _write_json(root / PLAN_FILE, plan.to_json())
        done = 0

        def report(name: str, outcome: dict[str, Any] | None, error: str | None) -> None:
            nonlocal done
            done += 1
            if error is None:
                result.finished.append(name)
            else:
                result.failed[name] = error
                log.warning("sweep run %s failed: %s", name, error)
            if progress:
                progress(done, len(todo))

        if client is None or not todo:
            for task in todo:
                try:
                    outcome = run_task(task)
                except Exception as err:  # noqa: BLE001 - a failed run is reported, not raised
                    report(task["name"], None, _sentence(err))
                else:
                    report(task["name"], outcome, None)
        else:
            _run_on_dask(client, todo, retries, report)
        _write_views(root)
        result.results = _write_results(root)
        result.parameters = [p for p in plan.parameters if p != "seed"]
        _write_json(root / STATUS_FILE, {
            "runs": len(plan.runs),
            "finished": len(plan.runs) - len(result.failed),
            "failed": result.failed,
            "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        })
    result.seconds = time.perf_counter() - t_start
    return result


def _run_on_dask(client: Any, todo: list[dict[str, Any]], retries: int,
                 report: Callable[[str, dict[str, Any] | None, str | None], None]) -> None:
    from distributed import as_completed

    tag = uuid.uuid4().hex[:8]
    names = {}
    futures = []
    for task in todo:
        fut = client.submit(run_task, task, key=f"socialcredit-sweep-{task['name']}-{tag}",
                            pure=False, retries=retries)
        names[fut.key] = task["name"]
        futures.append(fut)
    for fut in as_completed(futures):
        name = names[fut.key]
        try:
            outcome = fut.result()
        except Exception as err:  # noqa: BLE001 - a failed run is reported, not raised
            report(name, None, _sentence(err))
        else:
            report(name, outcome, None)
        fut.release()


def _sentence(err: BaseException) -> str:
    if isinstance(err, UserError):
        return err.sentence()
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def previous_plan(root: Path, plan_name: str, what: str) -> dict[str, Any] | None:
    """The plan that a work directory (a sweep's, a calibration's) already holds, or None
    when the directory does not exist yet or is empty; a directory of something else, or an
    unreadable plan, is refused with one sentence."""
    if not root.exists():
        return None
    if not root.is_dir():
        raise UserError(f"{root} exists and is not a {what} directory")
    plan_file = root / plan_name
    if not plan_file.is_file():
        if any(root.iterdir()):
            raise UserError(f"{root} exists and is not a {what} directory; choose another --out")
        return None
    try:
        return dict(json.loads(plan_file.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        raise UserError(f"the plan {plan_file} cannot be read; choose another --out") from None


def _check_sweep_dir(root: Path, plan: SweepPlan) -> None:
    was = previous_plan(root, PLAN_FILE, "sweep")
    if was is None:
        return
    now = json.loads(json.dumps(plan.to_json()))
    if any(was.get(k) != now.get(k) for k in _SAME_PLAN):
        raise UserError(f"{root} holds another sweep (its sweep.json differs from this one); "
                        "choose another --out")


def _task_spec(plan: SweepPlan, run: PlannedRun, root: Path,
               threads: int | None) -> dict[str, Any]:
    return {
        "name": run.name,
        "scenario": plan.scenario_dict(run),
        "scenario_path": plan.scenario_path,
        "citizens": plan.citizens_of(run),
        "days": plan.days_of(run),
        "ledger": plan.ledger,
        "threads": threads,
        "out": str(root / RUNS_DIR / run.name),
        "summary": str(_summary_part(root, run.name)),
        "params": run.params,
        "types": plan.types,
        "replicate": run.replicate,
        "seed": run.seed,
    }


def _summary_part(root: Path, name: str) -> Path:
    return root / SUMMARY_DIR / f"part-{name}.parquet"


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    """One run of a sweep, on whichever process executes it: simulate into the run directory
    (unless it is already there), then write the run's summary row. Safe to execute again."""
    from socialcredit.distributed import numba_lock
    from socialcredit.run import simulate
    from socialcredit.scenario import Scenario
    from socialcredit.store import partial_path

    out = Path(task["out"])
    ts = time.perf_counter()
    ran = False
    if not out.is_dir():
        sc = Scenario.from_dict(task["scenario"], path=task["scenario_path"])
        resume = _has_checkpoint(partial_path(out))
        with numba_lock():
            simulate(sc, out=out, citizens=task["citizens"], days=task["days"],
                     threads=task["threads"], ledger=task["ledger"], resume=resume)
        ran = True
    _write_summary_row(task, out)
    return {"name": task["name"], "ran": ran, "seconds": time.perf_counter() - ts,
            "pid": os.getpid()}


def _has_checkpoint(partial: Path) -> bool:
    """Whether a run cut off midway left a checkpoint to resume from (see the recorder)."""
    from socialcredit.store import CHECKPOINT_DIR

    folder = partial / CHECKPOINT_DIR
    if not folder.is_dir():
        return False
    return any(re.fullmatch(r"\d{6,}\.json", p.name) and (folder / p.stem).is_dir()
               for p in folder.iterdir())


def _write_summary_row(task: dict[str, Any], out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from socialcredit.summary import summarize

    s = summarize(out)
    cols: dict[str, pa.Array] = {
        "run": pa.array([task["name"]], pa.string()),
        "path": pa.array([f"{RUNS_DIR}/{task['name']}"], pa.string()),
        "replicate": pa.array([task["replicate"]], pa.int64()),
        "seed": pa.array([task["seed"]], pa.int64()),
    }
    for key, value in task["params"].items():
        if key == "seed":
            continue
        kind = task["types"][key]
        if kind == "json":
            cols[key] = pa.array([json.dumps(value)], pa.string())
        else:
            cols[key] = pa.array([value], {"bool": pa.bool_(), "int64": pa.int64(),
                                           "float64": pa.float64(), "string": pa.string()}[kind])
    for metric in METRICS:
        value = s[metric]
        cols[metric] = pa.array([value], pa.float64() if isinstance(value, float) else pa.int64())
    for list_name, n in s["lists"].items():
        cols[f"listed_{list_name}"] = pa.array([n], pa.int64())
    cols["seconds"] = pa.array([s["seconds"]], pa.float64())
    target = Path(task["summary"])
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    pq.write_table(pa.table(cols), tmp)
    os.replace(tmp, target)


def _write_results(root: Path) -> Any:
    """``results.csv``: every summary row, sorted by run name, in one file (for spreadsheets);
    returns them as a pyarrow Table, or None before any run finished."""
    import duckdb
    import pyarrow.csv as pacsv

    from socialcredit.store import quote_literal

    if not any((root / SUMMARY_DIR).glob("*.parquet")):
        return None
    con = duckdb.connect(":memory:")
    try:
        glob = quote_literal(str(root / SUMMARY_DIR / "*.parquet"))
        rel = con.sql(f"SELECT * FROM read_parquet({glob}, union_by_name = true) ORDER BY run")
        to_table = getattr(rel, "to_arrow_table", None)
        table = to_table() if to_table is not None else rel.arrow()
        if hasattr(table, "read_all"):
            table = table.read_all()
    finally:
        con.close()
    tmp = root / f".{RESULTS_FILE}.tmp"
    pacsv.write_csv(table, tmp)
    os.replace(tmp, root / RESULTS_FILE)
    return table


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _summary_sql(root: Path) -> str:
    """The ``summary`` view's query over the summary parts of the sweep at ``root``."""
    from socialcredit.store import quote_literal

    glob = quote_literal(str(root.resolve() / SUMMARY_DIR / "*.parquet"))
    return f"SELECT * FROM read_parquet({glob}, union_by_name = true)"


def _write_views(root: Path) -> None:
    """``sweep.duckdb`` with the view ``summary`` over the summary parts, by absolute path
    (like a run directory's views): any DuckDB client opens it from any working directory,
    and :func:`open_summary` reads a moved or copied sweep where it is now."""
    import duckdb

    target = root / DUCKDB_FILE
    if not any((root / SUMMARY_DIR).glob("*.parquet")):
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        return
    building = root / f".{DUCKDB_FILE}.tmp"
    with contextlib.suppress(FileNotFoundError):
        building.unlink()
    try:  # the storage format of DuckDB 1.0, as run directories (socialcredit.recorder)
        con = duckdb.connect(str(building), config={"storage_compatibility_version": "v1.0.0"})
    except duckdb.Error:
        con = duckdb.connect(str(building))
    try:
        con.execute(f"CREATE VIEW summary AS {_summary_sql(root)}")
    finally:
        con.close()
    with contextlib.suppress(FileNotFoundError):
        building.with_name(building.name + ".wal").unlink()
    os.replace(building, target)


def open_summary(path: str | Path) -> Any:
    """A read-only DuckDB connection to a sweep directory's ``summary`` view."""
    import duckdb


    root = Path(path).expanduser().resolve()
    if not (root / PLAN_FILE).is_file():
        raise UserError(f"{path} is not a sweep directory: it has no {PLAN_FILE}")
    if not (root / DUCKDB_FILE).is_file():
        raise UserError(f"the sweep {path} has no finished run yet")
    con = duckdb.connect(str(root / DUCKDB_FILE), read_only=True)
    stored = con.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'summary' "
                     "AND NOT internal").fetchall()
    here = _summary_sql(root)
    if not stored or here.split(", union_by_name")[0] not in stored[0][0]:
        # moved, copied, or written with relative paths: read the parts where the sweep is
        con.execute(f"CREATE TEMP VIEW summary AS {here}")
    return con
