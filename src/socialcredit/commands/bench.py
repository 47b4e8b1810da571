"""``socialcredit bench``: how fast this machine simulates (the full suite is ``make bench``)."""

from __future__ import annotations

import typer


def bench_command(
    scenario: str = typer.Argument("default", help="A shipped scenario's name or a path."),
    citizens: int = typer.Option(1_000_000, "--citizens", help="Citizens to simulate."),
    days: int = typer.Option(365, "--days", help="Days to simulate (burn-in excluded)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads (default: all)."),
    backend: str = typer.Option("cpu", "--backend", help="cpu, gpu or auto."),
) -> None:
    """Simulate a scenario in memory (aggregates only) and report citizen-days per second."""
    import time

    from rich.table import Table

    from socialcredit.commands import output_console
    from socialcredit.engine import build_model, run_memory
    from socialcredit.run import check_backend_here, check_options, load_scenario

    check_options(citizens, days, threads, backend)
    check_backend_here(backend)
    console = output_console()
    t0 = time.perf_counter()
    model = build_model(load_scenario(scenario), citizens=citizens, days=days)
    t1 = time.perf_counter()
    run_memory(model, threads=threads, backend=backend, until=min(2, model.total_days))
    t2 = time.perf_counter()
    run_memory(model, threads=threads, backend=backend)
    t3 = time.perf_counter()
    sim = t3 - t2
    total = model.total_days
    table = Table(title=f"socialcredit bench: {scenario}", header_style="bold")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("citizens / businesses", f"{model.n_citizens:,} / {model.n_businesses:,}")
    table.add_row("days simulated (incl. burn-in)", f"{total:,}")
    table.add_row("model and population built", f"{t1 - t0:.2f} s")
    table.add_row("kernel load or compile", f"{t2 - t1:.2f} s")
    table.add_row("simulation", f"{sim:.2f} s")
    table.add_row("citizen-days per second", f"{model.n_citizens * total / sim / 1e6:,.1f} M")
    console.print(table)
