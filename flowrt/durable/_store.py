"""Durable run state: the ``Store`` protocol, its records, ``Claim``.

A store keeps, per run: a :class:`RunRecord` (workflow name, structure fingerprint,
inputs, status, times, lease and fencing token) and a :class:`NodeRecord` per node
that reached a final status, with the serialized output of succeeded nodes; plus a
snapshot of the run's ``WorkflowData`` keys. :mod:`flowrt.durable._run` decides what
to write when; a store only keeps it. :class:`~flowrt.SQLiteStore` is the embedded
default (``store="runs.db"``); :class:`~flowrt.MemoryStore` (:mod:`flowrt.durable._memory`)
keeps everything in the process (tests, and resuming within one process) and is the
reference for the contract.

Who may write a run (docs/decisions/012-fencing.md): a process *claims* a run --
reads it, checks that nobody live holds it, and takes its lease with a new fencing
token, all in one transaction -- and every later write of that process carries the
token; the store refuses, in the transaction of the write, any write whose token is
not the run's latest. A holder that lost its run hears of it through its
:class:`Claim` and stops.

Node writes may be batched by the store (``write`` returns before the data is on
disk), in the order they were made; ``flush`` waits until all of it is.

Runs that outlive a process (docs/decisions/013-queue.md): a store also keeps a work
queue -- runs *submitted* with status ``"queued"``, runs *parked* with status
``"waiting"`` (every node left waits for a signal or a timer), and runs whose holder
died -- from which workers take runs with :meth:`Store.claim_next`, the same
read-check-lease transaction as :meth:`Store.claim`; *signals* sent to runs (kept until
their node waits for them, deduplicated by id); and *schedules* with the next slot each
is due at, fired (the slot's run created) exactly once by :meth:`Store.fire_schedule`.
A run's ``due`` says when a worker should take it; the store compares it with the
caller's clock (every method that needs "now" is given it), so that tests can drive
time. What users and tools do with the store alone -- cancel, resume, signal -- is in
:mod:`flowrt.durable._control`.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from difflib import get_close_matches
from itertools import chain
from typing import Any, NamedTuple, Protocol, runtime_checkable

import attrs

from .._engine.result import jsonable
from ..errors import (
    LeaseLost,
    RunCancelled,
    RunLeased,
    RunNotFound,
    RunRolledBack,
    StoreError,
)
from ..workflow._waits import signal_refused
from ._serialize import JSONSerializer, Serializer, reader_for

__all__ = ["CANCELLED", "COMPENSATING", "DEAD_LETTER", "FAILED", "FINAL", "LISTED", "QUEUED",
           "ROLLBACK_STATUSES", "RUNNING", "SUCCEEDED", "UNDONE", "WAITING", "Claim", "Decide",
           "ItemRecord", "Lease", "NodeRecord", "Opening", "RunRecord",
           "ScheduleRecord", "SignalRecord", "Store", "StoredRun", "Wait", "decode", "prune",
           "rolled_back", "utc_text"]

# A stored run's status (RunRecord.status).
QUEUED = "queued"  #: submitted; a worker will take it when it is due
RUNNING = "running"  #: a process holds it (or held it and died: RunRecord.is_interrupted)
WAITING = "waiting"  #: parked: every node left waits for a signal or a timer; nobody holds it
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
DEAD_LETTER = "dead_letter"  #: its workers died max_recoveries times running it, or unreadable
#: the statuses of runs that nothing will take up again unless asked (resume)
FINAL = frozenset({SUCCEEDED, FAILED, CANCELLED, DEAD_LETTER})
#: every status, in the order of a run's life
#: a node record's status while a rollback that will compensate the node is under way:
#: it SUCCEEDED (its output is kept) and its compensation has not ended yet
#: (docs/decisions/020-saga-rollback.md)
COMPENSATING = "compensating"
#: node record statuses that say the run was rolling back
ROLLBACK_STATUSES = frozenset({COMPENSATING, "compensated", "compensation_failed"})
#: the statuses a node or map item record ends a rollback with: its compensation ran
UNDONE = frozenset({"compensated", "compensation_failed"})
STATUSES = (QUEUED, RUNNING, WAITING, SUCCEEDED, FAILED, CANCELLED, DEAD_LETTER)
#: the queue runs go to when none is named (submitted, parked or resumed for workers)
DEFAULT_QUEUE = "default"
#: what a wait node waits for (RunRecord.waits values)
WAIT_KINDS = ("signal", "approval", "timer")


def utc_text(when: float) -> str:
    """A time (seconds since the epoch) as the store's texts say it: UTC, ISO 8601, to
    the second (to the millisecond when it is not a whole second)."""
    ms = round(when * 1000)
    text = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


def rolled_back(status: str, statuses: Iterable[str]) -> bool:
    """Whether a run of ``status`` whose node and map item records have ``statuses``
    was rolled back to the end: it failed, was cancelled or dead-lettered, something was
    undone (or its compensation failed) and nothing is left "compensating".

    Such a run is over: resuming it would run nothing (decision 020), so
    :func:`flowrt.durable.control.resume` refuses it (:class:`~flowrt.RunRolledBack`)
    and the dashboard offers no Resume. One rule, no I/O, for every caller: the store's
    records (:meth:`StoredRun.rolled_back`) and the dashboard's ``to_dict()`` data.

    >>> rolled_back("failed", ["succeeded", "failed", "compensated"])
    True
    >>> rolled_back("failed", ["failed", "compensating", "compensated"])  # a crash mid-way
    False
    """
    if status not in (FAILED, CANCELLED, DEAD_LETTER):
        return False
    seen = set(statuses)
    return not seen.isdisjoint(UNDONE) and COMPENSATING not in seen


def _span(start: Any, end: Any) -> float | None:
    """``end - start`` when both are times (a damaged row may hold anything)."""
    if isinstance(start, int | float) and isinstance(end, int | float):
        return end - start
    return None


@attrs.frozen
class Lease:
    """Who runs a run: a process (host, pid) and one run call in it (token)."""

    host: str  #: the holder's host name
    pid: int  #: the holder's process id
    token: str  #: one run call in that process

    @classmethod
    def mine(cls) -> Lease:
        """A new lease for this process (a fresh token per run call)."""
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex)

    def describe(self) -> str:
        """Who holds it, for messages: "process 4242 on build-7"."""
        return f"process {self.pid} on {self.host}"

    def is_stale(self, expires: float, now: float) -> bool:
        """Whether the holder is gone at time ``now``: the lease ``expires`` before it,
        or the holder's process is dead on this host."""
        if expires < now:
            return True
        return not self.process_alive()

    def process_alive(self) -> bool:
        """False when the process is known to be gone (checked on this host only)."""
        if self.host == socket.gethostname():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
        return True

    def to_json(self) -> str:
        """The lease as a store keeps it (a JSON object)."""
        return json.dumps(attrs.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Lease:
        """The lease stored as ``text``.

        Raises:
            ValueError: ``text`` is not a stored lease.
        """
        try:
            fields = json.loads(text)
            return cls(str(fields["host"]), int(fields["pid"]), str(fields["token"]))
        except (TypeError, KeyError, ValueError) as error:
            raise ValueError(f"not a lease: {text[:80]!r} ({error})") from None


@attrs.frozen
class RunRecord:
    """One run as stored: ``store.get_run(run_id)``, ``store.runs()``.

    Times are wall-clock seconds since the epoch. ``owner`` and ``lease_expires`` say
    who holds a ``"running"`` run and until when; :meth:`is_interrupted` tells a live
    run from one whose process died. ``fence`` is the run's fencing token: it grows by
    one each time a process claims the run (and when the run is cancelled through the
    store, which fences its holder out). ``status`` is one of :data:`STATUSES`:
    ``"queued"``, ``"running"``, ``"waiting"``, ``"succeeded"``, ``"failed"``,
    ``"cancelled"``, ``"dead_letter"``.
    """

    run_id: str  #: the run's id
    workflow: str  #: the workflow's name
    fingerprint: str  #: the workflow's structure hash (``Plan.fingerprint``)
    structure: dict[str, list[str]]  #: node -> its dependencies, when the run was made
    inputs: bytes  #: serialized run inputs
    status: str  #: "queued", "running", "waiting", "succeeded", "failed", ... (STATUSES)
    serializer: str  #: the name of the serializer of its outputs and inputs
    created: float  #: when the run was first started
    started: float  #: when it was started last (resumed runs start again)
    finished: float | None = None  #: when it ended; None while queued, running or waiting
    resumes: int = 0  #: times the run was started again after the first
    #: ``structure`` as JSON, when the caller has it at hand (saves encoding it again)
    structure_json: str | None = attrs.field(default=None, eq=False, repr=False)
    owner: Lease | None = None  #: the process holding the run's lease, if any
    lease_expires: float | None = None  #: when that lease runs out unless renewed
    fence: int = 0  #: the fencing token of the latest claim
    #: the work queue workers take it from; None: only the process that runs it does
    #: (runs started with ``rt.run`` until they park)
    queue: str | None = None
    #: when a worker should take it (``"queued"`` and ``"waiting"`` runs; None: not before
    #: a signal or ``resume`` wakes it)
    due: float | None = None
    #: times a worker took it over from a worker that died holding it
    recoveries: int = 0
    #: its wait nodes: node name -> "signal", "approval" or "timer"
    waits: dict[str, str] = attrs.field(factory=dict)
    #: why it ended ``"dead_letter"`` (or another run-level error), else None
    error: str | None = None
    # -- OpenTelemetry (docs/observability.md): schema 5 on SQLite, 4 on PostgreSQL --
    #: the W3C ``traceparent`` of the run's first start (its ``flowrt.run`` span; for a
    #: submitted run, the span current where it was submitted), which the spans of its
    #: later starts link to; None when it was not traced. Written once, with the run.
    trace: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from the latest start to the end, or None while running."""
        return None if self.finished is None else self.finished - self.started

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """The run's summary as JSON-ready data (what ``flowrt runs --json`` prints),
        ``interrupted`` as of ``now`` (default: the current time):
        ``run_id``, ``workflow``, ``status``, ``created`` (its first start, seconds since
        the epoch), ``started`` (its latest start), ``finished``, ``duration`` (from the
        latest start), ``resumes``, ``node_count``; and who holds a running run:
        ``owner`` (``{"host": ..., "pid": ...}`` or None), ``lease_expires`` and
        ``interrupted`` (:meth:`is_interrupted`); and for the work queue ``queue``,
        ``due``, ``recoveries``, ``waits`` and ``error``."""
        return {"run_id": self.run_id, "workflow": self.workflow, "status": self.status,
                "created": self.created, "started": self.started, "finished": self.finished,
                "duration": _span(self.started, self.finished), "resumes": self.resumes,
                "node_count": len(self.structure),
                "owner": None if self.owner is None else {"host": self.owner.host,
                                                          "pid": self.owner.pid},
                "lease_expires": self.lease_expires,
                "interrupted": self.is_interrupted(now),
                "queue": self.queue, "due": self.due, "recoveries": self.recoveries,
                "waits": dict(self.waits), "error": self.error}

    def is_interrupted(self, now: float | None = None) -> bool:
        """True for a ``"running"`` run that nobody runs any more, at time ``now``
        (default: the current time).

        That is when its lease ran out (``lease_expires`` passed: its process stopped
        renewing it) or its process is gone on this host; it can be resumed. A run whose
        holder lives on another host is trusted until its lease runs out.
        """
        if self.status != RUNNING:
            return False
        if self.owner is None:
            return True
        return self.owner.is_stale(self.lease_expires or 0.0,
                                   time.time() if now is None else now)


class NodeRecord(NamedTuple):
    """One node of a run that reached a final status.

    A NamedTuple: one is made per node of a durable run, on the run's hot path.
    """

    node: str  #: the node's name
    #: "succeeded", "failed", "skipped", "cancelled"; during and after a rollback
    #: "compensating" (succeeded, not undone yet), "compensated", "compensation_failed"
    status: str
    attempts: int  #: attempts started (in the latest start of the run)
    output: bytes | None = None  #: serialized output, for succeeded nodes
    error: str | None = None  #: "Type: message" of a failed node
    traceback: str | None = None  #: the formatted traceback of a failed node
    started: float | None = None  #: wall-clock start of its first attempt
    finished: float | None = None  #: wall-clock end
    #: the fencing token of the claim that wrote it: below the run's ``fence``, the
    #: node ended in an earlier start and was read back (not run) in the latest one
    fence: int = 0
    #: a wait node's due time: when its timer fires, or when its signal times out (set
    #: when it first waits, and kept: resuming never restarts a timer)
    due: float | None = None


def is_structure(value: Any) -> bool:
    """Whether ``value`` (read from JSON) maps node names to lists of node names: what a
    run's stored ``structure`` must be.

    Checked with C-level loops (``map``, ``set``): a store reads it at every claim; for
    a 10,000-node run, generator expressions took 3.6 ms of that claim, this takes 0.9
    (timeit, load 1.3).
    """
    if type(value) is not dict:
        return False
    deps = value.values()
    # JSON decodes to exact types (no subclasses): comparing the types is isinstance here
    return set(map(type, deps)) <= _LIST and set(map(type, chain.from_iterable(deps))) <= _STR


_LIST = frozenset({list})
_STR = frozenset({str})


def waits_json(record: RunRecord) -> str | None:
    """The ``waits`` column of ``record``'s row (None when it has no wait nodes)."""
    return json.dumps(record.waits) if record.waits else None


def queued_run_row(record: RunRecord) -> tuple[Any, ...]:
    """The row of a run submitted to the queue, in the runs table's column order (the
    same for every SQL store): no lease, fence 0, no recoveries yet."""
    return (record.run_id, record.workflow, record.fingerprint,
            record.structure_json or json.dumps(record.structure), record.inputs,
            record.status, record.serializer, record.created, record.started, None, 0,
            None, None, 0, record.queue, record.due, 0, waits_json(record), None,
            record.trace)


def with_fence(record: tuple[Any, ...], fence: int) -> NodeRecord:
    """``record`` as a store keeps it: written under ``fence`` (writers may pass the
    first eight fields only, built with ``tuple.__new__`` on the hot path)."""
    fields = (*record[:8], fence, record[9] if len(record) > 9 else None)
    return tuple.__new__(NodeRecord, fields)


# -- the items of mapped nodes (SQLite schema 6, PostgreSQL schema 5) --------------


class ItemRecord(NamedTuple):
    """One item of a mapped node of a run, or (``item == LISTED``) the item list itself.

    The list's record comes before any item's: its ``attempts`` is the item count. An
    item's record is written as the item reaches a final status; a resumed run restores
    the items recorded as succeeded and runs the others again (docs/mapping.md).
    """

    node: str  #: the mapped node's name
    item: int  #: the item's index; LISTED (-1) for the record of the item list
    status: str  #: "succeeded", "failed", "skipped", "cancelled"; "listed" for the list
    attempts: int  #: attempts started; the item count for the list's record
    output: bytes | None = None  #: serialized output, for succeeded items
    error: str | None = None  #: "Type: message" of a failed item
    traceback: str | None = None  #: the formatted traceback of a failed item
    started: float | None = None  #: wall-clock start of its first attempt
    finished: float | None = None  #: wall-clock end


#: ``ItemRecord.item`` of the record of a mapped node's item list
LISTED = -1


class SignalRecord(NamedTuple):
    """A signal sent to a run: ``store.signals(run_id)``.

    The node named ``name`` takes the payload of the first signal of its name (the
    lowest ``seq``); a signal sent again with the same ``signal_id`` is not stored.
    """

    run_id: str  #: the run it was sent to
    name: str  #: the signal's name: the name of the node that waits for it
    payload: bytes  #: the serialized payload
    sent: float  #: when it was stored (the sender's clock)
    signal_id: str | None = None  #: the sender's id, which dedupes; None: never deduped
    seq: int = 0  #: its place among the store's signals (the store sets it)


class Wait(NamedTuple):
    """What a waiting node waits for (:meth:`StoredRun.waits`).

    ``since`` and ``due`` are read on two clocks, each the one its kind of time is kept
    on (flowrt/_clock.py): ``since`` is the node record's ``started``, wall-clock time
    (``time.time()``) as every node's start and end; ``due`` is workflow time, on the
    runtime's clock (``Runtime(clock=...)``) as timers, signal timeouts and schedules
    are. With the default clock both are the system's time; under a
    :class:`~flowrt.testing.FakeClock` compare ``due`` with ``clock.now()``, not with
    ``since``.
    """

    node: str  #: the node's name (a signal's name is its node's name)
    kind: str  #: "signal", "approval" or "timer"
    #: when it started waiting: wall-clock seconds since the epoch (not the runtime's clock)
    since: float | None
    #: when the timer fires or the signal times out, on the runtime's clock; None: never
    due: float | None
    signalled: bool  #: a signal for it is stored (the run wakes to take it)


@attrs.frozen
class ScheduleRecord:
    """A schedule kept in a store: ``store.schedules()``.

    Exactly one of ``cron`` (a cron expression, read in ``timezone``) and ``every``
    (seconds) is set. ``next_due`` is the wall-clock time of the next slot to fire;
    firing a slot creates run ``sched:<name>:<slot>`` (``slot`` is the slot's time in
    UTC, ISO 8601) in ``queue`` and moves ``next_due`` on. Slots missed while no
    worker ran fire as one run (the latest) unless ``catch_up``.
    """

    name: str  #: the schedule's name
    workflow: str  #: the name of the workflow its runs run
    inputs: bytes  #: the runs' inputs, serialized
    serializer: str  #: the serializer of ``inputs``
    next_due: float  #: when the next slot is due (seconds since the epoch)
    cron: str | None = None  #: a cron expression ("0 2 * * *"), or None
    every: float | None = None  #: an interval in seconds, or None
    timezone: str = "UTC"  #: the time zone ``cron`` is read in (an IANA name)
    catch_up: bool = False  #: fire every missed slot, not only the latest
    queue: str = DEFAULT_QUEUE  #: the queue its runs go to
    last_slot: str | None = None  #: the latest slot fired
    created: float = 0.0  #: when it was first stored

    def same_spec(self, other: ScheduleRecord) -> bool:
        """Whether ``other`` schedules the same runs at the same times (what a process
        that declares its schedules at each start must not reset)."""
        return (self.workflow, self.inputs, self.serializer, self.cron, self.every,
                self.timezone, self.catch_up, self.queue) == (
            other.workflow, other.inputs, other.serializer, other.cron, other.every,
            other.timezone, other.catch_up, other.queue)

    def to_dict(self) -> dict[str, Any]:
        """The schedule as JSON-ready data (``flowrt schedules --json``); ``inputs`` as
        stored (bytes decoded as UTF-8 text when they are)."""
        fields = attrs.asdict(self)
        try:
            fields["inputs"] = self.inputs.decode("utf-8")
        except UnicodeDecodeError:
            fields["inputs"] = None
        return fields


def decode(serializer: Serializer, blob: bytes, what: str) -> Any:
    """``serializer.loads(blob)``.

    Raises:
        StoreError: ``blob`` cannot be read (the message names ``what``).
    """
    try:
        return serializer.loads(blob)
    except Exception as error:
        raise unreadable(what, error) from None


def unreadable(what: str, error: Exception) -> StoreError:
    """The error of a stored value (``what``) that ``error`` says cannot be read."""
    return StoreError(f"{what} is damaged and cannot be read: {type(error).__name__}: {error}")


@attrs.frozen
class StoredRun:
    """A run read back by ``store.load(run_id)``.

    The outputs and inputs are read with the serializer of the store it was read from
    (:func:`~flowrt.durable.reader_for`: a pickle only when the store was opened with
    ``serializer="pickle"``).
    """

    record: RunRecord  #: the run
    nodes: dict[str, NodeRecord]  #: node name -> record, for nodes that reached a final status
    data: bytes | None  #: the serialized snapshot of the run's WorkflowData keys
    #: the serializer of the store it was read from (None: JSON only)
    serializer: Serializer | None = attrs.field(default=None, eq=False, repr=False)
    #: the signals sent to the run, oldest first
    signals: tuple[SignalRecord, ...] = ()
    #: mapped node name -> item index -> record (index LISTED: the item list's record)
    items: dict[str, dict[int, ItemRecord]] = attrs.field(factory=dict)

    def item_counts(self, node: str) -> dict[str, int]:
        """The recorded items of mapped ``node`` per status ("pending" for the items
        listed but not recorded yet); empty when its item list is not recorded."""
        records = self.items.get(node)
        if not records or LISTED not in records:
            return {}
        counts: dict[str, int] = {}
        listed = records[LISTED].attempts
        for i, rec in records.items():
            if 0 <= i < listed:
                counts[rec.status] = counts.get(rec.status, 0) + 1
        pending = listed - sum(counts.values())
        if pending > 0:
            counts["pending"] = pending
        return counts

    def item_list(self, node: str) -> list[dict[str, Any]]:
        """The items of mapped ``node`` by index, each ``{"status", "attempts", "error"}``
        ("pending", 0, None for an item listed but not recorded yet); empty when its item
        list is not recorded."""
        records = self.items.get(node)
        if not records or LISTED not in records:
            return []
        out = []
        for i in range(records[LISTED].attempts):
            rec = records.get(i)
            out.append({"status": "pending", "attempts": 0, "error": None} if rec is None
                       else {"status": rec.status, "attempts": rec.attempts,
                             "error": rec.error})
        return out

    def undone(self) -> list[str]:
        """What the run's rollback undid or tried to (records ``compensated`` or
        ``compensation_failed``): node names, then map items as ``node[index]``, in
        name and index order."""
        nodes = sorted(n for n, rec in self.nodes.items() if rec.status in UNDONE)
        items = [f"{node}[{i}]" for node in sorted(self.items)
                 for i, rec in sorted(self.items[node].items())
                 if i != LISTED and rec.status in UNDONE]
        return nodes + items

    def rolled_back(self) -> bool:
        """Whether the run was rolled back to the end (:func:`rolled_back`, over its
        node and item records): it is over, and resuming it would run nothing."""
        statuses = chain((rec.status for rec in self.nodes.values()),
                         (rec.status for records in self.items.values()
                          for rec in records.values()))
        return rolled_back(self.record.status, statuses)

    def refuse_resume(self) -> None:
        """Raise :class:`~flowrt.RunRolledBack` if the run was rolled back to the end."""
        if self.rolled_back():
            raise RunRolledBack(self.record.run_id, self.record.status, self.undone())

    def waits(self) -> list[Wait]:
        """What the run's waiting nodes wait for, in the order of its structure."""
        kinds = self.record.waits
        signalled = {s.name for s in self.signals}
        order = {name: i for i, name in enumerate(self.record.structure)}
        waiting = sorted((rec for rec in self.nodes.values() if rec.status == WAITING),
                         key=lambda rec: order.get(rec.node, len(order)))
        return [Wait(rec.node, kinds.get(rec.node, "signal"), rec.started, rec.due,
                     rec.node in signalled) for rec in waiting]

    def signal(self, name: str) -> SignalRecord | None:
        """The signal node ``name`` takes: the first one sent of that name, or None."""
        return next((s for s in self.signals if s.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready data, with the keys of :meth:`flowrt.RunResult.to_dict`
        that a store knows (what ``flowrt show --json`` prints and the HTML report draws).

        :meth:`RunRecord.to_dict`, plus ``counts`` (nodes per status), ``attempts``,
        ``retries``, ``inputs`` (None when they cannot be read: damaged, or a pickle and
        the store was not opened for pickles -- nothing is unpickled otherwise) and
        ``nodes``: per node of the run's structure, in its order, ``status`` ("pending"
        for a node with no record yet), ``attempts``, ``started``, ``finished``,
        ``duration``, ``error``, ``traceback``, ``deps``, ``restored`` (:meth:`restored`:
        read back, not run, in the latest start), ``due`` (a wait node's) and ``wait``
        (what a wait node waits for: "signal", "approval", "timer"; None for other
        nodes), ``items`` (a mapped node's items per status, :meth:`item_counts`; None
        for other nodes), ``item_list`` (its items by index, :meth:`item_list`); and
        ``waiting_for`` (:meth:`waits`, as dicts). Outputs are left out (:meth:`outputs`
        reads them).
        """
        record = self.record
        structure = record.structure
        names = list(structure) + [n for n in self.nodes if n not in structure]
        nodes: dict[str, dict[str, Any]] = {}
        counts: dict[str, int] = {}
        attempts = ran = 0
        for name in names:
            rec = self.nodes.get(name)
            deps = list(structure.get(name, ()))
            if rec is None:
                nodes[name] = {"status": "pending", "attempts": 0, "started": None,
                               "finished": None, "duration": None, "error": None,
                               "traceback": None, "deps": deps, "restored": False,
                               "due": None, "wait": record.waits.get(name)}
            else:
                nodes[name] = {"status": rec.status, "attempts": rec.attempts,
                               "started": rec.started, "finished": rec.finished,
                               "duration": _span(rec.started, rec.finished),
                               "error": rec.error, "traceback": rec.traceback, "deps": deps,
                               "restored": rec.fence < record.fence,
                               "due": rec.due, "wait": record.waits.get(name),
                               "items": self.item_counts(name) or None,
                               "item_list": self.item_list(name) or None}
                if isinstance(rec.attempts, int) and rec.attempts > 0:
                    attempts += rec.attempts
                    ran += 1
            status = nodes[name]["status"]
            counts[status] = counts.get(status, 0) + 1
        try:
            inputs = jsonable(self.inputs())
        except StoreError:  # damaged, or a pickle: the rest of the run is worth showing
            inputs = None
        return {**record.to_dict(), "counts": counts, "attempts": attempts,
                "retries": attempts - ran, "inputs": inputs, "nodes": nodes,
                "waiting_for": [w._asdict() for w in self.waits()]}

    def _reader(self, serializer: Serializer | None) -> Serializer:
        if serializer is not None:
            return serializer
        try:
            return reader_for(self.record.serializer, self.serializer or JSONSerializer())
        except StoreError as error:
            raise StoreError(f"run {self.record.run_id!r}: {error}") from None

    def outputs(self, serializer: Serializer | None = None) -> dict[str, Any]:
        """Deserialized outputs of the succeeded nodes, read with ``serializer`` (by
        default the store's, for the serializer the run was stored with).

        Raises:
            StoreError: an output is damaged, or is a pickle and the store was not
                opened with ``serializer="pickle"``.
        """
        ser = self._reader(serializer)
        run = self.record.run_id
        return {n: decode(ser, r.output, f"the stored output of node {n!r} of run {run!r}")
                for n, r in self.nodes.items()
                if r.status in ("succeeded", "cached") and r.output is not None}

    def inputs(self, serializer: Serializer | None = None) -> Any:
        """The run's inputs, read with ``serializer`` as for :meth:`outputs`.

        Raises:
            StoreError: as for :meth:`outputs`.
        """
        return decode(self._reader(serializer), self.record.inputs,
                      f"the stored inputs of run {self.record.run_id!r}")

    def restored(self, node: str) -> bool:
        """True when ``node`` ended in an earlier start of the run than the latest: the
        latest start read its record back instead of running it."""
        rec = self.nodes.get(node)
        return rec is not None and rec.fence < self.record.fence


#: ``decide(stored run or None) -> the record to start, or None to leave the run be``
Decide = Callable[["StoredRun | None"], "RunRecord | None"]


class Opening:
    """A ``decide`` that says beforehand what it returns for a run that is not stored.

    ``fresh`` is ``decide(None)``, made before the claim (None when it could not be: it
    raised, and then the store asks ``decide(None)`` as usual). A store may create the
    run from ``fresh`` without looking for it first -- one round trip less on a server
    -- and then calls ``decide`` only with a stored run: what it sees is still what is
    stored. Any store may ignore ``fresh``; a plain function is a ``Decide`` too.
    """

    __slots__ = ("decide", "fresh")

    def __init__(self, decide: Decide, fresh: RunRecord | None) -> None:
        self.decide = decide
        self.fresh = fresh

    def __call__(self, stored: StoredRun | None) -> RunRecord | None:
        return self.decide(stored)



class FlushMarker:
    """What a store's writer thread sets once everything queued before it is committed
    (or failed), in place of the ``threading.Event`` that :meth:`Store.flush` waits on:
    ``set()`` calls ``callback`` instead, from the writer's thread (it must not block;
    an exception it raises is dropped, never the writer's).

    A run's end waits for its store this way (``flush_then``): the writer wakes the
    run's event loop itself, where a worker thread blocked in ``flush()`` cost the run's
    end two thread wake-ups more (see docs/decisions/016-postgres.md, "What it costs").
    """

    __slots__ = ("_callback",)

    def __init__(self, callback: Callable[[], object]) -> None:
        self._callback = callback

    def set(self) -> None:
        # the writer goes on; its waiter falls back on flush() (flowrt.durable._run.flushed)
        with contextlib.suppress(Exception):
            self._callback()


class WriterFlushes:
    """``flush`` and ``flush_then`` of a store whose writes go through a writer thread
    (SQLite, PostgreSQL): a flush is a notice queued behind the writes, which the writer
    sets once what came before it is committed (or failed). The store provides the
    queue, the event that cuts the writer's group wait short, and ``_check_writer``
    (raises when the writer is gone)."""

    _queue: queue.SimpleQueue[tuple[Any, ...]]
    _hurry: threading.Event

    def _check_writer(self) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Wait until everything written so far is committed (or failed: a write that
        failed fails its claim, which says why)."""
        self._check_writer()
        done = threading.Event()
        self._queue.put(("flush", done))
        self._hurry.set()
        while not done.wait(0.5):
            self._check_writer()

    def flush_then(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` from the writer's thread once everything written so far
        is committed (or failed), as :meth:`flush` would return: a run's end waits
        without a thread of its own (``callback`` must not block)."""
        self._check_writer()
        self._queue.put(("flush", FlushMarker(callback)))
        self._hurry.set()


class Claim:
    """A run this process holds: its lease, its fencing token, and how it is doing.

    Made by :meth:`Store.claim`; passed back with every write. The store keeps
    ``valid_until`` (a ``time.monotonic()`` reading) at most as late as the lease's end
    in the store, and sets it to 0 when the claim is lost or a write of it failed, so
    that one comparison per node tells the run whether it may go on
    (:class:`~flowrt.durable._run.Checkpoint`).
    """

    __slots__ = ("_callbacks", "_lock", "error", "fence", "lease", "run_id", "valid_until")

    def __init__(self, run_id: str, lease: Lease, fence: int, valid_until: float) -> None:
        """Run ``run_id``, held under ``lease`` with fencing token ``fence`` until
        ``valid_until`` (a ``time.monotonic()`` reading) at least."""
        self.run_id = run_id
        self.lease = lease
        self.fence = fence
        self.valid_until = valid_until
        #: LeaseLost when another process took the run over; StoreError when a write of
        #: this claim failed (what was written after it is refused, to keep the order)
        self.error: BaseException | None = None
        self._callbacks: list[Callable[[], object]] = []
        self._lock = threading.Lock()

    @property
    def lost(self) -> bool:
        """True when another process took the run over."""
        return isinstance(self.error, LeaseLost)

    def on_trouble(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` (from any thread) once the claim is lost or a write fails."""
        with self._lock:
            if self.error is None:
                self._callbacks.append(callback)
                return
        callback()

    def extend(self, valid_until: float) -> None:
        """Called by the store: the lease held until ``valid_until`` (monotonic), unless
        the claim failed meanwhile."""
        with self._lock:
            if self.error is None:
                self.valid_until = valid_until

    def fail(self, error: BaseException) -> None:
        """Called by the store: the claim is lost (``error`` is a LeaseLost) or cannot
        write (a StoreError); the callbacks are called once."""
        with self._lock:
            self.valid_until = 0.0
            if self.error is not None:
                return
            self.error = error
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def __repr__(self) -> str:
        state = "ok" if self.error is None else type(self.error).__name__
        return f"<Claim {self.run_id!r} fence={self.fence} {state}>"


@runtime_checkable
class Store(Protocol):
    """Where durable runs are kept. See :class:`MemoryStore` for the contract.

    ``serializer`` turns outputs, inputs and data into bytes and back; ``lease_ttl`` is
    how long (seconds) a run's lease lasts without renewal. ``get_run``, ``load``,
    ``runs``, ``delete`` and ``prune`` are what users call to inspect and tidy a store;
    ``claim``, ``write``, ``finish``, ``renew`` and ``flush`` are what durable runs call
    (the protocol of docs/decisions/012-fencing.md).
    """

    serializer: Serializer
    lease_ttl: float

    def get_run(self, run_id: str) -> RunRecord | None:
        """The record of run ``run_id``, or None when the store has no such run.

        Raises:
            StoreError: the store, or that run, cannot be read.
        """
        ...

    def claim(self, run_id: str, lease: Lease, decide: Decide
              ) -> tuple[StoredRun | None, Claim | None]:
        """Take run ``run_id`` for ``lease``, atomically: read it, refuse it when a live
        holder has it, call ``decide(stored run or None)``, and when that returns a
        record, create or restart the run with it under the next fencing token.

        Nothing is written when ``decide`` raises (the error propagates) or returns
        None. Returns the stored run (or None) and the :class:`Claim` (or None).

        Raises:
            RunLeased: another process (or run call) holds the run and is alive.
            StoreError: the store cannot be read or written.
        """
        ...

    def write(self, claim: Claim, nodes: Sequence[NodeRecord], data: bytes | None,
              items: Sequence[ItemRecord] = ()) -> None:
        """Record ``nodes`` (upserted by name), the ``data`` snapshot (None: keep the
        last one) and ``items`` (records of mapped nodes' items, upserted by node and
        index) of ``claim``'s run, in the order written; the store may batch them.

        ``nodes`` may make its records as it is read (the runtime's successes come as a
        ``SucceededRecords``): a store that writes from a thread of its own reads it
        there. It reads the same whenever it is read, and is never changed.

        Refused when ``claim``'s fencing token is no longer the run's (the claim then
        fails with :class:`~flowrt.LeaseLost`).
        """
        ...

    def finish(self, claim: Claim, status: str, finished: float) -> None:
        """End ``claim``'s hold on its run at time ``finished`` (the caller's clock) and
        give its lease back (refused like :meth:`write`). ``status``:

        - ``"succeeded"``, ``"failed"``, ``"cancelled"``: the run ended so.
        - ``"waiting"``: *park* it. Every node left waits; their records (status
          ``"waiting"``, with their ``due``) were written before. The run's ``due``
          becomes the earliest of theirs, or ``finished`` when a signal one of them
          waits for is already stored; it goes to the default queue if it had none (a
          worker continues it), and its ``recoveries`` go back to 0.
        - ``"queued"``: hand it back to its queue, due at once (a worker shutting down).
        """
        ...

    def renew(self, claim: Claim) -> bool:
        """Extend ``claim``'s lease now; False when it is lost or cannot be written (the
        claim's ``error`` says which)."""
        ...

    def flush(self) -> None:
        """Return once everything written so far is in the store (on disk, for a file).

        A store whose writes are committed by a thread of its own may also have
        ``flush_then(callback)``: call ``callback()`` from that thread once everything
        written so far is in the store (see :class:`FlushMarker`). A run's end then
        waits without a worker thread blocked in ``flush()`` (optional: without it, the
        runtime calls ``flush()`` in a worker thread).
        """
        ...

    def load(self, run_id: str) -> StoredRun | None:
        """Run ``run_id`` with its node records and data snapshot, or None.

        Raises:
            StoreError: the store, or that run, cannot be read.
        """
        ...

    def runs(self, workflow: str | None = None, status: str | None = None) -> list[RunRecord]:
        """The runs, oldest first; only those of ``workflow`` and in ``status`` if given.

        Raises:
            StoreError: the store, or one of its runs, cannot be read.
        """
        ...

    def delete(self, run_id: str) -> bool:
        """Remove run ``run_id`` with its nodes and data; True if it existed.

        It does not check whether the run is running: delete finished runs.
        """
        ...

    def prune(self, *, older_than: float | None = None, keep: int | None = None,
              statuses: Iterable[str] = ("succeeded", "failed", "cancelled")) -> int:
        """Delete finished runs; return how many.

        A run goes when it ended more than ``older_than`` seconds ago and is not among
        the ``keep`` newest (both conditions when both are given), and its status is in
        ``statuses``. Running runs are never pruned.
        """
        ...

    # -- the work queue (docs/decisions/013-queue.md) --------------------------------

    def submit(self, record: RunRecord) -> bool:
        """Create run ``record.run_id`` as ``record`` says (status ``"queued"``, its
        ``queue`` and ``due`` set); False, writing nothing, when the id exists.

        Raises:
            StoreError: the store cannot be written.
        """
        ...

    def claim_next(self, lease: Lease, decide: Decide, *, now: float,
                   workflows: Mapping[str, Collection[str]],
                   queues: Collection[str] = (DEFAULT_QUEUE,),
                   max_recoveries: int = 5) -> tuple[StoredRun, Claim] | None:
        """Take the next run a worker should run, as :meth:`claim` takes one: read it,
        ``decide``, lease it for ``lease`` under the next fencing token, in one
        transaction. ``now`` is the caller's clock, which ``due`` times are compared
        with.

        Candidates are the runs of ``queues`` whose workflow is a key of ``workflows``
        and whose fingerprint is in that key's collection (the versions the worker
        has), that are ``"queued"`` or ``"waiting"`` with ``due <= now``, or
        ``"running"`` with a holder that is gone (lease expired, or its process dead on
        this host): oldest ``due`` first, then those. Taking over a run whose holder
        died counts one recovery; a run whose holders died ``max_recoveries`` times is
        set ``"dead_letter"`` instead (with ``error`` saying so) and the next candidate
        is tried. ``decide`` raising leaves the run unclaimed and sets it
        ``"dead_letter"`` with the error, then the error propagates. None when no run
        is due.

        Raises:
            StoreError: the store cannot be read or written.
        """
        ...

    def add_signal(self, signal: SignalRecord) -> bool:
        """Store ``signal`` for its run; True when stored, False when a signal with the
        same ``signal_id`` was stored for that run before (nothing changes: the first
        payload wins). A run parked waiting for it is woken (its ``due`` becomes
        ``signal.sent``).

        Raises:
            RunNotFound: no such run.
            SignalRefused: the run has no signal or approval node of that name, or has
                succeeded.
        """
        ...

    def signals(self, run_id: str) -> list[SignalRecord]:
        """The signals stored for ``run_id``, oldest first."""
        ...

    def cancel(self, run_id: str, now: float) -> RunRecord:
        """Cancel run ``run_id`` at time ``now``; return its record as it was before.

        A queued or waiting run becomes ``"cancelled"``; a running one too, under a new
        fencing token, so that its holder's next write is refused (its claim fails with
        :class:`~flowrt.RunCancelled` and it stops). A run in a final status is left
        as it is (compare the returned status).

        Raises:
            RunNotFound: no such run.
        """
        ...

    def wake(self, run_id: str, now: float) -> RunRecord:
        """Resume run ``run_id`` through the queue at time ``now``; return its record as
        it was before.

        A waiting or queued run becomes due at ``now``; a failed, cancelled or
        dead-lettered one, or a running one whose holder is gone, becomes ``"queued"``
        (in the default queue if it had none, ``recoveries`` and ``error`` cleared; a
        gone holder is fenced out). A succeeded run is left as it is.

        Raises:
            RunNotFound: no such run.
            RunLeased: a live process holds the run.
        """
        ...

    # -- schedules ----------------------------------------------------------------

    def put_schedule(self, schedule: ScheduleRecord) -> ScheduleRecord:
        """Store ``schedule`` under its name and return what the store keeps: the
        stored one when it schedules the same runs (:meth:`ScheduleRecord.same_spec`:
        its ``next_due`` is kept, so a process declaring its schedules at every start
        fires no slot twice), else ``schedule``, replacing it."""
        ...

    def delete_schedule(self, name: str) -> bool:
        """Remove schedule ``name``; True if it existed (its runs stay)."""
        ...

    def schedules(self) -> list[ScheduleRecord]:
        """Every schedule, by name."""
        ...

    def fire_schedule(self, name: str, due: float, runs: list[RunRecord], next_due: float,
                      last_slot: str) -> list[str] | None:
        """Fire the slots of schedule ``name`` that were due at ``due``: if its
        ``next_due`` is still ``due`` (nobody fired them since), create ``runs`` (queued
        runs ``sched:<name>:<slot>``; an id that exists is skipped) and move the schedule
        on to ``next_due``, ``last_slot``, in one transaction. Returns the ids created,
        or None when another worker fired them first (or the schedule is gone)."""
        ...

    # -- cached node outputs (docs/caching.md) ---------------------------------------

    def get_cached(self, key: str, now: float) -> tuple[bytes, str] | None:
        """The output stored under cache ``key`` and its serializer's name, or None when
        there is none or it expired before ``now`` (the caller's clock).

        Raises:
            StoreError: the store cannot be read.
        """
        ...

    def put_cached(self, key: str, value: bytes, serializer: str, created: float,
                   expires: float | None) -> None:
        """Store ``value`` (bytes written by the serializer named ``serializer``) under
        cache ``key``, replacing any entry; written at ``created`` and good until
        ``expires`` (None: until replaced). The store may batch it with other writes
        (it is there once :meth:`flush` returns)."""
        ...

    def clear_cache(self) -> int:
        """Delete every cached output; return how many there were."""
        ...

    def prune_cache(self, now: float) -> int:
        """Delete the cached outputs that expired at ``now`` (the caller's clock) or
        before -- those :meth:`get_cached` no longer returns; return how many.

        Raises:
            StoreError: the store cannot be written.
        """
        ...

    def close(self) -> None:
        """Flush and release the store (a store from a path is closed by its runtime)."""
        ...


#: lease tokens of run calls that :func:`flowrt.testing.crash_at` ended as if their
#: process had died: their holder counts as gone, in this process too
CRASHED: set[str] = set()


def holder_gone(record: RunRecord, now: float, *, same_process_is_live: bool = False) -> bool:
    """Whether nobody live holds ``record`` at time ``now``: no holder, its lease ran
    out, or its process is gone (on this host). ``same_process_is_live``: a holder in
    this process is live until its lease runs out (a store that lives in one process)."""
    holder = record.owner
    if holder is None or holder.token in CRASHED:
        return True
    if same_process_is_live and holder.pid == os.getpid() and holder.host == socket.gethostname():
        return False
    return holder.is_stale(record.lease_expires or 0.0, now)


def refuse_live_holder(record: RunRecord, lease: Lease, now: float, *,
                       same_process_is_live: bool = False) -> None:
    """Raise RunLeased when someone else holds ``record``'s lease and is alive."""
    holder = record.owner
    if holder is None or holder.token == lease.token:
        return
    if not holder_gone(record, now, same_process_is_live=same_process_is_live):
        raise RunLeased(record.run_id, holder.describe())


def restarted(old: RunRecord, new: RunRecord, lease: Lease, expires: float) -> RunRecord:
    """``old`` started again as ``new`` says, under ``lease``, with the next fence (a
    queued run's first claim is its start, not a resume)."""
    return attrs.evolve(old, status=RUNNING, started=new.started, finished=None,
                        resumes=old.resumes + (1 if old.fence else 0),
                        fingerprint=new.fingerprint, structure=new.structure,
                        structure_json=new.structure_json, owner=lease,
                        lease_expires=expires, fence=old.fence + 1, due=None,
                        waits=new.waits, error=None)


def park_due(nodes: Mapping[str, NodeRecord], waits: Mapping[str, str],
             signals: Iterable[SignalRecord], now: float) -> float | None:
    """When a run parked with ``nodes`` should wake: ``now`` when a signal one of its
    waiting nodes waits for is stored, else the earliest due of those nodes (None: only
    a signal or a resume will wake it)."""
    signalled = {sig.name for sig in signals}
    due = None
    for name, rec in nodes.items():
        if rec.status != WAITING:
            continue
        if waits.get(name, "signal") != "timer" and name in signalled:
            return now
        if rec.due is not None and (due is None or rec.due < due):
            due = rec.due
    return due


def refuse_signal(record: RunRecord, name: str) -> None:
    """Raise SignalRefused unless run ``record`` has a signal or approval node ``name``
    and has not succeeded."""
    refused = signal_refused(record.run_id, record.workflow, record.waits, name,
                             record.status == SUCCEEDED)
    if refused is not None:
        raise refused


def not_found(run_id: str, known: Iterable[str], where: str) -> RunNotFound:
    """RunNotFound for ``run_id``, naming the near match among ``known`` ids."""
    near = get_close_matches(run_id, list(known), n=1)
    return RunNotFound(run_id, where, near[0] if near else None)


def dead_letter_reason(deaths: int, max_recoveries: int) -> str:
    """The ``error`` of a run dead-lettered after its workers died ``deaths`` times."""
    return (f"its worker died {deaths} time{'s' if deaths != 1 else ''} while running it "
            f"(max_recoveries={max_recoveries}); fix the cause and resume it")


def woken(old: RunRecord, now: float) -> RunRecord:
    """``old`` as :meth:`Store.wake` leaves it (the caller checked it is not held)."""
    if old.status == SUCCEEDED:
        return old
    if old.status in (WAITING, QUEUED):
        return attrs.evolve(old, due=now if old.due is None else min(old.due, now))
    fence = old.fence + 1 if old.status == RUNNING else old.fence  # fence out a gone holder
    return attrs.evolve(old, status=QUEUED, queue=old.queue or DEFAULT_QUEUE, due=now,
                        finished=None, recoveries=0, error=None, owner=None,
                        lease_expires=None, fence=fence)


def cancelled(old: RunRecord, now: float) -> RunRecord:
    """``old`` as :meth:`Store.cancel` leaves it."""
    if old.status in FINAL:
        return old
    fence = old.fence + 1 if old.status == RUNNING else old.fence
    return attrs.evolve(old, status=CANCELLED, finished=now, due=None, owner=None,
                        lease_expires=None, fence=fence)


def lost_claim_error(run_id: str, record: RunRecord | None) -> LeaseLost:
    """Why a write of a claim on ``run_id`` was refused, from the run as it is now."""
    if record is None:
        return LeaseLost(run_id, "nobody (the run was deleted)")
    if record.status == CANCELLED and record.owner is None:
        return RunCancelled(run_id)
    if record.owner is not None:
        return LeaseLost(run_id, record.owner.describe())
    return LeaseLost(run_id, f"another process (the run is {record.status} since)")


def prune(store: Store, older_than: float | None, keep: int | None,
          statuses: Iterable[str]) -> int:
    """Delete the finished runs older than ``older_than`` seconds (by their end) and
    beyond the newest ``keep``; return how many. Running runs are never pruned."""
    wanted = set(statuses) - {QUEUED, RUNNING, WAITING}
    finished = sorted((r for r in store.runs() if r.status in wanted),
                      key=lambda r: r.finished or r.created, reverse=True)
    if keep is not None:
        finished = finished[keep:]
    if older_than is not None:
        cutoff = time.time() - older_than
        finished = [r for r in finished if (r.finished or r.created) < cutoff]
    for record in finished:
        store.delete(record.run_id)
    return len(finished)
