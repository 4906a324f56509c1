"""Durable run state: the ``Store`` protocol, its records, ``Claim``, ``MemoryStore``.

A store keeps, per run: a :class:`RunRecord` (workflow name, structure fingerprint,
inputs, status, times, lease and fencing token) and a :class:`NodeRecord` per node
that reached a final status, with the serialized output of succeeded nodes; plus a
snapshot of the run's ``WorkflowData`` keys. :mod:`flowrt.durable._run` decides what
to write when; a store only keeps it. :class:`~flowrt.SQLiteStore` is the embedded
default (``store="runs.db"``); :class:`MemoryStore` keeps everything in the process
(tests, and resuming within one process).

Who may write a run (docs/decisions/012-fencing.md): a process *claims* a run --
reads it, checks that nobody live holds it, and takes its lease with a new fencing
token, all in one transaction -- and every later write of that process carries the
token; the store refuses, in the transaction of the write, any write whose token is
not the run's latest. A holder that lost its run hears of it through its
:class:`Claim` and stops.

Node writes may be batched by the store (``write`` returns before the data is on
disk), in the order they were made; ``flush`` waits until all of it is.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import attrs

from .._engine.result import jsonable
from ..errors import LeaseLost, RunLeased, StoreError
from ._serialize import JSONSerializer, Serializer, get_serializer, reader_for

__all__ = ["Claim", "Decide", "Lease", "MemoryStore", "NodeRecord", "RunRecord", "Store",
           "StoredRun", "decode", "prune"]

RUNNING = "running"


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
    one each time a process claims the run.
    """

    run_id: str  #: the run's id
    workflow: str  #: the workflow's name
    fingerprint: str  #: the workflow's structure hash (``Plan.fingerprint``)
    structure: dict[str, list[str]]  #: node -> its dependencies, when the run was made
    inputs: bytes  #: serialized run inputs
    status: str  #: "running", "succeeded", "failed" or "cancelled"
    serializer: str  #: the name of the serializer of its outputs and inputs
    created: float  #: when the run was first started
    started: float  #: when it was started last (resumed runs start again)
    finished: float | None = None  #: when it ended, None while running
    resumes: int = 0  #: times the run was started again after the first
    #: ``structure`` as JSON, when the caller has it at hand (saves encoding it again)
    structure_json: str | None = attrs.field(default=None, eq=False, repr=False)
    owner: Lease | None = None  #: the process holding the run's lease, if any
    lease_expires: float | None = None  #: when that lease runs out unless renewed
    fence: int = 0  #: the fencing token of the latest claim

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
        ``interrupted`` (:meth:`is_interrupted`)."""
        return {"run_id": self.run_id, "workflow": self.workflow, "status": self.status,
                "created": self.created, "started": self.started, "finished": self.finished,
                "duration": _span(self.started, self.finished), "resumes": self.resumes,
                "node_count": len(self.structure),
                "owner": None if self.owner is None else {"host": self.owner.host,
                                                          "pid": self.owner.pid},
                "lease_expires": self.lease_expires,
                "interrupted": self.is_interrupted(now)}

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
    status: str  #: "succeeded", "failed", "skipped" or "cancelled"
    attempts: int  #: attempts started (in the latest start of the run)
    output: bytes | None = None  #: serialized output, for succeeded nodes
    error: str | None = None  #: "Type: message" of a failed node
    traceback: str | None = None  #: the formatted traceback of a failed node
    started: float | None = None  #: wall-clock start of its first attempt
    finished: float | None = None  #: wall-clock end
    #: the fencing token of the claim that wrote it: below the run's ``fence``, the
    #: node ended in an earlier start and was read back (not run) in the latest one
    fence: int = 0


def decode(serializer: Serializer, blob: bytes, what: str) -> Any:
    """``serializer.loads(blob)``.

    Raises:
        StoreError: ``blob`` cannot be read (the message names ``what``).
    """
    try:
        return serializer.loads(blob)
    except Exception as error:
        raise StoreError(f"{what} is damaged and cannot be read: "
                         f"{type(error).__name__}: {error}") from None


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

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready data, with the keys of :meth:`flowrt.RunResult.to_dict`
        that a store knows (what ``flowrt show --json`` prints and the HTML report draws).

        :meth:`RunRecord.to_dict`, plus ``counts`` (nodes per status), ``attempts``,
        ``retries``, ``inputs`` (None when they cannot be read: damaged, or a pickle and
        the store was not opened for pickles -- nothing is unpickled otherwise) and
        ``nodes``: per node of the run's structure, in its order, ``status`` ("pending"
        for a node with no record yet), ``attempts``, ``started``, ``finished``,
        ``duration``, ``error``, ``traceback``, ``deps`` and ``restored`` (:meth:`restored`:
        read back, not run, in the latest start). Outputs are left out (:meth:`outputs`
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
                               "traceback": None, "deps": deps, "restored": False}
            else:
                nodes[name] = {"status": rec.status, "attempts": rec.attempts,
                               "started": rec.started, "finished": rec.finished,
                               "duration": _span(rec.started, rec.finished),
                               "error": rec.error, "traceback": rec.traceback, "deps": deps,
                               "restored": rec.fence < record.fence}
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
                "retries": attempts - ran, "inputs": inputs, "nodes": nodes}

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
                if r.status == "succeeded" and r.output is not None}

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

    def write(self, claim: Claim, nodes: list[NodeRecord], data: bytes | None) -> None:
        """Record ``nodes`` (upserted by name) and the ``data`` snapshot (None: keep the
        last one) of ``claim``'s run, in the order written; the store may batch them.

        Refused when ``claim``'s fencing token is no longer the run's (the claim then
        fails with :class:`~flowrt.LeaseLost`).
        """
        ...

    def finish(self, claim: Claim, status: str, finished: float) -> None:
        """Set ``claim``'s run to final ``status`` at wall-clock time ``finished`` and give
        its lease back (refused like :meth:`write`)."""
        ...

    def renew(self, claim: Claim) -> bool:
        """Extend ``claim``'s lease now; False when it is lost or cannot be written (the
        claim's ``error`` says which)."""
        ...

    def flush(self) -> None:
        """Return once everything written so far is in the store (on disk, for a file)."""
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

    def close(self) -> None:
        """Flush and release the store (a store from a path is closed by its runtime)."""
        ...


def refuse_live_holder(record: RunRecord, lease: Lease, now: float, *,
                       same_process_is_live: bool = False) -> None:
    """Raise RunLeased when someone else holds ``record``'s lease and is alive."""
    holder = record.owner
    if holder is None or holder.token == lease.token:
        return
    if not holder.is_stale(record.lease_expires or 0.0, now) or (
        same_process_is_live and holder.pid == os.getpid()
        and holder.host == lease.host
    ):
        raise RunLeased(record.run_id, holder.describe())


def restarted(old: RunRecord, new: RunRecord, lease: Lease, expires: float) -> RunRecord:
    """``old`` started again as ``new`` says, under ``lease``, with the next fence."""
    return attrs.evolve(old, status=RUNNING, started=new.started, finished=None,
                        resumes=old.resumes + 1, fingerprint=new.fingerprint,
                        structure=new.structure, structure_json=new.structure_json,
                        owner=lease, lease_expires=expires, fence=old.fence + 1)


class MemoryStore:
    """A store that lives in this process: nothing survives it.

    The reference for the contract:

    - ``claim(run_id, lease, decide)`` reads the run, refuses it with
      :class:`~flowrt.RunLeased` when a live holder has it, calls ``decide(stored run
      or None)``, and -- when that returns a record -- creates or restarts the run with
      it under ``lease`` and the next fencing token, all atomically (nothing is written
      when ``decide`` raises or returns None). It returns ``(stored run, Claim or
      None)``.
    - ``write(claim, nodes, data)`` upserts node records and the data snapshot;
      ``finish(claim, status, finished)`` sets the final status and gives the lease
      back; ``renew(claim)`` extends the lease now. Each of them first checks, in the
      same atomic step, that ``claim.fence`` is still the run's: if not, nothing is
      written and the claim fails with :class:`~flowrt.LeaseLost`.
    - ``load`` / ``runs`` / ``delete`` / ``prune`` read and tidy.

    In one process a lease never expires (there is no other process to take over).

    Args:
        serializer: ``"json"`` (the default), ``"pickle"`` (trusted use only) or a
            serializer object.
        lease_ttl: seconds a lease lasts without renewal.

    Raises:
        ValueError: an unknown serializer name.
    """

    def __init__(self, serializer: str | Serializer = "json", lease_ttl: float = 60.0) -> None:
        self.serializer = get_serializer(serializer)
        self.lease_ttl = lease_ttl
        self._runs: dict[str, RunRecord] = {}
        self._nodes: dict[str, dict[str, NodeRecord]] = {}
        self._data: dict[str, bytes | None] = {}
        self._lock = threading.Lock()

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def claim(self, run_id: str, lease: Lease, decide: Decide
              ) -> tuple[StoredRun | None, Claim | None]:
        with self._lock:
            now = time.time()
            old = self._runs.get(run_id)
            stored = None
            if old is not None:
                refuse_live_holder(old, lease, now, same_process_is_live=True)
                stored = StoredRun(old, dict(self._nodes.get(run_id, {})),
                                   self._data.get(run_id), self.serializer)
            record = decide(stored)
            if record is None:
                return stored, None
            expires = now + self.lease_ttl
            if old is None:
                record = attrs.evolve(record, owner=lease, lease_expires=expires, fence=1,
                                      resumes=0)
                self._nodes[run_id] = {}
                self._data[run_id] = None
            else:
                record = restarted(old, record, lease, expires)
            self._runs[run_id] = record
            return stored, Claim(run_id, lease, record.fence, float("inf"))

    def _holds(self, claim: Claim) -> bool:
        """Whether ``claim`` is the run's latest (called with the lock held)."""
        run = self._runs.get(claim.run_id)
        if run is not None and run.fence == claim.fence:
            return True
        if claim.error is None:
            holder = run.owner.describe() if run is not None and run.owner else "nobody"
            claim.fail(LeaseLost(claim.run_id, holder))
        return False

    def write(self, claim: Claim, nodes: list[NodeRecord], data: bytes | None) -> None:
        with self._lock:
            if not self._holds(claim):
                return
            table = self._nodes.setdefault(claim.run_id, {})
            fence = claim.fence
            for r in nodes:
                table[r[0]] = NodeRecord(*r[:8], fence)
            if data is not None:
                self._data[claim.run_id] = data

    def finish(self, claim: Claim, status: str, finished: float) -> None:
        with self._lock:
            if not self._holds(claim):
                return
            run = self._runs[claim.run_id]
            self._runs[claim.run_id] = attrs.evolve(run, status=status, finished=finished,
                                                    owner=None, lease_expires=None)

    def renew(self, claim: Claim) -> bool:
        with self._lock:
            if not self._holds(claim):
                return False
            run = self._runs[claim.run_id]
            self._runs[claim.run_id] = attrs.evolve(
                run, lease_expires=time.time() + self.lease_ttl)
            return True

    def flush(self) -> None:
        pass

    def load(self, run_id: str) -> StoredRun | None:
        run = self._runs.get(run_id)
        if run is None:
            return None
        return StoredRun(run, dict(self._nodes.get(run_id, {})), self._data.get(run_id),
                         self.serializer)

    def runs(self, workflow: str | None = None, status: str | None = None) -> list[RunRecord]:
        found = [r for r in self._runs.values()
                 if (workflow is None or r.workflow == workflow)
                 and (status is None or r.status == status)]
        return sorted(found, key=lambda r: r.created)

    def delete(self, run_id: str) -> bool:
        with self._lock:
            self._nodes.pop(run_id, None)
            self._data.pop(run_id, None)
            return self._runs.pop(run_id, None) is not None

    def prune(self, *, older_than: float | None = None, keep: int | None = None,
              statuses: Iterable[str] = ("succeeded", "failed", "cancelled")) -> int:
        return prune(self, older_than, keep, statuses)

    def close(self) -> None:
        pass


def prune(store: Store, older_than: float | None, keep: int | None,
          statuses: Iterable[str]) -> int:
    """Delete the finished runs older than ``older_than`` seconds (by their end) and
    beyond the newest ``keep``; return how many. Running runs are never pruned."""
    wanted = set(statuses) - {RUNNING}
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
