"""``socialcredit sweep``: run every point of a sweep file, each in its own run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def sweep_command(
    file: str = typer.Argument(..., help="A sweep file (YAML), or a shipped sweep's name."),
    out: Path | None = typer.Option(None, "--out", help="The sweep directory (default: sweeps/<name>)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Run on Dask: local[:N] or a scheduler address."),
) -> None:
    """Run a sweep: a base scenario with parameters varied; running it again retries what failed."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from socialcredit.sweep import load_sweep, run_sweep

    plan = load_sweep(file)
    err = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("runs"), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task(f"sweep {plan.name}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = run_sweep(plan, out=out, scheduler=scheduler, progress=progress)
    from socialcredit.commands import output_console

    console = output_console()
    t = Table(title=f"sweep {plan.name} → {result.path}", header_style="bold")
    t.add_column("runs")
    t.add_column("count", justify="right")
    t.add_row("planned", f"{result.runs:,}")
    t.add_row("finished before", f"{len(result.skipped):,}")
    t.add_row("finished now", f"{len(result.finished):,}")
    t.add_row("failed", f"{len(result.failed):,}")
    console.print(t)
    if result.results is not None and result.results.num_rows:
        console.print(results_table(result.results, result.parameters, plan.name))
    for name, reason in sorted(result.failed.items()):
        err.print(f"[red]failed[/red] {name}: {reason}", markup=True, highlight=False)
    if result.failed:
        err.print("run the same command again to retry the failed runs; the finished ones are kept")
        raise SystemExit(1)  # not typer.Exit: the CLI runs Typer with standalone_mode=False
    console.print(f"[green]finished[/green] in {result.seconds:.1f} s; the results are in "
                  f"{result.path / 'results.csv'} and {result.path / 'sweep.duckdb'} "
                  "(view summary)")


#: Headline figures of the results table printed at the end of a sweep (all are in the file).
FIGURES = (("records", "records"), ("false_share", "false"), ("decisions", "decisions"),
           ("denied", "denied"), ("wrongful", "wrongful"), ("wrongful_share", "share wrongful"))


def results_table(results: Any, parameters: list[str], name: str) -> Any:
    """One row per run: its name, replicate, seed and varied parameters, then the headline
    figures (shares as percentages)."""
    from rich.table import Table

    t = Table(title=f"results of sweep {name} (one row per run)", header_style="bold")
    cols = ["run", "replicate", "seed", *[p for p in parameters if p in results.column_names]]
    figures = [(key, label) for key, label in FIGURES if key in results.column_names]
    for c in cols:
        t.add_column(c, justify="left" if c == "run" else "right")
    for _, label in figures:
        t.add_column(label, justify="right")
    for row in results.to_pylist():
        cells = [str(row[c]) for c in cols]
        for key, _ in figures:
            v = row[key]
            cells.append("–" if v is None else f"{v:.1%}" if key.endswith("_share")
                         else f"{int(v):,}")
        t.add_row(*cells)
    return t
