"""One evaluation of a scenario at given parameter values: a run, compared with the targets.

:func:`run_trial` is what a Dask worker (or this process) executes for calibration and
sensitivity alike. It takes a plain mapping (picklable, no open objects), simulates into a
temporary run directory, compares the run with the targets and returns the comparisons; the
run directory itself is removed (only the figures are kept), unless ``keep`` says otherwise.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from socialcredit.errors import UserError

__all__ = ["trial_task", "run_trial", "run_tasks"]


def trial_task(base: dict[str, Any], scenario_path: str | None, values: dict[str, float], *,
               name: str, work: Path, targets: dict[str, Any], targets_path: str | None,
               citizens: int | None, days: int | None, seeds: list[int] | None,
               keep: bool = False) -> dict[str, Any]:
    """The mapping :func:`run_trial` executes: one run per seed (``None``: the scenario's)."""
    return {"base": base, "scenario_path": scenario_path, "values": values, "name": name,
            "out": str(work / name), "targets": targets, "targets_path": targets_path,
            "citizens": citizens, "days": days, "seeds": list(seeds) if seeds else [None],
            "keep": keep}


def mean_comparisons(by_seed: list[list[Any]]) -> list[Any]:
    """The validation table of the mean of several runs' figures (one table per run, in the
    same order): a figure's model value is the mean of the runs' values (none if a run has
    none), its ratio and tolerance test follow from that mean."""
    import dataclasses

    from socialcredit.targets.compare import within_tolerance

    out = []
    for k, c in enumerate(by_seed[0]):
        values = [rows[k].model for rows in by_seed]
        model = None if any(v is None for v in values) else sum(values) / len(values)
        ratio = model / c.published if model is not None else None
        out.append(dataclasses.replace(c, model=model, ratio=ratio,
                                       within=within_tolerance(ratio, c.tolerance)))
    return out


def scenario_with(base: dict[str, Any], values: dict[str, float]) -> dict[str, Any]:
    """A copy of the scenario mapping ``base`` with ``values`` set at their paths."""
    from socialcredit.scenario import set_path

    data = json.loads(json.dumps(base))
    for key, value in values.items():
        set_path(data, key, value)
    return data


def run_trial(task: dict[str, Any]) -> dict[str, Any]:
    """Simulate the task's scenario and compare it with its targets (safe to execute again:
    a leftover run directory of the same name is replaced)."""
    from socialcredit.distributed import numba_lock
    from socialcredit.run import simulate
    from socialcredit.scenario import Scenario
    from socialcredit.store import partial_path
    from socialcredit.targets import TargetSet, loss, validate_run

    ts0 = time.perf_counter()
    seeds = task["seeds"]
    sc = Scenario.from_dict(scenario_with(task["base"], task["values"]),
                            path=task["scenario_path"])
    targets = TargetSet.model_validate(task["targets"])
    if task["targets_path"]:
        targets._path = Path(task["targets_path"])
    by_seed = []
    for k, seed in enumerate(seeds):
        # one run directory per seed: the first is the task's own (kept with ``keep``)
        out = Path(task["out"]) if k == 0 else Path(f"{task['out']}-seed{seed}")
        for leftover in (out, partial_path(out)):
            if leftover.exists():
                shutil.rmtree(leftover)
        try:
            with numba_lock():
                simulate(sc, out=out, citizens=task["citizens"], days=task["days"],
                         seed=seed, checkpoint_every=0)
            by_seed.append(validate_run(out, targets))
        finally:
            if not task["keep"]:
                for leftover in (out, partial_path(out)):
                    with contextlib.suppress(FileNotFoundError):
                        shutil.rmtree(leftover)
    rows = by_seed[0] if len(by_seed) == 1 else mean_comparisons(by_seed)
    # held-out figures after the trial's last day are not computed, and not counted
    last = (sc.start + dt.timedelta(days=task["days"] - 1)).isoformat() if task["days"] else None
    reached = [c for c in rows if not (c.holdout and c.model is None and last is not None
                                       and c.date > last)]
    result = {"name": task["name"], "values": task["values"],
              "loss": loss(rows), "loss_held_out": loss(reached, holdout=True),
              "comparisons": [c.to_json() for c in rows],
              "seconds": round(time.perf_counter() - ts0, 3), "pid": os.getpid()}
    if len(by_seed) > 1:
        result["seeds"] = list(seeds)
        result["comparisons_by_seed"] = [[c.to_json() for c in r] for r in by_seed]
    return result


def run_tasks(tasks: Iterable[dict[str, Any]], *, client: Any = None, parallel: int = 1,
              done: Callable[[dict[str, Any], dict[str, Any] | None, str | None], None]) -> None:
    """Execute tasks in this process (``client`` None) or on Dask, at most ``parallel`` at a
    time, calling ``done(task, result, error)`` as each finishes. ``tasks`` may be a
    generator: the next task is taken only when there is room, so it can depend on the
    results so far (optuna's ask and tell)."""
    from socialcredit.sweep import _sentence

    it = iter(tasks)
    if client is None:
        for task in it:
            try:
                result = run_trial(task)
            except UserError:
                raise
            except Exception as err:  # noqa: BLE001 - a failed trial is reported, not raised
                done(task, None, _sentence(err))
            else:
                done(task, result, None)
        return
    from distributed import as_completed

    pending: dict[str, dict[str, Any]] = {}
    ac = as_completed()
    for task in it:
        fut = client.submit(run_trial, task, key=f"socialcredit-trial-{task['name']}-"
                            f"{os.getpid()}-{time.monotonic_ns()}", pure=False)
        pending[fut.key] = task
        ac.add(fut)
        if len(pending) >= parallel:
            break
    for fut in ac:
        task = pending.pop(fut.key)
        try:
            result = fut.result()
        except Exception as err:  # noqa: BLE001 - a failed trial is reported, not raised
            done(task, None, _sentence(err))
        else:
            done(task, result, None)
        fut.release()
        nxt = next(it, None)
        if nxt is not None:
            f2 = client.submit(run_trial, nxt, key=f"socialcredit-trial-{nxt['name']}-"
                               f"{os.getpid()}-{time.monotonic_ns()}", pure=False)
            pending[f2.key] = nxt
            ac.add(f2)
