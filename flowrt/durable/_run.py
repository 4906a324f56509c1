"""Durable runs: resume by run id, checkpoints as nodes end, one runner per run id.

What is guaranteed (with a store):

- A node the store records as SUCCEEDED is never executed again for that run: a run
  started again with the same ``run_id`` reads its output back instead.
- Everything else runs again on resume: nodes that were running when the process died
  (at-least-once: ``ctx.run_id``, ``ctx.node`` and ``ctx.attempt`` make idempotency
  keys), and failed, skipped and cancelled nodes (fix the cause, run again: only the
  failed part runs).
- Node ends are recorded in the order they happen, so when a node's success is on disk,
  so are those of the nodes it depended on.
- A run that SUCCEEDED returns its stored result when run again; nothing runs.
- A run is run by one process at a time (a lease in the store); a second one is refused
  with :class:`~flowrt.RunLeased`. A lease whose process died on this host, or that was
  not renewed within the store's ``lease_ttl``, is taken over.
- A stored run whose workflow structure changed is refused with
  :class:`~flowrt.WorkflowChanged`, unless ``resume="force"``: then nodes that still
  exist keep their stored outputs and the rest runs.
- Keys set on the run's ``WorkflowData`` are snapshotted with the node records, so a
  resumed run sees what the crashed one had set.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from .._engine.result import RunResult
from .._types import BY_NAME, NAMES, RunStatus
from ..data import WorkflowData
from ..errors import (
    SerializationError,
    StoredError,
    StoreError,
    WorkflowChanged,
    describe_error,
)
from ._serialize import Serializer
from ._store import Lease, NodeRecord, RunRecord, StoredRun

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._engine.supervisor import Supervisor
    from ..runtime import Runtime
    from ..workflow import Plan
    from ._store import Store

__all__ = ["Checkpoint", "durable_run"]

RESUME_MODES = (None, "auto", "force")


class Checkpoint:
    """Writes a run's node ends to its store as they happen (called by the supervisor)."""

    __slots__ = ("_call_soon", "_data_blob", "_data_seen", "_scheduled", "data", "error",
                 "names", "pending", "plan_size", "run_id", "serializer", "store", "sup")

    def __init__(self, store: Store, run_id: str, sup: Supervisor) -> None:
        self.store = store
        self.serializer: Serializer = store.serializer
        self.run_id = run_id
        self.sup = sup
        self.names = sup.plan.names
        self.plan_size = len(sup.plan)
        self.data = sup.data
        self._data_seen = self.data._version
        #: records not handed to the store yet: they go in one batch per event loop
        #: turn (flush() is scheduled when the first one of a turn arrives)
        self.pending: list[NodeRecord] = []
        self._data_blob: bytes | None = None  # a data snapshot not handed over yet
        self._scheduled = False
        self._call_soon = _call_soon_function()
        #: a failure of the store itself, raised when the run ends
        self.error: BaseException | None = None

    def _add(self, record: NodeRecord) -> None:
        self.pending.append(record)
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self.flush)

    def flush(self) -> None:
        """Hand the pending records (and the data snapshot, if it changed) to the store."""
        self._scheduled = False
        pending, data = self.pending, self._data_blob
        if pending or data is not None:
            self.pending = []
            self._data_blob = None
            try:
                self.store.write(self.run_id, pending, data)
            except Exception as error:  # called from the loop: never raise there
                if self.error is None:
                    self.error = error

    def _times(self, node: int) -> tuple[float | None, float | None]:
        sup = self.sup
        if not sup.timed[node] or not sup.attempts[node]:
            return None, None
        base = sup.time_base
        finished = sup.finished[node]
        return sup.started[node] + base, (finished + base) if finished else None

    def snapshot_data(self) -> None:
        """Serialize the run's data keys if they changed since the last snapshot.

        Called as each node ends, so that a value that cannot be stored fails the node
        that just set it (raises SerializationError).
        """
        data = self.data
        if data._version == self._data_seen:
            return
        self._data_seen = data._version  # report a bad value once, not at every node
        keys = dict(data.items_from(self.plan_size))
        try:
            self._data_blob = self.serializer.dumps(keys)
        except SerializationError:
            bad = next((k for k, v in keys.items() if not _storable(self.serializer, v)), "?")
            raise SerializationError(
                f"WorkflowData key {bad!r} holds a value that cannot be stored "
                f"({type(keys.get(bad)).__name__}); the run's data is not saved until "
                "that key is changed or deleted") from None

    def succeeded(self, node: int, value: Any) -> None:
        """Record a success; raises SerializationError when the output cannot be stored.

        Called for every node of a durable run: kept to a few plain steps.
        """
        try:
            blob = self.serializer.dumps(value)
        except SerializationError as error:
            raise SerializationError(f"node {self.names[node]!r} returned {error}") from None
        if self.data._version != self._data_seen:
            self.snapshot_data()
        sup = self.sup
        started = finished = None
        if sup.timed[node]:
            base = sup.time_base
            started = sup.started[node] + base
            finished = sup.finished[node] + base
        # tuple.__new__ skips NamedTuple's Python-level __new__
        self.pending.append(tuple.__new__(NodeRecord, (
            self.names[node], "succeeded", sup.attempts[node], blob, None, None, started,
            finished)))
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self.flush)

    def ended(self, node: int, status: int, error: BaseException | None) -> None:
        """Record a failure, a skip or a cancellation."""
        with contextlib.suppress(SerializationError):  # reported by succeeded() or the end
            self.snapshot_data()
        started, finished = self._times(node)
        text = tb = None
        if error is not None:
            text = describe_error(error)
            tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self._add(NodeRecord(self.names[node], NAMES[status], self.sup.attempts[node],
                             None, text, tb, started, finished))


def _storable(serializer: Serializer, value: Any) -> bool:
    try:
        serializer.dumps(value)
    except SerializationError:
        return False
    return True


def _call_soon_function() -> Any:
    """The running loop's "call this on the next turn" (asyncio or trio)."""
    import sniffio

    if sniffio.current_async_library() == "asyncio":
        import asyncio

        return asyncio.get_running_loop().call_soon
    import trio

    return trio.lowlevel.current_trio_token().run_sync_soon


def structure_diff(old: Mapping[str, list[str]], new: Mapping[str, list[str]]
                   ) -> tuple[list[str], list[str], list[str]]:
    """Nodes added, removed, and whose dependencies changed, from ``old`` to ``new``."""
    added = [n for n in new if n not in old]
    removed = [n for n in old if n not in new]
    changed = [n for n in new if n in old and sorted(new[n]) != sorted(old[n])]
    return added, removed, changed


async def durable_run(rt: Runtime, plan: Plan, run_id: str,
                      inputs: Mapping[str, Any] | None, data: WorkflowData | None,
                      timeout: float | None, resume: str | None,
                      options: dict[str, Any]) -> RunResult:
    """Run ``plan`` as run ``run_id`` of the runtime's store: start, resume or replay."""
    store = rt.store
    assert store is not None
    if resume not in RESUME_MODES:
        raise ValueError(f"resume must be 'auto' (the default) or 'force', got {resume!r}")
    plan_inputs = dict(inputs) if inputs else {}
    lease = Lease.mine()
    # One trip to a worker thread: read the run, decide, take the lease.
    stored, given, replay = await anyio.to_thread.run_sync(
        _open_run, store, plan, run_id, plan_inputs, resume, lease)
    if replay:
        assert stored is not None
        return result_from_store(plan, stored, store.serializer, data)
    try:
        given, data = rt.prepare(plan, given, data)
        sup = rt.supervisor(plan, run_id, given, data, **options)
        if stored is not None:
            _restore(sup, plan, stored, store.serializer, data)
        sup.checkpoint = Checkpoint(store, run_id, sup)
    except BaseException:
        # Nothing ran: give the lease back and leave the run resumable.
        store.finish(run_id, "cancelled", time.time(), lease)
        raise
    finished = False
    try:
        result = await rt.drive(sup, timeout)
        finished = True
    finally:
        # Runs even when the caller is cancelled: the store must say how this ended.
        with anyio.CancelScope(shield=True):
            status = str(result.status) if finished else "cancelled"
            try:
                sup.checkpoint.snapshot_data()
            except SerializationError as error:  # data set after the last node ended
                sup.log.error("the run's WorkflowData cannot be stored", error=str(error))
            sup.checkpoint.flush()
            store.finish(run_id, status, time.time(), lease)
            await anyio.to_thread.run_sync(store.flush)
    if sup.checkpoint.error is not None:
        raise StoreError(f"run {run_id!r} ran, but the store failed to record it: "
                         f"{sup.checkpoint.error}") from sup.checkpoint.error
    return result


def _open_run(store: Store, plan: Plan, run_id: str, inputs: dict[str, Any],
              resume: str | None, lease: Lease
              ) -> tuple[StoredRun | None, dict[str, Any], bool]:
    """Look the run up and start it: ``(stored run or None, inputs, replay?)``.

    ``replay`` is True for a run that already succeeded with this structure: its stored
    result is the answer and nothing is started.
    """
    serializer = store.serializer
    existing = store.get_run(run_id)
    stored = None
    if existing is not None:
        structure = plan.structure
        if existing.workflow != plan.workflow:
            raise WorkflowChanged(run_id, [], [], [f"workflow {existing.workflow!r} is now "
                                                   f"{plan.workflow!r}"])
        same = existing.fingerprint == plan.fingerprint
        if not same and resume != "force":
            raise WorkflowChanged(run_id, *structure_diff(existing.structure, structure))
        if existing.serializer != serializer.name:
            raise ValueError(f"run {run_id!r} was stored with serializer "
                             f"{existing.serializer!r}, this store uses {serializer.name!r}")
        stored_inputs = serializer.loads(existing.inputs)
        if inputs:
            # Compared as stored: a dataclass given again equals the dict it was saved as.
            try:
                same_inputs = serializer.loads(serializer.dumps(inputs)) == stored_inputs
            except SerializationError:
                same_inputs = False
            if not same_inputs:
                raise ValueError(f"run {run_id!r} was started with other inputs "
                                 f"({sorted(stored_inputs)}); resume it without inputs or "
                                 "with the same ones, or use a new run_id")
        else:
            inputs = stored_inputs  # as stored (dataclasses come back as dicts)
        stored = store.load(run_id)
        if existing.status == "succeeded" and same and stored is not None:
            return stored, inputs, True
    plan.check_inputs(inputs)
    try:
        inputs_blob = serializer.dumps(inputs)
    except SerializationError as error:
        raise SerializationError(f"run inputs cannot be stored: {error}") from None
    now = time.time()
    record = RunRecord(run_id, plan.workflow, plan.fingerprint, plan.structure,
                       inputs_blob, "running", serializer.name, now, now,
                       structure_json=plan.structure_json)
    store.begin(record, lease, existing is not None)
    return stored, inputs, False


def _restore(sup: Supervisor, plan: Plan, stored: StoredRun, serializer: Serializer,
             data: WorkflowData) -> None:
    """Put a stored run's succeeded nodes and data keys back into ``sup`` and ``data``."""
    index = plan.index
    if stored.data is not None:
        for key, value in serializer.loads(stored.data).items():
            if key not in index:
                data.set(key, value)
    for name, rec in stored.nodes.items():
        i = index.get(name)
        if i is None or rec.status != "succeeded" or rec.output is None:
            continue
        sup.restore(i, serializer.loads(rec.output), rec.attempts, rec.started, rec.finished)


def result_from_store(plan: Plan, stored: StoredRun, serializer: Serializer,
                      data: WorkflowData | None = None) -> RunResult:
    """The :class:`RunResult` of a finished stored run, without running anything."""
    from array import array

    n = len(plan)
    board = bytearray(n)
    values: list[Any] = [None] * n
    attempts = [0] * n
    started = array("d", bytes(8 * n))
    finished = array("d", bytes(8 * n))
    timed = bytearray(n)
    errors: dict[int, BaseException] = {}
    if data is None:
        data = WorkflowData(n + 8)
    data.attach(plan)
    for name, rec in stored.nodes.items():
        i = plan.index.get(name)
        if i is None:
            continue
        board[i] = BY_NAME[rec.status]
        attempts[i] = rec.attempts
        if rec.started is not None:
            started[i] = rec.started
            timed[i] = 1
        if rec.finished is not None:
            finished[i] = rec.finished
        if rec.status == "succeeded" and rec.output is not None:
            values[i] = serializer.loads(rec.output)
            data.set_at(i, values[i])
        if rec.error is not None:
            type_name, _, message = rec.error.partition(": ")
            errors[i] = StoredError(type_name, message, rec.traceback)
    if stored.data is not None:
        for key, value in serializer.loads(stored.data).items():
            if key not in plan.index:
                data.set(key, value)
    record = stored.record
    status = RunStatus(record.status) if record.status != "running" else RunStatus.CANCELLED
    return RunResult(plan, record.run_id, status, board, values, attempts, started, finished,
                     errors, data, record.started, record.started,
                     (record.finished or record.started) - record.started, timed)
