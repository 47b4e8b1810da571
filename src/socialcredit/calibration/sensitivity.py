"""``sensitivity``: which assumption moves which output most, with SALib.

The outputs are the model values of a target file's figures. ``morris`` (elementary effects:
``mu_star``, the mean absolute effect, and ``sigma``, its spread, a sign of interactions or
non-linearity) needs ``samples × (parameters + 1)`` runs; ``sobol`` (first-order ``S1`` and
total ``ST`` indices) needs ``samples × (parameters + 2)`` runs, ``samples`` a power of 2.
Outputs are compared on a log scale (log of the model value), so an effect reads as a
relative change whatever the figure's unit. Every point runs with the parameter file's seeds
(default the scenario's seed); with several, its outputs are the mean of its runs' figures.

Written to OUT: ``samples.json`` (the design and every run's figures), ``sensitivity.json``
(the table) and ``sensitivity.html`` (the table and a bar chart per output). An output that
some runs do not compute (its date after their last day) or count as zero (too few events
at the runs' size) has no logarithm to compare and is left out of the table, with why
(``skipped``).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socialcredit.errors import UserError

__all__ = ["SensitivityResult", "sensitivity"]

METHODS = ("morris", "sobol")


@dataclass
class SensitivityResult:
    path: Path
    method: str
    runs: int
    index_names: tuple[str, str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: outputs left out of the table, with why (:func:`why_left_out`)
    skipped: dict[str, str] = field(default_factory=dict)


def why_left_out(values: list[float | None], citizens: int, last_day: str) -> str | None:
    """Why an output's runs cannot be compared on a log scale, or None when they can.

    An output the runs do not reach (its date after the runs' last day) has no value; one
    that is zero in some runs (too few events at this size) has no logarithm there, and
    flooring it would make its elementary effects the floor's, not the model's."""
    if any(v is None for v in values):
        return f"not computed: the runs end on {last_day}, before its date"
    zero = sum(1 for v in values if v is not None and v <= 0)
    if zero:
        return (f"zero in {zero} of {len(values)} runs: too few events at {citizens:,} "
                "citizens for a log scale")
    return None


def _design(method: str, problem: dict[str, Any], samples: int, seed: int) -> Any:
    if method == "morris":
        from SALib.sample import morris as morris_sample

        return morris_sample.sample(problem, N=samples, num_levels=4, seed=seed)
    from SALib.sample import sobol as sobol_sample

    if samples < 1 or samples & (samples - 1):
        raise UserError(f"sobol needs --samples to be a power of 2, not {samples}")
    return sobol_sample.sample(problem, samples, calc_second_order=False, seed=seed)


def _analyse(method: str, problem: dict[str, Any], X: Any, Y: Any) -> list[tuple[float, float]]:
    if method == "morris":
        from SALib.analyze import morris as morris_analyze

        res = morris_analyze.analyze(problem, X, Y, num_levels=4)
        return [(float(m), float(s)) for m, s in zip(res["mu_star"], res["sigma"], strict=True)]
    from SALib.analyze import sobol as sobol_analyze

    res = sobol_analyze.analyze(problem, Y, calc_second_order=False)
    return [(float(a), float(b)) for a, b in zip(res["S1"], res["ST"], strict=True)]


def sensitivity(scenario: str | Path, params: str | Path, *, method: str = "morris",
                targets: str | Path = "china", samples: int = 4, scheduler: str | None = None,
                out: str | Path | None = None, citizens: int | None = None,
                days: int | None = None, client: Any = None,
                progress: Callable[[int, int], None] | None = None) -> SensitivityResult:
    """Run the design of ``method`` over the parameters and return (and write) the table."""
    import contextlib

    import numpy as np

    from socialcredit.calibration.calibrate import _write_json, prepare
    from socialcredit.calibration.trials import run_tasks, trial_task
    from socialcredit.distributed import connect, parse_scheduler

    if method not in METHODS:
        raise UserError(f"--method must be morris or sobol, not {method!r}")
    if samples <= 0:
        raise UserError(f"--samples must be a positive number, not {samples}")
    plan = prepare(scenario, targets, params, citizens=citizens, days=days, seed=None)
    names = [p["path"] for p in plan["parameters"]]
    logs = [bool(p["log"]) for p in plan["parameters"]]
    # log-scaled parameters are sampled uniformly in their logarithm
    bounds = [[math.log(p["low"]), math.log(p["high"])] if p["log"] else [p["low"], p["high"]]
              for p in plan["parameters"]]
    problem = {"num_vars": len(names), "names": names, "bounds": bounds}
    X = _design(method, problem, samples, plan["seed"])
    default = Path("sensitivity") / f"{plan['scenario_name']}-{method}"
    root = (Path(out) if out is not None else default).expanduser().absolute()
    if root.exists() and any(root.iterdir()):
        raise UserError(f"{root} already exists and is not empty; choose another --out")
    spec = parse_scheduler(scheduler) if scheduler and client is None else None
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}

    def values_of(row: Any) -> dict[str, float]:
        return {n: float(math.exp(v) if lg else v) for n, v, lg in zip(names, row, logs,
                                                                       strict=True)}

    with contextlib.ExitStack() as stack:
        if spec is not None:
            client = stack.enter_context(connect(spec, timeout=None))
        root.mkdir(parents=True, exist_ok=True)
        work = root / "work"
        tasks = [trial_task(plan["base"], plan["scenario_path"], values_of(row),
                            name=f"{i:05d}", work=work, targets=plan["targets_data"],
                            targets_path=plan["targets_path"], citizens=plan["citizens"],
                            days=plan["days"], seeds=plan["seeds"]) for i, row in enumerate(X)]
        parallel = 1
        if client is not None:
            from socialcredit.distributed import worker_addresses

            parallel = max(1, len(worker_addresses(client)))

        def done(task: dict[str, Any], result: dict[str, Any] | None, error: str | None) -> None:
            if result is None:
                errors[task["name"]] = error or "failed"
            else:
                results[task["name"]] = result
            if progress:
                progress(len(results) + len(errors), len(tasks))

        run_tasks(tasks, client=client, parallel=parallel, done=done)
        with contextlib.suppress(OSError):
            work.rmdir()
    if errors:
        name, why = sorted(errors.items())[0]
        raise RuntimeError(f"{len(errors)} of {len(tasks)} runs failed (run {name}: {why})")

    outputs = [c["id"] for c in results[tasks[0]["name"]]["comparisons"]]
    index_names = ("mu_star", "sigma") if method == "morris" else ("S1", "ST")
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    last_day = (dt.date.fromisoformat(str(plan["base"]["start"]))
                + dt.timedelta(days=int(plan["days"]) - 1)).isoformat()
    for k, output in enumerate(outputs):
        values = [results[t["name"]]["comparisons"][k]["model"] for t in tasks]
        reason = why_left_out(values, int(plan["citizens"]), last_day)
        if reason is not None:
            skipped[output] = reason
            continue
        Y = np.array([_log(v) for v in values])
        if np.ptp(Y) == 0:
            for n in names:  # the output does not respond: every index is 0
                rows.append({"output": output, "parameter": n, "index": 0.0, "spread": 0.0})
            continue
        for n, (a, b) in zip(names, _analyse(method, problem, X, Y), strict=True):
            rows.append({"output": output, "parameter": n, "index": a, "spread": b})
    _write_json(root / "samples.json", {"method": method, "parameters": plan["parameters"],
                                        "design": X.tolist(),
                                        "runs": [results[t["name"]] for t in tasks]})
    _write_json(root / "sensitivity.json", {"method": method, "index_names": index_names,
                                            "targets": plan["targets"], "runs": len(tasks),
                                            "citizens": plan["citizens"], "days": plan["days"],
                                            "rows": rows, "skipped": skipped})
    result = SensitivityResult(path=root, method=method, runs=len(tasks),
                               index_names=index_names, rows=rows, skipped=skipped)
    (root / "sensitivity.html").write_text(sensitivity_html(result), encoding="utf-8")
    return result


def _log(value: float | None) -> float:
    if value is None or value <= 0:
        return float("nan") if value is None else math.log(1e-9)
    return math.log(value)


def sensitivity_html(result: SensitivityResult) -> str:
    """The sensitivity table and a bar chart per output, as one HTML document."""
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs
    from plotly.subplots import make_subplots

    from socialcredit.analysis.report import _table

    outputs = list(dict.fromkeys(r["output"] for r in result.rows))
    params = list(dict.fromkeys(r["parameter"] for r in result.rows))
    if not outputs:
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>sensitivity ({result.method})</title></head><body>"
                f"<h1>Sensitivity ({result.method}, {result.runs} runs)</h1>"
                "<p>No output could be compared.</p>"
                + _skipped_html(result.skipped) + "</body></html>\n")
    fig = make_subplots(rows=len(outputs), cols=1, subplot_titles=outputs,
                        vertical_spacing=min(0.05, 0.5 / max(1, len(outputs))))
    for i, output in enumerate(outputs, start=1):
        mine = [r for r in result.rows if r["output"] == output]
        fig.add_trace(go.Bar(x=[r["index"] for r in mine], y=[r["parameter"] for r in mine],
                             orientation="h", name=output, showlegend=False,
                             error_x={"type": "data", "array": [r["spread"] for r in mine]}
                             if result.method == "morris" else None), row=i, col=1)
    fig.update_layout(height=max(300, 60 + len(outputs) * (40 + 22 * len(params))),
                      template="plotly_white", margin={"l": 260, "r": 20, "t": 40, "b": 40})
    a, b = result.index_names
    table = _table(["output", "parameter", a, b],
                   [(r["output"], r["parameter"], f"{r['index']:.3g}", f"{r['spread']:.3g}")
                    for r in result.rows], numeric={2, 3})
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>sensitivity ({result.method})</title>"
            f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
            f"<h1>Sensitivity ({result.method}, {result.runs} runs)</h1>"
            f"<p>Effects on the logarithm of each output. {a}: "
            + ("mean absolute elementary effect; sigma: its spread (interactions)."
               if result.method == "morris" else "first-order index; ST: total index.")
            + "</p>"
            + fig.to_html(full_html=False, include_plotlyjs=False)
            + table + _skipped_html(result.skipped) + "</body></html>\n")


def _skipped_html(skipped: dict[str, str]) -> str:
    import html

    if not skipped:
        return ""
    items = "".join(f"<li>{html.escape(o)}: {html.escape(why)}</li>"
                    for o, why in skipped.items())
    return f"<h2>Outputs left out</h2><ul>{items}</ul>"


def load_result(path: str | Path) -> dict[str, Any]:
    """A sensitivity directory's table (``sensitivity.json``)."""
    p = Path(path) / "sensitivity.json"
    if not p.is_file():
        raise UserError(f"{path} is not a sensitivity directory: it has no sensitivity.json")
    value: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
    return value
