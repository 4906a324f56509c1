"""Durable run state: the ``Store`` protocol, its records, ``MemoryStore``.

A store keeps, per run: a :class:`RunRecord` (workflow name, structure fingerprint,
inputs, status, times, lease) and a :class:`NodeRecord` per node that reached a final
status, with the serialized output of succeeded nodes; plus a snapshot of the run's
``WorkflowData`` keys. :mod:`flowrt.durable._run` decides what to write when; a store only
keeps it. :class:`~flowrt.SQLiteStore` is the embedded default
(``store="runs.db"``); :class:`MemoryStore` keeps everything in the process (tests,
and resuming within one process).

Node writes may be batched by the store (``write`` returns before the data is on
disk), in the order they were made; ``flush`` waits until all of it is.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import attrs

from .._engine.result import jsonable
from ..errors import RunLeased
from ._serialize import Serializer, get_serializer

__all__ = ["Lease", "MemoryStore", "NodeRecord", "RunRecord", "Store", "StoredRun", "prune"]

RUNNING = "running"


@attrs.frozen
class RunRecord:
    """One run as stored: ``store.get_run(run_id)``, ``store.runs()``.

    Times are wall-clock seconds since the epoch.
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

    @property
    def duration(self) -> float | None:
        """Seconds from the latest start to the end, or None while running."""
        return None if self.finished is None else self.finished - self.started

    def to_dict(self) -> dict[str, Any]:
        """The run's summary as JSON-ready data (what ``flowrt runs --json`` prints):
        ``run_id``, ``workflow``, ``status``, ``created`` (its first start, seconds since
        the epoch), ``started`` (its latest start), ``finished``, ``duration`` (from the
        latest start), ``resumes`` and ``node_count``."""
        return {"run_id": self.run_id, "workflow": self.workflow, "status": self.status,
                "created": self.created, "started": self.started, "finished": self.finished,
                "duration": self.duration, "resumes": self.resumes,
                "node_count": len(self.structure)}


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


@attrs.frozen
class StoredRun:
    """A run read back by ``store.load(run_id)``."""

    record: RunRecord  #: the run
    nodes: dict[str, NodeRecord]  #: node name -> record, for nodes that reached a final status
    data: bytes | None  #: the serialized snapshot of the run's WorkflowData keys

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON-ready data, with the keys of :meth:`flowrt.RunResult.to_dict`
        that a store knows (what ``flowrt show --json`` prints and the HTML report draws).

        :meth:`RunRecord.to_dict`, plus ``counts`` (nodes per status), ``attempts``,
        ``retries``, ``inputs`` (None unless the run was stored with the JSON serializer:
        nothing is unpickled here) and ``nodes``: per node of the run's structure, in its
        order, ``status`` ("pending" for a node with no record yet), ``attempts``,
        ``started``, ``finished``, ``duration``, ``error``, ``traceback`` and ``deps``.
        Outputs are left out (:meth:`outputs` reads them).
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
                               "traceback": None, "deps": deps}
            else:
                duration = (rec.finished - rec.started if rec.started is not None
                            and rec.finished is not None else None)
                nodes[name] = {"status": rec.status, "attempts": rec.attempts,
                               "started": rec.started, "finished": rec.finished,
                               "duration": duration, "error": rec.error,
                               "traceback": rec.traceback, "deps": deps}
                attempts += rec.attempts
                ran += rec.attempts > 0
            status = nodes[name]["status"]
            counts[status] = counts.get(status, 0) + 1
        inputs = None
        if record.serializer == "json":
            try:
                inputs = jsonable(get_serializer("json").loads(record.inputs))
            except Exception:  # damaged inputs: the rest of the run is still worth showing
                inputs = None
        return {**record.to_dict(), "counts": counts, "attempts": attempts,
                "retries": attempts - ran, "inputs": inputs, "nodes": nodes}

    def outputs(self, serializer: Serializer | None = None) -> dict[str, Any]:
        """Deserialized outputs of the succeeded nodes, read with ``serializer`` (by
        default the one the run was stored with)."""
        ser = serializer or get_serializer(self.record.serializer)
        return {n: ser.loads(r.output) for n, r in self.nodes.items()
                if r.status == "succeeded" and r.output is not None}


@attrs.frozen
class Lease:
    """Who runs a run: a process (host, pid) and one run call in it (token)."""

    host: str
    pid: int
    token: str

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
        if self.host == socket.gethostname():
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False


@runtime_checkable
class Store(Protocol):
    """Where durable runs are kept. See :class:`MemoryStore` for the contract.

    ``serializer`` turns outputs, inputs and data into bytes and back; ``lease_ttl`` is
    how long (seconds) a run's lease lasts without renewal. The methods below are what
    users call to inspect and tidy a store; ``begin``, ``write`` and ``finish`` are
    what durable runs call (see :class:`MemoryStore`).
    """

    serializer: Serializer
    lease_ttl: float

    def get_run(self, run_id: str) -> RunRecord | None:
        """The record of run ``run_id``, or None when the store has no such run."""
        ...

    def begin(self, record: RunRecord, lease: Lease, resume: bool) -> None: ...
    def write(self, run_id: str, nodes: list[NodeRecord], data: bytes | None) -> None: ...
    def finish(self, run_id: str, status: str, finished: float, lease: Lease) -> None: ...

    def flush(self) -> None:
        """Return once everything written so far is in the store (on disk, for a file)."""
        ...

    def load(self, run_id: str) -> StoredRun | None:
        """Run ``run_id`` with its node records and data snapshot, or None."""
        ...

    def runs(self, workflow: str | None = None, status: str | None = None) -> list[RunRecord]:
        """The runs, oldest first; only those of ``workflow`` and in ``status`` if given."""
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


class MemoryStore:
    """A store that lives in this process: nothing survives it.

    The reference for the contract: ``begin`` creates or restarts a run and takes its
    lease (raising :class:`~flowrt.RunLeased` when a live holder has it); ``write``
    upserts node records and the data snapshot; ``finish`` sets the final status and
    gives the lease back; ``load`` / ``runs`` / ``delete`` / ``prune`` read and tidy.

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
        self._leases: dict[str, tuple[Lease, float]] = {}
        self._lock = threading.Lock()

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def begin(self, record: RunRecord, lease: Lease, resume: bool) -> None:
        with self._lock:
            held = self._leases.get(record.run_id)
            now = time.time()
            if held is not None and held[0].token != lease.token and (
                not held[0].is_stale(held[1], now) or held[0].pid == os.getpid()
            ):
                raise RunLeased(record.run_id, held[0].describe())
            self._leases[record.run_id] = (lease, now + self.lease_ttl)
            old = self._runs.get(record.run_id)
            if old is None or not resume:
                self._runs[record.run_id] = record
                self._nodes[record.run_id] = {}
                self._data[record.run_id] = None
            else:
                self._runs[record.run_id] = attrs.evolve(
                    old, status=RUNNING, started=record.started, finished=None,
                    resumes=old.resumes + 1, fingerprint=record.fingerprint,
                    structure=record.structure)

    def write(self, run_id: str, nodes: list[NodeRecord], data: bytes | None) -> None:
        with self._lock:
            table = self._nodes.setdefault(run_id, {})
            for r in nodes:
                table[r.node] = r
            if data is not None:
                self._data[run_id] = data

    def finish(self, run_id: str, status: str, finished: float, lease: Lease) -> None:
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                self._runs[run_id] = attrs.evolve(run, status=status, finished=finished)
            held = self._leases.get(run_id)
            if held is not None and held[0].token == lease.token:
                del self._leases[run_id]

    def flush(self) -> None:
        pass

    def load(self, run_id: str) -> StoredRun | None:
        run = self._runs.get(run_id)
        if run is None:
            return None
        return StoredRun(run, dict(self._nodes.get(run_id, {})), self._data.get(run_id))

    def runs(self, workflow: str | None = None, status: str | None = None) -> list[RunRecord]:
        found = [r for r in self._runs.values()
                 if (workflow is None or r.workflow == workflow)
                 and (status is None or r.status == status)]
        return sorted(found, key=lambda r: r.created)

    def delete(self, run_id: str) -> bool:
        with self._lock:
            self._nodes.pop(run_id, None)
            self._data.pop(run_id, None)
            self._leases.pop(run_id, None)
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
