"""``socialcredit serve [FOLDER] [--host 127.0.0.1] [--port 8000]``: the explorer."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    import socket


def serve_command(
    folder: Path = typer.Argument(Path("runs"), help="The folder whose runs to serve (searched "
                                                     "a few levels deep)."),
    host: str = typer.Option("127.0.0.1", "--host", help="The address to listen on; the "
                                                         "default serves this machine only."),
    port: int = typer.Option(8000, "--port", help="The port to listen on (refused with exit "
                                                  "code 2 when it is taken)."),
) -> None:
    """Serve a read-only web explorer of the runs in FOLDER (default: runs)."""
    import logging

    from socialcredit.errors import UserError

    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, not {port}")
    import uvicorn

    from socialcredit.web import create_app

    app = create_app(folder)
    # bound here, not by uvicorn, which answers a taken port or a bad host with exit code 3
    sockets = listen(host, port)
    runs = app.state.catalog.ids()
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"serving {len(runs)} run{'s' if len(runs) != 1 else ''} from {folder} "
               f"at http://{shown}:{port}/ (read-only; Ctrl-C stops)", err=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"note: {host} lets other machines reach the explorer; it has no login",
                   err=True)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info",
                                           server_header=False))
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:  # Ctrl-C: the way to stop the explorer
        typer.echo("the explorer stopped", err=True)
        return
    except SystemExit as exc:  # uvicorn's own exit code 3 when its start-up fails
        if exc.code not in (0, None):
            raise RuntimeError("the explorer could not start (see the log above)") from None
        raise
    finally:
        for sock in sockets:
            sock.close()
    if not server.started:
        raise RuntimeError("the explorer could not start (see the log above)")


def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address of ``host`` (as asyncio's ``create_server`` binds
    them); a :class:`UserError` with one sentence when the host or the port cannot be had."""
    import socket

    from socialcredit.errors import UserError

    if not host.strip():
        raise UserError("--host must name an address, such as 127.0.0.1")
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM,
                                   0, socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        raise UserError(f"--host {host} is not an address or a name of this machine") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
    except OSError as err:
        for sock in sockets:
            sock.close()
        if err.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is already in use: stop what uses it or "
                            "choose another --port") from None
        if err.errno == errno.EADDRNOTAVAIL:
            raise UserError(f"--host {host} is not an address of this machine") from None
        if err.errno == errno.EACCES:
            raise UserError(f"port {port} needs privileges this user lacks: choose a port "
                            "above 1023 with --port") from None
        raise UserError(f"cannot listen on {host} port {port}: "
                        f"{err.strerror or type(err).__name__}") from None
    return sockets
