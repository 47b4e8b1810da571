"""``calibrate``: fit a scenario's assumptions to published figures with optuna.

A calibration directory::

    OUT/
    ├── calibration.json    the plan: scenario, targets, parameters, citizens, days, seeds
    ├── study.db            optuna's study (SQLite): every trial, finished or not
    ├── trials/NNNN.json    each finished trial: its values, loss and validation table
    ├── best.json           the best trial so far, with its validation table
    └── overlay.yaml        the best values as a scenario overlay with provenance

Each trial is a run of the scenario with the trial's values, compared with the targets that
are not held out (:func:`socialcredit.targets.loss`, the weighted mean squared log ratio);
held-out figures are computed and written too, never fitted. Every trial runs with the same
seeds (the parameter file's ``seeds``, ``--seed``, or the scenario's), so trials differ by
their values only (DESIGN 2.9); with several seeds a trial is judged on the mean of its
runs' figures. A new study's first trial is the scenario's own values. Trials go through the Dask
scheduler the sweeps use (``--scheduler local[:N]`` or an address), as many at a time as
there are workers, asked of and told to optuna's sampler as they finish. Running the same
command again resumes: finished trials are kept, a trial cut off midway is marked failed
and run again under a new number.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socialcredit.errors import UserError

__all__ = ["CalibrationResult", "calibrate", "write_overlay"]

log = logging.getLogger(__name__)

PLAN_FILE = "calibration.json"
STUDY_FILE = "study.db"
TRIALS_DIR = "trials"
OVERLAY_FILE = "overlay.yaml"
BEST_FILE = "best.json"
STUDY_NAME = "calibration"
_SAME_PLAN = ("scenario", "scenario_digest", "targets", "targets_digest", "parameters",
              "citizens", "days", "seeds")

ProgressFn = Callable[[int, int, "float | None"], None]


@dataclass
class CalibrationResult:
    path: Path
    overlay: Path
    finished: int
    new: int
    failed: int
    best_trial: int
    best_loss: float
    parameters: list[dict[str, Any]] = field(default_factory=list)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def prepare(scenario: str | Path, targets: str | Path, params: str | Path, *,
            citizens: int | None, days: int | None, seed: int | None) -> dict[str, Any]:
    """Load and check the scenario, targets and parameters; return everything a study needs
    (nothing is written)."""
    from socialcredit.calibration.params import load_params
    from socialcredit.catalogue import load_catalogue
    from socialcredit.scenario import Scenario, get_path, validate_against_catalogue
    from socialcredit.targets import load_targets

    sc = Scenario.load(scenario)
    validate_against_catalogue(sc, load_catalogue())
    ts = load_targets(targets)
    pf = load_params(params)
    pf.check_against(sc)
    pf.check_targets(ts)
    if pf.fit:  # fit only these: the other fitted targets weigh nothing in the loss
        keep = set(pf.fit)
        where = ts.path
        ts = ts.model_copy(update={"targets": [
            t if t.holdout or t.id in keep else t.model_copy(update={"weight": 0.0})
            for t in ts.targets]})
        ts._path = where
    if citizens is not None and citizens <= 0:
        raise UserError(f"--citizens must be a positive number, not {citizens}")
    n_citizens = citizens if citizens is not None else pf.citizens
    if days is None:
        days = pf.days
    if days is None:
        # through the last date of the figures the study fits, when the scenario reaches it:
        # a day after it changes none of them (held-out figures after it are not computed)
        weighed = [t.date for t in ts.targets if not t.holdout and t.weight > 0]
        last = max(weighed) if weighed else ts.last_date
        through = (last - sc.start).days + 1
        days = min(sc.days, through) if through > 0 else sc.days
    if not ts.fitted:
        raise UserError("every target is held out, so there is nothing to fit", path=ts.path)
    if seed is not None:
        seeds = [int(seed)]
    elif pf.seeds:
        seeds = [int(x) for x in pf.seeds]
    else:
        seeds = [int(sc.seed)]
    shipped = str(scenario) in Scenario.shipped()
    ref = str(scenario) if shipped else str(Path(str(scenario)).expanduser().resolve())
    base = sc.to_dict()
    return {
        "scenario": ref, "scenario_name": sc.name, "scenario_path":
            str(sc.path.resolve()) if sc.path is not None else None,
        "base": base, "scenario_digest": _digest(base),
        "targets": ts.name, "targets_path": str(ts.path.resolve()) if ts.path else None,
        "targets_data": ts.to_dict(), "targets_digest": _digest(ts.to_dict()),
        "params_path": str(pf.path.resolve()) if pf.path else None,
        "parameters": [p.model_dump() for p in pf.parameters],
        "start": {p.path: float(get_path(base, p.path)) for p in pf.parameters},
        "citizens": n_citizens, "days": days,
        # the sampler's seed is the first run seed; --seed runs every trial with that seed
        "seed": seeds[0],
        "seeds": seeds,
        "fitted": [t.id for t in ts.fitted if t.weight > 0],
        "held_out": [t.id for t in ts.held_out],
    }


def _check_dir(root: Path, plan: dict[str, Any]) -> None:
    from socialcredit.sweep import previous_plan

    was = previous_plan(root, PLAN_FILE, "calibration")
    if was is None:
        return
    if "seeds" not in was and "seed" in was:  # a plan written before trials had seeds
        was["seeds"] = [was["seed"]]
    now = json.loads(json.dumps({k: plan[k] for k in _SAME_PLAN}, default=str))
    differs = [k for k in _SAME_PLAN if was.get(k) != now.get(k)]
    if differs:
        raise UserError(f"{root} holds another calibration (its {differs[0].replace('_', ' ')} "
                        "differs); choose another --out")


def calibrate(scenario: str | Path, targets: str | Path, params: str | Path, *,
              trials: int = 40, scheduler: str | None = None, out: str | Path | None = None,
              citizens: int | None = None, days: int | None = None, seed: int | None = None,
              client: Any = None, progress: ProgressFn | None = None,
              connect_timeout: float | None = None) -> CalibrationResult:
    """Run (or resume) a calibration until ``trials`` trials have finished; write the
    overlay of the best one and return what happened."""
    import optuna

    from socialcredit.calibration.trials import run_tasks, trial_task
    from socialcredit.distributed import connect, parse_scheduler

    if trials <= 0:
        raise UserError(f"--trials must be a positive number, not {trials}")
    plan = prepare(scenario, targets, params, citizens=citizens, days=days, seed=seed)
    default = Path("calibrations") / f"{plan['scenario_name']}-{plan['targets']}"
    root = (Path(out) if out is not None else default).expanduser().absolute()
    _check_dir(root, plan)
    spec = parse_scheduler(scheduler) if scheduler and client is None else None

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with contextlib.ExitStack() as stack:
        if spec is not None:
            client = stack.enter_context(connect(spec, timeout=connect_timeout))
        # Only now, with every input checked and the scheduler reached, is anything written.
        (root / TRIALS_DIR).mkdir(parents=True, exist_ok=True)
        _write_json(root / PLAN_FILE, {k: v for k, v in plan.items()
                                       if k not in ("base", "targets_data")} | {
            "kind": "socialcredit-calibration", "trials": trials})
        storage = optuna.storages.RDBStorage(
            f"sqlite:///{root / STUDY_FILE}",
            engine_kwargs={"connect_args": {"timeout": 60}})
        sampler = optuna.samplers.TPESampler(seed=plan["seed"], n_startup_trials=min(10, trials))
        study = optuna.create_study(study_name=STUDY_NAME, storage=storage, sampler=sampler,
                                    direction="minimize", load_if_exists=True)
        # a trial left running by a process that was cut off is over: mark it failed
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        complete = [t for t in study.get_trials(deepcopy=False)
                    if t.state == optuna.trial.TrialState.COMPLETE]
        if not study.get_trials(deepcopy=False):
            # a new study's first trial is the scenario's own values (where within the
            # bounds): the fit starts from them and can only improve on them
            start = {p["path"]: plan["start"][p["path"]] for p in plan["parameters"]
                     if p["low"] <= plan["start"][p["path"]] <= p["high"]}
            if len(start) == len(plan["parameters"]):
                study.enqueue_trial(start)
        already = len(complete)
        todo = max(0, trials - already)
        new = failed = 0
        parallel = 1
        if client is not None:
            from socialcredit.distributed import worker_addresses

            parallel = max(1, len(worker_addresses(client)))
        distributions: dict[str, Any] = {
            p["path"]: optuna.distributions.FloatDistribution(p["low"], p["high"], log=p["log"])
            for p in plan["parameters"]}
        work = root / "work"
        asked: dict[str, Any] = {}

        def best_loss() -> float | None:
            try:
                return float(study.best_value)
            except ValueError:
                return None

        if progress:
            progress(already, trials, best_loss())

        def tasks() -> Any:
            for _ in range(todo):
                trial = study.ask(distributions)
                name = f"{trial.number:04d}"
                asked[name] = trial
                yield trial_task(plan["base"], plan["scenario_path"], dict(trial.params),
                                 name=name, work=work, targets=plan["targets_data"],
                                 targets_path=plan["targets_path"], citizens=plan["citizens"],
                                 days=plan["days"], seeds=plan["seeds"])

        def done(task: dict[str, Any], result: dict[str, Any] | None, error: str | None) -> None:
            nonlocal new, failed
            trial = asked.pop(task["name"])
            if result is None:
                failed += 1
                log.warning("calibration trial %s failed: %s", task["name"], error)
                trial.set_user_attr("error", error)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                trial.set_user_attr("loss_held_out", result["loss_held_out"])
                trial.set_user_attr("seconds", result["seconds"])
                study.tell(trial, result["loss"])
                _write_json(root / TRIALS_DIR / f"{task['name']}.json",
                            {"trial": trial.number, **result})
                new += 1
            if progress:
                progress(already + new, trials, best_loss())

        run_tasks(tasks(), client=client, parallel=parallel, done=done)
        with contextlib.suppress(FileNotFoundError, OSError):
            work.rmdir()

    finished = already + new
    if finished == 0:
        raise UserError("no trial finished; see the log for why") if failed == 0 else \
            RuntimeError(f"all {failed} trials failed")
    best = study.best_trial
    best_file = root / TRIALS_DIR / f"{best.number:04d}.json"
    best_result = json.loads(best_file.read_text(encoding="utf-8")) if best_file.is_file() else {}
    _write_json(root / BEST_FILE, best_result)
    overlay = write_overlay(root, plan, best.number, float(best.value or 0.0), dict(best.params),
                            best_result, finished)
    parameters = [{**p, "value": best.params[p["path"]]} for p in plan["parameters"]]
    return CalibrationResult(path=root, overlay=overlay, finished=finished, new=new,
                             failed=failed, best_trial=best.number,
                             best_loss=float(best.value or 0.0), parameters=parameters)


def _seeds_words(seeds: list[int]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return "the mean of seeds " + ", ".join(str(x) for x in seeds)


def write_overlay(root: Path, plan: dict[str, Any], trial: int, loss: float,
                  values: dict[str, float], result: dict[str, Any], finished: int) -> Path:
    """``overlay.yaml``: the fitted values on the calibrated scenario, with provenance and,
    for each value, a reference saying it was calibrated and against what."""
    from ruamel.yaml import YAML

    today = dt.datetime.now(dt.UTC).date().isoformat()
    fitted = ", ".join(plan["fitted"])
    references = {
        p["path"]: (f"calibrated by socialcredit calibrate on {today} against the targets "
                    f"{plan['targets']} ({fitted}); bounds {p['low']:g}..{p['high']:g}; best of "
                    f"{finished} trials (trial {trial}, loss {loss:.4g}) at "
                    f"{plan['citizens'] or 'the scenario'} citizens, "
                    f"{_seeds_words(plan['seeds'])}")
        for p in plan["parameters"]}
    doc = {
        "overlay": plan["scenario"],
        "description": f"{plan['scenario_name']} with the values calibrated against the targets "
                       f"{plan['targets']}",
        "set": {k: float(values[k]) for k in references},
        "provenance": {
            "method": "optuna TPE sampler, minimising the weighted mean squared log ratio of "
                      "model to published figures not held out",
            "date": today,
            "targets": plan["targets"],
            "targets_file": plan["targets_path"],
            "params_file": plan["params_path"],
            "fitted": plan["fitted"],
            "held_out": plan["held_out"],
            "trials": finished,
            "best_trial": trial,
            "loss": loss,
            "loss_held_out": result.get("loss_held_out"),
            "citizens": plan["citizens"],
            "days": plan["days"],
            "seed": plan["seed"],
            "seeds": plan["seeds"],
            "references": references,
        },
    }
    target = root / OVERLAY_FILE
    tmp = target.with_name(f".{target.name}.tmp")
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    with tmp.open("w", encoding="utf-8") as f:
        f.write("# Written by socialcredit calibrate; run it with `socialcredit run THIS_FILE`.\n")
        yaml.dump(doc, f)
    os.replace(tmp, target)
    return target
