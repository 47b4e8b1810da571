"""``socialcredit policy check | show | diff | audit``.

The policy layer is imported inside each command so that ``socialcredit --help`` stays fast.
User mistakes raise :class:`~socialcredit.errors.UserError`, which ``cli.main`` prints as one
sentence with exit code 2.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from socialcredit.analysis.audit import Finding
    from socialcredit.policy.resolve import ResolvedPolicy

app = typer.Typer(help="Check, show, compare and audit policies.", no_args_is_help=True)


def _console() -> Console:
    from socialcredit.commands import output_console

    return output_console(highlight=False, soft_wrap=False)


def _parse_date(text: str | None) -> dt.date | None:
    from socialcredit.errors import UserError

    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UserError(f"'{text}' is not a date written YYYY-MM-DD") from None


def policies_in(paths: list[Path]) -> list[Path]:
    """The policies that ``policy check PATH...`` checks, in order.

    A file, a shipped policy's name or a policy folder (one with a ``policy.yaml``) is one
    policy; any other folder stands for every policy in it: its YAML files and its policy
    folders, and those of its other subfolders, in name order."""
    from socialcredit.errors import UserError

    out: list[Path] = []

    def walk(folder: Path) -> None:
        for child in sorted(folder.iterdir()):
            if child.name.startswith("."):
                continue
            if child.is_dir():
                if (child / "policy.yaml").is_file():
                    out.append(child)
                else:
                    walk(child)
            elif child.suffix in (".yaml", ".yml"):
                out.append(child)

    for p in paths:
        if p.is_dir() and not (p / "policy.yaml").is_file():
            before = len(out)
            walk(p)
            if len(out) == before:
                raise UserError(f"the folder {p} holds no policy (no YAML file, no policy folder)")
        else:
            out.append(p)
    return out


@app.command()
def check(
    files: list[Path] = typer.Argument(
        ..., help="Policy files, shipped policy names or folders: a policy folder (with its "
                  "policy.yaml) is one policy; any other folder, every policy in it."),
) -> None:
    """Check policies: each is ok or its first mistake, with file and line."""
    from rich.markup import escape

    from socialcredit.errors import UserError
    from socialcredit.policy.resolve import validate_policy

    console = _console()
    failed = 0
    files = policies_in(files)
    for f in files:
        try:
            validate_policy(f)
        except UserError as err:
            failed += 1
            # The sentence names the file (and line) itself when it has one.
            text = err.sentence() if err.path else f"{f}: {err.sentence()}"
            console.print(f"[red]FAIL[/red] {escape(text)}", soft_wrap=True)
        else:
            console.print(f"[green]ok[/green]   {escape(str(f))}", soft_wrap=True)
    if failed:
        raise UserError(f"{failed} of {len(files)} {'policy' if len(files) == 1 else 'policies'} failed the check")


def _section_title(section: str) -> str:
    titles = {
        "score": "Scores",
        "lists": "Lists (blacklists and redlists)",
        "measures": "Measures (sanctions and privileges)",
        "appeals": "Objections and appeals",
        "repair": "Credit repair (default terms)",
    }
    if section in titles:
        return titles[section]
    what, _, kind = section.partition(".")
    return f"{what.capitalize()} ({kind}s)"


def _print_policy(console: Console, policy: ResolvedPolicy) -> None:
    from rich.markup import escape
    from rich.table import Table

    where = f"region {policy.region}" if policy.region else "every region"
    when = f"on {policy.date.isoformat()}" if policy.date else "at any date (dated values shown as histories)"
    console.print(
        f"[bold]{policy.name}[/bold] ({policy.kind}; layers: {' > '.join(policy.layers)}) in {where}, {when}"
    )
    for section, items in policy.sections().items():
        # Three columns (id, values, reference with its source) read well at any width.
        table = Table(title=_section_title(section), title_justify="left", show_lines=True, expand=console.is_terminal)
        table.add_column("id", style="bold", no_wrap=True)
        table.add_column("values", ratio=2)
        table.add_column("reference and source", ratio=3)
        for it in items:
            mark = " [yellow](unverified)[/yellow]" if not it.verified else ""
            ident = it.id + (" [cyan]*[/cyan]" if it.mandatory else "")
            values = "\n".join(f"{k.replace('_', ' ')}: {v}" for k, v in it.fields.items() if v != "")
            origin = f" ({it.origin})" if it.origin and it.origin != policy.layers[0] else ""
            ref = f"{escape(it.reference)}{mark}\n[dim]{escape(it.source)}{escape(origin)}[/dim]"
            table.add_row(ident, escape(values), ref)
        console.print(table)
    console.print("[dim]* mandatory: a regional extension cannot change it; (unverified): [U] or verified: false[/dim]")


@app.command()
def show(
    policy: str = typer.Argument(..., help="A shipped policy's name or a path."),
    region: str | None = typer.Option(None, "--region", help="Show the policy as it applies in this region."),
    date: str | None = typer.Option(None, "--date", help="Show the values in force on this date (YYYY-MM-DD)."),
) -> None:
    """Show a policy's rules, resolved for a region and a date, with their references."""
    from socialcredit.policy.resolve import resolve

    resolved = resolve(policy, region=region, date=_parse_date(date))
    _print_policy(_console(), resolved)


def _fmt_change(item_fields: dict[str, tuple[str, str]], change: str) -> str:
    lines = []
    for k, (before, after) in item_fields.items():
        if change == "added":
            lines.append(f"{k}: {after}")
        elif change == "removed":
            lines.append(f"{k}: {before}")
        else:
            lines.append(f"{k}: {before or '-'} -> {after or '-'}")
    return "\n".join(lines)


@app.command()
def diff(
    a: str = typer.Argument(..., help="The first policy (name or path)."),
    b: str = typer.Argument(..., help="The second policy (name or path)."),
    region: str | None = typer.Option(None, "--region", help="Compare the policies as they apply in this region."),
    date: str | None = typer.Option(None, "--date", help="Compare the values in force on this date."),
) -> None:
    """Show the rules added, removed and changed from policy A to policy B."""
    from rich.markup import escape
    from rich.table import Table

    from socialcredit.policy.resolve import diff as diff_policies
    from socialcredit.policy.resolve import resolve

    day = _parse_date(date)
    pa, pb = resolve(a, region=region, date=day), resolve(b, region=region, date=day)
    changes = diff_policies(pa, pb)
    console = _console()
    console.print(f"[bold]{a}[/bold] ({' > '.join(pa.layers)}) -> [bold]{b}[/bold] ({' > '.join(pb.layers)})")
    if not changes:
        console.print("The two policies have the same rules.")
        return
    colours = {"added": "green", "removed": "red", "changed": "yellow"}
    table = Table(show_lines=True, expand=console.is_terminal)
    table.add_column("section", no_wrap=True)
    table.add_column("id", style="bold", no_wrap=True)
    table.add_column("change", no_wrap=True)
    table.add_column("values", ratio=1)
    for c in changes:
        colour = colours[c.change]
        table.add_row(c.section, c.id, f"[{colour}]{c.change}[/{colour}]", escape(_fmt_change(c.fields, c.change)))
    console.print(table)
    counts = {k: sum(1 for c in changes if c.change == k) for k in colours}
    console.print(f"{counts['added']} added, {counts['removed']} removed, {counts['changed']} changed")


# `socialcredit policy audit POLICY [--json]` (the rights audit) is added here by its own module.


@app.command()
def audit(
    policy: str = typer.Argument(..., help="A shipped policy's name or a path."),
    json_out: bool = typer.Option(False, "--json", help="Print the findings as JSON (rule, rights, severity, why)."),
) -> None:
    """The rights audit: for each rule, list and measure, the rights it touches and why."""
    from socialcredit.analysis.audit import audit_policy, findings_json

    findings = audit_policy(policy)
    if json_out:
        import json

        typer.echo(json.dumps(findings_json(findings), indent=2, ensure_ascii=False))
        return
    _print_audit(_console(), policy, findings)


def _print_audit(console: Console, policy: str, findings: list[Finding]) -> None:
    from rich.markup import escape
    from rich.table import Table

    if not findings:
        console.print(f"[green]{escape(policy)}: no rule or measure of this policy touches a right the audit checks.[/green]")
        return
    colours = {"high": "bold red", "medium": "yellow", "low": "dim"}
    table = Table(title=f"Rights audit of {policy}", title_justify="left", show_lines=True, expand=console.is_terminal)
    table.add_column("severity", no_wrap=True)
    table.add_column("rights", no_wrap=True)
    table.add_column("rule", ratio=2, overflow="fold")
    table.add_column("why", ratio=4)
    for f in findings:
        colour = colours.get(f.severity, "")
        where = f"\n[dim]{escape(f.source)}[/dim]" if f.source else ""
        table.add_row(f"[{colour}]{f.severity}[/{colour}]", escape(", ".join(f.rights)), escape(f.rule) + where, escape(f.why))
    console.print(table)
    counts = {s: sum(1 for f in findings if f.severity == s) for s in ("high", "medium", "low")}
    console.print(f"{len(findings)} findings: {counts['high']} high, {counts['medium']} medium, {counts['low']} low")
