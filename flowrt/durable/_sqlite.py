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

Fencing (docs/decisions/012-fencing.md): each group commit first moves the lease of
every run it writes for with ``UPDATE runs SET lease_expires = ? WHERE run_id = ? AND
fence = ?``, in the same transaction as the writes; a run whose row did not change
(another process claimed it since: its ``fence`` grew) gets none of its writes, and
its :class:`~flowrt.durable.Claim` fails with :class:`~flowrt.LeaseLost`. A commit
that fails (a full disk...) fails the claims it wrote for, and the writer goes on with
the next one; the final statuses it could not write are written at the next commit
that succeeds.

``synchronous`` is SQLite's: "NORMAL" (the default) survives a crash of the process at
any moment; a power cut or OS crash may roll back what the OS had not yet written to
disk since the last WAL checkpoint (never corrupting the file); "FULL" fsyncs each
group commit, which survives those too, at the price of one fsync per commit.

Schema (version 2; version 1 had no ``fence`` columns)::

    meta(key PRIMARY KEY, value)                 app = flowrt, schema_version = 2
    runs(run_id PRIMARY KEY, workflow, fingerprint, structure JSON, inputs BLOB, status,
         serializer, created, started, finished, resumes, lease JSON, lease_expires,
         fence)
    nodes(run_id, node, status, attempts, output BLOB, error, traceback, started,
          finished, fence, PRIMARY KEY (run_id, node))
    data(run_id PRIMARY KEY, snapshot BLOB)
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from ..errors import LeaseLost, StoreError
from ._serialize import Serializer, get_serializer
from ._store import (
    Claim,
    Decide,
    Lease,
    NodeRecord,
    RunRecord,
    StoredRun,
    prune,
    refuse_live_holder,
    restarted,
)

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = 2
APP = "flowrt"

_SCHEMA = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, fingerprint TEXT NOT NULL,
        structure TEXT NOT NULL, inputs BLOB NOT NULL, status TEXT NOT NULL,
        serializer TEXT NOT NULL, created REAL NOT NULL, started REAL NOT NULL,
        finished REAL, resumes INTEGER NOT NULL DEFAULT 0, lease TEXT, lease_expires REAL,
        fence INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX runs_by_workflow ON runs (workflow, created)",
    """CREATE TABLE nodes (
        run_id TEXT NOT NULL, node TEXT NOT NULL, status TEXT NOT NULL,
        attempts INTEGER NOT NULL, output BLOB, error TEXT, traceback TEXT,
        started REAL, finished REAL, fence INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, node)) WITHOUT ROWID""",
    "CREATE TABLE data (run_id TEXT PRIMARY KEY, snapshot BLOB)",
]

#: schema_version -> statements that bring a store from that version to the next
_MIGRATIONS: dict[int, list[str]] = {
    # 2: fencing tokens (the run's latest, and the one each node record was written by)
    1: ["ALTER TABLE runs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE nodes ADD COLUMN fence INTEGER NOT NULL DEFAULT 0"],
}

#: the columns of each table, by schema version
_COLUMNS_V1 = {
    "meta": ("key", "value"),
    "runs": ("run_id", "workflow", "fingerprint", "structure", "inputs", "status",
             "serializer", "created", "started", "finished", "resumes", "lease",
             "lease_expires"),
    "nodes": ("run_id", "node", "status", "attempts", "output", "error", "traceback",
              "started", "finished"),
    "data": ("run_id", "snapshot"),
}
_COLUMNS = {1: _COLUMNS_V1, 2: {**_COLUMNS_V1, "runs": (*_COLUMNS_V1["runs"], "fence"),
                                "nodes": (*_COLUMNS_V1["nodes"], "fence")}}

_RUN_COLUMNS = ("run_id, workflow, fingerprint, structure, inputs, status, serializer, "
                "created, started, finished, resumes, lease, lease_expires, fence")
_NODE_COLUMNS = ("node, status, attempts, output, error, traceback, started, finished, "
                 "fence")

_T = TypeVar("_T")


def _primary(error: sqlite3.Error) -> int:
    return getattr(error, "sqlite_errorcode", 0) & 0xFF


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open; never mask the error that brought us here
    (SQLite has already rolled back after an I/O error: ROLLBACK would then fail)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _describe(error: BaseException) -> str:
    """An SQLite error as a user should read it: the cause, and what to check."""
    if not isinstance(error, sqlite3.Error):
        return f"{type(error).__name__}: {error}"
    name = getattr(error, "sqlite_errorname", "")
    text = f"{error} ({name})" if name else str(error)
    code = _primary(error)
    if code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR):
        text += "; is the disk full, or the file over a size limit?"
    elif code == sqlite3.SQLITE_BUSY:
        text += "; another process held the store's write lock for longer than busy_timeout"
    elif code == sqlite3.SQLITE_READONLY:
        text += "; the file (or its directory) is read-only"
    return text


def _blob(value: Any) -> Any:
    """A BLOB column's value as bytes (SQLite does not enforce column types: text put
    there by another tool is read as its UTF-8; anything else is left for the reader
    to find damaged)."""
    if type(value) is bytes or value is None:
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return value


def _record(row: tuple[Any, ...], where: Path) -> RunRecord:
    """The RunRecord of a ``runs`` row (``_RUN_COLUMNS``); StoreError when damaged."""
    run_id = row[0]
    try:
        structure = json.loads(row[3])
        if not isinstance(structure, dict) or not all(
            isinstance(deps, list) and all(isinstance(d, str) for d in deps)
            for deps in structure.values()
        ):
            raise ValueError("not a mapping of node names to lists of names")
    except (TypeError, ValueError) as error:
        raise StoreError(f"run {run_id!r} in {where} is damaged: its structure is not "
                         f"what flowrt writes ({error})") from None
    owner = None
    if row[11]:
        try:
            owner = Lease.from_json(row[11])
        except ValueError as error:
            raise StoreError(f"run {run_id!r} in {where} is damaged: {error}") from None
    inputs = _blob(row[4])
    if type(inputs) is not bytes:
        raise StoreError(f"run {run_id!r} in {where} is damaged: its inputs are not a blob")
    return RunRecord(run_id, row[1], row[2], structure, inputs, row[5], row[6], row[7],
                     row[8], row[9], row[10], row[3], owner, row[12], row[13])


class SQLiteStore:
    """Durable runs in the SQLite file at ``path`` (created if missing, mode 0600).

    Args:
        path: the database file; several processes on one machine may share it.
        serializer: ``"json"`` (the default), ``"pickle"`` (trusted files only: reading
            a pickle runs code) or a serializer object.
        synchronous: SQLite's setting: ``"NORMAL"`` (the default: a process crash
            loses nothing committed), ``"FULL"`` (an fsync per group commit, survives
            power loss), ``"EXTRA"`` or ``"OFF"``.
        lease_ttl: seconds a run's lease lasts without renewal (the writer renews it
            every third of that); a holder that stopped renewing it is taken over after.
        busy_timeout: seconds to wait for another process's write lock.
        commit_interval: seconds a group commit waits to gather node records.

    Raises:
        StoreError: the file is not a flowrt store (another application's database, a
            corrupt file, a file that is not SQLite), is a damaged one (a table or
            column missing, an unknown schema version), was written by a newer flowrt,
            or cannot be written (a read-only file or directory) -- left untouched.
        ValueError: an unknown ``synchronous`` or serializer name, a ``lease_ttl``
            that is not positive.

    Close it (``store.close()`` or ``with SQLiteStore(...) as store``) when done.
    """

    def __init__(self, path: str | os.PathLike[str], *, serializer: str | Serializer = "json",
                 synchronous: str = "NORMAL", lease_ttl: float = 60.0,
                 busy_timeout: float = 10.0, commit_interval: float = 0.005) -> None:
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL, EXTRA or OFF, "
                             f"got {synchronous!r}")
        if not lease_ttl > 0:
            raise ValueError(f"lease_ttl must be > 0 seconds, got {lease_ttl!r}")
        self.path = Path(path)
        self.serializer = get_serializer(serializer)
        self.synchronous = synchronous.upper()
        self.lease_ttl = lease_ttl
        self.commit_interval = commit_interval
        self._busy = busy_timeout
        self._check_and_create()
        try:
            self._conn = self._connect()
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the store {self.path}: {_describe(error)}") from None
        self._lock = threading.Lock()  # guards self._conn (used from worker threads)
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._active: dict[str, Claim] = {}  # runs whose lease the writer renews
        #: final statuses whose commit failed: written at the next commit that succeeds
        self._deferred: list[tuple[Any, ...]] = []
        self._writer_error: BaseException | None = None
        self._hurry = threading.Event()  # set to commit now, without the group wait
        self._closed = False
        self._writer = threading.Thread(target=self._write_loop, name=f"flowrt-store:{path}",
                                        daemon=True)
        self._writer.start()

    # -- opening --------------------------------------------------------------------

    def _check_and_create(self) -> None:
        """Refuse a file that is not ours, or a damaged one, before anything writes to it;
        create or migrate the schema."""
        path = self.path
        try:
            exists = path.exists() and path.stat().st_size > 0
            if path.is_dir():
                raise StoreError(f"{path} is a directory, not a flowrt store")
            if not exists:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                os.close(fd)
                os.chmod(path, 0o600)  # whatever the umask says
            else:
                with open(path, "rb") as f:
                    header = f.read(16)
                if header != b"SQLite format 3\x00":
                    raise StoreError(f"{path} is not a flowrt store: it is not an SQLite "
                                     "database")
        except OSError as error:
            raise StoreError(f"cannot open the store {path}: "
                             f"{error.strerror or error}") from None
        version = self._look()
        if version != SCHEMA_VERSION:
            self._retry_busy(self._create_or_migrate)
        self._check_writable()
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            if side.exists():
                with contextlib.suppress(OSError):
                    os.chmod(side, 0o600)

    def _look(self) -> int:
        """Read the file's tables and meta without writing; its schema version (0: a new
        store to create). StoreError for a file that is not a sound flowrt store."""
        # mode=ro, not immutable=1: this connection reads through the WAL and takes
        # SQLite's locks like any other, so it sees a consistent store while other
        # processes write to it (immutable=1 reads the main file as if nobody did, and
        # saw torn pages there).
        try:
            ro = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                 timeout=self._busy)
        except sqlite3.Error as error:
            raise self._open_error(error) from None
        try:
            tables = {r[0] for r in ro.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                return 0
            meta = dict(ro.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
            if meta.get("app") != APP:
                raise StoreError(f"{self.path} is not a flowrt store: it is an SQLite "
                                 "database of something else (tables: "
                                 f"{', '.join(sorted(tables))})")
            version = self._version(meta)
            self._check_columns(ro, version)
            return version
        except sqlite3.Error as error:
            raise self._open_error(error) from None
        finally:
            ro.close()

    def _open_error(self, error: sqlite3.Error) -> StoreError:
        code = _primary(error)
        if code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
            return StoreError(f"{self.path} is not a flowrt store: {error}")
        if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY):
            problem = self._not_writable()
            if problem:
                return StoreError(f"cannot open the store {self.path}: {problem}")
        return StoreError(f"cannot open the store {self.path}: {_describe(error)}")

    def _not_writable(self) -> str | None:
        """Why this process cannot write the store, or None when it can."""
        folder = self.path.resolve().parent
        if not os.access(folder, os.W_OK | os.X_OK):
            return (f"its directory {folder} is not writable, and SQLite needs to create "
                    f"{self.path.name}-wal and {self.path.name}-shm beside the store")
        if not os.access(self.path, os.R_OK | os.W_OK):
            return "the file is not readable and writable by this user"
        return None

    def _check_writable(self) -> None:
        problem = self._not_writable()
        if problem is not None:
            raise StoreError(f"cannot use the store {self.path}: {problem}")

    def _version(self, meta: dict[str, str]) -> int:
        text = meta.get("schema_version")
        try:
            version = int(text) if text is not None else -1
        except ValueError:
            version = -1
        if version < 0:
            raise StoreError(f"{self.path} is a damaged flowrt store: its schema_version is "
                             f"{text!r}, not a version number")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer flowrt (store schema "
                             f"{version}; this flowrt reads up to {SCHEMA_VERSION})")
        if version not in _COLUMNS:
            raise StoreError(f"{self.path} is a damaged flowrt store: schema version "
                             f"{version} is none that flowrt ever wrote (this flowrt reads "
                             f"versions 1 to {SCHEMA_VERSION})")
        return version

    def _check_columns(self, conn: sqlite3.Connection, version: int) -> None:
        for table, columns in _COLUMNS[version].items():
            found = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
            if not found:
                raise StoreError(f"{self.path} is a damaged flowrt store: its table "
                                 f"{table!r} is missing")
            missing = [c for c in columns if c not in found]
            if missing:
                raise StoreError(f"{self.path} is a damaged flowrt store: table {table!r} "
                                 f"has no column {', '.join(map(repr, missing))}")

    def _retry_busy(self, step: Callable[[], _T]) -> _T:
        """``step()``, again while another process holds the lock, up to busy_timeout.

        SQLite's busy handler does not cover everything (switching to WAL mode returns
        SQLITE_BUSY at once while another connection creates the same store).
        """
        deadline = time.monotonic() + self._busy
        pause = 0.001
        while True:
            try:
                return step()
            except sqlite3.Error as error:
                if _primary(error) not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or (
                    time.monotonic() >= deadline
                ):
                    raise self._open_error(error) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _create_or_migrate(self) -> None:
        conn = sqlite3.connect(self.path, timeout=self._busy, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have created or migrated it since the look.
                tables = {r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'")}
                if not tables:
                    os.chmod(self.path, 0o600)  # an empty file becoming a store: ours only
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.executemany("INSERT INTO meta VALUES (?, ?)",
                                     [("app", APP), ("schema_version", str(SCHEMA_VERSION))])
                else:
                    meta = dict(conn.execute("SELECT key, value FROM meta")) \
                        if "meta" in tables else {}
                    if meta.get("app") != APP:
                        raise StoreError(f"{self.path} is not a flowrt store")
                    version = self._version(meta)
                    self._check_columns(conn, version)
                    while version < SCHEMA_VERSION:
                        for statement in _MIGRATIONS[version]:
                            conn.execute(statement)
                        version += 1
                        conn.execute("UPDATE meta SET value = ? WHERE key = "
                                     "'schema_version'", (str(version),))
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        finally:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[sqlite3.Connection]:
        """The shared connection, locked; SQLite errors become StoreErrors."""
        if self._closed:
            raise StoreError(f"the store {self.path} is closed")
        try:
            with self._lock:
                yield self._conn
        except sqlite3.Error as error:
            raise StoreError(f"{what} {self.path} failed: {_describe(error)}") from error

    # -- runs -----------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._reading("reading") as conn:
            row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?",
                               (run_id,)).fetchone()
        return None if row is None else _record(row, self.path)

    def _load(self, conn: sqlite3.Connection, record: RunRecord) -> StoredRun:
        run_id = record.run_id
        nodes = {r[0]: NodeRecord(r[0], r[1], r[2], _blob(r[3]), r[4], r[5], r[6], r[7], r[8])
                 for r in conn.execute(f"SELECT {_NODE_COLUMNS} FROM nodes WHERE run_id = ?",
                                       (run_id,))}
        data = conn.execute("SELECT snapshot FROM data WHERE run_id = ?", (run_id,)).fetchone()
        return StoredRun(record, nodes, None if data is None else _blob(data[0]),
                         self.serializer)

    def claim(self, run_id: str, lease: Lease, decide: Decide
              ) -> tuple[StoredRun | None, Claim | None]:
        """Read run ``run_id``, let ``decide`` check it, and take it: one transaction.

        See :class:`~flowrt.MemoryStore` for the contract. Nothing is written unless
        ``decide`` returns a record; the lease check, the read and the write happen
        under SQLite's write lock, so two processes claiming one run at once are served
        one after the other, the second seeing what the first wrote.
        """
        if self._deferred:
            self.flush()  # a final status still to write may be this run's
        with self._reading("claiming a run in") as conn:
            now = time.time()
            valid_until = time.monotonic() + self.lease_ttl
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?",
                                   (run_id,)).fetchone()
                old = stored = None
                if row is not None:
                    old = _record(row, self.path)
                    refuse_live_holder(old, lease, now)
                    stored = self._load(conn, old)
                record = decide(stored)
                if record is None:
                    conn.execute("ROLLBACK")
                    return stored, None
                expires = now + self.lease_ttl
                if old is None:
                    fence = 1
                    conn.execute(
                        "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (run_id, record.workflow, record.fingerprint,
                         record.structure_json or json.dumps(record.structure),
                         record.inputs, "running", record.serializer, record.created,
                         record.started, None, 0, lease.to_json(), expires, fence))
                else:
                    new = restarted(old, record, lease, expires)
                    fence = new.fence
                    conn.execute(
                        "UPDATE runs SET status = 'running', started = ?, finished = NULL, "
                        "resumes = ?, fingerprint = ?, structure = ?, lease = ?, "
                        "lease_expires = ?, fence = ? WHERE run_id = ?",
                        (new.started, new.resumes, new.fingerprint,
                         new.structure_json or json.dumps(new.structure), lease.to_json(),
                         expires, fence, run_id))
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        claim = Claim(run_id, lease, fence, valid_until)
        self._active[run_id] = claim
        return stored, claim

    def write(self, claim: Claim, nodes: list[NodeRecord], data: bytes | None) -> None:
        self._check_writer()
        self._queue.put(("write", claim, nodes, data))

    def finish(self, claim: Claim, status: str, finished: float) -> None:
        self._check_writer()
        if self._active.get(claim.run_id) is claim:
            del self._active[claim.run_id]
        self._queue.put(("finish", claim, status, finished))

    def renew(self, claim: Claim) -> bool:
        """Extend ``claim``'s lease now (one transaction); False when it is lost, or the
        store cannot write (the claim then says why)."""
        if claim.error is not None:
            return False
        try:
            with self._reading("renewing a lease in") as conn:
                now = time.time()
                valid_until = time.monotonic() + self.lease_ttl
                conn.execute("BEGIN IMMEDIATE")
                try:
                    held = conn.execute(
                        "UPDATE runs SET lease_expires = ? WHERE run_id = ? AND fence = ?",
                        (now + self.lease_ttl, claim.run_id, claim.fence)).rowcount
                    holder = None if held else self._holder(conn, claim.run_id)
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
        except StoreError as error:
            claim.fail(error)
            return False
        if holder is not None:
            claim.fail(LeaseLost(claim.run_id, holder))
            return False
        claim.extend(valid_until)
        return True

    def flush(self) -> None:
        """Wait until everything written so far is committed (or failed: a write that
        failed fails its claim, which says why)."""
        self._check_writer()
        done = threading.Event()
        self._queue.put(("flush", done))
        self._hurry.set()
        while not done.wait(0.5):
            self._check_writer()

    def _check_writer(self) -> None:
        if self._writer_error is not None:
            raise StoreError(f"writing to {self.path} failed: "
                             f"{_describe(self._writer_error)}") from self._writer_error
        if self._closed:
            raise StoreError(f"the store {self.path} is closed")

    # -- the writer thread ----------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            conn = self._connect()
        except BaseException as error:
            self._writer_error = error
            return
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
        except BaseException as error:  # a bug: surfaced to the runs by _check_writer
            self._writer_error = error
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, ops: list[tuple[Any, ...]], renew: bool) -> None:
        """Commit ``ops`` (and the deferred final statuses) in one transaction, each
        claim's writes only while its fence is the run's; renew the leases if asked."""
        writes = [o for o in ops if o[0] in ("write", "finish")]
        deferred = self._deferred
        if not writes and not deferred and not (renew and self._active):
            return
        now = time.time()
        valid_until = time.monotonic() + self.lease_ttl
        expires = now + self.lease_ttl
        held: dict[Claim, bool] = {}  # claim -> whether its fence is the run's

        def holds(claim: Claim) -> bool:
            ok = held.get(claim)
            if ok is None:
                ok = held[claim] = conn.execute(
                    "UPDATE runs SET lease_expires = ? WHERE run_id = ? AND fence = ?",
                    (expires, claim.run_id, claim.fence)).rowcount == 1
            return ok

        try:
            conn.execute("BEGIN IMMEDIATE")
            for o in deferred + writes:
                claim = o[1]
                if o[0] == "write":
                    # after a failed write, nothing more of the claim: what is stored
                    # must stay a prefix of what happened
                    if claim.error is not None or not holds(claim):
                        continue
                    _, _, nodes, data = o
                    if nodes:
                        run_id, fence = claim.run_id, claim.fence
                        conn.executemany(
                            "INSERT OR REPLACE INTO nodes VALUES (?,?,?,?,?,?,?,?,?,?)",
                            [(run_id, *r[:8], fence) for r in nodes])
                    if data is not None:
                        conn.execute("INSERT OR REPLACE INTO data VALUES (?, ?)",
                                     (claim.run_id, data))
                elif not claim.lost and holds(claim):
                    _, _, status, finished = o
                    conn.execute(
                        "UPDATE runs SET status = ?, finished = ?, lease = NULL, "
                        "lease_expires = NULL WHERE run_id = ? AND fence = ?",
                        (status, finished, claim.run_id, claim.fence))
            if renew:
                for claim in list(self._active.values()):
                    if claim.error is None:
                        holds(claim)
            refused = {c: self._holder(conn, c.run_id) for c, ok in held.items() if not ok}
            conn.execute("COMMIT")
        except Exception as error:
            _rollback(conn)
            # This batch is lost: its claims stop (what they wrote next would leave a
            # gap), their final statuses wait for the next commit that succeeds.
            failure = StoreError(f"writing to {self.path} failed: {_describe(error)}")
            failure.__cause__ = error
            for o in writes:
                if o[0] == "write":
                    o[1].fail(failure)
            self._deferred = deferred + [o for o in writes if o[0] == "finish"]
            return
        self._deferred = []
        for claim, ok in held.items():
            if ok:
                claim.extend(valid_until)
        for claim, holder in refused.items():
            claim.fail(LeaseLost(claim.run_id, holder))

    @staticmethod
    def _holder(conn: sqlite3.Connection, run_id: str) -> str:
        """Who holds ``run_id`` now (for the message of a refused write)."""
        row = conn.execute("SELECT lease, status FROM runs WHERE run_id = ?",
                           (run_id,)).fetchone()
        if row is None:
            return "nobody (the run was deleted)"
        if row[0]:
            try:
                return Lease.from_json(row[0]).describe()
            except ValueError:
                pass
        return f"another process (the run is {row[1]} since)"

    # -- reading and tidying --------------------------------------------------------

    def load(self, run_id: str) -> StoredRun | None:
        with self._reading("reading") as conn:
            conn.execute("BEGIN")  # one snapshot for the run and its nodes
            try:
                row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?",
                                   (run_id,)).fetchone()
                stored = None if row is None else self._load(conn, _record(row, self.path))
            finally:
                _rollback(conn)
        return stored

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
        with self._reading("reading") as conn:
            rows = conn.execute(query + " ORDER BY created", args).fetchall()
        return [_record(r, self.path) for r in rows]

    def delete(self, run_id: str) -> bool:
        self.flush()
        with self._reading("deleting a run from") as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM nodes WHERE run_id = ?", (run_id,))
                conn.execute("DELETE FROM data WHERE run_id = ?", (run_id,))
                gone = conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
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

