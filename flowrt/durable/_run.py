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
  not renewed within the store's ``lease_ttl``, is taken over; the process that lost it
  can write nothing more (fencing: docs/decisions/012-fencing.md), stops its run and
  raises :class:`~flowrt.LeaseLost`.
- A run stops at the first checkpoint its store cannot write (a full disk): nothing it
  did after that is recorded, so nothing it would do next could be resumed from.
- A stored run whose workflow structure changed is refused with
  :class:`~flowrt.WorkflowChanged`, unless ``resume="force"``: then nodes that still
  exist keep their stored outputs and the rest runs.
- Keys set on the run's ``WorkflowData`` are snapshotted with the node records, so a
  resumed run sees what the crashed one had set.
- Everything stored is read and checked (and typed outputs rebuilt from the nodes'
  annotations) before the run is claimed: a damaged store is refused untouched.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
import traceback
from array import array
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

import anyio
import anyio.to_thread
import attrs

from .. import _backends
from .._engine.mapping import ItemBoard, RecordedItems
from .._engine.result import RunResult
from .._engine.run import Run, RunSettings, prepare_run
from .._engine.waits import sleep_until_woken
from .._logging import is_enabled
from .._types import BY_NAME, NAMES, RunStatus, Status
from ..data import WorkflowData
from ..data._workflow_data import MISSING
from ..errors import (
    LeaseLost,
    RunCancelled,
    SerializationError,
    StoredError,
    StoreError,
    StoreUnavailable,
    WorkflowChanged,
    describe_error,
)
from ._rebuild import input_rebuilders, return_rebuilder
from ._serialize import Serializer, reader_for
from ._store import (
    COMPENSATING,
    CRASHED,
    LISTED,
    ROLLBACK_STATUSES,
    Claim,
    ItemRecord,
    Lease,
    NodeRecord,
    Opening,
    RunRecord,
    SignalRecord,
    StoredRun,
    Wait,
    decode,
    unreadable,
    utc_text,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .._clock import Clock
    from .._engine.shared import Shared
    from .._engine.state import RunState
    from .._engine.telemetry import RunSpan
    from ..workflow import Plan, WaitSpec
    from ._store import Store

__all__ = ["Checkpoint", "durable_run"]

RESUME_MODES = (None, "auto", "force")
CANCELLED = Status.CANCELLED.value
_monotonic = time.monotonic


class SucceededRecords(Sequence[NodeRecord]):
    """The records of nodes that succeeded, made as they are read.

    What :meth:`Checkpoint.succeeded` keeps of a success is the node's id and its
    serialized output; its name, attempts and times are read from the run's arrays when
    a store reads the records. A store that writes them from its writer thread, as the
    SQLite and PostgreSQL stores do, thereby builds them there rather than in the event
    loop, where they cost a run of 1,000 nodes ~1 ms (a loop busy with the run's tasks
    reads the arrays more slowly than timeit does: 0.36 us a record there). 1,000 nodes
    x 1 ms, in memory against PostgreSQL 1.150x -> 1.135x and 1.155x -> 1.147x, SQLite
    1.151x -> 1.134x and 1.154x -> 1.143x (one process, 300 rounds each, the two ways
    taking turns; decision 016, the sixth pass). The arrays do not change for a node
    once it succeeded, so the records read the same whenever they are read.
    """

    __slots__ = ("_arrays", "_blobs", "_nodes", "_status")

    def __init__(self, checkpoint: Checkpoint, nodes: list[int], blobs: list[bytes],
                 status: str = "succeeded") -> None:
        state = checkpoint.state
        self._arrays = (checkpoint.names, state.attempts, state.timed, state.started,
                        state.finished, state.time_base)
        self._nodes = nodes
        self._blobs = blobs
        self._status = status  #: "succeeded", or "cached" (the output came from the cache)

    def __len__(self) -> int:
        return len(self._nodes)

    def _record(self, i: int, blob: bytes) -> NodeRecord:
        names, attempts, timed, started, finished, base = self._arrays
        times = (started[i] + base, finished[i] + base) if timed[i] else (None, None)
        # tuple.__new__ skips NamedTuple's Python-level __new__
        return tuple.__new__(NodeRecord, (names[i], self._status, attempts[i], blob, None,
                                          None, *times))

    def __iter__(self) -> Iterator[NodeRecord]:
        return map(self._record, self._nodes, self._blobs)

    @overload
    def __getitem__(self, index: int) -> NodeRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[NodeRecord]: ...

    def __getitem__(self, index: int | slice) -> NodeRecord | list[NodeRecord]:
        if isinstance(index, slice):
            return list(map(self._record, self._nodes[index], self._blobs[index]))
        return self._record(self._nodes[index], self._blobs[index])


class Checkpoint:
    """Writes a run's node ends to its store as they happen (called by the supervisor).

    The engine's :class:`~flowrt._engine.state.Checkpoint` protocol (:meth:`succeeded`,
    :meth:`ended`), plus what :func:`run_opened` calls around the run: :meth:`hold`,
    :meth:`flush`, :meth:`snapshot_data` and ``error``.
    """

    # claim and stop_run are set by hold()
    __slots__ = ("_call_soon", "_data_blob", "_data_seen", "_none", "_scheduled",
                 "_succeeded", "_succeeded_blobs", "claim", "data", "dues", "error", "names",
                 "pending", "pending_items", "plan_size", "run_id", "serializer", "state",
                 "stop_run", "store")

    def __init__(self, store: Store, state: RunState) -> None:
        self.store = store
        self.serializer: Serializer = store.serializer
        #: the serializer's None, made once: the output of most items of maps done for
        #: their effects (a call less per item: ~490 -> ~420 ns per durable item on the
        #: loop, timeit of _ItemCheckpoint.succeeded at load 2.9)
        self._none: bytes | None
        try:
            self._none = self.serializer.dumps(None)
        except Exception:  # (a serializer that refuses None says so per item)
            self._none = None
        self.run_id = state.run_id
        self.state = state
        self.names = state.plan.names
        self.plan_size = len(state.plan)
        self.data = state.data
        self._data_seen = self.data._version
        #: records not handed to the store yet: they go in one batch per event loop
        #: turn (flush() is scheduled when the first one of a turn arrives)
        self.pending: list[NodeRecord] = []
        #: the nodes that succeeded since the records in ``pending``, and their outputs:
        #: handed to the store as SucceededRecords
        self._succeeded: list[int] = []
        self._succeeded_blobs: list[bytes] = []
        #: item records of mapped nodes not handed to the store yet (same batches)
        self.pending_items: list[ItemRecord] = []
        self._data_blob: bytes | None = None  # a data snapshot not handed over yet
        self._scheduled = False
        self._call_soon = _backends.current().call_soon()
        #: a failure of the store itself, raised when the run ends
        self.error: BaseException | None = None
        #: wait node -> its due time, kept in its record when it ends otherwise than
        #: succeeded (a cancelled timer resumed later waits for the time left)
        self.dues: dict[int, float | None] = {}

    def _add(self, record: NodeRecord) -> None:
        self._settle()
        self.pending.append(record)
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self.flush)

    def flush(self) -> None:
        """Hand the pending records (and the data snapshot, if it changed) to the store."""
        self._scheduled = False
        pending: Sequence[NodeRecord]
        pending, data, items = self.pending, self._data_blob, self.pending_items
        if self._succeeded:
            if pending:
                self._settle()
            else:
                pending = SucceededRecords(self, self._succeeded, self._succeeded_blobs)
                self._succeeded, self._succeeded_blobs = [], []
        if pending or data is not None or items:
            self.pending = []
            self._data_blob = None
            try:
                if items:
                    self.pending_items = []
                    self.store.write(self.claim, pending, data, items)
                else:
                    self.store.write(self.claim, pending, data)
            except Exception as error:  # called from the loop: never raise there
                if self.error is None:
                    self.error = error
                self.stop_run()  # a checkpoint that cannot be written: stop here

    def _settle(self) -> None:
        """Move the successes kept since the last records into ``pending`` as records,
        so that the records that come after them stay after them."""
        if self._succeeded:
            self.pending += SucceededRecords(self, self._succeeded, self._succeeded_blobs)
            self._succeeded, self._succeeded_blobs = [], []

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

    def succeeded(self, node: int, value: Any, cached: bool = False) -> None:
        """Record a success (``cached``: the output came from the cache); raises
        SerializationError when the output cannot be stored.

        Called for every node of a durable run: kept to a few plain steps.
        """
        try:
            blob = self.serializer.dumps(value)
        except SerializationError as error:
            raise SerializationError(f"node {self.names[node]!r} returned {error}") from None
        if self.data._version != self._data_seen:
            self.snapshot_data()
        if cached:  # (seldom: a record of its own)
            self._add(SucceededRecords(self, [node], [blob], "cached")[0])
        else:
            self._succeeded.append(node)
            self._succeeded_blobs.append(blob)
            if not self._scheduled:
                self._scheduled = True
                self._call_soon(self.flush)
        if _monotonic() >= self.claim.valid_until:  # before the dependents can start
            self.claim_trouble()

    def ended(self, node: int, status: int, error: BaseException | None) -> None:
        """Record a failure, a skip or a cancellation."""
        with contextlib.suppress(SerializationError):  # reported by succeeded() or the end
            self.snapshot_data()
        started, finished = self.state.times(node)
        text = tb = None
        if error is not None:
            text = describe_error(error)
            tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        due = self.dues.get(node) if self.dues and status == CANCELLED else None
        self._add(NodeRecord(self.names[node], NAMES[status], self.state.attempts[node],
                             None, _utf8(text), _utf8(tb), started, finished, 0, due))
        if _monotonic() >= self.claim.valid_until:
            self.claim_trouble()

    def waiting(self, node: int, since: float, due: float | None) -> None:
        """Record that wait ``node`` began waiting at ``since`` (wall clock), due at
        ``due`` (the runtime's clock): a crash or a park keeps that due time."""
        self.dues[node] = due
        self._add(NodeRecord(self.names[node], "waiting", self.state.attempts[node],
                             started=since, due=due))
        if _monotonic() >= self.claim.valid_until:
            self.claim_trouble()

    # -- saga compensation (docs/decisions/020-saga-rollback.md) ------------------------

    async def rolling_back(self, nodes: list[int]) -> bool:
        """A rollback starts: record each node it will undo as ``"compensating"`` (its
        output kept: the compensation needs it on resume), and wait until that is on
        disk. False when the run can no longer write (no rollback then)."""
        if not self.writable():
            return False
        state = self.state
        records = []
        for i in nodes:
            text = None
            value = state.values[i]
            if value is MISSING:
                # a mapped node that failed or was cancelled, undoing its succeeded items
                # (recorded apart): no output; an error says it failed, none cancelled
                blob = None
                error = state.errors.get(i)
                text = None if error is None else _utf8(describe_error(error))
            else:
                try:
                    blob = self.serializer.dumps(value)
                except SerializationError:  # stored once already: cannot happen; be safe
                    blob = None
            started, finished = state.times(i)
            records.append(NodeRecord(self.names[i], COMPENSATING, state.attempts[i], blob,
                                      text, None, started, finished))
        self._settle()
        self.pending.extend(records)
        self.flush()
        if not self.writable():
            return False
        await flushed(self.store)
        return self.writable()

    def writable(self) -> bool:
        return self.error is None and self.claim.error is None
    # -- the items of mapped nodes --------------------------------------------------------

    def _add_item(self, record: ItemRecord) -> None:
        self.pending_items.append(record)
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self.flush)
        if _monotonic() >= self.claim.valid_until:
            self.claim_trouble()

    def items_listed(self, node: int, count: int) -> None:
        """Record that mapped ``node`` has ``count`` items (before the first starts)."""
        self._add_item(ItemRecord(self.names[node], LISTED, "listed", count))

    def item_succeeded(self, node: int, item: int, value: Any, attempts: int,
                       started: float | None, finished: float | None,
                       cached: bool = False) -> None:
        """Record an item's output (``cached``: read from the cache); SerializationError
        when it cannot be stored.

        Called for every item of a durable map: kept to a few plain steps, as
        :meth:`succeeded` (:meth:`_add_item` inlined).
        """
        if value is None and self._none is not None:
            blob = self._none
        else:
            try:
                blob = self.serializer.dumps(value)
            except SerializationError as error:
                raise SerializationError(f"item {item} of node {self.names[node]!r} "
                                         f"returned {error}") from None
        # tuple.__new__ skips NamedTuple's Python-level __new__
        self.pending_items.append(tuple.__new__(ItemRecord, (
            self.names[node], item, "cached" if cached else "succeeded", attempts, blob,
            None, None, started, finished)))
        if not self._scheduled:
            self._scheduled = True
            self._call_soon(self.flush)
        if _monotonic() >= self.claim.valid_until:
            self.claim_trouble()

    def item_ended(self, node: int, item: int, status: int, error: BaseException | None,
                   attempts: int, started: float | None, finished: float | None) -> None:
        """Record an item that failed, was skipped or cancelled."""
        text = tb = None
        if error is not None:
            text = describe_error(error)
            tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self._add_item(ItemRecord(self.names[node], item, NAMES[status], attempts, None,
                                  _utf8(text), _utf8(tb), started, finished))

    # -- the claim: who may write (docs/decisions/012-fencing.md) -------------------------

    def hold(self, claim: Claim, stop_run: Callable[[], object]) -> None:
        """Write as ``claim`` (its fencing token); call ``stop_run()`` to stop the run when
        the claim is lost or a write fails. Called once, before the run starts."""
        self.claim = claim
        self.stop_run = stop_run

    def claim_trouble(self) -> None:
        """The run's lease may have run out, is lost, or a write failed: go on only when
        the store confirms the lease (one renewal, on this thread: this happens only
        when the loop was held up longer than ``lease_ttl``); otherwise stop the run.
        """
        claim = self.claim
        if claim.error is None and self.store.renew(claim):
            return
        if self.error is None:
            self.error = claim.error
        self.stop_run()


class Crash(BaseException):
    """The simulated death of the process that ran a durable run
    (:func:`flowrt.testing.crash_at`), raised out of ``rt.run``.

    A BaseException, as a process's death is no error a node or a run handles.
    """

    def __init__(self, run_id: str, node: str) -> None:
        self.run_id = run_id
        self.node = node
        super().__init__(f"simulated crash of run {run_id!r} after node {node!r}")


_COMPENSATION_ENDS = (Status.COMPENSATED.value, Status.COMPENSATION_FAILED.value)

#: (node, "end", "wait" or "compensated"): runs started in this context crash right
#: after that node's record reaches the store (flowrt.testing.crash_at); None: they do not
CRASH_AT: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "flowrt_crash_at", default=None)


class CrashingCheckpoint(Checkpoint):
    """A checkpoint that simulates a crash after one node's record (crash_at): it
    commits that record, then drops everything, as a dead process writes nothing."""

    __slots__ = ("crash_node", "crash_on", "crashed")

    def arm(self, node: int, on: str) -> None:
        """Crash after ``node``'s end (``on="end"``), wait (``"wait"``) or
        compensation (``"compensated"``)."""
        self.crash_node = node
        self.crash_on = on
        self.crashed = False

    def _add(self, record: NodeRecord) -> None:
        if not self.crashed:
            super()._add(record)

    def _add_item(self, record: ItemRecord) -> None:
        if not self.crashed:
            super()._add_item(record)

    def item_succeeded(self, node: int, item: int, value: Any, attempts: int,
                       started: float | None, finished: float | None,
                       cached: bool = False) -> None:
        if not self.crashed:  # (it does not go through _add_item)
            super().item_succeeded(node, item, value, attempts, started, finished, cached)

    def flush(self) -> None:
        if not self.crashed:
            super().flush()

    def succeeded(self, node: int, value: Any, cached: bool = False) -> None:
        if self.crashed:
            return
        super().succeeded(node, value, cached)
        if node == self.crash_node and self.crash_on == "end":
            self.crash()

    def ended(self, node: int, status: int, error: BaseException | None) -> None:
        if self.crashed:
            return
        super().ended(node, status, error)
        if node == self.crash_node and self.crash_on == (
                "compensated" if status in _COMPENSATION_ENDS else "end"):
            self.crash()

    def waiting(self, node: int, since: float, due: float | None) -> None:
        if self.crashed:
            return
        super().waiting(node, since, due)
        if node == self.crash_node and self.crash_on == "wait":
            self.crash()
    async def rolling_back(self, nodes: list[int]) -> bool:
        if self.crashed:
            return False
        return await super().rolling_back(nodes)

    def crash(self) -> None:
        """Commit what was recorded up to now, then die."""
        super().flush()
        self.store.flush()
        self.crashed = True
        CRASHED.add(self.claim.lease.token)
        self.claim.fail(LeaseLost(self.run_id, "nobody: its process crashed (crash_at)"))
        self.stop_run()


#: seconds between two looks at the store for a signal, when nothing tells a waiting
#: node that one came (a signal sent through another runtime, with SQLite: PostgreSQL
#: notifies, and a signal sent through this runtime wakes it at once)
SIGNAL_POLL = 0.5


class StoreWaiter:
    """The waiter of a durable run (:class:`~flowrt._engine.state.Waiter`): a wait
    is recorded as it begins, with its due time -- the one recorded before, when the
    run waited there already (a crash, a park, a cancellation), so that it waits for the
    time left -- and signals are read from the store."""

    __slots__ = ("_changed", "checkpoint", "clock", "poll", "recorded", "store")

    def __init__(self, store: Store, checkpoint: Checkpoint, clock: Clock,
                 recorded: Mapping[str, NodeRecord], poll: float = SIGNAL_POLL) -> None:
        self.store = store
        self.checkpoint = checkpoint
        self.clock = clock
        self.recorded = recorded
        self.poll = poll
        self._changed: anyio.Event | None = None

    def wake(self) -> None:
        """A signal may have come: look at the store now."""
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def begin(self, node: int, spec: WaitSpec) -> float | None:
        checkpoint = self.checkpoint
        rec = self.recorded.get(checkpoint.names[node])
        if rec is not None and rec.status in ("waiting", "cancelled") and rec.due is not None:
            due: float | None = rec.due
        else:
            due = spec.due(self.clock.now())
        checkpoint.waiting(node, time.time(), due)
        return due

    async def signal(self, node: int, due: float | None,
                     idle: Callable[[], object]) -> tuple[bool, Any]:
        checkpoint = self.checkpoint
        name = checkpoint.names[node]
        store, claim = self.store, checkpoint.claim
        watch = getattr(store, "watch", None)  # PostgreSQL: LISTEN/NOTIFY
        unwatch = watch(_from_any_thread(self.wake)) if watch is not None else None
        was_idle = False
        try:
            while True:
                if self._changed is None:  # set before the look: a wake during it counts
                    self._changed = anyio.Event()
                changed = self._changed
                sent, record = await anyio.to_thread.run_sync(_look, store, claim.run_id, name)
                if sent is not None:
                    return True, decode(store.serializer, sent.payload,
                                        f"the payload of signal {name!r}")
                if record is None or record.fence != claim.fence:
                    checkpoint.claim_trouble()  # cancelled or taken over: the run stops
                if due is not None and self.clock.now() >= due:
                    return False, None
                if not was_idle:
                    was_idle = True
                    idle()
                await sleep_until_woken(changed, self.clock, due, self.poll)
        finally:
            if unwatch is not None:
                unwatch()


def _look(store: Store, run_id: str, name: str) -> tuple[SignalRecord | None,
                                                          RunRecord | None]:
    """The first signal ``name`` sent to ``run_id``, and the run as it is now."""
    sent = next((s for s in store.signals(run_id) if s.name == name), None)
    return sent, (store.get_run(run_id) if sent is None else None)


def _utf8(text: str | None) -> str | None:
    """``text`` as a store can keep it: a lone surrogate (from a file name in an error
    message) becomes a backslash escape instead of failing the write."""
    if text is None or text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _storable(serializer: Serializer, value: Any) -> bool:
    try:
        serializer.dumps(value)
    except SerializationError:
        return False
    return True


def _from_any_thread(fn: Callable[[], object]) -> Callable[[], None]:
    """``fn``, made callable from any thread: it runs soon in the current event loop
    (nothing happens once that loop is gone)."""
    call_soon = _backends.current().threadsafe_call_soon()

    def call() -> None:
        call_soon(fn)

    return call


async def flushed(store: Store) -> None:
    """``store.flush()``, awaited: through the store's ``flush_then`` when it has one
    (its writer wakes this loop when the flush is done), else in a worker thread.

    The thread cost a run's end two wake-ups (the loop's worker thread, woken to queue
    the flush, then waking the loop): on a virtual machine whose idle cores are slow to
    wake, ~0.2 ms each (a round trip to an idle PostgreSQL backend: 0.07 ms back to back,
    0.4-0.5 ms after 5-40 ms idle; decision 016). Should the writer never answer (it
    died between the store's check and the flush), ``flush()`` in a thread takes over
    after half a second and raises what the writer's failure was.
    """
    flush_then: Callable[[Callable[[], object]], None] | None = getattr(
        store, "flush_then", None)
    if flush_then is None:
        await anyio.to_thread.run_sync(store.flush)
        return
    done = anyio.Event()
    flush_then(_from_any_thread(done.set))
    # Not cancellable, as the thread was not (to_thread.run_sync's default): what the
    # run recorded is known to be in the store, or to have failed, when this returns.
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(0.5):
            await done.wait()
        if not done.is_set():
            await anyio.to_thread.run_sync(store.flush)


def structure_diff(old: Mapping[str, list[str]], new: Mapping[str, list[str]]
                   ) -> tuple[list[str], list[str], list[str]]:
    """Nodes added, removed, and whose dependencies changed, from ``old`` to ``new``."""
    added = [n for n in new if n not in old]
    removed = [n for n in old if n not in new]
    changed = [n for n in new if n in old and sorted(new[n]) != sorted(old[n])]
    return added, removed, changed


async def durable_run(store: Store, shared: Shared, plan: Plan, run_id: str,
                      inputs: Mapping[str, Any] | None, data: WorkflowData | None,
                      settings: RunSettings, resume: str | None) -> RunResult:
    """Run ``plan`` as run ``run_id`` of ``store``: start, resume or replay (the run
    itself goes as :func:`run_opened` says)."""
    if resume not in RESUME_MODES:
        raise ValueError(f"resume must be 'auto' (the default) or 'force', got {resume!r}")
    plan_inputs = dict(inputs) if inputs else {}
    if not run_id.isascii():
        _check_text(run_id, "run_id")
    lease = Lease.mine()
    # Traced: the run's span opens now, so that a new run is stored with its trace.
    span = (shared.telemetry.open_run_span(plan.workflow, run_id, len(plan))
            if shared.telemetry is not None else None)
    try:
        # One trip to a worker thread: read the run, check it, take it (one transaction).
        opened = await anyio.to_thread.run_sync(
            _open_run, store, plan, run_id, plan_inputs, resume, lease,
            tuple(settings.resources or ()), span.traceparent if span is not None else None)
        if opened.claim is None:
            if span is not None:
                span.abandon("succeeded")
            return result_from_store(plan, opened, data)
        return await run_opened(store, shared, plan, opened, data, settings, span=span)
    except BaseException as error:
        if span is not None:  # unless the run took it over (and ended it)
            span.abandon("cancelled" if not isinstance(error, Exception) else "error", error)
        raise


async def run_opened(store: Store, shared: Shared, plan: Plan, opened: Opened,
                     data: WorkflowData | None, settings: RunSettings, *,
                     handed_back: str = "cancelled", span: RunSpan | None = None
                     ) -> RunResult:
    """Run a run claimed from the store (by :func:`durable_run`, or by a worker that
    took it from the queue) to its end, recording it as it goes.

    The engine's run (:func:`~flowrt._engine.run.prepare_run` on the runtime's
    ``shared`` resources, with ``settings``), with what the store recorded put back and
    a :class:`Checkpoint` attached. ``handed_back``: the status the store records when
    the caller is cancelled or the runtime shuts down (``"cancelled"``; a worker gives
    its runs back to the queue with ``"queued"``). ``span``: the run's ``flowrt.run``
    span when the caller opened it (:func:`durable_run`, tracing).

    Raises:
        LeaseLost: another process took the run over (the store refused this one).
        StoreError: the store could not record the run.
    """
    with shared.in_flight():  # the runtime keeps its store open until this returns
        return await _run_claimed(store, shared, plan, opened, data, settings, handed_back,
                                  span)


async def _run_claimed(store: Store, shared: Shared, plan: Plan, opened: Opened,
                       data: WorkflowData | None, settings: RunSettings,
                       handed_back: str, span: RunSpan | None) -> RunResult:
    claim = opened.claim
    assert claim is not None
    run_id = claim.run_id
    try:
        run = prepare_run(shared, plan, run_id, opened.inputs, data, settings)
        # a later start of a traced run links to the trace of its first start
        run.trace(span, opened.stored.record.trace if opened.stored is not None else None)
        restored = _restore(run, plan, opened, run.state.data)
        crash = CRASH_AT.get()
        checkpoint: Checkpoint
        if crash is not None and crash[0] in plan.index:
            crashing = checkpoint = CrashingCheckpoint(store, run.state)
            crashing.arm(plan.index[crash[0]], crash[1])
        else:
            checkpoint = Checkpoint(store, run.state)
        run.attach(checkpoint)
        if plan.wait_specs:
            stored = opened.stored
            run.wait_with(StoreWaiter(store, checkpoint, shared.clock,
                                      stored.nodes if stored is not None else {}))
        checkpoint.hold(claim, run.stop)
        claim.on_trouble(_from_any_thread(checkpoint.claim_trouble))
    except BaseException:
        # Nothing ran: give the lease back and leave the run resumable.
        store.finish(claim, "cancelled", time.time())
        raise
    finished = parked = False
    try:
        if opened.rolling_back:
            _restore_rollback(run, plan, opened)
        result = await run.execute(restored=restored, rollback_only=opened.rolling_back)
        finished = True
    finally:
        if isinstance(checkpoint, CrashingCheckpoint) and checkpoint.crashed:
            raise Crash(run_id, plan.names[checkpoint.crash_node])  # a death: nothing more
        # Runs even when the caller is cancelled: the store must say how this ended.
        with anyio.CancelScope(shield=True):
            status = (str(result.status) if finished and not run.shut_down
                      else handed_back)
            try:
                checkpoint.snapshot_data()
            except SerializationError as error:  # data set after the last node ended
                run.state.log.error("the run's WorkflowData cannot be stored",
                                    error=str(error))
            checkpoint.flush()
            trouble = checkpoint.error or claim.error
            if trouble is not None:
                # Stopped, and what it recorded may be incomplete. A store that was out
                # of reach (a database restarting) gives a worker's run back to the
                # queue, to be resumed once it is back.
                status = handed_back if isinstance(trouble, StoreUnavailable) else "cancelled"
            store.finish(claim, status, time.time())
            await flushed(store)
            parked = status == "waiting"
    log = run.state.log
    if parked and is_enabled(log, logging.INFO):
        # Said once the store has the run parked, not as "run finished": it is not
        # over. One read of the store says what for, with its due times.
        stored = await anyio.to_thread.run_sync(_load_quietly, store, run_id)
        log.info(f"run parked (waiting for {parked_text(result, stored)})")
    trouble = checkpoint.error or claim.error
    if isinstance(trouble, RunCancelled):
        # cancelled through the store: what this process did after that was refused
        result.status = RunStatus.CANCELLED
    elif isinstance(trouble, LeaseLost):
        raise LeaseLost(trouble.run_id, trouble.holder)
    elif trouble is not None:
        kind = StoreUnavailable if isinstance(trouble, StoreUnavailable) else StoreError
        raise kind(f"run {run_id!r} stopped at a checkpoint the store could not write: "
                   f"{trouble}; resume it once the store can be written") from trouble
    return result


def parked_text(result: RunResult, stored: StoredRun | None) -> str:
    """What a parked run waits for, for a log line: ``"paid: signal 'paid'; cool_off:
    timer due 2024-01-01T01:00:00Z"`` (a signal's or approval's timeout as "times out
    ..."; the due times are the store's, on the runtime's clock, in UTC)."""
    waits: list[Wait] = stored.waits() if stored is not None else []
    if not waits:  # the store could not be read: what the result knows
        kinds = result.plan.waits
        waits = [Wait(name, kinds.get(name, "signal"), None, None, False)
                 for name, node in result.nodes.items() if node.status is Status.WAITING]
    parts = []
    for w in waits:
        what = {"signal": f"signal {w.node!r}", "approval": "approval"}.get(w.kind, w.kind)
        if w.signalled:
            what += " (its signal came: it goes on at once)"
        elif w.due is not None:
            what += f" {'due' if w.kind == 'timer' else 'times out'} {utc_text(w.due)}"
        parts.append(f"{w.node}: {what}")
    return "; ".join(parts) or "nothing recorded"


def _load_quietly(store: Store, run_id: str) -> StoredRun | None:
    """``store.load(run_id)``, or None when it cannot be read (only a log line needs it)."""
    try:
        return store.load(run_id)
    except StoreError:  # StoreUnavailable too
        return None


def _check_text(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{what} {value!r} holds a lone surrogate "
                         f"({error.object[error.start:error.end]!r}); a store keeps "
                         "UTF-8 text only") from None


@attrs.define
class Opened:
    """What :func:`_open_run` found and decided."""

    stored: StoredRun | None = None
    inputs: dict[str, Any] = attrs.Factory(dict)
    claim: Claim | None = None  #: None: the run succeeded before; nothing is started
    values: dict[int, Any] = attrs.Factory(dict)  #: node id -> stored output, read back
    #: mapped node id -> its items as recorded (outputs read back)
    items: dict[int, RecordedItems] = attrs.Factory(dict)
    data: dict[str, Any] | None = None  #: the stored WorkflowData keys, read back
    #: the run was rolling back (saga compensation): resume the rollback, not the run
    rolling_back: bool = False


def _open_run(store: Store, plan: Plan, run_id: str, inputs: dict[str, Any],
              resume: str | None, lease: Lease, resources: tuple[str, ...] = (),
              trace: str | None = None) -> Opened:
    """Look the run up, check it, and claim it, in one transaction of the store.

    Returns :class:`Opened`; its ``claim`` is None for a run that already succeeded with
    this structure: its stored result is the answer and nothing is started. Everything
    stored is read (decoded, rebuilt) before anything is written, so a damaged run is
    refused and left as it was. ``trace``: the ``traceparent`` a new run is stored with.
    """
    serializer = store.serializer
    opened = Opened(inputs=inputs)
    fresh: RunRecord | None = None

    def decide(stored: StoredRun | None) -> RunRecord | None:
        opened.stored = stored
        if stored is not None and _read_back(stored, plan, run_id, inputs, resume,
                                             serializer, opened):
            return None  # it succeeded: replay it, claim nothing
        if stored is None and fresh is not None:
            return fresh  # made once (a store that ignores it asks again)
        record = _new_record(plan, run_id, opened.inputs, serializer, resources)
        return record if trace is None else attrs.evolve(record, trace=trace)

    # Most runs are new: their record, made now, lets a store insert the run without
    # looking for it first (PostgreSQL: a round trip of a run's claim; see Opening).
    try:
        fresh = decide(None)
    except Exception:  # a resume without its inputs...: the store asks again
        fresh = None
    opened.stored, opened.claim = store.claim(run_id, lease, Opening(decide, fresh))
    return opened


def _read_back(stored: StoredRun, plan: Plan, run_id: str, inputs: dict[str, Any],
               resume: str | None, serializer: Serializer, opened: Opened) -> bool:
    """Check a stored run against ``plan`` and read it into ``opened``; True when it
    succeeded with this structure (replay it)."""
    existing = stored.record
    if existing.workflow != plan.workflow:
        raise WorkflowChanged(run_id, [], [], [f"workflow {existing.workflow!r} is now "
                                               f"{plan.workflow!r}"])
    same = existing.fingerprint == plan.fingerprint
    if not same and resume != "force":
        raise WorkflowChanged(run_id, *structure_diff(existing.structure, plan.structure))
    if existing.serializer != serializer.name:
        reader_for(existing.serializer, serializer)  # a pickle: says why it is not read
        raise StoreError(f"run {run_id!r} was stored with serializer "
                         f"{existing.serializer!r}, and this store uses {serializer.name!r}: "
                         f"open the store with serializer={existing.serializer!r} to resume it")
    stored_inputs = decode(serializer, existing.inputs, f"the stored inputs of run {run_id!r}")
    if not isinstance(stored_inputs, dict):
        raise StoreError(f"the stored inputs of run {run_id!r} are damaged: not a mapping")
    if inputs:
        _same_inputs(run_id, inputs, stored_inputs, serializer)
    else:
        for name, rebuild in input_rebuilders(plan).items():
            if name in stored_inputs:
                stored_inputs[name] = _rebuilt(rebuild, stored_inputs[name],
                                               f"the stored run input {name!r}", run_id)
        opened.inputs = stored_inputs  # as stored (typed inputs rebuilt)
    _read_outputs(stored, plan, run_id, serializer, opened)
    for name, records in stored.items.items():
        i = plan.index.get(name)
        if not opened.rolling_back and any(
                r.status in ROLLBACK_STATUSES for r in records.values()):
            opened.rolling_back = True  # a map's items were being undone
        if i is not None and i in plan.maps:
            opened.items[i] = _read_items(records, name, run_id, serializer, plan.fns[i])
    if stored.data is not None:
        keys = decode(serializer, stored.data, f"the stored WorkflowData of run {run_id!r}")
        if not isinstance(keys, dict):
            raise StoreError(f"the stored WorkflowData of run {run_id!r} is damaged: not a "
                             "mapping")
        opened.data = keys
    return existing.status == "succeeded" and same


#: the statuses of node records whose output a resume reads back
_KEPT = frozenset({"succeeded", "cached", COMPENSATING})


def _read_outputs(stored: StoredRun, plan: Plan, run_id: str, serializer: Serializer,
                  opened: Opened) -> None:
    """Decode (and rebuild as annotated) the stored outputs of the nodes ``plan`` still
    has into ``opened.values``; note a rollback under way.

    Runs once per node of a resumed run: the messages of errors are made only when
    one is raised, and each function's rebuild is looked up once.
    """
    index, fns = plan.index, plan.fns
    values = opened.values
    loads = serializer.loads
    rebuilds: dict[int, Callable[[Any], Any] | None] = {}  # id(fn) -> its rebuild
    for name, rec in stored.nodes.items():
        status = rec.status
        if status not in _KEPT:
            if status in ROLLBACK_STATUSES:
                opened.rolling_back = True
            continue
        if status == COMPENSATING:
            opened.rolling_back = True
        i = index.get(name)
        blob = rec.output
        if i is None or blob is None:
            continue
        try:
            value = loads(blob)
        except Exception as error:
            raise unreadable(f"the stored output of node {name!r} of run {run_id!r}",
                             error) from None
        fn = fns[i]
        key = id(fn)  # fns holds fn for the whole loop: its id stays its own
        rebuild = rebuilds.get(key, _ABSENT)
        if rebuild is _ABSENT:
            rebuild = rebuilds[key] = return_rebuilder(fn)
        values[i] = value if rebuild is None else _rebuilt(
            rebuild, value, f"the stored output of node {name!r}", run_id)


def _read_items(records: dict[int, ItemRecord], name: str, run_id: str,
                serializer: Serializer, fn: Callable[..., Any]) -> RecordedItems:
    """A mapped node's item records, outputs decoded (and rebuilt as annotated)."""
    listed = records.get(LISTED)
    succeeded: dict[int, tuple[Any, int, float | None, float | None]] = {}
    ended: dict[int, tuple[int, int, BaseException | None, float | None, float | None]] = {}
    cached: set[int] = set()
    rebuild = return_rebuilder(fn)
    for i, rec in records.items():
        if i == LISTED:
            continue
        if (rec.status == "succeeded" or rec.status == "cached") and rec.output is not None:
            if rec.status == "cached":
                cached.add(i)
            what = f"the stored output of item {i} of node {name!r}"
            value = decode(serializer, rec.output, f"{what} of run {run_id!r}")
            if rebuild is not None:
                value = _rebuilt(rebuild, value, what, run_id)
            succeeded[i] = (value, rec.attempts, rec.started, rec.finished)
        else:
            error = None
            if rec.error is not None:
                type_name, _, message = rec.error.partition(": ")
                error = StoredError(type_name, message, rec.traceback)
            ended[i] = (BY_NAME.get(rec.status, Status.CANCELLED).value, rec.attempts, error,
                        rec.started, rec.finished)
    return RecordedItems(None if listed is None else listed.attempts, succeeded, ended,
                         frozenset(cached))


def _rebuilt(rebuild: Callable[[Any], Any], value: Any, what: str, run_id: str) -> Any:
    try:
        return rebuild(value)
    except Exception as error:
        raise SerializationError(
            f"{what} of run {run_id!r} cannot be rebuilt as its annotation says "
            f"({type(error).__name__}: {error}); the class changed since the run was "
            "stored? Change it back to resume the run, or delete the run") from None


_ABSENT: Any = object()


def _same_inputs(run_id: str, given: dict[str, Any], stored: dict[str, Any],
                 serializer: Serializer) -> None:
    """Refuse inputs other than the stored ones, naming only the keys that differ.

    Compared as stored: a dataclass given again equals the dict it was saved as.
    """
    differ, new, missing = [], [], []
    for key in sorted(given.keys() | stored.keys()):
        before, now = stored.get(key, _ABSENT), given.get(key, _ABSENT)
        if before is _ABSENT:
            new.append(key)
        elif now is _ABSENT:
            missing.append(key)
        else:
            try:
                same = serializer.loads(serializer.dumps(now)) == before
            except SerializationError:
                same = False
            if not same:
                differ.append(key)
    if differ or new or missing:
        parts = [f"{label} {', '.join(map(repr, keys))}" for label, keys in (
            ("different:", differ), ("not given before:", new), ("not given now:", missing))
            if keys]
        raise ValueError(f"run {run_id!r} was started with other inputs ({'; '.join(parts)}); "
                         "resume it without inputs or with the same ones, or use a new run_id")


def _new_record(plan: Plan, run_id: str, inputs: dict[str, Any],
                serializer: Serializer, resources: Collection[str] = ()) -> RunRecord:
    """The record of a run about to start; refuses missing inputs (``resources``: the
    names of the run's resources, which are never stored)."""
    plan.check_inputs(inputs, resources)
    try:
        inputs_blob = serializer.dumps(inputs)
    except SerializationError as error:
        raise SerializationError(f"run inputs cannot be stored: {error}") from None
    structure_json = plan.structure_json
    if not structure_json.isascii():
        _check_text(structure_json, "the workflow's node names")
    now = time.time()
    return RunRecord(run_id, plan.workflow, plan.fingerprint, plan.structure, inputs_blob,
                     "running", serializer.name, now, now, structure_json=structure_json,
                     waits=plan.waits)


def _restore(run: Run, plan: Plan, opened: Opened, data: WorkflowData) -> bytearray:
    """Put a stored run's succeeded nodes and data keys back into ``run`` and ``data``;
    return, per node, 1 for the nodes restored."""
    restored = bytearray(len(plan))
    if opened.data:
        index = plan.index
        for key, value in opened.data.items():
            if key not in index:
                data.set(key, value)
    stored = opened.stored
    if stored is None:
        return restored
    names, nodes, values = plan.names, stored.nodes, opened.values
    for i, recorded in opened.items.items():
        run.restore_items(i, recorded, whole=i in values)
    restore = run.restore
    for i, value in values.items():
        rec = nodes[names[i]]
        restore(i, value, rec.attempts, rec.started, rec.finished)
        restored[i] = 1
    return restored


def _restore_rollback(run: Run, plan: Plan, opened: Opened) -> None:
    """A run that crashed during its rollback: put back how every other recorded node
    ended (what :func:`_restore` did not: failures, skips, compensations)."""
    stored = opened.stored
    assert stored is not None
    index = plan.index
    for name, rec in stored.nodes.items():
        i = index.get(name)
        if i is None or i in opened.values:
            continue
        status = BY_NAME.get(rec.status)
        if rec.status == COMPENSATING and i in plan.maps:
            # a mapped node that did not succeed, undoing its items (see rolling_back)
            status = Status.FAILED if rec.error is not None else Status.CANCELLED
        if status is None or status is Status.SUCCEEDED or not status.final:
            continue  # a succeeded node whose output was not kept: nothing to undo
        error = None
        if rec.error is not None:
            type_name, _, message = rec.error.partition(": ")
            error = StoredError(type_name, message, rec.traceback)
        run.restore_ended(i, status, error)


def result_from_store(plan: Plan, opened: Opened, data: WorkflowData | None = None
                      ) -> RunResult:
    """The :class:`RunResult` of a finished stored run, without running anything."""
    stored = opened.stored
    assert stored is not None
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
        # "compensating": a rollback that did not get to it (it succeeded)
        board[i] = (Status.SUCCEEDED if rec.status == COMPENSATING
                    else BY_NAME.get(rec.status, Status.CANCELLED))
        attempts[i] = rec.attempts
        if rec.started is not None:
            started[i] = rec.started
            timed[i] = 1
        if rec.finished is not None:
            finished[i] = rec.finished
        if i in opened.values:
            values[i] = opened.values[i]
            data.set_at(i, values[i])
        if rec.error is not None:
            type_name, _, message = rec.error.partition(": ")
            errors[i] = StoredError(type_name, message, rec.traceback)
    for key, value in (opened.data or {}).items():
        if key not in plan.index:
            data.set(key, value)
    record = stored.record
    status = RunStatus(record.status) if record.status != "running" else RunStatus.CANCELLED
    items = {i: ItemBoard.from_record(recorded) for i, recorded in opened.items.items()}
    # The stored times are wall-clock times already: a time base of 0.
    return RunResult(plan=plan, run_id=record.run_id, status=status, board=board,
                     values=values, attempts=attempts, started=started, finished=finished,
                     timed=timed, errors=errors, data=data, wall_start=record.started,
                     time_base=0.0,
                     wall_time=(record.finished or record.started) - record.started,
                     restored=bytearray(board[i] == Status.SUCCEEDED for i in range(n)),
                     items=items)
