"""``PostgresStore``: durable runs in PostgreSQL, shared by processes on many machines.

The same protocol and guarantees as :class:`~flowrt.SQLiteStore`
(docs/decisions/012-fencing.md); the schema and the protocol on PostgreSQL are in
docs/decisions/016-postgres.md.

- **Claims** are one transaction: ``SELECT ... FOR UPDATE`` of the run's row, the stored
  run read, ``decide`` called, the run written back under the next fencing token. Two
  processes claiming one run are served one after the other.
- **Writes** go to one writer thread per store with its own connection, which commits
  everything queued in one transaction (a group commit), in order, every
  ``commit_interval`` seconds: a node's end costs the run a queue put, and a commit
  carries the records of every run of the process. The transaction is one statement:
  the guarded update of every run in the batch (``UPDATE runs ... WHERE run_id =
  c.run_id AND fence = c.fence AND lease = c.lease``, its lease moved on or given back
  with its final status), and the node records and data snapshots joined on the runs
  it returned, so that the database itself drops the writes of a fenced-out holder in
  the statement that would have made them. Its arrays go in
  binary. ``synchronous_commit`` is PostgreSQL's, for these commits and the claims:
  ``"off"`` by default, as SQLite's ``NORMAL``.
- **Lease times** are the database's clock (``clock_timestamp()``), so hosts whose
  clocks differ agree on when a lease runs out.
- **Reconnection.** When the writer's connection breaks (the server restarted, a
  network cut), it keeps what it was writing, reconnects with a growing pause, and
  writes it again in order (every statement is idempotent); the runs go on meanwhile
  on their lease. A run whose lease runs out before the database is back stops (its
  claim fails with :class:`~flowrt.StoreError`): a run never goes on past a checkpoint
  that could not be written. Claims, reads and renewals retry a broken connection for
  up to ``connect_timeout`` seconds.
- **Schema** in its own PostgreSQL schema (``schema="flowrt"``), versioned in a
  ``meta`` table; created or migrated under an advisory lock, so that workers starting
  together against an empty database create it once.

psycopg 3 (the ``postgres`` extra: ``pip install 'flowrt[postgres]'``) is imported
when a store is made.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import queue
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ..errors import LeaseLost, RunLeased, StoreError, StoreUnavailable, describe_error
from ._serialize import Serializer, get_serializer
from ._store import (
    DEFAULT_QUEUE,
    QUEUED,
    RUNNING,
    WAIT_KINDS,
    WAITING,
    Claim,
    Decide,
    FlushMarker,
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

if TYPE_CHECKING:
    import psycopg
    import psycopg_pool

__all__ = ["PostgresStore"]

SCHEMA_VERSION = 6
APP = "flowrt"

_T = TypeVar("_T")

#: the tables of schema version 1, in the store's own PostgreSQL schema ({s}); a new
#: store is made by these and then every migration, so that migrations are run by
#: every store that is created
_SCHEMA = [
    "CREATE SCHEMA IF NOT EXISTS {s}",
    "CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL)",
    """CREATE TABLE {s}.runs (
        run_id text PRIMARY KEY, workflow text NOT NULL, fingerprint text NOT NULL,
        structure text NOT NULL, inputs bytea NOT NULL, status text NOT NULL,
        serializer text NOT NULL, created double precision NOT NULL,
        started double precision NOT NULL, finished double precision,
        resumes integer NOT NULL DEFAULT 0, lease text, lease_expires double precision,
        fence bigint NOT NULL DEFAULT 0)""",
    "CREATE INDEX runs_by_workflow ON {s}.runs (workflow, created)",
    "CREATE INDEX runs_by_created ON {s}.runs (created)",
    """CREATE TABLE {s}.nodes (
        run_id text NOT NULL, node text NOT NULL, status text NOT NULL,
        attempts integer NOT NULL, output bytea, error text, traceback text,
        started double precision, finished double precision,
        fence bigint NOT NULL DEFAULT 0, PRIMARY KEY (run_id, node))""",
    "CREATE TABLE {s}.data (run_id text PRIMARY KEY, snapshot bytea)",
]

_NODE_BATCHES = """CREATE TABLE {s}.node_batches (
    seq bigserial NOT NULL, run_id text NOT NULL, fence bigint NOT NULL,
    nodes text[] NOT NULL, statuses text[] NOT NULL, attempts integer[] NOT NULL,
    outputs bytea[] NOT NULL, errors text[] NOT NULL, tracebacks text[] NOT NULL,
    started double precision[] NOT NULL, finished double precision[] NOT NULL,
    dues double precision[] NOT NULL)"""

#: schema_version -> statements that bring a store from that version to the next
_MIGRATIONS: dict[int, list[str]] = {
    # 2: the work queue, waits, signals and schedules (docs/decisions/013-queue.md)
    1: ["ALTER TABLE {s}.runs ADD COLUMN queue text, ADD COLUMN due double precision, "
        "ADD COLUMN recoveries integer NOT NULL DEFAULT 0, ADD COLUMN waits text, "
        "ADD COLUMN error text",
        "ALTER TABLE {s}.nodes ADD COLUMN due double precision",
        # what claim_next looks for: runs due in a queue, and held runs to take over
        "CREATE INDEX runs_due ON {s}.runs (queue, due) "
        "WHERE status IN ('queued', 'waiting') AND due IS NOT NULL",
        "CREATE INDEX runs_held ON {s}.runs (queue, lease_expires) "
        "WHERE status = 'running' AND queue IS NOT NULL",
        """CREATE TABLE {s}.signals (
            seq bigserial PRIMARY KEY, run_id text NOT NULL, name text NOT NULL,
            payload bytea NOT NULL, sent double precision NOT NULL, signal_id text)""",
        "CREATE INDEX signals_by_run ON {s}.signals (run_id, seq)",
        "CREATE UNIQUE INDEX signals_by_id ON {s}.signals (run_id, signal_id) "
        "WHERE signal_id IS NOT NULL",
        """CREATE TABLE {s}.schedules (
            name text PRIMARY KEY, workflow text NOT NULL, inputs bytea NOT NULL,
            serializer text NOT NULL, next_due double precision NOT NULL, cron text,
            every double precision, timezone text NOT NULL, catch_up boolean NOT NULL,
            queue text NOT NULL, last_slot text, created double precision NOT NULL)"""],
    # -- caching --
    # 3: cached node outputs (docs/caching.md)
    2: ["""CREATE TABLE {s}.cache (
            key text PRIMARY KEY, value bytea NOT NULL, serializer text NOT NULL,
            created double precision NOT NULL, expires double precision)"""],
    # -- 4: the trace a run's later starts link to (RunRecord.trace) ----------------
    3: ["ALTER TABLE {s}.runs ADD COLUMN trace text"],
    # -- maps --
    # 5: the items of mapped nodes (docs/mapping.md): one row per item that reached a
    # final status, plus one (item -1, status 'listed', attempts = the item count) per
    # mapped node whose item list is known
    4: ["""CREATE TABLE {s}.items (
            run_id text NOT NULL, node text NOT NULL, item integer NOT NULL,
            status text NOT NULL, attempts integer NOT NULL, output bytea, error text,
            traceback text, started double precision, finished double precision,
            fence bigint NOT NULL DEFAULT 0, PRIMARY KEY (run_id, node, item))"""],
    # 6: node records packed per claim per group commit (docs/decisions/016-postgres.md,
    # the fifth pass): one row of arrays, the records in write order; reading applies
    # the rows in order (seq), so the last record of a node wins. A run's rows in
    # ``nodes`` become one row per fence (a node had one row there: order is moot).
    5: [_NODE_BATCHES,
        "INSERT INTO {s}.node_batches (run_id, fence, nodes, statuses, attempts, outputs, "
        "errors, tracebacks, started, finished, dues) SELECT run_id, fence, "
        "array_agg(node), array_agg(status), array_agg(attempts), array_agg(output), "
        "array_agg(error), array_agg(traceback), array_agg(started), array_agg(finished), "
        "array_agg(due) FROM {s}.nodes GROUP BY run_id, fence",
        "DROP TABLE {s}.nodes",
        "CREATE INDEX node_batches_by_run ON {s}.node_batches (run_id, seq)"],
}

#: the columns of each table, by schema version
_COLUMNS_V1 = {
    "meta": ("key", "value"),
    "runs": ("run_id", "workflow", "fingerprint", "structure", "inputs", "status",
             "serializer", "created", "started", "finished", "resumes", "lease",
             "lease_expires", "fence"),
    "nodes": ("run_id", "node", "status", "attempts", "output", "error", "traceback",
              "started", "finished", "fence"),
    "data": ("run_id", "snapshot"),
}
_COLUMNS_V2 = {
    **_COLUMNS_V1,
    "runs": (*_COLUMNS_V1["runs"], "queue", "due", "recoveries", "waits", "error"),
    "nodes": (*_COLUMNS_V1["nodes"], "due"),
    "signals": ("seq", "run_id", "name", "payload", "sent", "signal_id"),
    "schedules": ("name", "workflow", "inputs", "serializer", "next_due", "cron", "every",
                  "timezone", "catch_up", "queue", "last_slot", "created"),
}
# -- caching --
_COLUMNS_V3 = {**_COLUMNS_V2, "cache": ("key", "value", "serializer", "created", "expires")}
# -- OpenTelemetry --
_COLUMNS_V4 = {**_COLUMNS_V3, "runs": (*_COLUMNS_V3["runs"], "trace")}
# -- maps --
_COLUMNS_V5 = {
    **_COLUMNS_V4,
    "items": ("run_id", "node", "item", "status", "attempts", "output", "error", "traceback",
              "started", "finished", "fence"),
}
# -- node batches --
_COLUMNS_V6 = {
    **{t: c for t, c in _COLUMNS_V5.items() if t != "nodes"},
    "node_batches": ("seq", "run_id", "fence", "nodes", "statuses", "attempts", "outputs",
                     "errors", "tracebacks", "started", "finished", "dues"),
}
_COLUMNS: dict[int, dict[str, tuple[str, ...]]] = {1: _COLUMNS_V1, 2: _COLUMNS_V2,
                                                   3: _COLUMNS_V3, 4: _COLUMNS_V4,
                                                   5: _COLUMNS_V5, 6: _COLUMNS_V6}
_ITEM_COLUMNS = "node, item, status, attempts, output, error, traceback, started, finished"

_RUN_COLUMNS = ("run_id, workflow, fingerprint, structure, inputs, status, serializer, "
                "created, started, finished, resumes, lease, lease_expires, fence, queue, "
                "due, recoveries, waits, error, trace")
_BATCH_COLUMNS = ("fence, nodes, statuses, attempts, outputs, errors, tracebacks, started, "
                  "finished, dues")
_SIGNAL_COLUMNS = "run_id, name, payload, sent, signal_id, seq"
_SCHEDULE_COLUMNS = ("name, workflow, inputs, serializer, next_due, cron, every, timezone, "
                     "catch_up, queue, last_slot, created")
_NOW = "extract(epoch FROM clock_timestamp())::double precision"
# A claim's write sets its transaction's synchronous_commit to the store's (a condition
# that is always true, evaluated once for the run's row): a claim waits for the
# server's disk when the group commits do, not otherwise -- an fsync on the run's path
# (a claim 1.82 -> 1.36 ms median, local server with fsync on; decision 016). What
# keeps a claim exclusive is the row's lock and key, not the disk; a claim lost with the
# server's last WAL is told from a new one by its lease, which every write of it checks
# with the fence.
_CLAIM_COMMIT = "set_config('synchronous_commit', %s, true) IS NOT NULL"
# The statements the store prepares have one shape whatever their parameters (arrays,
# ids): planned once, as a generic plan, rather than for each of a connection's first
# five executions, as PostgreSQL does by default (plan_cache_mode = auto): a new
# store's first commits took 0.65 against 0.42 ms (200 records, idle server; decision
# 016, the fifth pass). (PostgreSQL 12 and later have the setting.)
_GENERIC_PLANS = ("SELECT set_config('plan_cache_mode', 'force_generic_plan', false) "
                  "FROM (SELECT) AS s WHERE current_setting('server_version_num')::int "
                  ">= 120000")

# The group commit: one statement. ``held`` is the guarded update of every claim of the
# batch -- the lease moved on, or given back with the final status -- and returns the
# claims whose fence is still their run's (their rows stay locked until the commit);
# the node records and data snapshots are joined on it, so the server drops what a
# fenced-out holder sends in the statement that would have written it.
# A statement has only the parts its batch needs (most have node records only): each
# part costs the server even when its arrays are empty (a commit of one record, 300
# times: 0.20-0.23 against 0.13-0.17 ms of the server's CPU with held and the node
# records alone), so the writer keeps one statement per combination of parts.
_CLAIMS = ("unnest(%s::text[], %s::bigint[], %s::text[], %s::text[], "
           "%s::double precision[]) AS c(run_id, fence, lease, status, finished)")
# A claim's node records of one commit are one row of arrays (``node_batches``): the
# server's work per record was a heap tuple and an index entry (~8 us of its CPU a
# record, 1.5 ms a 200-record commit, on the run's path at its end; decision 016). The
# records of every claim of the commit come as one array per field, and each claim's
# row takes its slice (``first``, ``last``: 1-based, inclusive). A field with nothing
# but NULLs (the errors of succeeded nodes) comes as an empty array, and its slices are
# empty: read as NULLs.
_NODE_BATCH_ROWS = """
node_rows AS (
    INSERT INTO {s}.node_batches (run_id, fence, nodes, statuses, attempts, outputs, errors,
                                  tracebacks, started, finished, dues)
    SELECT k.run_id, k.fence, n.nodes[k.first:k.last], n.statuses[k.first:k.last],
           n.attempts[k.first:k.last], n.outputs[k.first:k.last], n.errors[k.first:k.last],
           n.tracebacks[k.first:k.last], n.started[k.first:k.last],
           n.finished[k.first:k.last], n.dues[k.first:k.last]
    FROM unnest(%s::text[], %s::bigint[], %s::integer[], %s::integer[])
         AS k(run_id, fence, first, last)
    JOIN held AS h ON h.run_id = k.run_id AND h.fence = k.fence
    CROSS JOIN (SELECT %s::text[] AS nodes, %s::text[] AS statuses, %s::integer[] AS attempts,
                       %s::bytea[] AS outputs, %s::text[] AS errors, %s::text[] AS tracebacks,
                       %s::double precision[] AS started, %s::double precision[] AS finished,
                       %s::double precision[] AS dues) AS n)"""
# An end (c.status) gives the lease back: a final status ends the run; "queued" hands
# it back to its queue, due at once (c.finished); "waiting" parks it (its due time is
# set by _PARK_SQL, which reads the node records this statement writes).
_COMMIT_HELD = """
WITH held AS (
    UPDATE {s}.runs AS r SET
        lease_expires = CASE WHEN c.status IS NULL THEN """ + _NOW + """ + %s END,
        lease = CASE WHEN c.status IS NULL THEN r.lease END,
        status = coalesce(c.status, r.status),
        finished = CASE WHEN c.status IS NULL OR c.status IN ('queued', 'waiting')
                        THEN r.finished ELSE c.finished END,
        due = CASE WHEN c.status IS NULL THEN r.due
                   WHEN c.status = 'queued' THEN c.finished END,
        queue = CASE WHEN c.status IN ('queued', 'waiting') THEN coalesce(r.queue, %s)
                     ELSE r.queue END,
        recoveries = CASE WHEN c.status = 'waiting' THEN 0 ELSE r.recoveries END
    FROM """ + _CLAIMS + """
    WHERE r.run_id = c.run_id AND r.fence = c.fence AND r.lease = c.lease
    RETURNING r.run_id, r.fence, r.queue)"""
# A commit that neither renews the leases nor ends a run (nearly all of them: the
# writer renews every lease_ttl / 3) only locks the rows of its claims, FOR SHARE, the
# weakest lock that waits for, and makes wait, every write of a run's row (a claim's
# FOR UPDATE, a cancel's UPDATE): the fence is checked and the row held until the commit
# as by the UPDATE, without a new version of the row and of its three index entries
# (perf/ab_postgres.py: see decision 016).
_COMMIT_LOCKED = """
WITH held AS (
    SELECT r.run_id, r.fence, r.queue FROM {s}.runs AS r
    JOIN unnest(%s::text[], %s::bigint[], %s::text[]) AS c(run_id, fence, lease)
      ON r.run_id = c.run_id AND r.fence = c.fence AND r.lease = c.lease
    FOR SHARE OF r)"""
#: the optional parts of the group commit, in the order of their parameters
_COMMIT_PARTS = (_NODE_BATCH_ROWS, """
snapshots AS (
    INSERT INTO {s}.data (run_id, snapshot)
    SELECT d.run_id, d.snapshot FROM unnest(%s::text[], %s::bigint[], %s::bytea[])
         AS d(run_id, fence, snapshot)
    JOIN held AS h ON h.run_id = d.run_id AND h.fence = d.fence
    ON CONFLICT (run_id) DO UPDATE SET snapshot = excluded.snapshot)""", """
item_rows AS (
    INSERT INTO {s}.items (run_id, node, item, status, attempts, output, error, traceback,
                           started, finished, fence)
    SELECT i.* FROM unnest(%s::text[], %s::text[], %s::integer[], %s::text[],
                           %s::integer[], %s::bytea[], %s::text[], %s::text[],
                           %s::double precision[], %s::double precision[], %s::bigint[])
         AS i(run_id, node, item, status, attempts, output, error, traceback, started,
              finished, fence)
    JOIN held AS h ON h.run_id = i.run_id AND h.fence = i.fence
    ON CONFLICT (run_id, node, item) DO UPDATE SET
        status = excluded.status, attempts = excluded.attempts, output = excluded.output,
        error = excluded.error, traceback = excluded.traceback, started = excluded.started,
        finished = excluded.finished, fence = excluded.fence)""")
_COMMIT_END = "\nSELECT run_id, fence, queue FROM held"


def _commit_sql(schema: str, parts: tuple[bool, ...]) -> str:
    """The group commit's statement in ``schema`` (quoted): ``parts[0]`` says whether it
    updates the claims' rows (``_COMMIT_HELD``: leases renewed, runs ended) or only locks
    them (``_COMMIT_LOCKED``), the others which parts of ``_COMMIT_PARTS`` it has; its
    arrays go in binary (``%b``)."""
    sql = (_COMMIT_HELD if parts[0] else _COMMIT_LOCKED) + "".join(
        "," + part for part, wanted in zip(_COMMIT_PARTS, parts[1:], strict=True) if wanted)
    return (sql + _COMMIT_END).replace("{s}", schema).replace("%s", "%b")


#: PostgreSQL's settings of synchronous_commit, for the writer's group commits
_SYNCHRONOUS_COMMIT = ("off", "local", "on", "remote_write", "remote_apply")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

#: libpq settings the store adds unless the URL sets them: notice a dead server or a
#: cut network within about half a minute rather than the kernel's two hours
_CONNECTION_DEFAULTS = {"keepalives": "1", "keepalives_idle": "10",
                        "keepalives_interval": "5", "keepalives_count": "3",
                        "tcp_user_timeout": "30000", "application_name": "flowrt"}


def _plan_generically(conn: psycopg.Connection[Any]) -> None:
    """Set up a pooled connection: its prepared statements planned once (_GENERIC_PLANS)."""
    conn.execute(_GENERIC_PLANS)


def _psycopg() -> Any:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as error:
        raise ImportError("PostgresStore needs psycopg 3 and psycopg_pool: "
                          "pip install 'flowrt[postgres]'") from error
    return psycopg, psycopg_pool


def _where(url: str) -> str:
    """The server and database of ``url``, for messages (never the password)."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        info = conninfo_to_dict(url)
    except Exception:
        return "PostgreSQL"
    host = str(info.get("host") or "localhost")
    port = info.get("port")
    db = info.get("dbname") or info.get("user") or ""
    return f"postgresql://{host}{f':{port}' if port else ''}/{db}"


def _schema_from_url(url: str, schema: str) -> tuple[str, str]:
    """``url`` without its ``schema=`` query parameter (flowrt's, not libpq's), and the
    schema it names (else ``schema``)."""
    if not url.startswith(("postgresql://", "postgres://")) or "?" not in url:
        return url, schema
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    named = [v for k, v in query if k == "schema"]
    if not named:
        return url, schema
    if schema != "flowrt" and named[-1] != schema:
        raise ValueError(f"the URL names schema {named[-1]!r} and schema= {schema!r}: "
                         "give one")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), named[-1]


def _describe(error: BaseException) -> str:
    """A psycopg error as a user should read it: the cause, and what to check."""
    text = " ".join(str(error).split()) or type(error).__name__
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate:
        text += f" (SQLSTATE {sqlstate})"
    if sqlstate == "53100":
        text += "; is the database server's disk full?"
    elif sqlstate == "42501":
        text += "; the database user lacks a privilege the store needs"
    return text


#: what a server says when it refuses a connection for now (it is starting, stopping,
#: recovering or full): worth trying again, unlike a missing role or database
_FOR_NOW = ("starting up", "shutting down", "recovery", "too many clients",
            "terminating connection")


def _refused_for_good(error: BaseException) -> bool:
    """Whether a failed connection was the server's answer (a wrong role, password or
    database: trying again changes nothing) rather than no answer or "not now"."""
    text = str(error)
    return "FATAL:" in text and not any(s in text for s in _FOR_NOW)


def _text(value: str | None) -> str | None:
    """``value`` as PostgreSQL text can hold it: a NUL character (which text cannot
    hold) becomes a visible escape. Error messages and tracebacks only: names and ids
    with a NUL are refused when the run is claimed."""
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "\\x00")


# -- the group commit's arrays, built in PostgreSQL's binary format --------------------
#
# psycopg dumps a list element by element in Python: 3.1 us a node record for the 11
# columns of a group commit (80-node batches, on this loaded machine), in the writer
# thread, whose Python work holds the GIL the runs' event loop needs. The writer builds
# each column itself instead, in the binary format the server reads (``array_recv``: a
# header, then each element's length and bytes), as bytes sent as they are: numbers by
# one struct.pack of the whole column, text by joining cached length-prefixed encodings
# (node names, statuses and run ids repeat from commit to commit). Measured in the same
# setting: 0.9 us a node record (decision 016).


class _Array(bytes):
    """A one-dimensional PostgreSQL array, built in binary (sent as it is)."""

    __slots__ = ()
    oid = 0  #: the array type's oid


class _TextArray(_Array):
    __slots__ = ()
    oid = 1009


class _MessageArray(_TextArray):
    """Error messages and tracebacks: text seldom the same twice (not cached)."""

    __slots__ = ()


class _ByteaArray(_Array):
    __slots__ = ()
    oid = 1001


class _Int4Array(_Array):
    __slots__ = ()
    oid = 1007


class _Int8Array(_Array):
    __slots__ = ()
    oid = 1016


class _Float8Array(_Array):
    __slots__ = ()
    oid = 1022


_ARRAYS = (_TextArray, _ByteaArray, _Int4Array, _Int8Array, _Float8Array)
_TEXT, _BYTEA, _INT4, _INT8, _FLOAT8 = 25, 17, 23, 20, 701  # element type oids
_HEADER = struct.Struct(">iiIii").pack  # dimensions, has NULLs, element type, length, base
_EMPTY = struct.Struct(">iiI").pack  # no dimensions: an empty array
_LENGTH = struct.Struct(">i").pack
_NULL = _LENGTH(-1)
_SHORT = 4096
_PREFIXES = [_LENGTH(n) for n in range(_SHORT)]  #: the length of an element shorter than _SHORT
#: struct's code and width of the fixed-width element types
_FIXED = {_INT4: ("i", 4), _INT8: ("q", 8), _FLOAT8: ("d", 8)}
#: (element type, length) -> the Struct of a whole column of numbers, lengths included
_PACKERS: dict[tuple[int, int], struct.Struct] = {}
#: text -> its element (length, UTF-8), None -> NULL; cleared when it grows past
#: _PREFIXED_MAX entries (writer threads use it; a miss is only slower)
_PREFIXED: dict[str | None, bytes] = {None: _NULL}
_PREFIXED_MAX = 100_000


def _register_arrays(conn: psycopg.Connection[Any]) -> None:
    """Let ``conn`` send the arrays this module builds: as they are, in binary."""
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    for cls in _ARRAYS:
        dumper = type(f"{cls.__name__}Dumper", (Dumper,), {
            "format": Format.BINARY, "oid": cls.oid, "dump": lambda self, obj: obj})
        conn.adapters.register_dumper(cls, dumper)


def _array(cls: type[_Array], element: int, values: Sequence[Any]) -> _Array:
    """``values`` as a PostgreSQL array of ``cls`` (``element``: the element type's
    oid): str as UTF-8 text, bytes as bytea, int and float as int4/int8/float8; None
    is NULL."""
    n = len(values)
    if not n:
        return cls(_EMPTY(0, 0, element))
    fixed = _FIXED.get(element)
    if fixed is not None:
        code, width = fixed
        packer = _PACKERS.get((element, n))
        if packer is None:
            if len(_PACKERS) > 256:
                _PACKERS.clear()
            packer = _PACKERS[element, n] = struct.Struct(">" + ("i" + code) * n)
        flat = [width] * (2 * n)
        flat[1::2] = values
        try:
            return cls(_HEADER(1, 0, element, n, 1) + packer.pack(*flat))
        except struct.error:  # a None among them: element by element
            pack = struct.Struct(">i" + code).pack
            body = b"".join([_NULL if v is None else pack(width, v) for v in values])
            return cls(_HEADER(1, 1, element, n, 1) + body)
    if cls is _TextArray:
        cache = _PREFIXED
        try:
            body = b"".join([cache[v] for v in values])
        except KeyError:
            if len(cache) > _PREFIXED_MAX:
                cache.clear()
            for v in values:
                if v not in cache:
                    cache[v] = _NULL if v is None else _LENGTH(len(b := v.encode())) + b
            body = b"".join([cache[v] for v in values])
    else:
        if element == _TEXT:  # messages
            values = [None if v is None else v.encode() for v in values]
        prefix = _PREFIXES
        body = b"".join([_NULL if v is None else (
            prefix[len(v)] if len(v) < _SHORT else _LENGTH(len(v))) + v for v in values])
    return cls(_HEADER(1, None in values, element, n, 1) + body)


def _texts(values: Sequence[str | None]) -> _Array:
    return _array(_TextArray, _TEXT, values)


def _messages(values: Sequence[str | None]) -> _Array:
    return _array(_MessageArray, _TEXT, [_text(v) for v in values])


def _blobs(values: Sequence[bytes | None]) -> _Array:
    return _array(_ByteaArray, _BYTEA, values)


def _int4s(values: Sequence[int | None]) -> _Array:
    return _array(_Int4Array, _INT4, values)


def _int8s(values: Sequence[int | None]) -> _Array:
    return _array(_Int8Array, _INT8, values)


def _float8s(values: Sequence[float | None]) -> _Array:
    return _array(_Float8Array, _FLOAT8, values)


def _node_columns(parts: list[tuple[Claim, Collection[NodeRecord]]]) -> list[_Array]:
    """Node records as the group commit's 13 arrays (``_NODE_BATCH_ROWS``): per claim,
    its run id, fence and slice; then the records of every claim, field by field.

    A field with nothing but NULLs (the error, traceback and due time of succeeded
    nodes) goes as an empty array, whose slices are empty (read back as NULLs).
    """
    records: list[NodeRecord] = []
    ids: list[str] = []
    fences: list[int] = []
    bounds: list[int] = []  # first, last of each claim
    for claim, mine in parts:
        n = len(mine)
        if not n:
            continue
        ids.append(claim.run_id)
        fences.append(claim.fence)
        bounds += (len(records) + 1, len(records) + n)
        records += mine
    if not records:
        return _NO_NODES
    # zip stops at the shortest record: at least the 8 fields every writer passes
    node, status, attempts, output, error, traceback, started, finished, *_ = zip(
        *records, strict=False)
    due = ([r[9] if len(r) > 9 else None for r in records]
           if max(map(len, records)) > 9 else ())
    return [_texts(ids), _int8s(fences), _int4s(bounds[::2]), _int4s(bounds[1::2]),
            _texts(node), _texts(status), _int4s(attempts), _outputs(output),
            _messages(_or_empty(error)), _messages(_or_empty(traceback)),
            _float8s(_or_empty(started)), _float8s(_or_empty(finished)),
            _float8s(_or_empty(due))]


#: a short output (``b"null"``, small numbers, short strings: most outputs of a commit
#: are a few of those) -> its element, length included; cleared past _PREFIXED_MAX
_SHORT_OUTPUTS: dict[bytes, bytes] = {}
_SHORT_OUTPUT = 16


def _outputs(values: Sequence[bytes | None]) -> _Array:
    """The outputs column: a bytea array, its short elements from a cache."""
    if values.count(None) == len(values):
        return _blobs(())
    cache = _SHORT_OUTPUTS
    try:
        body = b"".join([cache[v] for v in values])  # type: ignore[index]
    except (KeyError, TypeError):  # a new short output, a long one, or a NULL
        if len(cache) > _PREFIXED_MAX:
            cache.clear()
        for v in values:
            if v is not None and len(v) <= _SHORT_OUTPUT and v not in cache:
                cache[v] = _PREFIXES[len(v)] + v
        return _blobs(values)
    return _ByteaArray(_HEADER(1, 0, _BYTEA, len(values), 1) + body)


_NO_NODES = [_texts(()), _int8s(()), _int4s(()), _int4s(()), _texts(()), _texts(()),
             _int4s(()), _blobs(()), _texts(()), _texts(()), _float8s(()), _float8s(()),
             _float8s(())]


def _item_columns(items: dict[tuple[str, str, int, int], ItemRecord]) -> list[_Array]:
    """Item records as the group commit's 11 item arrays, from their keys (run id, node,
    item, fence); columns of NULLs only go empty, as for nodes (:func:`_node_columns`)."""
    rows = list(items.values())
    return [_texts([k[0] for k in items]), _texts([r.node for r in rows]),
            _int4s([r.item for r in rows]), _texts([r.status for r in rows]),
            _int4s([r.attempts for r in rows]), _blobs(_or_empty([r.output for r in rows])),
            _messages(_or_empty([r.error for r in rows])),
            _messages(_or_empty([r.traceback for r in rows])),
            _float8s(_or_empty([r.started for r in rows])),
            _float8s(_or_empty([r.finished for r in rows])), _int8s([k[3] for k in items])]


def _or_empty(column: Sequence[_T]) -> Sequence[_T]:
    """``column``, or an empty array (NULLs to ``unnest``) when it holds only None."""
    return () if column.count(None) == len(column) else column


def _record(row: tuple[Any, ...], where: str) -> RunRecord:
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
    return RunRecord(run_id, row[1], row[2], structure, bytes(row[4]), row[5], row[6],
                     row[7], row[8], row[9], row[10], row[3], owner, row[12], row[13],
                     row[14], row[15], row[16], waits, row[18], row[19])


def _signal(row: tuple[Any, ...]) -> SignalRecord:
    return SignalRecord(row[0], row[1], bytes(row[2]), row[3], row[4], row[5])


def _schedule(row: tuple[Any, ...]) -> ScheduleRecord:
    return ScheduleRecord(row[0], row[1], bytes(row[2]), row[3], row[4], row[5], row[6],
                          row[7], bool(row[8]), row[9], row[10], row[11])


def _channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of the store in ``schema`` (at most 63 bytes)."""
    name = f"flowrt_{schema}"
    if len(name) > 60:
        name = "flowrt_" + hashlib.sha256(schema.encode()).hexdigest()[:24]
    return name


def _checked(record: RunRecord) -> RunRecord:
    """``record``, whose node names PostgreSQL text can hold; ValueError otherwise."""
    for name in record.structure:
        if "\x00" in name:
            raise ValueError(f"node name {name!r} holds a NUL character, which a "
                             "PostgreSQL store cannot keep")
    return record


class _Conflict(Exception):
    """Another process created the run being claimed (internal: claim again)."""


class PostgresStore(WriterFlushes):
    """Durable runs in PostgreSQL at ``url``, shared by processes on many machines.

    Args:
        url: a libpq connection string or URL, ``"postgresql://user@host:5432/db"``
            (``PGPASSWORD`` and ``~/.pgpass`` are read as libpq does; keep passwords
            out of URLs). A URL may name the schema too: ``...?schema=team_a``.
        schema: the PostgreSQL schema that holds the store's tables (created when
            missing); several stores may share a database under different schemas.
        serializer: ``"json"`` (the default), ``"pickle"`` (trusted databases only:
            reading a pickle runs code) or a serializer object.
        lease_ttl: seconds a run's lease lasts without renewal (the writer renews it
            every third of that); a holder that stopped renewing it is taken over after,
            and a run that could not reach the database for that long stops.
        commit_interval: seconds a group commit waits to gather node records.
        connect_timeout: seconds a claim, a read or opening the store waits for the
            database (through a restart, say) before it fails with StoreError.
        pool_size: connections kept for claims and reads (the writer has its own).
        synchronous_commit: PostgreSQL's setting for the group commits of node records:
            ``"off"`` (the default) does not wait for the server's disk, as SQLite's
            ``synchronous="NORMAL"``: a crash of a worker loses nothing committed, a
            crash of the database server may lose the last fraction of a second of node
            ends (those nodes run again on resume; what is kept is still a prefix).
            ``"on"`` waits for the disk at each group commit (an fsync: milliseconds);
            ``"remote_apply"`` and the others, for replicas as PostgreSQL says. Claims
            follow it too: a claim the server lost is told from a later one by its
            lease, which every write checks with the fence.

    Raises:
        StoreError: the database cannot be reached, ``schema`` holds tables that are
            not a flowrt store, a damaged store (a table or column missing, an unknown
            schema version), a store written by a newer flowrt, or the user may not
            create the schema.
        StoreUnavailable: (a StoreError) no connection within ``connect_timeout``.
        ValueError: a ``schema`` that is no plain identifier, an unknown serializer, a
            ``lease_ttl`` that is not positive.
        ImportError: psycopg is not installed (``pip install 'flowrt[postgres]'``).

    Close it (``store.close()`` or ``with PostgresStore(...) as store``) when done.
    """

    def __init__(self, url: str, *, schema: str = "flowrt",
                 serializer: str | Serializer = "json", lease_ttl: float = 60.0,
                 commit_interval: float = 0.005, connect_timeout: float = 10.0,
                 pool_size: int = 4, synchronous_commit: str = "off") -> None:
        url, schema = _schema_from_url(url, schema)
        if not _NAME.fullmatch(schema):
            raise ValueError(f"schema must be a plain identifier (letters, digits, _), "
                             f"got {schema!r}")
        if not lease_ttl > 0:
            raise ValueError(f"lease_ttl must be > 0 seconds, got {lease_ttl!r}")
        if synchronous_commit not in _SYNCHRONOUS_COMMIT:
            raise ValueError(f"synchronous_commit must be one of "
                             f"{', '.join(_SYNCHRONOUS_COMMIT)}, got {synchronous_commit!r}")
        self.synchronous_commit = synchronous_commit
        self._pg, pool_module = _psycopg()
        from psycopg.conninfo import conninfo_to_dict

        self.url = url
        self.schema = schema
        self.where = _where(url)
        self.serializer = get_serializer(serializer)
        self.lease_ttl = lease_ttl
        self.commit_interval = commit_interval
        self.connect_timeout = connect_timeout
        try:
            given = conninfo_to_dict(url)
        except self._pg.Error as error:
            raise StoreError(f"not a PostgreSQL URL: {_describe(error)}") from None
        self._kwargs: dict[str, Any] = {k: v for k, v in _CONNECTION_DEFAULTS.items()
                                        if k not in given}
        self._kwargs["connect_timeout"] = max(1, int(min(connect_timeout, 30)))
        s = f'"{schema}"'
        # The batch's arrays go in binary (%b): the server reads them about a third
        # faster than text arrays (7,000 node records: 16 against 22-28 us a row).
        self._commit_sqls = {parts: _commit_sql(s, parts)
                             for parts in itertools.product((False, True), repeat=4)}
        self._s = s
        self._channel = _channel(schema)
        self._closed = False
        self._pool: psycopg_pool.ConnectionPool[Any] = pool_module.ConnectionPool(
            url, min_size=1, max_size=max(1, pool_size), open=False,
            kwargs={**self._kwargs, "autocommit": True}, timeout=connect_timeout,
            configure=self._configure, name=f"flowrt-store:{schema}")
        first = self._open_schema()
        # The pool opens once the schema is there, so that _configure readies each of
        # its connections for claims before a run gets one; and the connection that
        # found the server becomes the writer's. Both are ready before the first run:
        # made on its path, they cost it a new backend and the planning of its
        # statements (a store's first claim took 2.6 ms, 1.4 ms with the pool ready,
        # against ~1.0 for its next ones; its first run is still ~2.5 ms slower than
        # the next, perf/ab_postgres.py --fresh; decision 016).
        self._pool.open(wait=False)
        self._writer_conn: psycopg.Connection[Any] | None = None
        try:
            self._writer_conn = self._prepare_writer(first)
        except self._pg.Error:
            first.close()  # the writer connects at its first commit, as after a cut
        try:
            self._pool.wait(timeout=connect_timeout)
        except pool_module.PoolTimeout:  # (the pool is closed)
            if self._writer_conn is not None:
                self._writer_conn.close()
            raise StoreUnavailable(f"cannot reach {self.where} within {connect_timeout} s: "
                                   "no connection for the pool") from None
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._active: dict[str, Claim] = {}  # runs whose lease the writer renews
        #: final statuses a failed commit could not write: written at the next that works
        self._deferred: list[tuple[Any, ...]] = []
        self._writer_error: BaseException | None = None
        #: monotonic time the writer lost its connection, None while it has one
        self.outage_since: float | None = None
        self._hurry = threading.Event()
        self._watchers: list[Callable[[], object]] = []
        self._watch_lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._listening: psycopg.Connection[Any] | None = None
        self._writer = threading.Thread(target=self._write_loop,
                                        name=f"flowrt-store:{self.where}/{schema}",
                                        daemon=True)
        self._writer.start()

    # -- connections ----------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] = self._pg.connect(self.url, autocommit=True,
                                                         **self._kwargs)
        return conn

    def _connect_writer(self) -> psycopg.Connection[Any]:
        """The writer's connection: its commits are as durable as ``synchronous_commit``
        says (claims and renewals, on the pool, always wait for the disk).

        The two statements of a run's commits -- its node records, then those and its
        end -- are prepared here, by running them on empty arrays (they write nothing),
        rather than on a run's path: a run's first commit on a new connection paid
        about a millisecond of planning for each (see ``_commit_statement``)."""
        return self._prepare_writer(self._connect())

    def _prepare_writer(self, conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
        """``conn``, set up as the writer's (closed if that fails)."""
        try:
            conn.execute("SELECT set_config('synchronous_commit', %s, false)",
                         (self.synchronous_commit,))
            _plan_generically(conn)
            _register_arrays(conn)
            no_claims = [_texts(()), _int8s(()), _texts(())]
            for parts, params in (
                    ((False, True, False, False), [*no_claims, *_NO_NODES]),
                    ((True, True, False, False),
                     [self.lease_ttl, DEFAULT_QUEUE, *no_claims, _texts(()), _float8s(()),
                      *_NO_NODES])):
                conn.execute(self._commit_sqls[parts], params, prepare=True)
        except BaseException:
            conn.close()
            raise
        return conn

    def _reach(self) -> psycopg.Connection[Any]:
        """Wait until the database accepts a connection (a server still starting up), up
        to ``connect_timeout``, and return it; StoreError saying why it does not."""
        deadline = time.monotonic() + self.connect_timeout
        pause = 0.05
        while True:
            try:
                return self._connect()
            except self._pg.OperationalError as error:
                if _refused_for_good(error):
                    raise StoreError(f"cannot open the store in {self.where}: "
                                     f"{_describe(error)}") from None
                if time.monotonic() + pause >= deadline:
                    raise StoreUnavailable(f"cannot reach {self.where} within "
                                           f"{self.connect_timeout} s: {_describe(error)}"
                                           ) from None
            except self._pg.Error as error:
                raise StoreError(f"cannot open the store in {self.where}: "
                                 f"{_describe(error)}") from None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _broken(self, error: BaseException, conn: Any) -> bool:
        """Whether ``error`` is the connection's (retry on another) rather than the
        statement's: an OperationalError on a closed or broken connection, one the
        client raised itself (no SQLSTATE: "server closed the connection", "cannot exit
        pipeline mode while busy" after a cut), or a server's connection exception
        (class 08) or operator intervention (57P: shutdown, terminated backend)."""
        if not isinstance(error, self._pg.OperationalError):
            return False
        if conn is None or conn.closed or conn.broken:
            return True
        sqlstate = getattr(error, "sqlstate", None)
        return sqlstate is None or sqlstate.startswith(("08", "57P"))

    def _with_connection(self, what: str, step: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """``step(conn)`` on a pooled connection; again on another while connections
        break, for up to ``connect_timeout``; other database errors become StoreErrors
        (errors of ``step`` itself propagate)."""
        if self._closed:
            raise StoreError(f"the store {self.where} ({self.schema}) is closed")
        deadline = time.monotonic() + self.connect_timeout
        pause = 0.05
        while True:
            conn = None
            try:
                with self._pool.connection(timeout=max(0.1, deadline - time.monotonic())
                                           ) as conn:
                    return step(conn)
            except _Conflict:
                continue
            except self._pg.Error as error:
                if not self._broken(error, conn):
                    raise StoreError(f"{what} {self.where} failed: {_describe(error)}"
                                     ) from error
                last = error  # a broken connection, or none within the time (PoolTimeout)
            if time.monotonic() + pause >= deadline:
                raise StoreUnavailable(
                    f"{what} {self.where} failed: the database could not be reached for "
                    f"{self.connect_timeout} s ({_describe(last)})") from None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    # -- the schema -----------------------------------------------------------------

    def _open_schema(self) -> psycopg.Connection[Any]:
        """A connection to the database, on which the schema was checked, and created or
        migrated under an advisory lock (several processes starting at once against an
        empty database create it once); again on a new connection while connections
        break, for up to ``connect_timeout``."""
        deadline = time.monotonic() + self.connect_timeout
        while True:
            conn = self._reach()
            try:
                if self._look_with(conn) != SCHEMA_VERSION:
                    self._create(conn)
                return conn
            except self._pg.Error as error:
                broken = self._broken(error, conn)
                conn.close()
                if not broken or time.monotonic() >= deadline:
                    raise StoreError(f"opening the store in {self.where} failed: "
                                     f"{_describe(error)}") from error
            except BaseException:
                conn.close()
                raise
            time.sleep(0.05)

    def _create(self, conn: psycopg.Connection[Any]) -> None:
        """Create the schema, or migrate it to SCHEMA_VERSION, in one transaction."""
        key = int.from_bytes(hashlib.sha256(f"flowrt:{self.schema}".encode()).digest()[:8],
                             "big", signed=True)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (key,))
            version = self._look_with(conn)  # another process may have done it
            if version == 0:  # version 1, then the migrations: one way to any version
                for statement in _SCHEMA:
                    conn.execute(statement.replace("{s}", self._s).encode())
                conn.execute(f"INSERT INTO {self._s}.meta VALUES (%s, %s), (%s, %s)",
                             ("app", APP, "schema_version", "1"))
                version = 1
            while version < SCHEMA_VERSION:
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement.replace("{s}", self._s).encode())
                version += 1
                conn.execute(f"UPDATE {self._s}.meta SET value = %s "
                             "WHERE key = 'schema_version'", (str(version),))

    def _look_with(self, conn: psycopg.Connection[Any]) -> int:
        """The store's schema version (0: nothing there yet); StoreError for a schema
        that is not a sound flowrt store."""
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (self.schema,))]
        if not tables:
            return 0
        meta: dict[str, str] = {}
        if "meta" in tables:
            meta = dict(conn.execute(f"SELECT key, value FROM {self._s}.meta").fetchall())
        name = f"schema {self.schema!r} of {self.where}"
        if meta.get("app") != APP:
            raise StoreError(f"{name} is not a flowrt store: it holds tables of something "
                             f"else ({', '.join(sorted(tables))})")
        text = meta.get("schema_version")
        try:
            version = int(text) if text is not None else -1
        except ValueError:
            version = -1
        if version < 0:
            raise StoreError(f"{name} is a damaged flowrt store: its schema_version is "
                             f"{text!r}, not a version number")
        if version > SCHEMA_VERSION:
            raise StoreError(f"{name} was written by a newer flowrt (store schema "
                             f"{version}; this flowrt reads up to {SCHEMA_VERSION})")
        if version not in _COLUMNS:
            raise StoreError(f"{name} is a damaged flowrt store: schema version {version} "
                             "is none that flowrt ever wrote")
        columns: dict[str, set[str]] = {}
        for table, column in conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = %s", (self.schema,)):
            columns.setdefault(table, set()).add(column)
        for table, wanted in _COLUMNS[version].items():
            if table not in columns:
                raise StoreError(f"{name} is a damaged flowrt store: its table {table!r} "
                                 "is missing")
            missing = [c for c in wanted if c not in columns[table]]
            if missing:
                raise StoreError(f"{name} is a damaged flowrt store: table {table!r} has "
                                 f"no column {', '.join(map(repr, missing))}")
        return version

    # -- runs -----------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord | None:
        def read(conn: psycopg.Connection[Any]) -> tuple[Any, ...] | None:
            row: tuple[Any, ...] | None = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM {self._s}.runs WHERE run_id = %s",
                (run_id,)).fetchone()
            return row

        row = self._with_connection("reading", read)
        return None if row is None else _record(row, self.where)

    def _nodes(self, conn: psycopg.Connection[Any], run_id: str) -> dict[str, NodeRecord]:
        """The node records of run ``run_id``: its batches applied in write order, so
        that the last record of a node wins. StoreError when a batch is damaged."""
        nodes: dict[str, NodeRecord] = {}
        new = tuple.__new__
        for batch in conn.execute(f"SELECT {_BATCH_COLUMNS} FROM {self._s}.node_batches "
                                  "WHERE run_id = %s ORDER BY seq", (run_id,), binary=True):
            fence, names = batch[0], batch[1]
            n = len(names)
            fields: list[Iterable[Any]] = []
            for field in batch[2:]:
                if len(field) != n:
                    if field:
                        raise StoreError(f"run {run_id!r} in {self.where} is damaged: a "
                                         f"batch of {n} node records holds a field of "
                                         f"{len(field)}")
                    field = repeat(None, n)  # NULLs only, sent as an empty array
                fields.append(field)
            statuses, attempts, outputs, errors, tracebacks, started, finished, dues = fields
            for record in zip(names, statuses, attempts, outputs, errors, tracebacks,
                              started, finished, repeat(fence), dues):
                nodes[record[0]] = new(NodeRecord, record)
        return nodes

    def _load(self, conn: psycopg.Connection[Any], record: RunRecord) -> StoredRun:
        run_id = record.run_id
        nodes = self._nodes(conn, run_id)
        data = conn.execute(f"SELECT snapshot FROM {self._s}.data WHERE run_id = %s",
                            (run_id,)).fetchone()
        snapshot = None if data is None or data[0] is None else bytes(data[0])
        signals = tuple(_signal(r) for r in conn.execute(
            f"SELECT {_SIGNAL_COLUMNS} FROM {self._s}.signals WHERE run_id = %s "
            "ORDER BY seq", (run_id,)))
        items: dict[str, dict[int, ItemRecord]] = {}
        for r in conn.execute(f"SELECT {_ITEM_COLUMNS} FROM {self._s}.items "
                              "WHERE run_id = %s", (run_id,)):
            items.setdefault(r[0], {})[r[1]] = ItemRecord(
                r[0], r[1], r[2], r[3], None if r[4] is None else bytes(r[4]), r[5], r[6],
                r[7], r[8])
        return StoredRun(record, nodes, snapshot, self.serializer, signals, items)

    def claim(self, run_id: str, lease: Lease, decide: Decide
              ) -> tuple[StoredRun | None, Claim | None]:
        """Read run ``run_id``, let ``decide`` check it, and take it for ``lease``: one
        transaction.

        See :class:`~flowrt.MemoryStore` for the contract. The run's row is locked
        (``SELECT ... FOR UPDATE``) from the read to the commit, so two processes
        claiming one run are served one after the other, the second seeing what the
        first wrote; two creating a new run at once are too (the second claims again
        and finds the first's).

        Raises:
            RunLeased: another process (or run call) holds the run and is alive.
            StoreError: the database cannot be reached within ``connect_timeout``, or
                the stored run is damaged.
            ValueError: ``run_id`` or a node name holds a NUL character.
        """
        if "\x00" in run_id:
            raise ValueError(f"run_id {run_id!r} holds a NUL character, which a PostgreSQL "
                             "store cannot keep")
        if self._deferred:
            self.flush()  # a final status still to write may be this run's
        result: list[Any] = []

        def take(conn: psycopg.Connection[Any]) -> None:
            valid_until = time.monotonic() + self.lease_ttl
            # A new run (the common case) has no row to lock: it is inserted, a
            # statement that is its own transaction on the autocommit connection (where
            # BEGIN and COMMIT around it made three round trips). When decide says
            # beforehand what it makes of no stored run (Opening.fresh), the insert is
            # tried at once; else the run is looked for first.
            fresh = getattr(decide, "fresh", None)
            if fresh is not None:
                if self._insert_run(conn, run_id, _checked(fresh), lease):
                    result[:] = [None, 1, valid_until]
                    return
            elif conn.execute(f"SELECT 1 FROM {self._s}.runs WHERE run_id = %s",
                              (run_id,)).fetchone() is None:
                record = decide(None)
                if record is None:
                    result[:] = [None, None, valid_until]
                    return
                if self._insert_run(conn, run_id, _checked(record), lease):
                    result[:] = [None, 1, valid_until]
                    return
                # another process made it since the look: claimed as a stored run
            with conn.transaction():
                row = conn.execute(f"SELECT {_RUN_COLUMNS}, {_NOW} FROM {self._s}.runs "
                                   "WHERE run_id = %s FOR UPDATE", (run_id,)).fetchone()
                if row is None:
                    now, old = 0.0, None  # a new run's lease is timed by the insert
                else:
                    now = row[-1]
                    old = _record(row[:-1], self.where)
                    refuse_live_holder(old, lease, now)
                stored, fence = self._take(conn, run_id, old, lease, now, decide)
            result[:] = [stored, fence, valid_until]

        self._with_connection("claiming a run in", take)
        stored, fence, valid_until = result
        if fence is None:
            return stored, None
        return stored, self._claimed(run_id, stored, lease, fence, valid_until)

    def _take(self, conn: psycopg.Connection[Any], run_id: str, old: RunRecord | None,
              lease: Lease, now: float, decide: Decide, recoveries: int | None = None
              ) -> tuple[StoredRun | None, int | None]:
        """Inside a transaction that locked the run's row: read it, ``decide``, lease it;
        the stored run and the new fence (None: ``decide`` left the run be). ``now`` is
        the server's clock."""
        stored = None if old is None else self._load(conn, old)
        record = decide(stored)
        if record is None:
            return stored, None
        _checked(record)
        if old is None:
            if not self._insert_run(conn, run_id, record, lease):
                raise _Conflict  # another process made it since: claimed again from the start
            return stored, 1
        expires = now + self.lease_ttl
        new = restarted(old, record, lease, expires)
        conn.execute(
            f"UPDATE {self._s}.runs SET status = 'running', started = %s, finished = NULL, "
            "resumes = %s, fingerprint = %s, structure = %s, lease = %s, lease_expires = %s, "
            "fence = %s, due = NULL, waits = %s, error = NULL, "
            f"recoveries = coalesce(%s, recoveries) WHERE run_id = %s AND {_CLAIM_COMMIT}",
            (new.started, new.resumes, new.fingerprint,
             new.structure_json or json.dumps(new.structure), lease.to_json(), expires,
             new.fence, waits_json(new), recoveries, run_id, self.synchronous_commit))
        return stored, new.fence

    def _insert_run(self, conn: psycopg.Connection[Any], run_id: str, record: RunRecord,
                    lease: Lease, write: bool = True) -> bool:
        """Insert new run ``run_id`` as held by ``lease`` (fence 1; the lease timed by
        the server's clock); False when the run exists (nothing is written).
        ``write=False`` runs the statement to prepare it, writing nothing."""
        made = conn.execute(
            f"INSERT INTO {self._s}.runs ({_RUN_COLUMNS}) SELECT "
            f"%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,{_NOW} + %s,%s,%s,%s,%s,%s,%s,%s "
            f"WHERE %s AND {_CLAIM_COMMIT} ON CONFLICT (run_id) DO NOTHING",
            (run_id, record.workflow, record.fingerprint,
             record.structure_json or json.dumps(record.structure), record.inputs,
             RUNNING, record.serializer, record.created, record.started, None, 0,
             lease.to_json(), self.lease_ttl, 1, record.queue, None, 0,
             waits_json(record), None, record.trace, write, self.synchronous_commit),
            prepare=True)
        return bool(made.rowcount)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        """Set up a new pooled connection, before any run uses it: generic plans, and
        the claim of a new run prepared (run once, writing nothing).

        A claim on a new connection (a new store, or one the pool replaced) loaded the
        server's catalog for the runs table and planned its insert on the run's path:
        2.5 against 0.55 ms once prepared (a new backend, idle server; decision 016)."""
        _plan_generically(conn)
        now = time.time()
        try:
            self._insert_run(conn, "", RunRecord("", "", "", {}, b"", RUNNING, "json", now,
                                                 now, structure_json="{}"),
                             Lease("", 0, ""), write=False)
        except self._pg.Error:
            if conn.broken:
                raise  # the pool makes another
            # (the schema changed under the store?) the claims will say what is wrong

    def _claimed(self, run_id: str, stored: StoredRun | None, lease: Lease, fence: int,
                 valid_until: float) -> Claim:
        """The Claim of a committed claim, now written for and renewed by the writer."""
        claim = Claim(run_id, lease, fence, valid_until)
        self._active[run_id] = claim
        return claim

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
        store cannot write (the claim then says why). While the writer knows the
        database to be unreachable, it answers False at once."""
        if claim.error is not None:
            return False
        if self.outage_since is not None:
            claim.fail(StoreUnavailable(
                f"the lease of run {claim.run_id!r} could not be renewed: {self.where} is "
                f"unreachable since {time.monotonic() - self.outage_since:.1f} s"))
            return False
        holder: list[BaseException | None] = [None]

        def extend(conn: psycopg.Connection[Any]) -> float:
            valid_until = time.monotonic() + self.lease_ttl
            with conn.transaction():
                held = conn.execute(
                    f"UPDATE {self._s}.runs SET lease_expires = {_NOW} + %s "
                    "WHERE run_id = %s AND fence = %s AND lease = %s",
                    (self.lease_ttl, claim.run_id, claim.fence, claim.lease.to_json())).rowcount
                holder[0] = None if held else self._holder(conn, claim.run_id)
            return valid_until

        try:
            valid_until = self._with_connection("renewing a lease in", extend)
        except StoreError as error:
            claim.fail(error)
            return False
        if holder[0] is not None:
            claim.fail(holder[0])
            return False
        claim.extend(valid_until)
        return True

    def _check_writer(self) -> None:
        if self._writer_error is not None:
            raise StoreError(f"writing to {self.where} failed: "
                             f"{_describe(self._writer_error)}") from self._writer_error
        if self._closed:
            raise StoreError(f"the store {self.where} ({self.schema}) is closed")

    # -- the writer thread ----------------------------------------------------------

    def _write_loop(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        renew_every = max(self.lease_ttl / 3, 0.05)
        next_renewal = time.monotonic() + renew_every
        backlog: list[tuple[Any, ...]] = []  # writes and finishes not committed yet
        flushes: list[threading.Event | FlushMarker] = []  # set once what came before them is done
        pause = 0.05  # between attempts to reconnect, growing to 1 s
        next_attempt = 0.0
        stopping_since: float | None = None
        try:
            while True:
                timeout = max(0.0, next_renewal - time.monotonic())
                if self.outage_since is not None:
                    timeout = min(timeout, max(0.0, next_attempt - time.monotonic()))
                try:
                    op = self._queue.get(timeout=timeout)
                except queue.Empty:
                    op = None
                if op is not None and op[0] == "write" and self.commit_interval > 0:
                    # Group commit: let more writes gather, so that the thread wakes once
                    # per interval rather than once per write. A flush cuts it short.
                    self._hurry.wait(self.commit_interval)
                self._hurry.clear()
                ops = [] if op is None else [op]
                while True:
                    try:
                        ops.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                for o in ops:
                    kind = o[0]
                    if kind == "flush":
                        flushes.append(o[1])
                    elif kind == "stop":
                        stopping_since = stopping_since or time.monotonic()
                    else:
                        backlog.append(o)
                now = time.monotonic()
                renew = now >= next_renewal or stopping_since is not None
                if renew:
                    next_renewal = now + renew_every
                if self.outage_since is not None and now < next_attempt and (
                        stopping_since is None):
                    continue  # still away: the backlog waits for the next attempt
                try:
                    if conn is None and (backlog or self._deferred or self._active
                                         or self.outage_since is not None):
                        conn = self._connect_writer()
                    if conn is not None:
                        self._commit(conn, backlog, renew)
                except self._pg.Error as error:
                    if not self._broken(error, conn):
                        self._failed(error, backlog)
                    else:
                        if conn is not None:
                            with contextlib.suppress(Exception):
                                conn.close()
                        conn = None
                        if not self._lost_connection(backlog, flushes, stopping_since):
                            next_attempt = time.monotonic() + pause
                            pause = min(pause * 2, 1.0)
                            if stopping_since is not None:
                                time.sleep(pause)
                            continue
                        if stopping_since is not None:
                            return
                        continue
                else:
                    if conn is not None:
                        self.outage_since = None
                        pause = 0.05
                backlog.clear()
                for done in flushes:
                    done.set()
                flushes.clear()
                if stopping_since is not None:
                    return
        except BaseException as error:  # a bug: surfaced to the runs by _check_writer
            self._writer_error = error
            for done in flushes:
                done.set()
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _still_trying(self, stopping_since: float) -> bool:
        """While closing, the writer tries to reach the database for ``connect_timeout``."""
        return time.monotonic() - stopping_since < self.connect_timeout

    def _lost_connection(self, backlog: list[tuple[Any, ...]],
                         flushes: list[threading.Event | FlushMarker], stopping_since: float | None
                         ) -> bool:
        """The connection broke: keep the backlog for the next connection (False); past
        the lease (or, closing, ``connect_timeout``), give it up, fail the claims and
        return True."""
        now = time.monotonic()
        if self.outage_since is None:
            self.outage_since = now
        waited = now - self.outage_since
        if waited < self.lease_ttl and (stopping_since is None
                                        or self._still_trying(stopping_since)):
            return False
        failure = StoreUnavailable(f"{self.where} was unreachable for {waited:.1f} s: the "
                                   "runs writing to it stopped (after lease_ttl, their "
                                   "leases may be taken over)")
        for o in backlog:
            if o[0] == "write":
                o[1].fail(failure)
        for claim in list(self._active.values()):
            claim.fail(failure)
        self._deferred += [o for o in backlog if o[0] == "finish"]
        backlog.clear()
        for done in flushes:
            done.set()
        flushes.clear()
        return True

    def _failed(self, error: BaseException, backlog: list[tuple[Any, ...]]) -> None:
        """A commit failed for another reason than the connection (a full disk on the
        server...): its claims stop, their final statuses wait for the next commit."""
        failure = StoreError(f"writing to {self.where} failed: {_describe(error)}")
        failure.__cause__ = error
        for o in backlog:
            if o[0] == "write":
                o[1].fail(failure)
        self._deferred += [o for o in backlog if o[0] == "finish"]

    def _commit(self, conn: psycopg.Connection[Any], backlog: list[tuple[Any, ...]],
                renew: bool) -> None:
        """Commit ``backlog`` (and the deferred final statuses) in one statement, each
        claim's writes only while its fence is the run's; renew the leases if asked."""
        deferred = self._deferred
        if not backlog and not deferred and not (renew and self._active):
            return
        valid_until = time.monotonic() + self.lease_ttl
        claims: dict[Claim, tuple[str, float] | None] = {}  # claim -> its end, if any
        # in write order: read back in that order, the last record of a node wins
        nodes: dict[Claim, list[NodeRecord]] = {}
        data: dict[tuple[str, int], bytes] = {}
        items: dict[tuple[str, str, int, int], ItemRecord] = {}  # the last one wins
        for o in deferred + backlog:
            claim = o[1]
            if o[0] == "write":
                # after a failed write, nothing more of the claim: what is stored must
                # stay a prefix of what happened
                if claim.error is not None:
                    continue
                claims.setdefault(claim, None)
                if o[2]:
                    mine = nodes.get(claim)
                    if mine is None:
                        nodes[claim] = list(o[2])  # (a commit sent again reads it again)
                    else:
                        mine += o[2]
                if o[3] is not None:
                    data[claim.run_id, claim.fence] = o[3]
                for item in o[4]:
                    items[claim.run_id, item.node, item.item, claim.fence] = item
            elif not claim.lost:
                claims[claim] = (o[2], o[3])
        if renew:
            for claim in list(self._active.values()):
                if claim.error is None:
                    claims.setdefault(claim, None)
        ends = list(claims.values())
        # The rows are updated only when the leases are due for renewal or a run ends;
        # otherwise locked (_COMMIT_LOCKED), and the claims' deadlines stay where the
        # last renewal put them.
        update = renew or any(e is not None for e in ends)
        # a claim is its fence and its lease: a fence alone could be made again by a
        # claim that a crash of the server lost (claims do not wait for its disk
        # unless synchronous_commit says so), then taken by another process
        params: list[Any] = [_texts([c.run_id for c in claims]), _int8s([c.fence for c in claims]),
                             _messages([c.lease.to_json() for c in claims])]
        if update:
            params = [self.lease_ttl, DEFAULT_QUEUE, *params,
                      _texts([None if e is None else e[0] for e in ends]),
                      _float8s([None if e is None else e[1] for e in ends])]
        rows = _node_columns(list(nodes.items()))
        parts = (update, rows is not _NO_NODES, bool(data), bool(items))
        if parts[1]:
            params += rows
        if parts[2]:
            params += [_texts([k[0] for k in data]), _int8s([k[1] for k in data]),
                       _blobs(list(data.values()))]
        if parts[3]:
            params += _item_columns(items)
        if any(e is not None and e[0] in (WAITING, QUEUED) for e in ends):
            # a run parked or handed back to its queue: its due time and the workers'
            # wake-up go in the same transaction as the statement
            with conn.transaction():
                held = self._commit_statement(conn, parts, params)
                wake: set[str] = set()
                for claim, end in claims.items():
                    if end is None or (claim.run_id, claim.fence) not in held:
                        continue
                    if end[0] == WAITING:
                        if self._park(conn, claim, end[1]):
                            wake.add(held[claim.run_id, claim.fence])
                    elif end[0] == QUEUED:
                        wake.add(held[claim.run_id, claim.fence])
                for name in wake:
                    conn.execute("SELECT pg_notify(%s, %s)", (self._channel, name))
        else:
            # One statement: on an autocommit connection it is its own transaction,
            # all of it or nothing, without the BEGIN and COMMIT round trips (two of
            # the three a group commit made: 1,000 nodes x 1 ms went from 1.62x to
            # ...x in memory, perf/bench_postgres.py).
            held = self._commit_statement(conn, parts, params)
        self._deferred = []
        refused = [c for c in claims if (c.run_id, c.fence) not in held]
        if update:
            for claim in claims:
                if (claim.run_id, claim.fence) in held:
                    claim.extend(valid_until)
        if refused:
            now = {r[0]: r for r in conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM {self._s}.runs WHERE run_id = ANY(%s)",
                ([c.run_id for c in refused],))}
            for claim in refused:
                claim.fail(self._why_refused(claim.run_id, now.get(claim.run_id)))

    def _commit_statement(self, conn: psycopg.Connection[Any], parts: tuple[bool, ...],
                          params: list[Any]) -> dict[tuple[str, int], str]:
        """Run the group commit's statement: (run id, fence) -> queue of each claim
        whose writes the database took (its fence is still the run's; the queue is
        set for the runs it parks or hands back, the only ones it is read for).

        Prepared from its first use (psycopg waits for the fifth): planning it costs
        the server about as much as running it (a commit of 150 records: 1.75-2.25 ms
        of its CPU unprepared, 1.0 prepared; load ~5), and a store writes few commits
        of the rarer combinations of parts."""
        return {(r[0], r[1]): r[2] for r in conn.execute(self._commit_sqls[parts], params,
                                                         prepare=True)}

    def _park(self, conn: psycopg.Connection[Any], claim: Claim, now: float) -> bool:
        """Set the due time of ``claim``'s run, parked by this transaction: the earliest
        due of its waiting nodes, or ``now`` when a signal one of them waits for is
        stored (:func:`park_due`); True when that is due at once."""
        run_id = claim.run_id
        row = conn.execute(f"SELECT waits FROM {self._s}.runs WHERE run_id = %s",
                           (run_id,)).fetchone()
        waits = json.loads(row[0]) if row and row[0] else {}
        nodes = {name: r for name, r in self._nodes(conn, run_id).items()
                 if r.status == WAITING}
        signals = [SignalRecord(run_id, r[0], b"", 0.0) for r in conn.execute(
            f"SELECT DISTINCT name FROM {self._s}.signals WHERE run_id = %s", (run_id,))]
        due = park_due(nodes, waits, signals, now)
        conn.execute(f"UPDATE {self._s}.runs SET due = %s WHERE run_id = %s AND fence = %s",
                     (due, run_id, claim.fence))
        return due is not None and due <= now

    def _why_refused(self, run_id: str, row: tuple[Any, ...] | None) -> BaseException:
        """Why a write of a claim on ``run_id`` was refused (LeaseLost or RunCancelled),
        from its row as it is now."""
        try:
            record = None if row is None else _record(row, self.where)
        except StoreError:
            return LeaseLost(run_id, "another process")
        return lost_claim_error(run_id, record)

    def _holder(self, conn: psycopg.Connection[Any], run_id: str) -> BaseException:
        """Why a write of a claim on ``run_id`` is refused now."""
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM {self._s}.runs WHERE run_id = %s",
                           (run_id,)).fetchone()
        return self._why_refused(run_id, row)

    # -- reading and tidying --------------------------------------------------------

    def load(self, run_id: str) -> StoredRun | None:
        def read(conn: psycopg.Connection[Any]) -> StoredRun | None:
            with conn.transaction():
                # one snapshot for the run and its nodes
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM {self._s}.runs "
                                   "WHERE run_id = %s", (run_id,)).fetchone()
                return None if row is None else self._load(conn, _record(row, self.where))

        return self._with_connection("reading", read)

    def runs(self, workflow: str | None = None, status: str | None = None) -> list[RunRecord]:
        query = f"SELECT {_RUN_COLUMNS} FROM {self._s}.runs"
        where, args = [], []
        if workflow is not None:
            where.append("workflow = %s")
            args.append(workflow)
        if status is not None:
            where.append("status = %s")
            args.append(status)
        if where:
            query += " WHERE " + " AND ".join(where)
        rows = self._with_connection(
            "reading", lambda conn: conn.execute(query + " ORDER BY created, run_id",
                                                 args).fetchall())
        return [_record(r, self.where) for r in rows]

    def delete(self, run_id: str) -> bool:
        self.flush()

        def remove(conn: psycopg.Connection[Any]) -> bool:
            with conn.transaction():
                conn.execute(f"DELETE FROM {self._s}.node_batches WHERE run_id = %s",
                             (run_id,))
                conn.execute(f"DELETE FROM {self._s}.items WHERE run_id = %s", (run_id,))
                conn.execute(f"DELETE FROM {self._s}.data WHERE run_id = %s", (run_id,))
                conn.execute(f"DELETE FROM {self._s}.signals WHERE run_id = %s", (run_id,))
                gone = conn.execute(f"DELETE FROM {self._s}.runs WHERE run_id = %s",
                                    (run_id,)).rowcount
            return bool(gone)

        return self._with_connection("deleting a run from", remove)

    def prune(self, *, older_than: float | None = None, keep: int | None = None,
              statuses: Iterable[str] = ("succeeded", "failed", "cancelled")) -> int:
        return prune(self, older_than, keep, statuses)

    # -- the work queue (docs/decisions/013-queue.md) --------------------------------

    def _notify(self, conn: psycopg.Connection[Any], queue: str | None) -> None:
        """Wake the workers listening on this store (at the commit): a run of ``queue``
        may be due."""
        conn.execute("SELECT pg_notify(%s, %s)", (self._channel, queue or DEFAULT_QUEUE))

    def _transaction(self, what: str, step: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """``step(conn)`` in one transaction on a pooled connection (see
        :meth:`_with_connection`)."""
        def run(conn: psycopg.Connection[Any]) -> _T:
            with conn.transaction():
                return step(conn)

        return self._with_connection(what, run)

    def submit(self, record: RunRecord) -> bool:
        def insert(conn: psycopg.Connection[Any]) -> bool:
            made = self._insert_queued(conn, record)
            if made:
                self._notify(conn, record.queue)
            return made

        return self._transaction("submitting a run to", insert)

    def _insert_queued(self, conn: psycopg.Connection[Any], record: RunRecord) -> bool:
        if "\x00" in record.run_id:
            raise ValueError(f"run_id {record.run_id!r} holds a NUL character, which a "
                             "PostgreSQL store cannot keep")
        return conn.execute(
            f"INSERT INTO {self._s}.runs ({_RUN_COLUMNS}) VALUES "
            "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) "
            "ON CONFLICT (run_id) DO NOTHING",
            queued_run_row(record),
        ).rowcount == 1

    def claim_next(self, lease: Lease, decide: Decide, *, now: float,
                   workflows: Mapping[str, Collection[str]],
                   queues: Collection[str] = (DEFAULT_QUEUE,),
                   max_recoveries: int = 5) -> tuple[StoredRun, Claim] | None:
        # SELECT ... FOR UPDATE SKIP LOCKED picks the run, so that workers taking runs at
        # once each get another one without waiting for each other; the claim is the
        # rest of that transaction. Due runs first (oldest due first), then held runs
        # whose holder is gone (docs/decisions/016-postgres.md).
        pairs = [(name, fp) for name, fps in workflows.items() for fp in fps]
        if not pairs or not queues:
            return None
        if self._deferred:
            self.flush()
        names, prints = [p[0] for p in pairs], [p[1] for p in pairs]
        queue_names = list(queues)
        host = socket.gethostname()
        outcome: list[Any] = []

        def take_next(conn: psycopg.Connection[Any]) -> None:
            outcome.clear()
            valid_until = time.monotonic() + self.lease_ttl
            tried: list[str] = []
            with conn.transaction():
                wall = conn.execute(f"SELECT {_NOW}").fetchone()[0]  # type: ignore[index]
                while True:
                    # A due run first; then a held run whose lease ran out (or whose
                    # holder is on this host: its process may be gone).
                    row = conn.execute(
                        f"SELECT {_RUN_COLUMNS} FROM {self._s}.runs "
                        "WHERE status IN ('queued', 'waiting') AND due <= %s "
                        "AND queue = ANY(%s) AND run_id <> ALL(%s) "
                        "AND (workflow, fingerprint) IN "
                        "(SELECT * FROM unnest(%s::text[], %s::text[])) "
                        "ORDER BY due, created LIMIT 1 FOR UPDATE SKIP LOCKED",
                        (now, queue_names, tried, names, prints)).fetchone()
                    if row is None:
                        row = conn.execute(
                            f"SELECT {_RUN_COLUMNS} FROM {self._s}.runs "
                            "WHERE status = 'running' AND queue = ANY(%s) "
                            "AND run_id <> ALL(%s) AND (lease_expires IS NULL "
                            "OR lease_expires < %s OR lease::json->>'host' = %s) "
                            "AND (workflow, fingerprint) IN "
                            "(SELECT * FROM unnest(%s::text[], %s::text[])) "
                            "ORDER BY lease_expires LIMIT 1 FOR UPDATE SKIP LOCKED",
                            (queue_names, tried, wall, host, names, prints)).fetchone()
                    if row is None:
                        return
                    run_id = row[0]
                    tried.append(run_id)
                    try:
                        old = _record(row, self.where)
                    except StoreError as error:
                        self._dead_letter(conn, run_id, str(error), wall)
                        continue
                    recoveries = None
                    if old.status == RUNNING:
                        if not holder_gone(old, wall):
                            continue  # a live holder on this host
                        deaths = old.recoveries + 1
                        if deaths >= max_recoveries:
                            conn.execute(f"UPDATE {self._s}.runs SET fence = fence + 1, "
                                         "recoveries = %s WHERE run_id = %s",
                                         (deaths, run_id))
                            self._dead_letter(conn, run_id,
                                              dead_letter_reason(deaths, max_recoveries), wall)
                            continue
                        recoveries = deaths
                    try:
                        with conn.transaction():  # a savepoint: decide may refuse
                            stored, fence = self._take(conn, run_id, old, lease, wall,
                                                       decide, recoveries)
                    except Exception as error:
                        if isinstance(error, self._pg.Error):
                            raise
                        self._dead_letter(conn, run_id, describe_error(error), wall)
                        outcome[:] = [error]
                        return
                    if fence is None or stored is None:
                        continue  # decide left it be (it had succeeded)
                    outcome[:] = [stored, fence, valid_until]
                    return

        self._with_connection("taking a run from", take_next)
        if not outcome:
            return None
        if len(outcome) == 1:
            raise outcome[0]
        stored, fence, valid_until = outcome
        return stored, self._claimed(stored.record.run_id, stored, lease, fence, valid_until)

    def _dead_letter(self, conn: psycopg.Connection[Any], run_id: str, reason: str,
                     now: float) -> None:
        conn.execute(f"UPDATE {self._s}.runs SET status = 'dead_letter', finished = %s, "
                     "due = NULL, lease = NULL, lease_expires = NULL, error = %s "
                     "WHERE run_id = %s", (now, _text(reason), run_id))

    def _get(self, conn: psycopg.Connection[Any], run_id: str) -> RunRecord:
        """Run ``run_id``, its row locked for this transaction; RunNotFound naming a near
        id when there is none."""
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM {self._s}.runs WHERE run_id = %s "
                           "FOR UPDATE", (run_id,)).fetchone()
        if row is None:
            known = [r[0] for r in conn.execute(
                f"SELECT run_id FROM {self._s}.runs ORDER BY created DESC LIMIT 1000")]
            raise not_found(run_id, known, f"{self.where} ({self.schema})")
        return _record(row, self.where)

    def add_signal(self, signal: SignalRecord) -> bool:
        if self._deferred:
            self.flush()

        def store(conn: psycopg.Connection[Any]) -> bool:
            run = self._get(conn, signal.run_id)
            refuse_signal(run, signal.name)
            made = conn.execute(
                f"INSERT INTO {self._s}.signals (run_id, name, payload, sent, signal_id) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (run_id, signal_id) "
                "WHERE signal_id IS NOT NULL DO NOTHING",
                (signal.run_id, signal.name, signal.payload, signal.sent,
                 signal.signal_id)).rowcount == 1
            node = (self._nodes(conn, signal.run_id).get(signal.name)
                    if made and run.status == WAITING else None)
            if node is not None and node.status == WAITING:
                conn.execute(f"UPDATE {self._s}.runs SET due = least(coalesce(due, %s), %s) "
                             "WHERE run_id = %s", (signal.sent, signal.sent, signal.run_id))
            if made:
                # Wake the watchers: workers (a parked run is due now) and the process
                # whose run waits for it without parking (its wait node looks at once).
                self._notify(conn, run.queue)
            return made

        return self._transaction("sending a signal to", store)

    def signals(self, run_id: str) -> list[SignalRecord]:
        return self._with_connection("reading", lambda conn: [_signal(r) for r in conn.execute(
            f"SELECT {_SIGNAL_COLUMNS} FROM {self._s}.signals WHERE run_id = %s "
            "ORDER BY seq", (run_id,))])

    def cancel(self, run_id: str, now: float) -> RunRecord:
        self.flush()

        def cancel(conn: psycopg.Connection[Any]) -> RunRecord:
            old = self._get(conn, run_id)
            new = cancelled(old, now)
            if new is not old:
                conn.execute(f"UPDATE {self._s}.runs SET status = %s, finished = %s, "
                             "due = NULL, lease = NULL, lease_expires = NULL, fence = %s "
                             "WHERE run_id = %s", (new.status, now, new.fence, run_id))
            return old

        return self._transaction("cancelling a run in", cancel)

    def wake(self, run_id: str, now: float) -> RunRecord:
        self.flush()

        def wake(conn: psycopg.Connection[Any]) -> RunRecord:
            old = self._get(conn, run_id)
            wall = conn.execute(f"SELECT {_NOW}").fetchone()[0]  # type: ignore[index]
            if old.status == RUNNING and not holder_gone(old, wall):
                assert old.owner is not None
                raise RunLeased(run_id, old.owner.describe())
            new = woken(old, now)
            if new is not old:
                conn.execute(f"UPDATE {self._s}.runs SET status = %s, queue = %s, due = %s, "
                             "finished = %s, recoveries = %s, error = %s, lease = NULL, "
                             "lease_expires = NULL, fence = %s WHERE run_id = %s",
                             (new.status, new.queue, new.due, new.finished, new.recoveries,
                              new.error, new.fence, run_id))
                self._notify(conn, new.queue)
            return old

        return self._transaction("resuming a run in", wake)

    # -- schedules ------------------------------------------------------------------

    def put_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord:
        def put(conn: psycopg.Connection[Any]) -> ScheduleRecord:
            row = conn.execute(f"SELECT {_SCHEDULE_COLUMNS} FROM {self._s}.schedules "
                               "WHERE name = %s FOR UPDATE", (schedule.name,)).fetchone()
            new = schedule
            if row is not None:
                old = _schedule(row)
                if old.same_spec(schedule):
                    return old
                new = attrs.evolve(schedule, created=old.created)
            conn.execute(
                f"INSERT INTO {self._s}.schedules ({_SCHEDULE_COLUMNS}) VALUES "
                "(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (name) DO UPDATE SET "
                "workflow = excluded.workflow, inputs = excluded.inputs, "
                "serializer = excluded.serializer, next_due = excluded.next_due, "
                "cron = excluded.cron, every = excluded.every, timezone = excluded.timezone, "
                "catch_up = excluded.catch_up, queue = excluded.queue, "
                "last_slot = excluded.last_slot, created = excluded.created",
                (new.name, new.workflow, new.inputs, new.serializer, new.next_due, new.cron,
                 new.every, new.timezone, new.catch_up, new.queue, new.last_slot,
                 new.created))
            return new

        return self._transaction("storing a schedule in", put)

    def delete_schedule(self, name: str) -> bool:
        return self._transaction("deleting a schedule from", lambda conn: bool(conn.execute(
            f"DELETE FROM {self._s}.schedules WHERE name = %s", (name,)).rowcount))

    def schedules(self) -> list[ScheduleRecord]:
        return self._with_connection("reading", lambda conn: [_schedule(r) for r in conn.execute(
            f"SELECT {_SCHEDULE_COLUMNS} FROM {self._s}.schedules ORDER BY name")])

    def fire_schedule(self, name: str, due: float, runs: list[RunRecord], next_due: float,
                      last_slot: str) -> list[str] | None:
        # The schedule's row is moved on only while its next_due is still ``due`` (an
        # UPDATE ... WHERE next_due = %s: of workers firing one slot at once, one moves
        # it, the others wait for its commit and then find it moved); each slot's run
        # id is the primary key of its run.
        def fire(conn: psycopg.Connection[Any]) -> list[str] | None:
            moved = conn.execute(
                f"UPDATE {self._s}.schedules SET next_due = %s, last_slot = %s "
                "WHERE name = %s AND next_due = %s",
                (next_due, last_slot, name, due)).rowcount
            if not moved:
                return None
            made = [r.run_id for r in runs if self._insert_queued(conn, r)]
            for queue_name in {r.queue for r in runs}:
                self._notify(conn, queue_name)
            return made

        return self._transaction("firing a schedule in", fire)

    # -- waking workers: LISTEN / NOTIFY ------------------------------------------------

    def watch(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback()`` (from another thread) whenever a run of this store may
        have become due -- submitted, signalled, resumed, handed back, a schedule fired
        -- in any process, and once after the store reconnected (a notification may
        have been missed). Returns the function that stops it.

        A thread of the store listens on the server (``LISTEN``) on a connection of
        its own while anything watches; a worker then takes a run within milliseconds
        of its submission, and polls only as the slow fallback (timers, dead workers).
        """
        with self._watch_lock:
            self._watchers.append(callback)
            if self._listener is None:
                self._listener = threading.Thread(
                    target=self._listen, name=f"flowrt-listen:{self.where}/{self.schema}",
                    daemon=True)
                self._listener.start()

        def unwatch() -> None:
            with self._watch_lock, contextlib.suppress(ValueError):
                self._watchers.remove(callback)

        return unwatch

    def _wake_watchers(self) -> None:
        with self._watch_lock:
            watchers = list(self._watchers)
        for callback in watchers:
            try:
                callback()
            except Exception:  # a watcher's bug must not stop the others
                continue

    def _listen(self) -> None:
        pause = 0.05
        while not self._closed:
            try:
                conn = self._connect()
            except self._pg.Error:
                time.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            pause = 0.05
            self._listening = conn
            try:
                conn.execute(f'LISTEN "{self._channel}"')
                self._wake_watchers()  # what was sent while nobody listened
                while not self._closed:
                    for _ in conn.notifies(timeout=0.5, stop_after=1):
                        self._wake_watchers()
            except self._pg.Error:
                continue  # the server went away: listen again on a new connection
            finally:
                self._listening = None
                with contextlib.suppress(Exception):
                    conn.close()

    # -- cached node outputs --

    def get_cached(self, key: str, now: float) -> tuple[bytes, str] | None:
        row = self._with_connection("reading the cache of", lambda conn: conn.execute(
            f"SELECT value, serializer, expires FROM {self._s}.cache WHERE key = %s",
            (key,)).fetchone())
        if row is None or (row[2] is not None and now >= row[2]):
            return None
        return bytes(row[0]), row[1]

    def put_cached(self, key: str, value: bytes, serializer: str, created: float,
                   expires: float | None) -> None:
        # One upsert in autocommit: a cached output belongs to no run and no claim.
        self._with_connection("writing the cache of", lambda conn: conn.execute(
            f"INSERT INTO {self._s}.cache VALUES (%s, %s, %s, %s, %s) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value, serializer = excluded.serializer, "
            "created = excluded.created, expires = excluded.expires",
            (key, value, serializer, created, expires)))

    def clear_cache(self) -> int:
        return self._transaction("clearing the cache of", lambda conn: conn.execute(
            f"DELETE FROM {self._s}.cache").rowcount)

    def prune_cache(self, now: float) -> int:
        return self._transaction("pruning the cache of", lambda conn: conn.execute(
            f"DELETE FROM {self._s}.cache WHERE expires <= %s", (now,)).rowcount)

    def close(self) -> None:
        """Write what is queued (waiting up to ``connect_timeout`` for a database that is
        away), stop the writer and close the connections."""
        if self._closed:
            return
        self._queue.put(("stop",))
        self._hurry.set()
        self._writer.join()
        self._closed = True
        if self._listener is not None:
            self._listener.join()  # it looks at _closed at least every half second
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PostgresStore {self.where} schema={self.schema!r}>"

