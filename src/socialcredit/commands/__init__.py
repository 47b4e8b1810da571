"""CLI commands, one module per command group; each imports its heavy parts lazily."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

#: The width tables are laid out in when stdout is not a terminal (a pipe, a file): wide
#: enough that no table is cut or wrapped; each is as wide as its content.
PIPE_WIDTH = 10_000


def output_console(**options: Any) -> Console:
    """The console commands print their results on (stdout).

    In a terminal, Rich uses the terminal's width. Piped or redirected, Rich would assume 80
    columns and cut long tables; there the width is unlimited (unless ``COLUMNS`` says
    otherwise) and colours are left out, so ``socialcredit compare A B > out.txt`` or ``| less``
    keeps every column whole."""
    from rich.console import Console

    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        options.setdefault("width", PIPE_WIDTH)
    return Console(**options)
