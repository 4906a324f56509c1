"""A throwaway PostgreSQL server for the tests, CI and benchmarks (standard library only).

    python tests/pgserver.py start [--dir DIR] [--durable]
        initdb in a new temporary directory (or DIR), start a server on a free port of
        127.0.0.1 (and a Unix socket in that directory, nowhere else), wait until it
        accepts connections; print shell lines to evaluate:
        ``FLOWRT_TEST_PG_URL=postgresql://...`` and ``FLOWRT_TEST_PG_DIR=...``.
    python tests/pgserver.py stop DIR
        stop the server of DIR (fast shutdown) and remove DIR.
    python tests/pgserver.py restart DIR
        stop and start it again on the same port (what a database restart looks like to
        its clients).
    python tests/pgserver.py find
        print the directory of PostgreSQL's programs; exit 1 when it is not installed.

PostgreSQL refuses to run as root: as root, the server runs as the ``postgres`` user
that Debian's package creates (or a ``flowrt-pg`` system user made here when there is
none), and the directory is handed to that user. Authentication is ``trust``: the server
listens on the loopback address only and lives as long as the test run.

Unless ``--durable`` is given, ``fsync`` is off: the tests crash processes, never the
machine, and a commit then costs no disk flush. The benchmarks use ``--durable`` (the
settings a real server keeps).

The binaries are found with ``pg_config --bindir``, then in
``/usr/lib/postgresql/<version>/bin`` (the newest), then on ``PATH``
(:func:`find_bindir`). From Python: :func:`start`, :func:`stop`, :func:`restart`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["Server", "down", "find_bindir", "restart", "start", "stop", "up"]

STATE = "pgserver.json"
SUPERUSER = "flowrt"
DATABASE = "flowrt"


class Server:
    """A running throwaway server: its ``url``, ``dir`` (removed by :func:`stop`),
    ``port``, ``bindir`` and the system ``user`` it runs as (None: this one)."""

    def __init__(self, dir: Path, port: int, bindir: str, user: str | None) -> None:
        self.dir = dir
        self.port = port
        self.bindir = bindir
        self.user = user

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def data(self) -> Path:
        return self.dir / "data"

    def save(self) -> None:
        (self.dir / STATE).write_text(json.dumps(
            {"port": self.port, "bindir": self.bindir, "user": self.user}))

    @classmethod
    def load(cls, dir: str | os.PathLike[str]) -> Server:
        path = Path(dir)
        state = json.loads((path / STATE).read_text())
        return cls(path, state["port"], state["bindir"], state["user"])


def find_bindir() -> str | None:
    """The directory of ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not here."""
    candidates: list[str] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                             timeout=10)
        if out.returncode == 0:
            candidates.append(out.stdout.strip())
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                      reverse=True)
    candidates += [str(p) for p in versions]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return folder
    return None


def _system_user() -> str | None:
    """Who runs the server: None (this user) unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "flowrt-pg"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    "flowrt-pg"], check=True, capture_output=True)
    return "flowrt-pg"


def _run(server: Server, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program as the server's user, in its directory."""
    command = [str(Path(server.bindir) / args[0]), *args[1:]]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          cwd=server.dir, user=server.user, check=False,
                          env={**os.environ, "LC_ALL": "C", "LANG": "C"})


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_ctl_start(server: Server) -> subprocess.CompletedProcess[str]:
    options = (f"-p {server.port} -k {server.dir} -c listen_addresses=127.0.0.1")
    return _run(server, "pg_ctl", "-D", str(server.data), "-l", str(server.dir / "log"),
                "-o", options, "-w", "-t", "60", "start")


def start(dir: str | os.PathLike[str] | None = None, *, durable: bool = False) -> Server:
    """initdb and start a server (see the module's docstring); returns it.

    Raises:
        RuntimeError: PostgreSQL is not installed, or the server did not start (its log
            is in the message).
    """
    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb found: tried pg_config, "
                           "/usr/lib/postgresql/*/bin and PATH)")
    user = _system_user()
    folder = Path(dir) if dir is not None else Path(tempfile.mkdtemp(prefix="flowrt-pg-"))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    server = Server(folder, 0, bindir, user)
    out = _run(server, "initdb", "-D", str(server.data), "-U", SUPERUSER, "-A", "trust",
               "-E", "UTF8", "--no-locale", *(() if durable else ("--no-sync",)))
    if out.returncode != 0:
        raise RuntimeError(f"initdb failed:\n{out.stdout}\n{out.stderr}")
    settings = ["max_connections = 200", "shared_buffers = 128MB",
                "unix_socket_permissions = 0700", "log_min_messages = warning"]
    if not durable:
        settings += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
    with open(server.data / "postgresql.conf", "a") as conf:
        conf.write("\n# flowrt's throwaway test server\n" + "\n".join(settings) + "\n")
    for _ in range(5):  # another process may take the free port before the server does
        server.port = _free_port()
        started = _pg_ctl_start(server)
        if started.returncode == 0:
            break
    else:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        raise RuntimeError(f"PostgreSQL did not start:\n{started.stderr}\n{log[-3000:]}")
    out = _run(server, "createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U", SUPERUSER,
               DATABASE)
    if out.returncode != 0:
        stop(folder)
        raise RuntimeError(f"createdb failed:\n{out.stderr}")
    server.save()
    return server


def restart(dir: str | os.PathLike[str]) -> None:
    """Stop the server of ``dir`` (fast: clients are disconnected) and start it again on
    the same port."""
    down(dir)
    up(dir)


def down(dir: str | os.PathLike[str]) -> None:
    """Stop the server of ``dir`` (fast: clients are disconnected), keeping its data."""
    server = Server.load(dir)
    out = _run(server, "pg_ctl", "-D", str(server.data), "-m", "fast", "-w", "stop")
    if out.returncode != 0:
        raise RuntimeError(f"pg_ctl stop failed:\n{out.stderr}")


def up(dir: str | os.PathLike[str]) -> None:
    """Start the server of ``dir`` again, on its port."""
    server = Server.load(dir)
    deadline = time.monotonic() + 30
    while True:
        started = _pg_ctl_start(server)
        if started.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not start again:\n{started.stderr}")
        time.sleep(0.2)


def stop(dir: str | os.PathLike[str]) -> None:
    """Stop the server of ``dir`` and remove the directory (nothing happens when there
    is no server there any more)."""
    folder = Path(dir)
    if (folder / STATE).exists() or (folder / "data" / "postmaster.pid").exists():
        try:
            server = Server.load(folder)
        except (OSError, ValueError, KeyError):
            server = Server(folder, 0, find_bindir() or "", _system_user())
        if server.bindir and (server.data / "postmaster.pid").exists():
            _run(server, "pg_ctl", "-D", str(server.data), "-m", "immediate", "-w", "stop",
                 timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("start", help="start a throwaway server; print its URL")
    up.add_argument("--dir", help="the server's directory (default: a new temporary one)")
    up.add_argument("--durable", action="store_true", help="keep fsync on (benchmarks)")
    for name in ("stop", "restart"):
        sub.add_parser(name).add_argument("dir")
    sub.add_parser("find", help="print where PostgreSQL's programs are")
    args = parser.parse_args(argv)
    if args.command == "find":
        bindir = find_bindir()
        if bindir is None:
            return 1
        print(bindir)
        return 0
    if args.command == "start":
        try:
            server = start(args.dir, durable=args.durable)
        except RuntimeError as error:
            print(f"pgserver: {error}", file=sys.stderr)
            return 1
        print(f"FLOWRT_TEST_PG_URL={server.url}")
        print(f"FLOWRT_TEST_PG_DIR={server.dir}")
        return 0
    if args.command == "restart":
        restart(args.dir)
        return 0
    stop(args.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
