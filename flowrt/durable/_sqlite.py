"""``SQLiteStore``: durable runs in one SQLite file, the embedded default.

The file is created readable and writable by its owner only (0600) and kept in WAL
mode, so that readers never block the writer and several processes can share it.
Node records are written by one writer thread per store: each write is queued, and the
thread commits everything queued so far in one transaction (a group commit), in order.
A run is never slowed by the disk; what is committed is always a prefix of what was
written, so a node the file says succeeded finished, and so did everything it needed.
The thread gathers writes for ``commit_interval`` seconds (5 ms) before committing
them: a node's end reaches the disk within a few milliseconds, and a run with
thousands of short nodes costs a few hundred commits a second, not one per node.

``synchronous`` is SQLite's: "NORMAL" (the default) survives a crash of the process at
any moment; a power cut or OS crash may roll back what the OS had not yet written to
disk since the last WAL checkpoint (never corrupting the file); "FULL" fsyncs each
group commit, which survives those too, at the price of one fsync per commit.

Schema (version 1)::

    meta(key PRIMARY KEY, value)                 app = flowrt, schema_version = 1
    runs(run_id PRIMARY KEY, workflow, fingerprint, structure JSON, inputs BLOB, status,
         serializer, created, started, finished, resumes, lease JSON, lease_expires)
    nodes(run_id, node, status, attempts, output BLOB, error, traceback, started,
          finished, PRIMARY KEY (run_id, node))
    data(run_id PRIMARY KEY, snapshot BLOB)
"""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from ..errors import RunLeased, StoreError
from ._serialize import Serializer, get_serializer
from ._store import Lease, NodeRecord, RunRecord, StoredRun, prune

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = 1
APP = "flowrt"

_SCHEMA = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, fingerprint TEXT NOT NULL,
        structure TEXT NOT NULL, inputs BLOB NOT NULL, status TEXT NOT NULL,
        serializer TEXT NOT NULL, created REAL NOT NULL, started REAL NOT NULL,
        finished REAL, resumes INTEGER NOT NULL DEFAULT 0, lease TEXT, lease_expires REAL)""",
    "CREATE INDEX runs_by_workflow ON runs (workflow, created)",
    """CREATE TABLE nodes (
        run_id TEXT NOT NULL, node TEXT NOT NULL, status TEXT NOT NULL,
        attempts INTEGER NOT NULL, output BLOB, error TEXT, traceback TEXT,
        started REAL, finished REAL, PRIMARY KEY (run_id, node)) WITHOUT ROWID""",
    "CREATE TABLE data (run_id TEXT PRIMARY KEY, snapshot BLOB)",
]

#: schema_version -> statements that bring a store from that version to the next
_MIGRATIONS: dict[int, list[str]] = {}

_RUN_COLUMNS = ("run_id, workflow, fingerprint, structure, inputs, status, serializer, "
                "created, started, finished, resumes")


def _run(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(row[0], row[1], row[2], json.loads(row[3]), bytes(row[4]), row[5],
                     row[6], row[7], row[8], row[9], row[10])


class SQLiteStore:
    """Durable runs in the SQLite file at ``path`` (created if missing, mode 0600).

    Args:
        path: the database file; several processes on one machine may share it.
        serializer: ``"json"`` (the default), ``"pickle"`` (trusted files only) or a
            serializer object.
        synchronous: SQLite's setting: ``"NORMAL"`` (the default: a process crash
            loses nothing committed), ``"FULL"`` (an fsync per group commit, survives
            power loss), ``"EXTRA"`` or ``"OFF"``.
        lease_ttl: seconds before the lease of a holder that stopped renewing it may be
            taken over.
        busy_timeout: seconds to wait for another writer's lock.
        commit_interval: seconds a group commit waits to gather node records.

    Raises:
        StoreError: the file is not a flowrt store (another application's database, a
            corrupt file, a file that is not SQLite) -- left untouched -- or was
            written by a newer flowrt.
        ValueError: an unknown ``synchronous`` or serializer name.

    Close it (``store.close()`` or ``with SQLiteStore(...) as store``) when done.
    """

    def __init__(self, path: str | os.PathLike[str], *, serializer: str | Serializer = "json",
                 synchronous: str = "NORMAL", lease_ttl: float = 60.0,
                 busy_timeout: float = 10.0, commit_interval: float = 0.005) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL, EXTRA or OFF, "
                             f"got {synchronous!r}")
        self.path = Path(path)
        self.serializer = get_serializer(serializer)
        self.synchronous = synchronous.upper()
        self.lease_ttl = lease_ttl
        self.commit_interval = commit_interval
        self._busy = busy_timeout
        self._check_and_create()
        self._conn = self._connect()
        self._lock = threading.Lock()  # guards self._conn (used from worker threads)
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._active: dict[str, Lease] = {}  # runs whose lease the writer renews
        self._writer_error: BaseException | None = None
        self._hurry = threading.Event()  # set to commit now, without the group wait
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name=f"flowrt-store:{path}",
                                        daemon=True)
        self._writer.start()

    # -- opening --------------------------------------------------------------------

    def _check_and_create(self) -> None:
        """Refuse a file that is not ours before anything writes to it."""
        exists = self.path.exists() and self.path.stat().st_size > 0
        if not exists:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            os.chmod(self.path, 0o600)  # whatever the umask says
        try:
            # Read-only first: a foreign or corrupt file must not be touched.
            # immutable: no -wal/-shm files appear beside someone else's WAL database
            ro = sqlite3.connect(f"file:{self.path}?mode=ro&immutable=1", uri=True,
                                 timeout=self._busy)
            try:
                tables = {r[0] for r in ro.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
                meta = dict(ro.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
            finally:
                ro.close()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path} is not a flowrt store: {error}") from None
        if tables and meta.get("app") != APP:
            raise StoreError(f"{self.path} is not a flowrt store: it is an SQLite database "
                             f"of something else (tables: {', '.join(sorted(tables))})")
        version = int(meta.get("schema_version", "0")) if tables else 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer flowrt (store schema "
                             f"{version}; this flowrt reads up to {SCHEMA_VERSION})")
        if version == SCHEMA_VERSION:
            return  # a store of this version: nothing to create or migrate
        conn = sqlite3.connect(self.path, timeout=self._busy, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            # Another process may have created the schema since the check above.
            tables = {r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables:
                meta = dict(conn.execute("SELECT key, value FROM meta")) if "meta" in tables \
                    else {}
                if meta.get("app") != APP:
                    conn.execute("ROLLBACK")
                    raise StoreError(f"{self.path} is not a flowrt store")
                version = int(meta.get("schema_version", "0"))
            if not tables:
                os.chmod(self.path, 0o600)  # an empty file becoming a store: ours only
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.executemany("INSERT INTO meta VALUES (?, ?)",
                                 [("app", APP), ("schema_version", str(SCHEMA_VERSION))])
            else:
                while version < SCHEMA_VERSION:
                    for statement in _MIGRATIONS[version]:
                        conn.execute(statement)
                    version += 1
                    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                                 (str(version),))
            conn.execute("COMMIT")
        finally:
            conn.close()
        for suffix in ("-wal", "-shm"):
            side = Path(f"{self.path}{suffix}")
            if side.exists():
                os.chmod(side, 0o600)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    # -- runs -----------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            row = self._conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?",
                                     (run_id,)).fetchone()
        return None if row is None else _run(row)

    def begin(self, record: RunRecord, lease: Lease, resume: bool) -> None:
        now = time.time()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT lease, lease_expires, resumes FROM runs "
                                   "WHERE run_id = ?", (record.run_id,)).fetchone()
                if row is not None and row[0]:
                    holder = Lease(**json.loads(row[0]))
                    if holder.token != lease.token and not holder.is_stale(row[1] or 0, now):
                        raise RunLeased(record.run_id, holder.describe())
                lease_json = json.dumps(attrs.asdict(lease))
                expires = now + self.lease_ttl
                structure = record.structure_json or json.dumps(record.structure)
                if row is None or not resume:
                    conn.execute("DELETE FROM nodes WHERE run_id = ?", (record.run_id,))
                    conn.execute("DELETE FROM data WHERE run_id = ?", (record.run_id,))
                    conn.execute(
                        "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (record.run_id, record.workflow, record.fingerprint, structure,
                         record.inputs, record.status, record.serializer, record.created,
                         record.started, None, 0, lease_json, expires))
                else:
                    conn.execute(
                        "UPDATE runs SET status = 'running', started = ?, finished = NULL, "
                        "resumes = resumes + 1, fingerprint = ?, structure = ?, lease = ?, "
                        "lease_expires = ? WHERE run_id = ?",
                        (record.started, record.fingerprint, structure, lease_json, expires,
                         record.run_id))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._active[record.run_id] = lease

    def write(self, run_id: str, nodes: list[NodeRecord], data: bytes | None) -> None:
        self._check_writer()
        self._queue.put(("write", run_id, nodes, data))

    def finish(self, run_id: str, status: str, finished: float, lease: Lease) -> None:
        self._check_writer()
        self._active.pop(run_id, None)
        self._queue.put(("finish", run_id, status, finished, lease))

    def flush(self) -> None:
        """Wait until everything written so far is committed."""
        self._check_writer()
        done = threading.Event()
        self._queue.put(("flush", done))
        self._hurry.set()
        while not done.wait(0.5):
            self._check_writer()

    def _check_writer(self) -> None:
        if self._writer_error is not None:
            raise StoreError(f"writing to {self.path} failed: {self._writer_error}") from (
                self._writer_error)
        if self._closed:
            raise StoreError(f"the store {self.path} is closed")

    # -- the writer thread ----------------------------------------------------------

    def _write_loop(self) -> None:
        conn = self._connect()
        renew_every = max(self.lease_ttl / 3, 0.05)
        next_renewal = time.monotonic() + renew_every
        try:
            while True:
                try:
                    op = self._queue.get(timeout=max(0.0, next_renewal - time.monotonic()))
                except queue.Empty:
                    op = None
                if op is not None and op[0] == "write" and self.commit_interval > 0:
                    # Group commit: let more writes gather, so that the thread wakes (and
                    # takes the GIL) once per interval rather than once per write. A
                    # flush cuts the wait short.
                    self._hurry.wait(self.commit_interval)
                self._hurry.clear()
                ops = [] if op is None else [op]
                while True:  # take everything queued: one transaction for all of it
                    try:
                        ops.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(o[0] == "stop" for o in ops)
                if time.monotonic() >= next_renewal or stop:
                    next_renewal = time.monotonic() + renew_every
                    renew = True
                else:
                    renew = False
                self._commit(conn, ops, renew)
                for o in ops:
                    if o[0] == "flush":
                        o[1].set()
                if stop:
                    return
        except BaseException as error:  # surfaced to the run by _check_writer
            self._writer_error = error
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, ops: list[tuple[Any, ...]], renew: bool) -> None:
        writes = [o for o in ops if o[0] in ("write", "finish")]
        if not writes and not (renew and self._active):
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            for o in writes:
                if o[0] == "write":
                    _, run_id, nodes, data = o
                    if nodes:
                        conn.executemany(
                            "INSERT OR REPLACE INTO nodes VALUES (?,?,?,?,?,?,?,?,?)",
                            [(run_id, *r) for r in nodes])
                    if data is not None:
                        conn.execute("INSERT OR REPLACE INTO data VALUES (?, ?)",
                                     (run_id, data))
                else:
                    _, run_id, status, finished, lease = o
                    conn.execute(
                        "UPDATE runs SET status = ?, finished = ?, lease = NULL, "
                        "lease_expires = NULL WHERE run_id = ? AND (lease IS NULL OR "
                        "json_extract(lease, '$.token') = ?)",
                        (status, finished, run_id, lease.token))
            if renew:
                expires = time.time() + self.lease_ttl
                for run_id, lease in list(self._active.items()):
                    conn.execute("UPDATE runs SET lease_expires = ? WHERE run_id = ? AND "
                                 "json_extract(lease, '$.token') = ?",
                                 (expires, run_id, lease.token))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # -- reading and tidying --------------------------------------------------------

    def load(self, run_id: str) -> StoredRun | None:
        with self._lock:
            conn = self._conn
            row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?",
                               (run_id,)).fetchone()
            if row is None:
                return None
            nodes = {r[0]: NodeRecord(r[0], r[1], r[2], None if r[3] is None else bytes(r[3]),
                                      r[4], r[5], r[6], r[7])
                     for r in conn.execute(
                         "SELECT node, status, attempts, output, error, traceback, started, "
                         "finished FROM nodes WHERE run_id = ?", (run_id,))}
            data = conn.execute("SELECT snapshot FROM data WHERE run_id = ?",
                                (run_id,)).fetchone()
        return StoredRun(_run(row), nodes, None if data is None else bytes(data[0]))

    def runs(self, workflow: str | None = None, status: str | None = None) -> list[RunRecord]:
        query = f"SELECT {_RUN_COLUMNS} FROM runs"
        where, args = [], []
        if workflow is not None:
            where.append("workflow = ?")
            args.append(workflow)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if where:
            query += " WHERE " + " AND ".join(where)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY created", args).fetchall()
        return [_run(r) for r in rows]

    def delete(self, run_id: str) -> bool:
        self.flush()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM nodes WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM data WHERE run_id = ?", (run_id,))
            gone = conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount
            conn.execute("COMMIT")
        return bool(gone)

    def prune(self, *, older_than: float | None = None, keep: int | None = None,
              statuses: Iterable[str] = ("succeeded", "failed", "cancelled")) -> int:
        return prune(self, older_than, keep, statuses)

    def close(self) -> None:
        if self._closed:
            return
        self._queue.put(("stop",))
        self._hurry.set()
        self._writer.join()
        self._closed = True
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<SQLiteStore {str(self.path)!r}>"
