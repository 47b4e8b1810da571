"""The command line: ``socialcredit run | report | explain | compare | validate | calibrate |
sensitivity | sweep | policy | serve | bench``.

Only Typer and Rich are imported at start-up; each command imports what it needs when it runs,
so ``socialcredit --help`` stays fast. Errors meant for users (:class:`UserError`) become one
sentence on stderr and exit code 2; anything else is exit code 1.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading

import typer

from socialcredit.commands import analysis as analysis_commands
from socialcredit.commands import bench as bench_commands
from socialcredit.commands import calibration as calibration_commands
from socialcredit.commands import policy as policy_commands
from socialcredit.commands import run as run_commands
from socialcredit.commands import serve as serve_commands
from socialcredit.commands import sweep as sweep_commands

app = typer.Typer(
    name="socialcredit",
    help="An open, auditable simulation of social credit systems over synthetic populations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(policy_commands.app, name="policy")
app.command("run")(run_commands.run_command)
app.command("report")(analysis_commands.report_command)
app.command("explain")(analysis_commands.explain_command)
app.command("compare")(analysis_commands.compare_command)
app.command("validate")(calibration_commands.validate_command)
app.command("calibrate")(calibration_commands.calibrate_command)
app.command("sensitivity")(calibration_commands.sensitivity_command)
app.command("sweep")(sweep_commands.sweep_command)
app.command("serve")(serve_commands.serve_command)
app.command("bench")(bench_commands.bench_command)


def entry() -> None:
    """The ``socialcredit`` command (and ``python -m socialcredit``): :func:`main` in a
    process of its own.

    A command starts by creating a few hundred thousand objects (numba, pydantic, the
    policy) that live to its end. Collecting every 700 allocations, as Python does, keeps
    walking them for nothing, and the interpreter's teardown walks them once more at exit:
    0.3 s of a 3.5 s run. Here the collector runs rarely, and once the command is done (its
    files closed, its output flushed, the exit handlers run) the process ends without the
    teardown. Callers in a process that goes on (tests) call :func:`main` instead."""
    gc.set_threshold(100_000, 50, 50)
    try:
        main()
        code: str | int | None = 0
    except SystemExit as exc:
        code = exc.code
    _leave(code)


def _leave(code: str | int | None) -> None:
    """End the process with ``code`` (as ``sys.exit`` would) without the teardown, unless a
    thread that the interpreter would wait for is still running."""
    others = [t for t in threading.enumerate()
              if t is not threading.main_thread() and not t.daemon and t.is_alive()]
    if others:
        sys.exit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to say
            pass
    os._exit(status)


#: The exit code of an interrupted command (128 + SIGINT, as shells expect).
INTERRUPTED = 130


def main() -> None:
    """Entry point: run the Typer app, turning user errors into one plain sentence."""
    from socialcredit.errors import Interrupted, RunError, UserError

    try:
        code = app(standalone_mode=False)
    except UserError as err:
        typer.echo(f"error: {err.sentence()}", err=True)
        sys.exit(2)
    except Interrupted as err:
        typer.echo(str(err), err=True)
        sys.exit(INTERRUPTED)
    except RunError as err:  # not the user's input, but a sentence of its own (a full disk)
        typer.echo(f"error: {err}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(INTERRUPTED)
    except SystemExit:
        raise
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as err:
        # the command line itself (Typer's own copy of Click's exceptions): a usage error
        # exits with 2, and a bare ``socialcredit`` shows the help
        if type(err).__name__ == "NoArgsIsHelpError":
            typer.echo(err.format_message(), err=True)
        else:
            typer.echo(f"error: {err.format_message()}", err=True)
        sys.exit(getattr(err, "exit_code", 2))
    except Exception as err:  # noqa: BLE001 - the last line of defence for the CLI
        typer.echo(f"error: {type(err).__name__}: {err}", err=True)
        sys.exit(1)
    # Typer turns a Ctrl-C it sees into ``Exit(130)`` and, without standalone mode, returns
    # the code instead of exiting: a command interrupted there must not end with 0
    if code == INTERRUPTED:
        typer.echo("interrupted", err=True)
        sys.exit(INTERRUPTED)
    if isinstance(code, int) and not isinstance(code, bool) and code:
        sys.exit(code)
