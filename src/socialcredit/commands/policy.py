"""``socialcredit policy check | show | diff | audit``."""

from __future__ import annotations

import typer

app = typer.Typer(help="Check, show, compare and audit policies.", no_args_is_help=True)
