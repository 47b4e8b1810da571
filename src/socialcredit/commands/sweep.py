"""``socialcredit sweep``: run every point of a sweep file, each in its own run directory."""

from __future__ import annotations

from pathlib import Path

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
    console = Console()
    t = Table(title=f"sweep {plan.name} → {result.path}", header_style="bold")
    t.add_column("runs")
    t.add_column("count", justify="right")
    t.add_row("planned", f"{result.runs:,}")
    t.add_row("finished before", f"{len(result.skipped):,}")
    t.add_row("finished now", f"{len(result.finished):,}")
    t.add_row("failed", f"{len(result.failed):,}")
    console.print(t)
    for name, reason in sorted(result.failed.items()):
        err.print(f"[red]failed[/red] {name}: {reason}", markup=True, highlight=False)
    if result.failed:
        err.print("run the same command again to retry the failed runs; the finished ones are kept")
        raise SystemExit(1)  # not typer.Exit: the CLI runs Typer with standalone_mode=False
    console.print(f"[green]finished[/green] in {result.seconds:.1f} s; the summary is "
                  f"{result.path / 'sweep.duckdb'} (view summary)")
