"""``socialcredit serve [FOLDER] [--host 127.0.0.1] [--port 8000]``: the explorer."""

from __future__ import annotations

from pathlib import Path

import typer


def serve_command(
    folder: Path = typer.Argument(Path("runs"), help="The folder whose runs to serve (searched "
                                                     "a few levels deep)."),
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on; the "
                                                         "default serves this machine only."),
    port: int = typer.Option(8000, "--port", help="The port to listen on."),
) -> None:
    """Serve a read-only web explorer of the runs in FOLDER (default: runs)."""
    import logging

    from socialcredit.errors import UserError

    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, not {port}")
    import uvicorn

    from socialcredit.web import create_app

    app = create_app(folder)
    runs = app.state.catalog.ids()
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"serving {len(runs)} run{'s' if len(runs) != 1 else ''} from {folder} "
               f"at http://{shown}:{port}/ (read-only; Ctrl-C stops)", err=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"note: {host} lets other machines reach the explorer; it has no login",
                   err=True)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
