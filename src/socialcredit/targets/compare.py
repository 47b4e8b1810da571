"""Comparing a run with a target file: the validation table, over time, and a loss.

:func:`validate_run` evaluates every target's query on a run and returns one
:class:`Comparison` per figure: published, model, ratio and whether it is within tolerance.
A figure dated outside the run's reported days has no model value (``model`` is None) and is
never within tolerance. :func:`validate_sweep` does the same for every finished run of a
sweep (the same scenario over several seeds, say) and :func:`spread` gives, per figure, how
far the ratio moves from run to run and in how many runs it is within tolerance.
:func:`loss` turns comparisons into the number calibration minimises;
:func:`series_over_time` gives a model series for the plot of model against published
figures, and :func:`over_time` every series of a table for that plot (the report and the
explorer's overview draw the same one).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from socialcredit.errors import UserError
from socialcredit.targets.loader import Target, TargetSet, load_targets, query_parameters

__all__ = ["Comparison", "Spread", "SweepRun", "validate_run", "validate_sweep", "spread",
           "within_tolerance", "loss", "series_over_time", "over_time", "run_scale"]

#: the log ratio counted for a figure the run cannot produce (no model value, or zero)
MISSING_LOG_RATIO = math.log(100.0)


@dataclass(frozen=True)
class Comparison:
    """One row of the validation table."""

    id: str
    figure: str
    series: str
    date: str
    published: float
    model: float | None
    ratio: float | None
    tolerance: float
    within: bool
    holdout: bool
    unit: str
    tag: str
    source: str
    weight: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def run_scale(run: Any) -> float:
    """Simulated citizens per real person of a run (1.0 when it stands for itself)."""
    pop = run.manifest.get("population") or {}
    scale = float(pop.get("scale") or 1.0)
    return scale if scale > 0 else 1.0


def _reported_days(run: Any) -> tuple[dt.date, dt.date]:
    cal = run.manifest.get("calendar") or {}
    return dt.date.fromisoformat(cal["start"]), dt.date.fromisoformat(cal["end"])


def _evaluate(run: Any, targets: TargetSet, t: Target, k: int, start: dt.date) -> float | None:
    sql = targets.sql(t)
    params = query_parameters(sql, {"date": t.date, "start": start})
    try:
        table = run.sql(sql, params) if params else run.sql(sql)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - a query that does not run is the file's fault
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        loc = ("queries", t.query) if t.query in targets.queries else ("targets", k, "query")
        raise UserError(f"the query of {t.id} fails on this run ({text})",
                        path=targets.path, line=targets.line_of(*loc)) from None
    if table.num_rows != 1 or table.num_columns != 1:
        raise UserError(f"the query of {t.id} must give one number, not {table.num_rows} rows "
                        f"of {table.num_columns} columns",
                        path=targets.path, line=targets.line_of("targets", k, "query"))
    value = table.column(0)[0].as_py()
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"the query of {t.id} gives {value!r}, not a number",
                        path=targets.path, line=targets.line_of("targets", k, "query")) from None
    if t.scale == "people":
        number /= run_scale(run)
    return number


def within_tolerance(ratio: float | None, tolerance: float) -> bool:
    """Whether a model / published ratio is within ``tolerance`` of 1 (never without one)."""
    return ratio is not None and abs(ratio - 1.0) <= tolerance + 1e-12


def validate_run(run: Any, targets: str | Path | TargetSet = "china") -> list[Comparison]:
    """Compare a run (a path or an open :class:`~socialcredit.store.Run`) with a target file
    (a path, a shipped name or a loaded :class:`TargetSet`)."""
    from socialcredit.analysis.common import open_run

    run = open_run(run)
    ts = targets if isinstance(targets, TargetSet) else load_targets(targets)
    start, end = _reported_days(run)
    out = []
    for k, t in enumerate(ts.targets):
        tol = ts.tolerance_of(t)
        model = _evaluate(run, ts, t, k, start) if start <= t.date <= end else None
        ratio = model / t.value if model is not None else None
        within = within_tolerance(ratio, tol)
        out.append(Comparison(
            id=t.id, figure=t.figure, series=t.series, date=t.date.isoformat(),
            published=t.value, model=model, ratio=ratio, tolerance=tol, within=within,
            holdout=t.holdout, unit=t.unit, tag=t.tag, source=t.source, weight=t.weight))
    return out


@dataclass(frozen=True)
class SweepRun:
    """One finished run of a sweep, compared with a target file."""

    name: str
    seed: int
    path: Path
    comparisons: list[Comparison]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "run": str(self.path),
                "loss_fitted": loss(self.comparisons),
                "loss_held_out": loss(self.comparisons, holdout=True),
                "comparisons": [c.to_json() for c in self.comparisons]}


@dataclass(frozen=True)
class Spread:
    """One figure across several runs: the ratios' mean, spread and range, and in how many
    of the runs that have a model value it is within tolerance."""

    id: str
    figure: str
    date: str
    published: float
    unit: str
    holdout: bool
    tolerance: float
    runs: int  #: runs compared
    valued: int  #: runs with a model value (a figure dated outside a run has none)
    within: int  #: runs within tolerance
    mean_ratio: float | None
    sd_ratio: float | None  #: the sample standard deviation (None below two values)
    min_ratio: float | None
    max_ratio: float | None

    @property
    def mean_within(self) -> bool:
        """Whether the mean ratio is within tolerance."""
        return within_tolerance(self.mean_ratio, self.tolerance)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "mean_within": self.mean_within}


def validate_sweep(sweep: str | Path,
                   targets: str | Path | TargetSet = "china") -> list[SweepRun]:
    """Compare every finished run of a sweep directory (``socialcredit sweep``) with a
    target file, in the plan's order; runs not finished (no run directory yet) are left
    out, and a sweep with none finished is refused."""
    from socialcredit.sweep import PLAN_FILE, RUNS_DIR

    root = Path(sweep)
    plan_file = root / PLAN_FILE
    try:
        plan = json.loads(plan_file.read_text(encoding="utf-8"))
        runs = [(str(r["name"]), int(r["seed"])) for r in plan["runs"]]
    except FileNotFoundError:
        raise UserError(f"{root} is not a sweep directory (it has no {PLAN_FILE})") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{plan_file} cannot be read as a sweep's plan ({err})") from None
    ts = targets if isinstance(targets, TargetSet) else load_targets(targets)
    out = [SweepRun(name, seed, root / RUNS_DIR / name,
                    validate_run(root / RUNS_DIR / name, ts))
           for name, seed in runs if (root / RUNS_DIR / name).is_dir()]
    if not out:
        raise UserError(f"the sweep {root} has no finished run to compare yet; run it first "
                        "(socialcredit sweep)")
    return out


def spread(runs: list[list[Comparison]]) -> list[Spread]:
    """Per figure (in the order of the first run's comparisons), the ratio across runs."""
    if not runs:
        return []
    out = []
    for k, first in enumerate(runs[0]):
        rows = [r[k] for r in runs]
        if any(c.id != first.id for c in rows):
            raise ValueError("every run must be compared with the same target file")
        ratios = [c.ratio for c in rows if c.ratio is not None]
        n = len(ratios)
        mean = statistics.fmean(ratios) if n else None
        sd = statistics.stdev(ratios) if n >= 2 else None
        out.append(Spread(
            id=first.id, figure=first.figure, date=first.date, published=first.published,
            unit=first.unit, holdout=first.holdout, tolerance=first.tolerance, runs=len(rows),
            valued=n, within=sum(c.within for c in rows), mean_ratio=mean, sd_ratio=sd,
            min_ratio=min(ratios) if ratios else None,
            max_ratio=max(ratios) if ratios else None))
    return out


def loss(comparisons: list[Comparison], *, holdout: bool = False) -> float:
    """The weighted mean squared log ratio of the figures that are (``holdout=False``: not)
    held out; a figure without a model value counts as 100 times off."""
    num = den = 0.0
    for c in comparisons:
        if c.holdout != holdout or c.weight == 0:
            continue
        if c.ratio is None or c.ratio <= 0:
            lr = MISSING_LOG_RATIO
        else:
            lr = min(abs(math.log(c.ratio)), MISSING_LOG_RATIO)
        num += c.weight * lr * lr
        den += c.weight
    return num / den if den else 0.0


def series_over_time(run: Any, targets: TargetSet, series: str,
                     points: int = 40) -> list[tuple[str, float | None]]:
    """The model's value of a series' query at ``points`` dates across the reported days
    (for the plot of model against published figures)."""
    start, end = _reported_days(run)
    members = [(k, t) for k, t in enumerate(targets.targets) if t.series == series]
    if not members:
        return []
    k, t = members[0]
    span = (end - start).days
    n = max(2, min(points, span + 1))
    out = []
    for i in range(n):
        day = start + dt.timedelta(days=round(i * span / (n - 1)))
        probe = t.model_copy(update={"date": day})
        out.append((day.isoformat(), _evaluate(run, targets, probe, k, start)))
    return out


def over_time(run: Any, targets: TargetSet, rows: list[Comparison],
              points: int = 40) -> list[dict[str, Any]]:
    """The plot of model against published figures, as data: for each series of ``rows``
    that counts people or events (shares are left to the table), its model values at
    ``points`` dates (None where the query has nothing yet, as a flow before its start) and
    its published figures with their dates and whether they are held out."""
    out = []
    for series in dict.fromkeys(c.series for c in rows if c.unit != "share"):
        mine = [c for c in rows if c.series == series]
        model = series_over_time(run, targets, series, points)
        out.append({"series": series, "model": model,
                    "published": [(c.date, c.published, c.holdout) for c in mine]})
    return out
