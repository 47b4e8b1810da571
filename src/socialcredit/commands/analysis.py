"""``socialcredit explain | report | compare``: see and explain a finished run.

The analysis layer (``socialcredit.analysis``) returns plain values; these commands print
them with Rich, or as JSON with ``--json``. Everything heavy is imported inside the commands
so that ``socialcredit --help`` stays fast. User mistakes (a missing run, an unknown subject,
a run still being written, runs that cannot be compared) are :class:`UserError` sentences.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console


def _console() -> Console:
    from socialcredit.commands import output_console

    return output_console(highlight=False)


def _json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


# --- explain ----------------------------------------------------------------------------------


def explain_command(
    run: Path = typer.Argument(..., help="The run directory."),
    subject: str = typer.Argument(..., help="A subject id (ASCII digits only) or a business's Unified Social Credit Code (any 18-character SUBJECT is a code)."),
    json_out: bool = typer.Option(False, "--json", help="Print the story as JSON."),
) -> None:
    """The story of one citizen or business, replayed from the seed."""
    from socialcredit.analysis.explain import explain

    story = explain(run, subject)
    if json_out:
        _json(story)
    else:
        print_story(story, _console())


def _yes(flag: bool, text: str) -> str:
    return f" [bold red]{text}[/bold red]" if flag else ""


def event_text(e: dict[str, Any]) -> str:
    """One event of a story as Rich markup."""
    from rich.markup import escape as x

    t = e["type"]
    if t == "act":
        ob = " (creates an obligation)" if e["obligation"] else ""
        if e.get("met_at_once"):
            ob = " (creates an obligation, met the same day)"
        return f"does: [bold]{x(e['act'])}[/bold] [dim]({x(e['category'])})[/dim]{ob}"
    if t == "record":
        truth = "[bold red]FALSE record[/bold red]" if not e["true_record"] else "true record"
        delayed = " [dim](acted on after the channel's delay)[/dim]" if e["delayed"] else ""
        if e.get("corroborating"):
            delayed += " [dim](corroborates a record already on file: no points)[/dim]"
        return f"recorded: {x(e['act'])} via [bold]{x(e['channel'])}[/bold], {truth}{delayed}"
    if t == "points":
        colour = "green" if e["points"] > 0 else "red"
        ref = f"\n[dim]{x(e['reference'])}[/dim]" if e.get("reference") else ""
        return (f"[{colour}]{e['points']:+d}[/{colour}] points → {e['score']}  "
                f"[cyan]{x(e['rule'])}[/cyan]{_yes(e['false_record'], '(from a false record)')}{ref}")
    if t == "grade":
        honest = (f" [dim](without false records: {x(e['honest'])})[/dim]"
                  if e["honest"] != e["to"] else "")
        return f"grade {x(e['from'])} → [bold]{x(e['to'])}[/bold]{honest}"
    if t == "override":
        return (f"grade forced to [bold]{x(e['grade'])}[/bold] until {e['until']} after "
                f"{x(e['act'])} ([cyan]{x(e['rule'])}[/cyan])")
    if t == "list":
        verb = {"enter": "[bold red]enters[/bold red]", "extend": "stays longer on",
                "exit": "[bold green]leaves[/bold green]"}[e["event"]]
        ref = f"\n[dim]{x(e['reference'])}[/dim]" if e.get("reference") else ""
        return (f"{verb} the list [bold]{x(e['list'])}[/bold]: {x(e['reason'])}"
                f"{_yes(e['false_caused'], '(caused by a false record)')}{ref}")
    if t == "objection":
        slot = " — no free appeal slot, not heard" if e["no_free_slot"] else ""
        kind = "a true" if e["true_record"] else "a false"
        return f"objects to {kind} record of {x(e['act'])} ({x(e['channel'])}){slot}"
    if t == "appeal":
        won = "[green]won[/green]: the record is struck" if e["won"] else "[red]lost[/red]"
        return f"appeal on the record of {x(e['act'])} ({x(e['channel'])}) {won}"
    if t == "repayment":
        return f"meets an obligation ({e['open_obligations']} still open)"
    if t == "income":
        return f"income band drops: {x(e['from'])} → {x(e['to'])}"
    if t == "decision":
        svc = x(e["service"])
        if e["outcome"] == "granted" and not e.get("measure"):
            return f"[dim]asks for {svc}: granted[/dim]"
        label = {"denied": "[bold red]DENIED[/bold red]", "fast_tracked":
                 "[bold green]fast-tracked[/bold green]", "granted": "granted"}[e["outcome"]]
        if e.get("throttled"):
            label = "[bold red]granted, THROTTLED[/bold red]"
        text = f"asks for {svc}: {label} by [cyan]{x(e['measure'] or '')}[/cyan]"
        if e.get("trigger"):
            text += f" ({x(e['trigger'])})"
        via = e.get("via")
        if via:
            text += (f"\n[yellow]reached it through {x(via['relation'])}, subject "
                     f"{via['subject_id']}[/yellow]")
        if e["wrongful"]:
            text += " [bold red]WRONGFUL: it rests on false records[/bold red]"
        if e.get("reference"):
            text += f"\n[dim]{x(e['reference'])}[/dim]"
        return text
    if t == "restriction":
        svc = x(e["service"])
        if e["event"] == "start":
            return (f"[bold red]{svc} connection throttled[/bold red] by [cyan]"
                    f"{x(e['measure'] or '')}[/cyan], while its trigger holds"
                    + _yes(e["wrongful"], "(WRONGFUL: it rests on false records)"))
        held = f" after {e['days']} days" if e.get("days") is not None else ""
        return f"[bold green]{svc} connection restored[/bold green]{held}: the trigger no longer holds"
    return x(json.dumps(e))


def _state_text(s: dict[str, Any]) -> str:
    score = "not scored" if s["score"] is None else f"score {s['score']}, grade {s['grade']}"
    lists = ", ".join(item["list"] + (" (false-caused)" if item["false_caused"] else "")
                      for item in s["lists"]) or "on no list"
    text = f"{score}; {lists}; open obligations {s['open_obligations']}"
    if s.get("throttled_since"):
        text += f"; connection throttled since {s['throttled_since']}"
    return text


def print_story(story: dict[str, Any], console: Console) -> None:
    """The terminal view of :func:`socialcredit.analysis.explain.explain`."""
    from rich.markup import escape as x
    from rich.panel import Panel
    from rich.table import Table

    a = story["attributes"]
    who = f"{story['kind']} {story['subject_id']}"
    if story.get("uscc"):
        who += f" (USCC {story['uscc']})"
    lines = [f"region {a['region_name']} ({a['region']}) · policy {story['policy']}"]
    if story["kind"] == "citizen":
        lines.append(f"income {a['income_band']}, education {a['education_band']}, age "
                     f"{a['age_band']}, {'urban' if a['urban'] else 'rural'}, consent "
                     f"{'yes' if a['consent'] else 'no'}")
        hh = ", ".join(f"{m['subject_id']} ({m['age_band']})" for m in a["household"])
        lines.append(f"household: {hh}")
        if a.get("represents"):
            lines.append("represents: " + ", ".join(f"{b['subject_id']} ({b['uscc']})"
                                                    for b in a["represents"]))
        if a.get("employer"):
            lines.append(f"employer: {a['employer']['subject_id']}")
    else:
        lines.append(f"size {a['size_band']}, sector {a['sector']}, legal representative "
                     f"{a['representative']}")
    p = story["period"]
    lines.append(f"reported days {p['start']} to {p['end']} (after {p['burn_in_days']} days of "
                 "burn-in, replayed but not shown)")
    console.print(Panel(x("\n".join(lines)), title=f"[bold]{x(who)}[/bold]", expand=False))
    console.print(f"[bold]On {p['start']}:[/bold] {x(_state_text(story['at_start']))}")
    for e in story["at_start"].get("listed_in_burn_in") or []:
        records = "; ".join(f"{r['act']} seen by {r['channel']}"
                            + ("" if r["true_record"] else " (a false record)")
                            for r in e["records"])
        console.print(x(f"  on {e['list']} since {e['day']} (burn-in): {e['reason']}"
                        + (f" [{e['reference']}]" if e["reference"] else "")
                        + (", caused by a false record" if e["false_caused"] else "")
                        + (f"; that day's records: {records}" if records else "")))
    if story["days"]:
        table = Table(show_header=True, header_style="bold", show_lines=False,
                      expand=console.is_terminal)
        table.add_column("day", no_wrap=True)
        table.add_column("what happened", ratio=1)
        for day in story["days"]:
            for i, e in enumerate(day["events"]):
                table.add_row(day["day"] if i == 0 else "", event_text(e))
        console.print(table)
    else:
        console.print("Nothing happened to this subject in the reported days.")
    console.print(f"[bold]On {p['end']}:[/bold] {x(_state_text(story['at_end']))}")
    s = story["summary"]
    console.print(
        f"{s['acts']} acts, {s['records']} records ({s['false_records']} false), "
        f"{s['points_changes']} point changes (net {s['net_points']:+d}), "
        f"{s['list_entries']} list entries, {s['requests']} requests: {s['denied']} denied "
        f"({s['wrongful']} wrongfully, {s['reached_through_group']} through its group), "
        f"{s['fast_tracked']} fast-tracked"
        + (f"; connection throttled {s['throttled_days']} days" if s.get("throttled_days") else "")
        + ".")
    check = story["ledger_check"]
    if check["status"] == "identical":
        counts = ", ".join(f"{k} {v['stored']}" for k, v in check["tables"].items())
        console.print(f"[green]The replay matches the stored ledger row for row[/green] ({counts}).")
    elif check["status"] == "differs":
        bad = ", ".join(k for k, v in check["tables"].items() if not v["equal"])
        console.print(f"[bold red]The replay differs from the stored ledger in {bad}[/bold red]; "
                      "see --json for the first differing rows.")
    else:
        console.print("[dim]The run stored no ledger: this story is the replay alone.[/dim]")


# --- report -----------------------------------------------------------------------------------


def report_command(
    run: Path = typer.Argument(..., help="The run directory."),
    out: Path | None = typer.Option(None, "--out", help="The HTML file to write (default RUN/report.html); missing folders are made, a folder is refused."),
) -> None:
    """One self-contained HTML report of a run (opens offline)."""
    from socialcredit.analysis.report import write_report

    path = write_report(run, out)
    _console().print(f"[green]report written[/green] → {path}")


# --- compare ----------------------------------------------------------------------------------


def compare_command(
    run_a: Path = typer.Argument(..., help="The first run directory."),
    run_b: Path = typer.Argument(..., help="The second run (same population and seed)."),
    json_out: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE",
        help="Also write every subject whose story differs (not a sample) to FILE, .csv or "
             ".parquet, with its demographics and its figures in A and B (both runs need "
             "--ledger)."),
) -> None:
    """Compare two runs of the same population and seed, subject by subject."""
    from socialcredit.analysis.compare import compare_runs, export_changed, export_format

    if out is not None:
        export_format(out)  # a bad file name is refused before any work
    result = compare_runs(run_a, run_b)
    n = 0
    if out is not None:
        n = export_changed(run_a, run_b, out)
        result["subjects"]["export"] = {"file": str(out), "subjects": n}
    if json_out:
        _json(result)
    else:
        print_comparison(result, _console())
        if out is not None:
            _console().print(f"wrote {n:,} changed subjects to {out}")


def _n(v: Any) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.2f}"
    return f"{int(v):,}"


def _signed(v: Any) -> str:
    if not v:
        return "[dim]0[/dim]"
    colour = "green" if v > 0 else "red"
    text = f"{v:+,.2f}" if isinstance(v, float) and not v.is_integer() else f"{int(v):+,}"
    return f"[{colour}]{text}[/{colour}]"


def print_comparison(c: dict[str, Any], console: Console) -> None:
    """The terminal view of :func:`socialcredit.analysis.compare.compare_runs`."""
    from rich.markup import escape as x
    from rich.table import Table

    a, b = c["a"], c["b"]

    def label(r: dict[str, Any]) -> str:
        # the resolved policy's name already lists its layers, reforms included
        # ("national+no_child_sanctions"), whether a reform was named or given as a path
        return f"{r['path']} ({r['policy']})"

    console.print(f"[bold]A[/bold] {x(label(a))}\n[bold]B[/bold] {x(label(b))}")
    console.print(f"seed {c['seed']}, {c['period']['days']} days from {c['period']['start']}; "
                  + ("the same policy" if c["same_policy"] else "different policies"))
    t = Table(title="In aggregate", header_style="bold")
    for col in ("", "A", "B", "B − A"):
        t.add_column(col, justify="left" if not col else "right")
    for r in c["aggregate"]["headline"] + c["aggregate"]["last_day"]:
        t.add_row(x(r["what"]), _n(r["a"]), _n(r["b"]), _signed(r["diff"]))
    console.print(t)
    census = c["aggregate"]["census"]
    if census:
        t = Table(title=f"Census counters that differ ({len(census)}; largest first)",
                  header_style="bold")
        for col in ("counter", "A", "B", "B − A"):
            t.add_column(col, justify="left" if col == "counter" else "right")
        for r in census[:25]:
            t.add_row(x(r["what"]), _n(r["a"]), _n(r["b"]), _signed(r["diff"]))
        console.print(t)
    s = c["subjects"]
    if not s.get("available"):
        console.print(f"[dim]{x(s.get('note', ''))}[/dim]")
        return
    if s["changed"] == 0:
        console.print("[green]No subject's story differs between the two runs.[/green]")
        return
    console.print(f"[bold]{s['changed']:,} subjects' stories differ[/bold] "
                  f"({s['changed_citizens']:,} citizens, {s['changed_businesses']:,} businesses); "
                  f"for example {', '.join(str(i) for i in s['changed_sample'])} "
                  "(socialcredit explain tells each one).")
    _print_transitions(s["grade_transitions"], c.get("grade_scales") or {}, console)
    for lst in s["lists"]:
        t = Table(title=f"List {lst['list']}: {lst['entered']:,} entered only in B, "
                        f"{lst['left']:,} only in A", header_style="bold")
        t.add_column("change")
        t.add_column("rule that made the difference")
        t.add_column("subjects", justify="right")
        t.add_column("for example")
        for change in ("entered", "left"):
            for r in lst[f"{change}_by_rule"]:
                where = "only in B" if change == "entered" else "only in A"
                t.add_row(where, x(r["rule"]), _n(r["subjects"]),
                          ", ".join(str(i) for i in r["sample"][:5]))
        console.print(t)
    if s["rules"]:
        t = Table(title="Rules whose points differ", header_style="bold")
        for col in ("rule", "subjects A", "subjects B", "net points A", "net points B"):
            t.add_column(col, justify="left" if col == "rule" else "right")
        for r in s["rules"][:25]:
            t.add_row(x(r["rule"]), _n(r["subjects_a"]), _n(r["subjects_b"]), _n(r["points_a"]),
                      _n(r["points_b"]))
        console.print(t)


def _print_transitions(rows: list[dict[str, Any]], scales: dict[str, Any],
                       console: Console) -> None:
    from rich.markup import escape as x
    from rich.table import Table

    def order(which: str, region: str, kind: str) -> Any:
        names = list(((scales.get(which) or {}).get(region) or {}).get(kind) or [])
        return lambda g: (g == "none", names.index(g) if g in names else len(names), g)

    panels = list(dict.fromkeys((r["kind"], r["region"]) for r in rows))
    for kind, region in panels:
        sel = [r for r in rows if (r["kind"], r["region"]) == (kind, region)]
        if all(r["from"] == r["to"] for r in sel):
            continue
        froms = sorted({r["from"] for r in sel}, key=order("a", region, kind))
        tos = sorted({r["to"] for r in sel}, key=order("b", region, kind))
        plural = "businesses" if kind == "business" else f"{kind}s"
        console.print(f"[bold]Grades on the last day, {plural} of {x(region)}[/bold]: "
                      "A in rows, B in columns")
        t = Table(header_style="bold")
        t.add_column("A \\ B")
        for g in tos:
            t.add_column(x(g), justify="right")
        counts = {(r["from"], r["to"]): r["subjects"] for r in sel}
        for f in froms:
            cells = []
            for g in tos:
                n = counts.get((f, g), 0)
                cells.append(f"[bold]{n:,}[/bold]" if f == g and n else (f"{n:,}" if n else "·"))
            t.add_row(x(f), *cells)
        console.print(t)
