"""``socialcredit run``: simulate a scenario into a run directory, with progress and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def run_command(
    scenario: str = typer.Argument("default", help="A shipped scenario's name or a path to one."),
    out: Path | None = typer.Option(None, "--out", help="The run directory to create."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of every random draw."),
    citizens: int | None = typer.Option(None, "--citizens", help="Rescale the regions to this many citizens."),
    days: int | None = typer.Option(None, "--days", help="Days to report (after the burn-in)."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads (default: all cores)."),
    ledger: bool = typer.Option(False, "--ledger", help="Also write records, ledger, list events, decisions and snapshots."),
    reform: list[str] = typer.Option(
        [], "--reform", metavar="NAME|FILE",
        help="Apply a reform on top of the scenario's policy: a shipped reform's name or a "
             "reform file (repeatable; applied in order, after the scenario's own reforms)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out."),
    backend: str = typer.Option("cpu", "--backend", help="cpu, gpu or auto."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Run on Dask: local[:N] or a scheduler address."),
) -> None:
    """Run a scenario (the embedded default needs no argument)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from socialcredit.run import check_backend_here, check_options, load_scenario, with_reforms

    # bad input is refused before the progress bar opens, so the sentence stands alone
    check_options(citizens, days, threads, backend)
    if not scheduler:
        check_backend_here(backend)
    if out is not None and out.exists() and not resume:
        from socialcredit.errors import UserError

        raise UserError(f"the run directory {out} already exists")
    scenario_obj = with_reforms(load_scenario(scenario), reform)
    console = Console(stderr=True)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("days"), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        title = f"simulating {scenario}"
        task = bar.add_task(title, total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        def notice(text: str) -> None:
            bar.update(task, description=f"{title}: {text}" if text else title)

        if scheduler:
            from socialcredit.distributed import simulate_distributed

            path = simulate_distributed(scenario_obj, scheduler=scheduler, out=out, seed=seed,
                                        citizens=citizens, days=days, ledger=ledger,
                                        resume=resume, progress=progress, threads=threads)
        else:
            from socialcredit.run import simulate

            path = simulate(scenario_obj, out=out, seed=seed, citizens=citizens, days=days,
                            threads=threads, ledger=ledger, resume=resume, backend=backend,
                            progress=progress, notice=notice)
    from socialcredit.commands import output_console
    from socialcredit.summary import summarize

    print_summary(summarize(path), output_console())


def print_summary(s: dict[str, Any], console: Any) -> None:
    """The end-of-run table: subjects, records, lists, decisions, grade shares by region."""
    from rich.table import Table

    scale = s["scale"]
    full = scale != 1.0

    def fmt(n: float) -> str:
        text = f"{int(n):,}"
        if full:
            text += f"  (≈ {n / scale:,.0f} people)"
        return text

    t = Table(title=f"run {s['path']}", show_header=True, header_style="bold")
    t.add_column("what")
    t.add_column("count", justify="right")
    t.add_row("citizens", fmt(s["citizens"]))
    t.add_row("businesses", fmt(s["businesses"]))
    t.add_row("days", f"{s['days']:,} from {s['start']} (burn-in {s['burn_in']})")
    t.add_row("acts", fmt(s["acts"]))
    t.add_row("records", fmt(s["records"]))
    t.add_row("  of which false", f"{s['records_false']:,} ({s['false_share']:.1%})")
    for name, n in s["lists"].items():
        t.add_row(f"on list {name} (last day)", fmt(n))
    t.add_row("service decisions", fmt(s["decisions"]))
    t.add_row("  denied", fmt(s["denied"]))
    t.add_row("  denied wrongfully", f"{s['wrongful']:,} ({s['wrongful_share']:.1%} of denials)")
    t.add_row("  fast-tracked", fmt(s["fast_tracked"]))
    console.print(t)
    if s["grades"]:
        g = Table(title="grade shares of scored citizens on the last day", header_style="bold")
        g.add_column("region")
        g.add_column("grades (best first)")
        for region, shares in s["grades"].items():
            g.add_row(region, "  ".join(f"{n} {v:.1%}" for n, v in shares.items()))
        console.print(g)
    console.print(f"[green]finished[/green] in {s['seconds']:.1f} s → {s['path']}")
