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

The work queue (docs/decisions/013-queue.md) is the ``runs`` table itself: a run has a
``queue`` and a ``due`` time; :meth:`SQLiteStore.claim_next` picks the oldest due one
(an index on ``due``) and claims it in the same ``BEGIN IMMEDIATE`` transaction, so two
workers never take one run. Signals and schedules have tables of their own.

Schema (version 7; version 1 had no ``fence`` columns, version 2 no queue, signals or
schedules, version 3 no cache, version 4 no ``trace``, version 5 no items, version 6 one
``items`` row per item)::

    meta(key PRIMARY KEY, value)                 app = flowrt, schema_version = 7
    runs(run_id PRIMARY KEY, workflow, fingerprint, structure JSON, inputs BLOB, status,
         serializer, created, started, finished, resumes, lease JSON, lease_expires,
         fence, queue, due, recoveries, waits JSON, error, trace)
    nodes(run_id, node, status, attempts, output BLOB, error, traceback, started,
          finished, fence, due, PRIMARY KEY (run_id, node))
    data(run_id PRIMARY KEY, snapshot BLOB)
    signals(seq INTEGER PRIMARY KEY, run_id, name, payload BLOB, sent, signal_id,
            UNIQUE (run_id, signal_id))
    schedules(name PRIMARY KEY, workflow, inputs BLOB, serializer, next_due, cron, every,
              timezone, catch_up, queue, last_slot, created)
    cache(key PRIMARY KEY, value BLOB, serializer, created, expires)
    items(run_id, node, item, status, attempts, output BLOB, error, traceback, started,
          finished, fence, PRIMARY KEY (run_id, node, item))   item -1: the item list
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import sqlite3
import struct
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from itertools import groupby, repeat
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ..errors import LeaseLost, RunLeased, StoreError, describe_error
from ._serialize import Serializer, get_serializer
from ._store import (
    DEFAULT_QUEUE,
    QUEUED,
    RUNNING,
    WAIT_KINDS,
    WAITING,
    Claim,
    Decide,
    ItemRecord,
    Lease,
    NodeRecord,
    RunRecord,
    ScheduleRecord,
    SignalRecord,
    StoredRun,
    WriterFlushes,
    cancelled,
    dead_letter_reason,
    holder_gone,
    is_structure,
    lost_claim_error,
    not_found,
    park_due,
    prune,
    queued_run_row,
    refuse_live_holder,
    refuse_signal,
    restarted,
    waits_json,
    woken,
)

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = 7
APP = "flowrt"

_SCHEMA = [
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE runs (
        run_id TEXT PRIMARY KEY, workflow TEXT NOT NULL, fingerprint TEXT NOT NULL,
        structure TEXT NOT NULL, inputs BLOB NOT NULL, status TEXT NOT NULL,
        serializer TEXT NOT NULL, created REAL NOT NULL, started REAL NOT NULL,
        finished REAL, resumes INTEGER NOT NULL DEFAULT 0, lease TEXT, lease_expires REAL,
        fence INTEGER NOT NULL DEFAULT 0, queue TEXT, due REAL,
        recoveries INTEGER NOT NULL DEFAULT 0, waits TEXT, error TEXT)""",
    "CREATE INDEX runs_by_workflow ON runs (workflow, created)",
    """CREATE TABLE nodes (
        run_id TEXT NOT NULL, node TEXT NOT NULL, status TEXT NOT NULL,
        attempts INTEGER NOT NULL, output BLOB, error TEXT, traceback TEXT,
        started REAL, finished REAL, fence INTEGER NOT NULL DEFAULT 0, due REAL,
        PRIMARY KEY (run_id, node)) WITHOUT ROWID""",
    "CREATE TABLE data (run_id TEXT PRIMARY KEY, snapshot BLOB)",
]

#: version 3: the work queue, signals and schedules (docs/decisions/013-queue.md)
_QUEUE_SCHEMA = [
    "CREATE INDEX runs_by_due ON runs (due) WHERE due IS NOT NULL",
    "CREATE INDEX runs_held ON runs (status) WHERE status = 'running' AND queue IS NOT NULL",
    """CREATE TABLE signals (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, name TEXT NOT NULL,
        payload BLOB NOT NULL, sent REAL NOT NULL, signal_id TEXT)""",
    "CREATE INDEX signals_by_run ON signals (run_id, seq)",
    "CREATE UNIQUE INDEX signals_by_id ON signals (run_id, signal_id) "
    "WHERE signal_id IS NOT NULL",
    """CREATE TABLE schedules (
        name TEXT PRIMARY KEY, workflow TEXT NOT NULL, inputs BLOB NOT NULL,
        serializer TEXT NOT NULL, next_due REAL NOT NULL, cron TEXT, every REAL,
        timezone TEXT NOT NULL, catch_up INTEGER NOT NULL, queue TEXT NOT NULL,
        last_slot TEXT, created REAL NOT NULL)""",
]
_SCHEMA += _QUEUE_SCHEMA

# -- caching: version 4 (docs/caching.md) --
#: cached node outputs, by key (docs/decisions/021-cache-keys.md)
_CACHE_SCHEMA = [
    """CREATE TABLE cache (
        key TEXT PRIMARY KEY, value BLOB NOT NULL, serializer TEXT NOT NULL,
        created REAL NOT NULL, expires REAL) WITHOUT ROWID""",
]
_SCHEMA += _CACHE_SCHEMA
# -- version 5: the trace a run's later starts link to (RunRecord.trace) -------------
_TRACE_SCHEMA = ["ALTER TABLE runs ADD COLUMN trace TEXT"]
_SCHEMA += _TRACE_SCHEMA

# -- version 6: the items of mapped nodes (docs/mapping.md) -----------------------------
#: one row per item that reached a final status, plus one (item -1, status "listed",
#: attempts = the item count) per mapped node whose item list is known
_ITEMS_SCHEMA = [
    """CREATE TABLE items (
        run_id TEXT NOT NULL, node TEXT NOT NULL, item INTEGER NOT NULL,
        status TEXT NOT NULL, attempts INTEGER NOT NULL, output BLOB, error TEXT,
        traceback TEXT, started REAL, finished REAL, fence INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, node, item)) WITHOUT ROWID""",
]

# -- version 7: item records packed per batch (docs/decisions/029-item-batches.md) ---------
#: one row per node per group commit of a run's item records, in write order (``seq``):
#: the records' fields packed column-wise (_pack_items); the last record of an item wins
_ITEM_BATCHES_SCHEMA = [
    """CREATE TABLE item_batches (
        seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, node TEXT NOT NULL,
        fence INTEGER NOT NULL DEFAULT 0, count INTEGER NOT NULL, items BLOB NOT NULL,
        statuses TEXT NOT NULL, codes BLOB NOT NULL, attempts BLOB NOT NULL,
        started BLOB, finished BLOB, lengths BLOB, outputs BLOB, errors TEXT)""",
    "CREATE INDEX item_batches_by_run ON item_batches (run_id)",
]
_SCHEMA += _ITEM_BATCHES_SCHEMA

#: a migration step: an SQL statement, or a function of the migrating connection
_Step = str | Callable[[sqlite3.Connection], None]

#: schema_version -> statements that bring a store from that version to the next
_MIGRATIONS: dict[int, list[_Step]] = {
    # 2: fencing tokens (the run's latest, and the one each node record was written by)
    1: ["ALTER TABLE runs ADD COLUMN fence INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE nodes ADD COLUMN fence INTEGER NOT NULL DEFAULT 0"],
    # 3: the work queue, waits, signals and schedules
    2: ["ALTER TABLE runs ADD COLUMN queue TEXT",
        "ALTER TABLE runs ADD COLUMN due REAL",
        "ALTER TABLE runs ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE runs ADD COLUMN waits TEXT",
        "ALTER TABLE runs ADD COLUMN error TEXT",
        "ALTER TABLE nodes ADD COLUMN due REAL",
        *_QUEUE_SCHEMA],
    # -- caching --
    # 4: cached node outputs
    3: [*_CACHE_SCHEMA],
    # 5: the trace a run's later starts link to
    4: [*_TRACE_SCHEMA],
    # 6: the items of mapped nodes
    5: [*_ITEMS_SCHEMA],
    # 7: item records packed per batch (the rows of version 6 become batches)
    6: [*_ITEM_BATCHES_SCHEMA, lambda conn: _pack_item_rows(conn), "DROP TABLE items"],
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
_COLUMNS_V2 = {**_COLUMNS_V1, "runs": (*_COLUMNS_V1["runs"], "fence"),
               "nodes": (*_COLUMNS_V1["nodes"], "fence")}
_COLUMNS_V3 = {
    **_COLUMNS_V2,
    "runs": (*_COLUMNS_V2["runs"], "queue", "due", "recoveries", "waits", "error"),
    "nodes": (*_COLUMNS_V2["nodes"], "due"),
    "signals": ("seq", "run_id", "name", "payload", "sent", "signal_id"),
    "schedules": ("name", "workflow", "inputs", "serializer", "next_due", "cron", "every",
                  "timezone", "catch_up", "queue", "last_slot", "created"),
}
# -- caching --
_COLUMNS_V4 = {**_COLUMNS_V3,
               "cache": ("key", "value", "serializer", "created", "expires")}
# -- OpenTelemetry --
_COLUMNS_V5 = {**_COLUMNS_V4, "runs": (*_COLUMNS_V4["runs"], "trace")}
# -- maps --
_COLUMNS_V6 = {
    **_COLUMNS_V5,
    "items": ("run_id", "node", "item", "status", "attempts", "output", "error", "traceback",
              "started", "finished", "fence"),
}
_COLUMNS_V7 = {
    **{t: c for t, c in _COLUMNS_V6.items() if t != "items"},
    "item_batches": ("seq", "run_id", "node", "fence", "count", "items", "statuses",
                     "codes", "attempts", "started", "finished", "lengths", "outputs",
                     "errors"),
}
_COLUMNS = {1: _COLUMNS_V1, 2: _COLUMNS_V2, 3: _COLUMNS_V3, 4: _COLUMNS_V4,
            5: _COLUMNS_V5, 6: _COLUMNS_V6, 7: _COLUMNS_V7}
#: what _load reads of a batch (_unpack_items), and what _commit writes
_BATCH_COLUMNS = ("node, count, items, statuses, codes, attempts, started, finished, "
                  "lengths, outputs, errors")
_INSERT_BATCH = ("INSERT INTO item_batches (run_id, fence, node, count, items, statuses, "
                 "codes, attempts, started, finished, lengths, outputs, errors) "
                 "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")

_RUN_COLUMNS = ("run_id, workflow, fingerprint, structure, inputs, status, serializer, "
                "created, started, finished, resumes, lease, lease_expires, fence, queue, "
                "due, recoveries, waits, error, trace")
_NODE_COLUMNS = ("node, status, attempts, output, error, traceback, started, finished, "
                 "fence, due")
_SIGNAL_COLUMNS = "run_id, name, payload, sent, signal_id, seq"
_SCHEDULE_COLUMNS = ("name, workflow, inputs, serializer, next_due, cron, every, timezone, "
                     "catch_up, queue, last_slot, created")

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


def _blob_at(row: tuple[Any, ...], k: int) -> tuple[Any, ...]:
    """``row`` with its column ``k`` made a blob (:func:`_blob`)."""
    return (*row[:k], _blob(row[k]), *row[k + 1:])


def _record(row: tuple[Any, ...], where: Path) -> RunRecord:
    """The RunRecord of a ``runs`` row (``_RUN_COLUMNS``); StoreError when damaged."""
    run_id = row[0]
    try:
        structure = json.loads(row[3])
        if not is_structure(structure):
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
    waits: dict[str, str] = {}
    if row[17]:
        try:
            waits = json.loads(row[17])
            if not isinstance(waits, dict) or not all(
                    isinstance(k, str) and v in WAIT_KINDS for k, v in waits.items()):
                raise ValueError("not a mapping of node names to wait kinds")
        except (TypeError, ValueError) as error:
            raise StoreError(f"run {run_id!r} in {where} is damaged: its wait nodes are not "
                             f"what flowrt writes ({error})") from None
    return RunRecord(run_id, row[1], row[2], structure, inputs, row[5], row[6], row[7],
                     row[8], row[9], row[10], row[3], owner, row[12], row[13], row[14],
                     row[15], row[16], waits, row[18], row[19])


def _signal(row: tuple[Any, ...]) -> SignalRecord:
    return SignalRecord(row[0], row[1], _blob(row[2]), row[3], row[4], row[5])


def _schedule(row: tuple[Any, ...]) -> ScheduleRecord:
    return ScheduleRecord(row[0], row[1], _blob(row[2]), row[3], row[4], row[5], row[6],
                          row[7], bool(row[8]), row[9], row[10], row[11])


# -- item records packed per batch (schema 7) ------------------------------------------
#
# A durable map writes one record per item. As one row each (schema 6) SQLite's insert
# cost ~5 us per item in the writer thread, holding the GIL while it bound 11
# parameters, and that CPU competed with the event loop: the durable map of issue 13 ran
# 1.14-1.21x its time in memory (docs/decisions/029-item-batches.md). A batch packs the
# records of one node of one write column by column: the bytes are built by C loops
# (struct, bytes.join, tuple.count), and SQLite steps once per batch. No pickle or
# marshal: reading a store must never run code, and the format must outlive this Python.
# Integers are 4-byte and times 8-byte IEEE floats, little-endian whatever the machine.

_NAN = float("nan")


def _floats(values: tuple[float | None, ...], n: int) -> bytes | None:
    """``values`` as ``<d`` floats, NaN for None; None when every one is None."""
    missing = values.count(None)
    if missing == n:
        return None
    if missing:
        values = tuple(_NAN if v is None else v for v in values)
    return struct.pack(f"<{n}d", *values)


def _batch_row(run_id: str, fence: int, columns: list[tuple[Any, ...]]
               ) -> tuple[Any, ...]:
    """The ``item_batches`` row (``_INSERT_BATCH``'s order) of one node's records, given
    as columns (the records transposed)."""
    nodes, index, status, attempts, output, error, tb, started, finished = columns
    n = len(index)
    ints = f"<{n}i"
    names = list(dict.fromkeys(status))  # the statuses present, first seen first
    if len(names) == 1:
        codes = bytes(n)
    else:
        code = {name: k for k, name in enumerate(names)}
        codes = bytes(map(code.__getitem__, status))
    lengths = outputs = None
    absent = output.count(None)
    if not absent:
        lengths = struct.pack(ints, *map(len, output))
        outputs = b"".join(output)
    elif absent < n:
        lengths = struct.pack(ints, *[-1 if o is None else len(o) for o in output])
        outputs = b"".join([o for o in output if o is not None])
    errors = None
    if error.count(None) < n or tb.count(None) < n:
        errors = json.dumps([[k, e, t] for k, (e, t) in enumerate(zip(error, tb, strict=True))
                             if e is not None or t is not None])
    return (run_id, fence, nodes[0], n, struct.pack(ints, *index), ",".join(names), codes,
            struct.pack(ints, *attempts), _floats(started, n), _floats(finished, n),
            lengths, outputs, errors)


def _pack_items(run_id: str, fence: int, records: Sequence[ItemRecord]
                ) -> list[tuple[Any, ...]]:
    """The ``item_batches`` rows of ``records``: one per node, each node's records in
    the order given (a later record of an item replaces an earlier one when read)."""
    columns = list(zip(*records, strict=True))
    if len(set(columns[0])) == 1:  # the usual write: one map's items
        return [_batch_row(run_id, fence, columns)]
    by_node: dict[str, list[ItemRecord]] = {}
    for r in records:
        by_node.setdefault(r[0], []).append(r)
    return [_batch_row(run_id, fence, list(zip(*rs, strict=True))) for rs in by_node.values()]


def _unpack_items(row: tuple[Any, ...], into: dict[str, dict[int, ItemRecord]]) -> None:
    """Read a batch (``_BATCH_COLUMNS``) into ``into`` (node -> item -> record), each
    record replacing any earlier one of its item. ValueError when it is damaged."""
    node, n, items, statuses, codes, attempts, started, finished, lengths, outputs, \
        errors = row
    try:
        ints = f"<{n}i"
        index = struct.unpack(ints, _blob(items))
        names = statuses.split(",")
        status = [names[c] for c in _blob(codes)]
        tries = struct.unpack(ints, _blob(attempts))
        starts: Iterable[float | None] = repeat(None)
        if started is not None:
            starts = [None if v != v else v for v in struct.unpack(f"<{n}d", _blob(started))]
        ends: Iterable[float | None] = repeat(None)
        if finished is not None:
            ends = [None if v != v else v for v in struct.unpack(f"<{n}d", _blob(finished))]
        output: list[bytes | None] = [None] * n
        if lengths is not None:
            data = _blob(outputs) or b""
            at = 0
            for k, length in enumerate(struct.unpack(ints, _blob(lengths))):
                if length >= 0:
                    output[k] = data[at:at + length]
                    at += length
            if at != len(data):
                raise ValueError(f"{len(data) - at} bytes of outputs left over")
        text: list[str | None] = [None] * n
        tbs: list[str | None] = [None] * n
        if errors is not None:
            for k, e, t in json.loads(errors):
                text[k], tbs[k] = e, t
        if len(status) != n:
            raise ValueError(f"{len(status)} status codes for {n} records")
    except (struct.error, TypeError, ValueError, IndexError, AttributeError) as error:
        raise ValueError(f"a batch of item records of node {node!r} cannot be read "
                         f"({error})") from None
    records = into.get(node)
    if records is None:
        records = into[node] = {}
    new = tuple.__new__
    for record in zip(repeat(node), index, status, tries, output, text, tbs, starts, ends):
        records[record[1]] = new(ItemRecord, record)


def _pack_item_rows(conn: sqlite3.Connection) -> None:
    """Migration 6 -> 7: the ``items`` rows become batches (one per run, node and fence;
    a run's items have one row each there, so their order does not matter)."""
    rows = conn.execute("SELECT run_id, fence, node, item, status, attempts, output, error, "
                        "traceback, started, finished FROM items "
                        "ORDER BY run_id, node, fence, item")
    new = tuple.__new__
    batches = []
    for (run_id, fence, _node), group in groupby(rows, key=lambda r: r[:3]):
        records = [new(ItemRecord, (r[2], r[3], r[4], r[5], _blob(r[6]), *r[7:]))
                   for r in group]
        try:
            batches += _pack_items(run_id, fence, records)
        except (struct.error, TypeError, ValueError) as error:
            raise StoreError(f"the item records of run {run_id!r} cannot be converted to "
                             f"schema {SCHEMA_VERSION}: they are damaged ({error})") from None
    conn.executemany(_INSERT_BATCH, batches)


class SQLiteStore(WriterFlushes):
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
        made = self._check_and_create()
        try:
            self._conn = made if made is not None else self._connect()
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

    def _check_and_create(self) -> sqlite3.Connection | None:
        """Refuse a file that is not ours, or a damaged one, before anything writes to it;
        create or migrate the schema. Returns the connection that did (the store keeps
        it), or None when the file was a store of this version already."""
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
        made = None
        if version != SCHEMA_VERSION:
            made = self._retry_busy(self._create_or_migrate)
        try:
            self._check_writable()
        except BaseException:
            if made is not None:
                made.close()
            raise
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            if side.exists():
                with contextlib.suppress(OSError):
                    os.chmod(side, 0o600)
        return made

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
        # one query for every table (a store is opened by every wf.run(store=path))
        columns_of: dict[str, list[str]] = {}
        for table, column in conn.execute(
                "SELECT m.name, c.name FROM sqlite_master AS m, pragma_table_info(m.name) "
                "AS c WHERE m.type = 'table'"):
            columns_of.setdefault(table, []).append(column)
        for table, columns in _COLUMNS[version].items():
            found = columns_of.get(table)
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

    def _create_or_migrate(self) -> sqlite3.Connection:
        """Create the schema in an empty file, or migrate an older store, in one
        transaction; the connection that did is returned open (the store's own from
        then on: closing it would checkpoint the WAL, two fsyncs for nothing).

        With the store's ``synchronous`` from the start: FULL, the default of a new
        connection, costs a new store's creation two more fsyncs than NORMAL (seven, as
        counted with strace, against five).
        """
        conn = self._connect()
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
                        for step in _MIGRATIONS[version]:
                            if isinstance(step, str):
                                conn.execute(step)
                            else:
                                step(conn)
                        version += 1
                        conn.execute("UPDATE meta SET value = ? WHERE key = "
                                     "'schema_version'", (str(version),))
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        except BaseException:
            conn.close()
            raise
        return conn

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
        # The rows are in the records' field order: each becomes its record as it is
        # (tuple.__new__ skips NamedTuple's Python-level __new__: a resume reads every
        # node), output converted where it is neither a blob nor NULL (_blob).
        new = tuple.__new__
        nodes = {r[0]: new(NodeRecord, r if type(r[3]) is bytes or r[3] is None
                           else _blob_at(r, 3))
                 for r in conn.execute(f"SELECT {_NODE_COLUMNS} FROM nodes WHERE run_id = ?",
                                       (run_id,))}
        data = conn.execute("SELECT snapshot FROM data WHERE run_id = ?", (run_id,)).fetchone()
        signals = tuple(_signal(r) for r in conn.execute(
            f"SELECT {_SIGNAL_COLUMNS} FROM signals WHERE run_id = ? ORDER BY seq", (run_id,)))
        items: dict[str, dict[int, ItemRecord]] = {}
        for r in conn.execute(f"SELECT {_BATCH_COLUMNS} FROM item_batches WHERE run_id = ? "
                              "ORDER BY seq", (run_id,)):  # in write order: the last wins
            try:
                _unpack_items(r, items)
            except ValueError as error:
                raise StoreError(f"run {run_id!r} in {self.path} is damaged: "
                                 f"{error}") from None
        return StoredRun(record, nodes, None if data is None else _blob(data[0]),
                         self.serializer, signals, items)

    def _take(self, conn: sqlite3.Connection, run_id: str, old: RunRecord | None,
              lease: Lease, now: float, decide: Decide, recoveries: int | None = None
              ) -> tuple[StoredRun | None, int | None]:
        """Inside a write transaction: read the run, ``decide``, and lease it; the
        stored run and the new fence (None: ``decide`` left the run be)."""
        stored = None if old is None else self._load(conn, old)
        record = decide(stored)
        if record is None:
            return stored, None
        expires = now + self.lease_ttl
        if old is None:
            conn.execute(
                f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, record.workflow, record.fingerprint,
                 record.structure_json or json.dumps(record.structure), record.inputs,
                 RUNNING, record.serializer, record.created, record.started, None, 0,
                 lease.to_json(), expires, 1, record.queue, None, 0, waits_json(record),
                 None, record.trace))
            return stored, 1
        new = restarted(old, record, lease, expires)
        conn.execute(
            "UPDATE runs SET status = 'running', started = ?, finished = NULL, "
            "resumes = ?, fingerprint = ?, structure = ?, lease = ?, lease_expires = ?, "
            "fence = ?, due = NULL, waits = ?, error = NULL, "
            "recoveries = coalesce(?, recoveries) WHERE run_id = ?",
            (new.started, new.resumes, new.fingerprint,
             new.structure_json or json.dumps(new.structure), lease.to_json(), expires,
             new.fence, waits_json(new), recoveries, run_id))
        return stored, new.fence

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
                old = None
                if row is not None:
                    old = _record(row, self.path)
                    refuse_live_holder(old, lease, now)
                stored, fence = self._take(conn, run_id, old, lease, now, decide)
                if fence is None:
                    conn.execute("ROLLBACK")
                    return stored, None
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        claim = Claim(run_id, lease, fence, valid_until)
        self._active[run_id] = claim
        return stored, claim

    def write(self, claim: Claim, nodes: Sequence[NodeRecord], data: bytes | None,
              items: Sequence[ItemRecord] = ()) -> None:
        self._check_writer()
        self._queue.put(("write", claim, nodes, data, items))

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
            claim.fail(holder)
            return False
        claim.extend(valid_until)
        return True

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
        cached = [o[1:] for o in ops if o[0] == "cache"]
        deferred = self._deferred
        if not writes and not deferred and not cached and not (renew and self._active):
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

        # item records per claim, in write order: packed together, one batch per node
        # per commit (not per write: a map's items ended in ~5 loop turns per commit,
        # and each row more is one more GIL round trip for the writer)
        items_of: dict[Claim, list[Sequence[ItemRecord]]] = {}
        try:
            conn.execute("BEGIN IMMEDIATE")
            for o in deferred + writes:
                claim = o[1]
                if o[0] == "write":
                    # after a failed write, nothing more of the claim: what is stored
                    # must stay a prefix of what happened
                    if claim.error is not None or not holds(claim):
                        continue
                    _, _, nodes, data, items = o
                    if nodes:
                        run_id, fence = claim.run_id, claim.fence
                        conn.executemany(
                            "INSERT OR REPLACE INTO nodes VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            [(run_id, *r[:8], fence, r[9] if len(r) > 9 else None)
                             for r in nodes])
                    if items:
                        items_of.setdefault(claim, []).append(items)
                    if data is not None:
                        conn.execute("INSERT OR REPLACE INTO data VALUES (?, ?)",
                                     (claim.run_id, data))
                elif not claim.lost and holds(claim):
                    _, _, status, finished = o
                    self._end(conn, claim, status, finished)
            if items_of:
                conn.executemany(_INSERT_BATCH, [
                    row for claim, lists in items_of.items()
                    for row in _pack_items(claim.run_id, claim.fence, lists[0] if len(
                        lists) == 1 else [r for records in lists for r in records])])
            if cached:  # cached node outputs (no claim: they belong to no run)
                conn.executemany("INSERT OR REPLACE INTO cache VALUES (?,?,?,?,?)", cached)
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
        for claim, why in refused.items():
            claim.fail(why)

    def _end(self, conn: sqlite3.Connection, claim: Claim, status: str,
             finished: float) -> None:
        """Write the end of ``claim``'s hold (its fence was checked in this transaction)."""
        run_id = claim.run_id
        if status == WAITING:
            row = conn.execute("SELECT waits FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            waits = json.loads(row[0]) if row and row[0] else {}
            nodes = {r[0]: NodeRecord(r[0], r[1], 0, due=r[2]) for r in conn.execute(
                "SELECT node, status, due FROM nodes WHERE run_id = ? AND status = 'waiting'",
                (run_id,))}
            signals = [SignalRecord(run_id, r[0], b"", 0.0) for r in conn.execute(
                "SELECT DISTINCT name FROM signals WHERE run_id = ?", (run_id,))]
            conn.execute(
                "UPDATE runs SET status = 'waiting', due = ?, queue = coalesce(queue, ?), "
                "recoveries = 0, lease = NULL, lease_expires = NULL "
                "WHERE run_id = ? AND fence = ?",
                (park_due(nodes, waits, signals, finished), DEFAULT_QUEUE, run_id,
                 claim.fence))
        elif status == QUEUED:
            conn.execute(
                "UPDATE runs SET status = 'queued', due = ?, queue = coalesce(queue, ?), "
                "lease = NULL, lease_expires = NULL WHERE run_id = ? AND fence = ?",
                (finished, DEFAULT_QUEUE, run_id, claim.fence))
        else:
            conn.execute(
                "UPDATE runs SET status = ?, finished = ?, due = NULL, lease = NULL, "
                "lease_expires = NULL WHERE run_id = ? AND fence = ?",
                (status, finished, run_id, claim.fence))

    def _holder(self, conn: sqlite3.Connection, run_id: str) -> BaseException:
        """Why a write of a claim on ``run_id`` was refused (LeaseLost or RunCancelled)."""
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?",
                           (run_id,)).fetchone()
        try:
            record = None if row is None else _record(row, self.path)
        except StoreError:
            return LeaseLost(run_id, "another process")
        return lost_claim_error(run_id, record)

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
                conn.execute("DELETE FROM item_batches WHERE run_id = ?", (run_id,))
                conn.execute("DELETE FROM data WHERE run_id = ?", (run_id,))
                conn.execute("DELETE FROM signals WHERE run_id = ?", (run_id,))
                gone = conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        return bool(gone)

    def prune(self, *, older_than: float | None = None, keep: int | None = None,
              statuses: Iterable[str] = ("succeeded", "failed", "cancelled")) -> int:
        return prune(self, older_than, keep, statuses)

    # -- the work queue -------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        """A write transaction on the shared connection (committed unless it raises)."""
        with self._reading(what) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise

    def submit(self, record: RunRecord) -> bool:
        with self._transaction("submitting a run to") as conn:
            return self._insert_queued(conn, record)

    @staticmethod
    def _insert_queued(conn: sqlite3.Connection, record: RunRecord) -> bool:
        return conn.execute(
            f"INSERT OR IGNORE INTO runs ({_RUN_COLUMNS}) VALUES "
            "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            queued_run_row(record),
        ).rowcount == 1

    def claim_next(self, lease: Lease, decide: Decide, *, now: float,
                   workflows: Mapping[str, Collection[str]],
                   queues: Collection[str] = (DEFAULT_QUEUE,),
                   max_recoveries: int = 5) -> tuple[StoredRun, Claim] | None:
        if not workflows or not queues:
            return None
        if self._deferred:
            self.flush()
        names, queue_names = list(workflows), list(queues)
        marks = ",".join("?" * len(names))
        qmarks = ",".join("?" * len(queue_names))
        failure: BaseException | None = None
        with self._reading("taking a run from") as conn:
            wall = time.time()
            valid_until = time.monotonic() + self.lease_ttl
            conn.execute("BEGIN IMMEDIATE")
            try:
                rows = conn.execute(
                    f"SELECT {_RUN_COLUMNS} FROM runs WHERE due <= ? AND status IN "
                    f"('queued', 'waiting') AND workflow IN ({marks}) AND queue IN "
                    f"({qmarks}) ORDER BY due, created LIMIT 64",
                    (now, *names, *queue_names)).fetchall()
                rows += conn.execute(
                    f"SELECT {_RUN_COLUMNS} FROM runs WHERE status = 'running' AND queue IS "
                    f"NOT NULL AND workflow IN ({marks}) AND queue IN ({qmarks}) "
                    "ORDER BY lease_expires LIMIT 256", (*names, *queue_names)).fetchall()
                taken: tuple[StoredRun, int] | None = None
                for row in rows:
                    try:
                        old = _record(row, self.path)
                    except StoreError as error:
                        self._dead_letter(conn, row[0], str(error), wall)
                        continue
                    if old.fingerprint not in workflows.get(old.workflow, ()):
                        continue  # another version of the workflow: another worker's
                    recoveries = None
                    if old.status == RUNNING:
                        if not holder_gone(old, wall):
                            continue
                        deaths = old.recoveries + 1
                        if deaths >= max_recoveries:
                            conn.execute(
                                "UPDATE runs SET fence = fence + 1, recoveries = ? "
                                "WHERE run_id = ?", (deaths, old.run_id))
                            self._dead_letter(conn, old.run_id,
                                              dead_letter_reason(deaths, max_recoveries),
                                              wall)
                            continue
                        recoveries = deaths
                    conn.execute("SAVEPOINT take")
                    try:
                        stored, fence = self._take(conn, old.run_id, old, lease, wall,
                                                   decide, recoveries)
                    except Exception as error:
                        conn.execute("ROLLBACK TO take")
                        self._dead_letter(conn, old.run_id, describe_error(error), wall)
                        failure = error
                        break
                    conn.execute("RELEASE take")
                    if fence is None or stored is None:
                        continue  # decide left it be
                    taken = stored, fence
                    break
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
        if failure is not None:
            raise failure
        if taken is None:
            return None
        stored, fence = taken
        claim = Claim(stored.record.run_id, lease, fence, valid_until)
        self._active[claim.run_id] = claim
        return stored, claim

    @staticmethod
    def _dead_letter(conn: sqlite3.Connection, run_id: str, reason: str, now: float) -> None:
        conn.execute("UPDATE runs SET status = 'dead_letter', finished = ?, due = NULL, "
                     "lease = NULL, lease_expires = NULL, error = ? WHERE run_id = ?",
                     (now, reason, run_id))

    def _get(self, conn: sqlite3.Connection, run_id: str) -> RunRecord:
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?",
                           (run_id,)).fetchone()
        if row is None:
            known = [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY created "
                                                "DESC LIMIT 1000")]
            raise not_found(run_id, known, str(self.path))
        return _record(row, self.path)

    def add_signal(self, signal: SignalRecord) -> bool:
        if self._deferred:
            self.flush()
        with self._transaction("sending a signal to") as conn:
            run = self._get(conn, signal.run_id)
            refuse_signal(run, signal.name)
            stored = conn.execute(
                "INSERT OR IGNORE INTO signals (run_id, name, payload, sent, signal_id) "
                "VALUES (?,?,?,?,?)",
                (signal.run_id, signal.name, signal.payload, signal.sent,
                 signal.signal_id)).rowcount == 1
            if stored and run.status == WAITING and conn.execute(
                    "SELECT 1 FROM nodes WHERE run_id = ? AND node = ? AND status = "
                    "'waiting'", (signal.run_id, signal.name)).fetchone():
                conn.execute("UPDATE runs SET due = min(coalesce(due, ?), ?) "
                             "WHERE run_id = ?", (signal.sent, signal.sent, signal.run_id))
            return stored

    def signals(self, run_id: str) -> list[SignalRecord]:
        with self._reading("reading") as conn:
            return [_signal(r) for r in conn.execute(
                f"SELECT {_SIGNAL_COLUMNS} FROM signals WHERE run_id = ? ORDER BY seq",
                (run_id,))]

    def cancel(self, run_id: str, now: float) -> RunRecord:
        self.flush()
        with self._transaction("cancelling a run in") as conn:
            old = self._get(conn, run_id)
            new = cancelled(old, now)
            if new is not old:
                conn.execute("UPDATE runs SET status = ?, finished = ?, due = NULL, "
                             "lease = NULL, lease_expires = NULL, fence = ? "
                             "WHERE run_id = ?", (new.status, now, new.fence, run_id))
            return old

    def wake(self, run_id: str, now: float) -> RunRecord:
        self.flush()
        with self._transaction("resuming a run in") as conn:
            old = self._get(conn, run_id)
            if old.status == RUNNING and not holder_gone(old, time.time()):
                assert old.owner is not None
                raise RunLeased(run_id, old.owner.describe())
            new = woken(old, now)
            if new is not old:
                conn.execute("UPDATE runs SET status = ?, queue = ?, due = ?, finished = ?, "
                             "recoveries = ?, error = ?, lease = NULL, lease_expires = NULL, "
                             "fence = ? WHERE run_id = ?",
                             (new.status, new.queue, new.due, new.finished, new.recoveries,
                              new.error, new.fence, run_id))
            return old

    # -- schedules ------------------------------------------------------------------

    def put_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord:
        with self._transaction("storing a schedule in") as conn:
            row = conn.execute(f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE name = ?",
                               (schedule.name,)).fetchone()
            if row is not None:
                old = _schedule(row)
                if old.same_spec(schedule):
                    return old
                schedule = attrs.evolve(schedule, created=old.created)
            conn.execute(
                f"INSERT OR REPLACE INTO schedules ({_SCHEDULE_COLUMNS}) VALUES "
                "(?,?,?,?,?,?,?,?,?,?,?,?)",
                (schedule.name, schedule.workflow, schedule.inputs, schedule.serializer,
                 schedule.next_due, schedule.cron, schedule.every, schedule.timezone,
                 int(schedule.catch_up), schedule.queue, schedule.last_slot,
                 schedule.created))
            return schedule

    def delete_schedule(self, name: str) -> bool:
        with self._transaction("deleting a schedule from") as conn:
            return bool(conn.execute("DELETE FROM schedules WHERE name = ?",
                                     (name,)).rowcount)

    def schedules(self) -> list[ScheduleRecord]:
        with self._reading("reading") as conn:
            return [_schedule(r) for r in conn.execute(
                f"SELECT {_SCHEDULE_COLUMNS} FROM schedules ORDER BY name")]

    def fire_schedule(self, name: str, due: float, runs: list[RunRecord], next_due: float,
                      last_slot: str) -> list[str] | None:
        with self._transaction("firing a schedule in") as conn:
            moved = conn.execute(
                "UPDATE schedules SET next_due = ?, last_slot = ? WHERE name = ? AND "
                "next_due = ?", (next_due, last_slot, name, due)).rowcount
            if not moved:
                return None
            return [r.run_id for r in runs if self._insert_queued(conn, r)]

    # -- cached node outputs --

    def get_cached(self, key: str, now: float) -> tuple[bytes, str] | None:
        with self._reading("reading the cache of") as conn:
            row = conn.execute("SELECT value, serializer, expires FROM cache WHERE key = ?",
                               (key,)).fetchone()
        if row is None or (row[2] is not None and now >= row[2]):
            return None
        return bytes(row[0]), row[1]

    def put_cached(self, key: str, value: bytes, serializer: str, created: float,
                   expires: float | None) -> None:
        # through the writer thread: committed with the next group of node records
        self._check_writer()
        self._queue.put(("cache", key, value, serializer, created, expires))

    def clear_cache(self) -> int:
        self.flush()
        with self._transaction("clearing the cache of") as conn:
            return conn.execute("DELETE FROM cache").rowcount

    def prune_cache(self, now: float) -> int:
        self.flush()  # entries still queued for the writer are swept too
        with self._transaction("pruning the cache of") as conn:
            return conn.execute("DELETE FROM cache WHERE expires <= ?", (now,)).rowcount

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

