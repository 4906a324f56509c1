"""``flowrt ui --store PATH [--host 127.0.0.1] [--port 8080] [--token TOKEN]``: the live
dashboard (the ``ui`` extra: Starlette on uvicorn)."""

from __future__ import annotations

import argparse
import errno
import os
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ._common import EXIT_INTERRUPTED, EXIT_OK, UsageError, echo, err, nonempty, open_store

__all__ = ["add_parser", "command", "store_label"]

#: the environment variable that may hold the token (a command line is visible to every
#: user of the machine in ``ps``; the environment is not)
TOKEN_ENV = "FLOWRT_UI_TOKEN"


def add_parser(sub: Any) -> None:
    """Add ``ui`` to the subcommands ``sub``."""
    p = sub.add_parser(
        "ui", help="serve a live dashboard of a store's runs",
        description="Serve a live web dashboard of the runs a store keeps: runs, each "
                    "run's graph, timeline and nodes, schedules, workers; and cancel, "
                    "resume, signal, approve and reject. Needs the 'ui' extra.",
        epilog=f"Another address than a loopback one needs a token (--token, or the "
               f"{TOKEN_ENV} environment variable, which other users cannot read in 'ps'). "
               "Stop it with Ctrl-C. Docs: docs/dashboard.md.")
    p.add_argument("--store", metavar="PATH", required=True, type=nonempty,
                   help="the store file (or a postgresql:// URL)")
    p.add_argument("--host", default="127.0.0.1", type=nonempty,
                   help="the address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=_port, default=8080,
                   help="the port to listen on (default: 8080; 0 picks a free one)")
    p.add_argument("--token", type=nonempty,
                   help=f"every request must carry it (default: ${TOKEN_ENV}); needed to "
                        "listen on another address than a loopback one")
    p.add_argument("--access-log", action="store_true",
                   help="print a line per request on stderr")
    p.set_defaults(func=command)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return value


def store_label(text: str) -> str:
    """How the pages name the store: its path, or its URL without a password."""
    if "://" not in text:
        return text
    parts = urlsplit(text)
    if parts.password is None:
        return text
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``; UsageError saying why it cannot be."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise UsageError(f"--host {host}: no such address ({error.strerror})") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is in use (another flowrt ui?): choose "
                             "another with --port, or --port 0 for any free one") from None
        if error.errno == errno.EACCES:
            raise UsageError(f"not allowed to listen on port {port} of {host} (ports below "
                             "1024 need privileges): choose another with --port") from None
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.set_inheritable(True)
    return sock


def _loopback_only(host: str) -> bool:
    """Whether every address ``host`` names is this machine's loopback."""
    from ..ui._security import is_loopback  # after the check that the extra is installed

    if is_loopback(host):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(is_loopback(str(info[4][0])) for info in infos)


def command(args: argparse.Namespace) -> int:
    """``flowrt ui``: check the address and the token, open the store, serve until Ctrl-C."""
    try:
        import uvicorn

        from ..ui import create_app
        from ..ui._security import MIN_TOKEN
    except ImportError as error:
        raise UsageError(f"flowrt ui needs the 'ui' extra ({error.name or error} is not "
                         "installed): pip install 'flowrt[ui]'") from None
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    loopback = _loopback_only(args.host)
    if not loopback and token is None:
        raise UsageError(
            f"--host {args.host} is reachable from other machines, and the dashboard can "
            "cancel, resume and signal runs: give a token (--token, or the "
            f"{TOKEN_ENV} environment variable), or listen on 127.0.0.1")
    if token is not None and len(token) < MIN_TOKEN:
        raise UsageError(
            f"the token is {len(token)} characters long; use at least {MIN_TOKEN}, e.g. "
            "python -c \"import secrets; print(secrets.token_urlsafe())\"")
    store = open_store(args.store, must_exist=True)
    try:
        sock = _bind(args.host, args.port)
        port = sock.getsockname()[1]
        shown = f"[{args.host}]" if ":" in args.host else args.host
        url = f"http://{shown}:{port}/"
        app = create_app(store, token=token, label=store_label(args.store),
                         loopback_only=loopback and token is None,
                         access_log=args.access_log)
        echo(f"flowrt ui: serving {store_label(args.store)} at {url}")
        if token is not None:
            echo(f"  log in at {url}login with the token (or open {url}?token=TOKEN once)")
        echo("  Ctrl-C to stop")
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                server_header=False, proxy_headers=False)
        server = uvicorn.Server(config)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # Ctrl-C: uvicorn stopped gracefully, then raised it
            err("stopped (Ctrl-C)")
            return EXIT_INTERRUPTED
        finally:
            sock.close()
    finally:
        store.close()
    return EXIT_OK
