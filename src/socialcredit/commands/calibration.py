"""``socialcredit validate | calibrate | sensitivity``: a run against published figures, a
scenario's assumptions fitted to them, and which assumption moves which output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer


def _fmt(v: float | None, unit: str) -> str:
    """A figure in a few characters: shares as per cent, millions as ``3.08 M``."""
    if v is None:
        return "–"
    if unit == "share":
        return f"{v:.2%}"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f} M"
    return f"{v:,.0f}"


def print_validation(rows: list[Any], console: Any, title: str) -> None:
    """The validation table: target, date, published, model, ratio, within tolerance and
    whether the figure is fitted or held out; it fits in 80 columns, so that no figure is
    cut short in a narrow terminal."""
    from rich import box
    from rich.table import Table

    tolerances = {c.tolerance for c in rows}
    same = len(tolerances) == 1
    within_head = f"±{next(iter(tolerances)):.0%}" if same else "within"
    t = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
              padding=(0, 1), collapse_padding=True)
    for name, justify in (("target", "left"), ("date", "left"), ("published", "right"),
                          ("model", "right"), ("ratio", "right"), (within_head, "left"),
                          ("use", "left")):
        t.add_column(name, justify=justify, no_wrap=name != "target",  # type: ignore[arg-type]
                     overflow="fold")
    for c in rows:
        ratio = f"{c.ratio:.2f}" if c.ratio is not None else "–"
        within = "[green]yes[/green]" if c.within else "[red]no[/red]"
        if not same:
            within += f" (±{c.tolerance:.0%})"
        t.add_row(c.id, c.date, _fmt(c.published, c.unit), _fmt(c.model, c.unit), ratio,
                  within, "held out" if c.holdout else "fitted")
    console.print(t)


def print_spread(rows: list[Any], runs: int, console: Any, title: str) -> None:
    """The validation table of a sweep: per figure, the mean ratio over its runs, the
    standard deviation and range of the ratios, and in how many runs it is within
    tolerance; like the table of one run, it fits in 80 columns."""
    from rich import box
    from rich.table import Table

    t = Table(title=title, header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False,
              padding=(0, 1), collapse_padding=True)
    for name, justify in (("target", "left"), ("published", "right"), ("mean", "right"),
                          ("sd", "right"), ("range", "right"), ("within", "right"),
                          ("use", "left")):
        t.add_column(name, justify=justify, no_wrap=name != "target",  # type: ignore[arg-type]
                     overflow="fold")

    def r(v: float | None) -> str:
        return f"{v:.2f}" if v is not None else "–"

    for c in rows:
        mean = r(c.mean_ratio)
        mean = f"[green]{mean}[/green]" if c.mean_within else f"[red]{mean}[/red]"
        rng = f"{r(c.min_ratio)}–{r(c.max_ratio)}" if c.valued else "–"
        share = f"{c.within}/{runs}"
        share = share if c.within == runs else f"[red]{share}[/red]"
        t.add_row(c.id, _fmt(c.published, c.unit), mean, r(c.sd_ratio), rng, share,
                  "held out" if c.holdout else "fitted")
    console.print(t)


def validate_command(
    run: Path = typer.Argument(..., help="The run directory, or a sweep directory: each of "
                               "its finished runs, and the spread of the ratios across them."),
    targets: str = typer.Argument("china", help="A target file, or a shipped one's name."),
    json_out: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """Compare a run with published figures: published, model, ratio, within tolerance.

    Given a sweep directory (the same scenario over several seeds, say), it compares every
    finished run and shows per figure the mean ratio, its spread and in how many runs it
    is within tolerance. The exit code is 0 whatever the ratios; only bad input (a missing
    run, a bad target file) exits with 2."""
    from rich.console import Console

    from socialcredit.sweep import PLAN_FILE
    from socialcredit.targets import load_targets, loss, validate_run

    ts = load_targets(targets)
    if (run / PLAN_FILE).is_file():
        _validate_sweep(run, ts, json_out)
        return
    rows = validate_run(run, ts)
    if json_out:
        typer.echo(json.dumps({
            "targets": ts.name, "run": str(run),
            "loss_fitted": loss(rows), "loss_held_out": loss(rows, holdout=True),
            "comparisons": [c.to_json() for c in rows]}, indent=2))
        return
    console = Console(highlight=False)
    print_validation(rows, console, f"{run} against the targets {ts.name}")
    fitted = [c for c in rows if not c.holdout]
    held = [c for c in rows if c.holdout]
    console.print(f"within tolerance: {sum(c.within for c in fitted)} of {len(fitted)} fitted, "
                  f"{sum(c.within for c in held)} of {len(held)} held out; loss "
                  f"{loss(rows):.4f} fitted, {loss(rows, holdout=True):.4f} held out")


def _validate_sweep(root: Path, ts: Any, json_out: bool) -> None:
    """``validate SWEEP``: every finished run of a sweep, and the spread across them."""
    from statistics import median

    from rich.console import Console

    from socialcredit.targets import loss, spread, validate_sweep

    runs = validate_sweep(root, ts)
    rows = spread([r.comparisons for r in runs])
    if json_out:
        typer.echo(json.dumps({
            "targets": ts.name, "sweep": str(root),
            "runs": [r.to_json() for r in runs],
            "spread": [c.to_json() for c in rows]}, indent=2))
        return
    n = len(runs)
    console = Console(highlight=False)
    print_spread(rows, n, console, f"{root} ({n} runs) against the targets {ts.name}")
    every = sum(all(c.within for c in r.comparisons) for r in runs)
    for use, held in (("fitted", False), ("held out", True)):
        mine = [c for c in rows if c.holdout == held]
        console.print(f"{use}: {sum(c.within == n for c in mine)} of {len(mine)} within in "
                      f"every run, {sum(c.mean_within for c in mine)} by the mean ratio; "
                      f"median loss {median(loss(r.comparisons, holdout=held) for r in runs):.4f}")
    console.print(f"runs with every figure within tolerance: {every} of {n}")


def calibrate_command(
    scenario: str = typer.Argument(..., help="A shipped scenario's name or a path to one."),
    targets: str = typer.Argument(..., help="A target file, or a shipped one's name."),
    params: Path = typer.Option(..., "--params", help="The parameters to fit, with their bounds (YAML)."),
    trials: int = typer.Option(40, "--trials", help="Trials in all (finished ones are kept and count)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Run trials on Dask: local[:N] or a scheduler address."),
    out: Path | None = typer.Option(None, "--out", help="The calibration directory (default: calibrations/<scenario>-<targets>)."),
    citizens: int | None = typer.Option(None, "--citizens", help="Simulated citizens per trial (default: the params file's, else the scenario's)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of every trial's run (default: the params file's seeds, else the scenario's)."),
) -> None:
    """Fit a scenario's assumptions to the figures not held out, with optuna.

    The study lives in SQLite under --out, so running the same command again resumes it;
    the fitted values are written as a scenario overlay (--out/overlay.yaml) that `run`
    accepts."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from socialcredit.calibration import calibrate
    from socialcredit.calibration.calibrate import prepare

    # bad input is refused before the progress bar opens, so the sentence stands alone
    if trials <= 0:
        from socialcredit.errors import UserError

        raise UserError(f"--trials must be a positive number, not {trials}")
    prepare(scenario, targets, params, citizens=citizens, days=None, seed=seed)
    err = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("trials"), TextColumn("{task.fields[best]}"), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("calibrating", total=trials, best="")

        def progress(done: int, total: int, best: float | None) -> None:
            bar.update(task, completed=done, total=total,
                       best=f"best loss {best:.4f}" if best is not None else "")

        result = calibrate(scenario, targets, params, trials=trials, scheduler=scheduler,
                           out=out, citizens=citizens, seed=seed, progress=progress)
    console = Console(highlight=False)
    from rich.table import Table

    t = Table(title=f"calibration → {result.path}", header_style="bold")
    t.add_column("parameter")
    t.add_column("fitted", justify="right")
    t.add_column("bounds", justify="right")
    for p in result.parameters:
        t.add_row(p["path"], f"{p['value']:.6g}", f"{p['low']:g} … {p['high']:g}")
    console.print(t)
    console.print(f"trials: {result.finished} finished ({result.new} now, {result.failed} failed); "
                  f"best loss {result.best_loss:.4f} (trial {result.best_trial}); the overlay is "
                  f"{result.overlay}")
    if result.failed and result.finished == 0:
        raise SystemExit(1)


def sensitivity_command(
    scenario: str = typer.Argument(..., help="A shipped scenario's name or a path to one."),
    params: Path = typer.Option(..., "--params", help="The parameters to vary, with their bounds (YAML)."),
    method: str = typer.Option("morris", "--method", help="morris or sobol."),
    targets: str = typer.Option("china", "--targets", help="The outputs: the figures of this target file."),
    samples: int = typer.Option(4, "--samples", help="Morris trajectories, or Sobol's base sample (a power of 2)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Run on Dask: local[:N] or a scheduler address."),
    out: Path | None = typer.Option(None, "--out", help="The sensitivity directory (default: sensitivity/<scenario>-<method>)."),
    citizens: int | None = typer.Option(None, "--citizens", help="Simulated citizens per run."),
) -> None:
    """Which assumption moves which output most (SALib's Morris or Sobol method)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from socialcredit.calibration import sensitivity
    from socialcredit.calibration.calibrate import prepare

    if method not in ("morris", "sobol"):
        from socialcredit.errors import UserError

        raise UserError(f"--method must be morris or sobol, not {method!r}")
    prepare(scenario, targets, params, citizens=citizens, days=None, seed=None)
    err = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("runs"), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task(f"sensitivity ({method})", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = sensitivity(scenario, params, method=method, targets=targets, samples=samples,
                             scheduler=scheduler, out=out, citizens=citizens, progress=progress)
    console = Console(highlight=False)
    t = Table(title=f"sensitivity ({result.method}) → {result.path}", header_style="bold")
    t.add_column("output")
    t.add_column("parameter")
    t.add_column(result.index_names[0], justify="right")
    t.add_column(result.index_names[1], justify="right")
    for row in result.rows:
        t.add_row(row["output"], row["parameter"], f"{row['index']:.3g}", f"{row['spread']:.3g}")
    console.print(t)
    for output, why in result.skipped.items():
        console.print(f"left out: {output} ({why})")
    console.print(f"{result.runs} runs; the table is {result.path / 'sensitivity.json'}")
