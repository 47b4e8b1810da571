"""``socialcredit run``: simulate a scenario into a run directory, with progress and a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def run_command(
    scenario: str = typer.Argument("default", help="A shipped scenario's name or a path to one."),
    out: Path | None = typer.Option(None, "--out", help="The run directory to create; it must not exist yet (default: runs/<scenario>-<time>, the scenario's name made a safe folder name)."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of every random draw, 0 to 2**63-1."),
    citizens: int | None = typer.Option(None, "--citizens", help="Rescale the regions to this many citizens."),
    days: int | None = typer.Option(None, "--days", help="Days to report (after the burn-in); the run must end by 2099-12-31."),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads, 1 to NUMBA_NUM_THREADS (default: all cores)."),
    ledger: bool = typer.Option(False, "--ledger", help="Also write records, ledger, list events, decisions and snapshots."),
    report_burn_in: bool = typer.Option(False, "--report-burn-in", help="Report the burn-in days too: the tables and the census start on the burn-in's first day (the simulation is the same)."),
    reform: list[str] = typer.Option(
        [], "--reform", metavar="NAME|FILE",
        help="Apply a reform on top of the scenario's policy: a shipped reform's name or a "
             "reform file (repeatable; applied in order, after the scenario's own reforms)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out, with the seed, days and citizens it was started with."),
    backend: str = typer.Option("cpu", "--backend", help="cpu, gpu or auto (the GPU when one is present; with --scheduler, when every worker has one)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Run on Dask: local[:N] or a scheduler address."),
) -> None:
    """Run a scenario (the embedded default needs no argument).

    Bad input is refused with one sentence (exit code 2) before anything runs or is written.

    docs/run-directory.md ("What run refuses") lists what is refused, and why."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from socialcredit.run import (
        check_backend_here,
        check_options,
        check_out,
        check_threads,
        default_out,
        load_scenario,
        with_reforms,
    )

    # bad input is refused before the progress bar opens, so the sentence stands alone
    check_options(citizens, days, threads, backend)
    if not scheduler:  # on Dask, threads are per worker and the worker's limit applies
        check_threads(threads)
        check_backend_here(backend)
    scenario_obj = with_reforms(load_scenario(scenario, seed=seed, days=days), reform)
    asked_days = days
    if report_burn_in:
        scenario_obj = scenario_obj.burn_in_reported(days)
        days = None
    if resume and out is None:
        from socialcredit.errors import UserError

        raise UserError("--resume needs --out naming the run to continue")
    if out is None:  # named here, so that an interruption can tell it
        out = default_out(scenario_obj.name)
    check_out(out, resume=resume)
    console = Console(stderr=True)
    try:
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                      MofNCompleteColumn(), TextColumn("days"), TimeElapsedColumn(),
                      console=console, transient=True,
                      disable=not console.is_terminal) as bar:
            title = f"simulating {scenario}"
            task = bar.add_task(title, total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            def notice(text: str) -> None:
                bar.update(task, description=f"{title}: {text}" if text else title)

            if scheduler:
                from socialcredit.distributed import simulate_distributed

                path = simulate_distributed(scenario_obj, scheduler=scheduler, out=out,
                                            seed=seed, citizens=citizens, days=days,
                                            ledger=ledger, resume=resume, progress=progress,
                                            threads=threads, backend=backend)
            else:
                from socialcredit.run import simulate

                path = simulate(scenario_obj, out=out, seed=seed, citizens=citizens, days=days,
                                threads=threads, ledger=ledger, resume=resume,
                                backend=backend, progress=progress, notice=notice)
    except KeyboardInterrupt:
        from socialcredit.errors import Interrupted

        again = ["socialcredit", "run", scenario, "--out", str(out)]
        for flag, value in (("--seed", seed), ("--citizens", citizens), ("--days", asked_days)):
            if value is not None:
                again += [flag, str(value)]
        for name in reform:
            again += ["--reform", name]
        again += ["--ledger"] if ledger else []
        again += ["--report-burn-in"] if report_burn_in else []
        again += ["--backend", backend] if backend != "cpu" else []
        raise Interrupted(interrupted_sentence(out, again, scheduler)) from None
    from socialcredit.commands import output_console
    from socialcredit.summary import summarize

    print_summary(summarize(path), output_console())


def interrupted_sentence(out: Path | None, again: list[str], scheduler: str | None = None) -> str:
    """What an interrupted run left and how to go on, in one sentence: resume it from its
    last checkpoint, or (cut off before its first, when nothing is kept) start it again.
    ``again`` is the command line that starts it, without ``--resume`` and ``--scheduler``
    (a run is resumed without a scheduler, and started again with its own)."""
    import shlex

    from socialcredit.recorder import resumable

    if out is None:
        return "the run was interrupted"
    if out.exists():
        return f"the run was interrupted after it was complete: it is in {out}"
    if resumable(out):
        return ("the run was interrupted; resume it from its last checkpoint with: "
                + shlex.join([*again, "--resume"]))
    start = [*again, "--scheduler", scheduler] if scheduler else again
    return ("the run was interrupted before its first checkpoint, so nothing was kept; start "
            "it again with: " + shlex.join(start))


def print_summary(s: dict[str, Any], console: Any) -> None:
    """The end-of-run table: subjects, records, lists, decisions, grade shares by region; for
    a scaled scenario each count also as an estimate for the real population, in its unit."""
    from rich.table import Table

    from socialcredit.summary import estimates

    real = estimates(s)

    def fmt(n: float, key: str) -> str:
        text = f"{int(n):,}"
        if key in real:
            value, unit = real[key]
            text += f"  (≈ {value:,.0f} {unit})"
        return text

    t = Table(title=f"run {s['path']}", show_header=True, header_style="bold")
    t.add_column("what")
    t.add_column("count", justify="right")
    t.add_row("citizens", fmt(s["citizens"], "citizens"))
    t.add_row("businesses", fmt(s["businesses"], "businesses"))
    t.add_row("days", f"{s['days']:,} from {s['start']} (burn-in {s['burn_in']})")
    t.add_row("acts", fmt(s["acts"], "acts"))
    t.add_row("records", fmt(s["records"], "records"))
    t.add_row("  of which false", f"{s['records_false']:,} ({s['false_share']:.1%})")
    for name, n in s["lists"].items():
        t.add_row(f"on list {name} (last day)", fmt(n, f"list:{name}"))
    t.add_row("service decisions", fmt(s["decisions"], "decisions"))
    t.add_row("  denied", fmt(s["denied"], "denied"))
    if s.get("throttled"):
        t.add_row("  granted throttled", fmt(s["throttled"], "throttled"))
        t.add_row("  wrongful", f"{s['wrongful']:,} ({s['wrongful_share']:.1%} of denials "
                                "and throttles)")
    else:
        t.add_row("  denied wrongfully", f"{s['wrongful']:,} ({s['wrongful_share']:.1%} of denials)")
    t.add_row("  fast-tracked", fmt(s["fast_tracked"], "fast_tracked"))
    if s.get("throttled_days"):
        t.add_row("subject-days throttled", fmt(s["throttled_days"], "throttled_days"))
    console.print(t)
    if s["grades"]:
        g = Table(title="grade shares of scored citizens on the last day", header_style="bold")
        g.add_column("region")
        g.add_column("grades (best first)")
        for region, shares in s["grades"].items():
            g.add_row(region, "  ".join(f"{n} {v:.1%}" for n, v in shares.items()))
        console.print(g)
    console.print(f"[green]finished[/green] in {s['seconds']:.1f} s → {s['path']}")
