"""The supervisor: one per run. It owns the run's arrays and routes its messages.

State, per node id, in preallocated arrays (no object per node; see
:class:`~flowrt._engine.state.RunState`):

- ``board``: the status byte (:class:`~flowrt.Status`);
- ``remaining``: dependencies not final yet; ``unsucceeded``/``failed``: how many of
  the final ones ended otherwise than SUCCEEDED (or BYPASSED) / FAILED; with
  ``bypassed`` they give how many succeeded (:meth:`Supervisor.succeeded_deps`), what
  the trigger rules read;
- ``values``: the output slots (the run's :class:`~flowrt.WorkflowData` slab);
- ``attempts``, ``started``, ``finished``, and a sparse dict of errors.

Messages are plain method calls: a node reaching a final status *settles* it, which
sends "dependency finished with status s" to each dependent by decrementing its
counter; a dependent whose counter reaches zero is checked against its trigger rule
and becomes READY (appended to the ready queue) or SKIPPED (settled in turn). "Cancel"
is the run's cancel scope; "retry now" puts a node back on the ready queue.

Runners are tasks that take READY nodes from the queue and run them. The task that
called ``run`` is the first runner. A runner steps each node's coroutine inline; only
when one really suspends does the runner stay with it and start a new runner for the
rest of the queue (when the queue is not empty). Either way the attempt's outcome goes
to the same two places: :meth:`Supervisor.succeed` or :meth:`Supervisor.raised`.
Runners exit when the queue is empty, so there are never more runners than nodes
suspended at once, plus one. A node that cannot get a limit slot waits in that limit's
queue, not in a runner. See docs/decisions/003-runners-not-tasks.md for the
measurements behind this shape.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from contextvars import copy_context
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, cast

import anyio
import anyio.lowlevel

from .. import _backends
from .._logging import is_enabled
from .._types import Event, EventKind, RemoteExecutor, RunStatus, Status, holds
from ..data._workflow_data import MISSING
from ..errors import BranchError, SerializationError, SignalTimeout
from ..executors._base import Remote, run_in_thread
from ..workflow._plan import WAIT
from ..workflow._waits import APPROVAL, TIMER, approved
from . import cache as caching
from . import invoke as actor
from .events import report_hook_error
from .limits import GONE, HANDED, WOKEN, Limit
from .state import clock

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from .._types import Executor, ExecutorChoice, Hook
    from .cache import CacheSpec, NodeCache
    from .mapping import ItemBoard, RecordedItems
    from .shared import Shared
    from .state import Checkpoint, RunState, Waiter
    from .telemetry import RunTelemetry

__all__ = ["BURST_MAX", "INLINE_STREAK", "Supervisor"]

PENDING = Status.PENDING.value
READY = Status.READY.value
RUNNING = Status.RUNNING.value
SUCCEEDED = Status.SUCCEEDED.value
FAILED = Status.FAILED.value
SKIPPED = Status.SKIPPED.value
CANCELLED = Status.CANCELLED.value
# -- branches (design.md, "Control flow") --
BYPASSED = Status.BYPASSED.value
#: what settle() tells the direct successors of a branch that succeeded: SUCCEEDED to
#: those it chose (``Supervisor._taken``), BYPASSED to the others (never on the board)
BRANCHED: Final = 255
# -- waits (issue 14)
WAITING = Status.WAITING.value
# -- caching --
CACHED = Status.CACHED.value
#: Nodes a runner finishes inline in a row before it lets the event loop run once, so
#: that a long stretch of nodes that never suspend neither starves the application nor
#: delays a cancellation (docs/decisions/003-runners-not-tasks.md, "A turn for the loop").
INLINE_STREAK: Final = 1000
#: The most runners started in one go while suspending nodes keep coming
#: (docs/decisions/003-runners-not-tasks.md, "Bursts of runners").
BURST_MAX: Final = 64


def _always() -> bool:
    return True


#: ``Supervisor._taken`` when no branch is being settled (``frozenset()`` makes a new
#: object each call, which the garbage collector then tracks)
_NONE_TAKEN: Final[frozenset[int]] = frozenset()
#: What a run whose plan has no maps (or caches nothing) has instead of the dicts of
#: those features: empty, and a write raises. Small runs started together allocate
#: their per-run objects at once, and each allocation counts towards the collector's
#: next pass: the approval scenario (16 runs of 7 nodes) went from one collection per
#: op to two when the next layer's features added their containers to every run
#: (docs/decisions/031-per-run-allocations.md).
_NO_ENTRIES: Final = cast("dict[Any, Any]", MappingProxyType({}))


class Supervisor:
    """Runs one plan once. Built by :func:`flowrt._engine.run.prepare_run`."""

    def __init__(self, shared: Shared, state: RunState, *, max_concurrency: int | None,
                 limits: Mapping[str, int] | None, fail_fast: bool, timeout: float | None,
                 hooks: tuple[Hook, ...], executor: ExecutorChoice,
                 park: bool = False, cache: NodeCache | None = None,
                 refresh: bool = False) -> None:
        plan = state.plan
        n = len(plan)
        self.shared = shared
        self.state = state
        self.plan = plan
        self.run_id = state.run_id
        # The state's arrays, under the names the hot paths use.
        self.values = state.values
        self.board = state.board
        self.attempts = state.attempts
        self.started = state.started
        self.finished = state.finished
        self.timed = state.timed
        self.errors = state.errors
        # Per node: its dependencies not final yet (a copy of the in-degrees: a memcpy,
        # not a loop), and of the final ones those that did not succeed, those that
        # failed. Bytes when every in-degree fits in one (see Plan.indegree), so that no
        # counter can overflow. What is counted is what did *not* succeed: a success,
        # by far the most common end, then writes one counter per dependent instead of
        # two (decision 027: 5% of the instructions of a 10,000-node run).
        indegree = plan.indegree
        self.remaining: bytearray | list[int]
        self.unsucceeded: bytearray | list[int]
        self.failed: bytearray | list[int]
        if type(indegree) is bytearray:
            self.remaining = bytearray(indegree)
            self.unsucceeded = bytearray(n)
            self.failed = bytearray(n)
        else:
            self.remaining = list(indegree)
            self.unsucceeded = [0] * n
            self.failed = [0] * n
        # -- branches (design.md, "Control flow") --
        #: per node, its dependencies that ended BYPASSED (only a plan with branches
        #: has any: for the others an empty array, nothing allocated per node)
        self.bypassed: bytearray | list[int] = (
            (bytearray(n) if type(indegree) is bytearray else [0] * n)
            if plan.has_branches else [])
        #: per node, 1 for a branch (None when the plan has none: one test per success)
        self._branches: bytearray | None = plan.branch if plan.has_branches else None
        #: the direct successors the branch being settled chose
        self._taken = _NONE_TAKEN
        #: direct successors of a branch that failed with BranchError: they never run
        #: (None until one does)
        self._barred: set[int] | None = None
        #: whether restore() put nodes back (a resumed durable run)
        self._restored_any = False
        self.ready: deque[int] = deque()
        # -- ready nodes in id order (issue 18, decision 027) --
        #: Nodes that become READY at or after ``cursor`` are marked here instead of
        #: queued, and runners take them in id order: ids are insertion order
        #: (topological when every dependency was added first), so a run sweeps its
        #: per-node arrays forwards instead of at random. On a 1M-node random DAG the
        #: FIFO order cost ~30 last-level cache misses per node (decision 027).
        #: ``ready`` keeps what must not wait for the sweep: retries, slots handed back,
        #: nodes behind the cursor. ``marked`` counts the marks.
        self.mark = bytearray(n)
        self.cursor = 0
        self.marked = 0
        self.left = n  # nodes not final yet
        self.fail_fast = fail_fast
        self.timeout = timeout
        self.stopping = False  # no new attempts start: the run is being cancelled or is over
        self.stopped_by_failure = False
        #: stopped by its timeout or its runtime shutting down: the run ends CANCELLED
        self.interrupted = False
        #: stopped because its runtime shut down (see Shared.stop_runs)
        self.shut_down = False
        self._timer_scope: anyio.CancelScope | None = None
        #: what the hooks raised; a list only when there are hooks
        self.hook_errors: list[tuple[Event, BaseException]] | None = [] if hooks else None
        #: mapped node id -> its items (see flowrt._engine.mapping)
        self.items: dict[int, ItemBoard] = {} if plan.maps else _NO_ENTRIES
        #: mapped node id -> what a durable run recorded of its items (set by restore_items)
        self.recorded_items: dict[int, RecordedItems] = {} if plan.maps else _NO_ENTRIES
        #: mapped node id -> the chain of maps it runs in, when an earlier map of the
        #: chain started it (depth-first maps, see flowrt._engine.mapping)
        self.chains: dict[int, Any] = {} if plan.maps else _NO_ENTRIES
        #: how a mapped node's attempt runs its items (flowrt._engine.mapping.run_map,
        #: set by prepare_run when the plan has maps: the map module builds on this one)
        self.map_runner: Callable[[Supervisor, int, Any, dict[str, Any]], Any] | None = None
        self._hooks = hooks
        self._executor = executor
        #: where a durable run records node ends (see flowrt.durable); None otherwise
        self.checkpoint: Checkpoint | None = None
        #: the backend's check (see flowrt._backends), set when the run starts
        self._really_cancelled: Callable[[], bool] = _always
        self._spawner: _backends.Spawner | None = None
        self._scope: anyio.CancelScope | None = None
        self._done: anyio.Event | None = None
        self._cancel_exc: type[BaseException] = BaseException
        self._keep_remote: bytearray | None = None
        # -- waits (issue 14)
        #: where wait nodes wait (set by prepare_run's caller); None: the run has none
        self.waiter: Waiter | None = None
        #: stop the run as WAITING as soon as every node left waits (``park=True``)
        self.park = park
        #: the run stopped so: its wait nodes stay WAITING, the nodes after them PENDING
        self.parked = False
        #: the wait nodes waiting now, and those of them asleep (nothing came yet); None
        #: when the plan has no waits
        self._waits: set[int] | None = None
        self._idle_waits: set[int] | None = None
        if plan.wait_specs:
            self._waits, self._idle_waits = set(), set()

        # Limits: the run's own cap, the runtime's cap, and one per named limit.
        run_cap = Limit("max_concurrency", max_concurrency) if max_concurrency else None
        caps = tuple(c for c in (run_cap, shared.cap) if c is not None)
        own = {name: Limit(name, k) for name, k in (limits or {}).items()}
        named = [own.get(name) or shared.limits.get(name) for name in plan.limit_names]
        #: the limits a node is under, by its plan.limit_of index; the last entry (index
        #: -1, nodes that name no limit) is the caps alone; the one before (index -2) is
        #: no limit at all (a mapped node: its items take the slots)
        self._gates: list[tuple[Limit, ...]] = [
            caps + ((lim,) if lim is not None else ()) for lim in named
        ] + [(), caps]
        self.limited = any(self._gates)
        #: per node, 1 while it holds a slot handed over by Limit.release (not yet RUNNING)
        self._granted = bytearray(n)

        # Logging and events are built only when someone listens.
        self.log = state.log
        # Levels are read once per run: a disabled level costs nothing per call.
        self._log_nodes = is_enabled(self.log, logging.DEBUG)
        self.log_runs = self._log_nodes or is_enabled(self.log, logging.INFO)
        self.log_failures = self.log_runs or is_enabled(self.log, logging.WARNING)
        # OpenTelemetry: None unless the runtime has a tracer or meter provider (decided
        # when it opened: docs/decisions/022-otel-switch.md); then it sees every event.
        telemetry = shared.telemetry
        self.otel: RunTelemetry | None = (
            telemetry.for_run(state) if telemetry is not None else None)
        self.trace = bool(hooks) or self._log_nodes or self.otel is not None

        # -- caching (docs/caching.md) --
        #: where cached nodes are looked up; None when the plan caches nothing
        self._cache = cache if plan.cached is not None else None
        #: True when some node of the run is cached (one test per success otherwise)
        self.caching = self._cache is not None
        #: ``refresh=True``: cached nodes run again and replace their entries
        self._refresh = refresh
        self._cache_specs: dict[int, CacheSpec] = (
            caching.specs_of(plan) if self.caching else _NO_ENTRIES)
        #: node -> the key its output goes under when it succeeds (a miss, running)
        self._cache_keys: dict[int, str] = {} if self.caching else _NO_ENTRIES
        #: when the run started (wall clock), for Runtime.active()
        self.wall_start = 0.0

    # -- running --------------------------------------------------------------------

    async def run(self) -> None:
        """Run every node to a final status, or until cancelled."""
        # The backend is chosen once per run; node by node the calls are direct.
        backend = _backends.current()
        self._really_cancelled = backend.really_cancelled
        self._cancel_exc = anyio.get_cancelled_exc_class()
        self._keep_remote = self._plan_remote_outputs()
        self._done = anyio.Event()
        self.wall_start = time.time()
        self.emit(EventKind.RUN_STARTED, -1)
        plan = self.plan
        board = self.board
        remaining = self.remaining
        # Only roots can be ready now, unless a durable run restored nodes (then any node
        # whose dependencies were all restored may be): a 10,000-node plan whose half a
        # branch bypasses spends no time here on the nodes that never start.
        for i in range(len(plan)) if self._restored_any else plan.roots:
            if board[i] == PENDING and not remaining[i]:
                verdict = self._verdict(i)
                if verdict == READY:
                    board[i] = READY
                    self.mark[i] = 1
                    self.marked += 1
                    if self.trace:
                        self.emit(EventKind.READY, i)
                else:  # dependencies restored from a store may not satisfy the rule
                    self._end_unrun(i, verdict)
        shared = self.shared
        shared.runs.add(self)
        waiter = self.waiter
        if waiter is not None:  # rt.signal finds it by the run id
            shared.add_waiter(self.run_id, waiter)
        try:
            if shared.stopping:  # its runtime is shutting down: the run starts nothing
                self.stopping = self.interrupted = self.shut_down = True
            if not self.stopping:
                with anyio.CancelScope() as scope:
                    self._scope = scope
                    async with backend.open_spawner() as spawner:
                        self._spawner = spawner
                        try:
                            if self.timeout is not None:
                                spawner.spawn(self._timer, self.timeout)
                            await self.runner()
                            if self.left:
                                await self._done.wait()
                            if self._timer_scope is not None:
                                self._timer_scope.cancel()
                        finally:
                            # Over or being cancelled: from here on nothing starts in this
                            # run, and a slot another run frees is not handed to one of
                            # its nodes (a runner spawned now could outlive the spawner).
                            self.stopping = True
        finally:
            shared.runs.discard(self)
            if waiter is not None and shared.waiting.get(self.run_id) is waiter:
                del shared.waiting[self.run_id]
            self._finish_cancelled()
        if self._keep_remote is not None:
            await self._fetch_remote_outputs()

    def status(self) -> RunStatus:
        """How the run ended (once :meth:`run` has returned)."""
        board = self.board
        if self.parked:
            return RunStatus.WAITING
        if self.stopped_by_failure or (board.count(FAILED) and not self.interrupted):
            return RunStatus.FAILED
        if self.interrupted or board.count(CANCELLED):
            return RunStatus.CANCELLED
        return RunStatus.SUCCEEDED

    def _executor_of(self, node: int) -> Executor | str | None:
        """Where sync ``node`` runs: None (a thread), "loop", or an executor object."""
        where: ExecutorChoice = self.plan.options_of(node).executor
        if where is None:
            where = self._executor
        if where is None or where == "thread":
            return None
        if where == "loop":
            return where
        return self.shared.executor_for(where)

    def _plan_remote_outputs(self) -> bytearray | None:
        """Per node, 1 when its output may stay on its executor's cluster.

        That is when the executor can keep outputs (a
        :class:`~flowrt.executors.RemoteExecutor`), no store needs the value as the node
        ends, and every node that depends on it (if any) runs on that same executor.
        None when no node qualifies (the usual case).
        """
        plan = self.plan
        if self.checkpoint is not None:
            return None
        local = (None, "thread", "loop")
        if not plan.remote_executors and self._executor in local:
            return None
        keep = bytearray(len(plan))
        where = [self._executor_of(i) if plan.mode[i] else "async" for i in range(len(plan))]
        remote = {id(ex): isinstance(ex, RemoteExecutor) for ex in where}
        any_kept = False
        cached = plan.cached
        for i, ex in enumerate(where):
            if not remote[id(ex)]:
                continue
            succ = plan.succ_idx[plan.succ_ptr[i] : plan.succ_ptr[i + 1]]
            if cached is not None and (cached[i] or any(cached[s] for s in succ)):
                continue  # a cache keeps, and keys on, values: not handles to them
            if all(where[s] is ex for s in succ):  # sinks too: fetched in one batch
                keep[i] = 1
                any_kept = True
        return keep if any_kept else None

    async def _fetch_remote_outputs(self) -> None:
        """Bring outputs left on a cluster back for the result, in one batch per executor."""
        values = self.values
        by_executor: dict[int, tuple[RemoteExecutor, list[int]]] = {}
        for i in range(len(self.plan)):
            v = values[i]
            if type(v) is Remote:
                by_executor.setdefault(id(v.executor), (v.executor, []))[1].append(i)
        for executor, nodes in by_executor.values():
            handles = [values[i].handle for i in nodes]
            try:
                fetched = await executor.fetch_many(handles)
            except Exception as error:  # the outputs are lost: those nodes failed
                for i in nodes:
                    values[i] = MISSING
                    self.board[i] = FAILED
                    self.errors[i] = error
                self.log.warning("outputs left on the cluster could not be fetched",
                                 nodes=[self.plan.names[i] for i in nodes],
                                 error=f"{type(error).__name__}: {error}")
                continue
            for i, value in zip(nodes, fetched, strict=True):
                values[i] = value
            executor.release(handles)

    async def _timer(self, timeout: float) -> None:
        """The run's ``timeout=``: stop the run when it expires."""
        with anyio.CancelScope() as self._timer_scope:
            await anyio.sleep(timeout)
            if self.left:
                self.interrupt()

    def _finish_cancelled(self) -> None:
        """Every node that is not final now ends CANCELLED (the run was cancelled)."""
        if not self.left:
            return
        board = self.board
        if self.parked:  # what waits stays WAITING, and what comes after it PENDING
            self.ready.clear()
            self.mark[:] = bytes(len(self.mark))  # the id-order marks too
            self.marked = 0
            if self.limited:
                self._leave_queues()
            return
        now = clock()
        for i in range(len(board)):
            if board[i] < SUCCEEDED or board[i] == WAITING:
                was_running = board[i] == RUNNING
                if self.limited and (was_running or self._granted[i]):
                    self._granted[i] = 0
                    self._release(i)
                board[i] = CANCELLED
                if was_running and self.timed[i]:
                    self.finished[i] = now
                self.left -= 1
                if self.trace:
                    self.emit(EventKind.CANCELLED, i)
                if self.checkpoint is not None:
                    self.checkpoint.ended(i, CANCELLED, None)
        self.ready.clear()
        self.mark[:] = bytes(len(self.mark))  # in place: a runner may hold it
        self.marked = 0
        if self.limited:
            self._leave_queues()

    def stop(self) -> None:
        """Cancel the run: no new attempt starts, running ones are cancelled."""
        if self.stopping:
            return
        self.stopping = True
        if self._scope is not None:
            self._scope.cancel()
        if self._spawner is not None:
            self._spawner.cancel()

    def interrupt(self, shutdown: bool = False) -> None:
        """Stop the run from outside its nodes (its timeout, a ``shutdown`` of its
        runtime): it ends CANCELLED."""
        if not self.stopping:
            self.interrupted = True
            self.shut_down = shutdown
            self.stop()

    def wake(self, node: int, by: Supervisor, gate: Limit) -> int:
        """A slot of ``gate`` is free for ``node``, waiting in its queue.

        A node under ``gate`` alone is handed the slot (HANDED: it will not ask again);
        another is put back on the ready queue to take all its slots (WOKEN); a node that
        no longer waits, or whose run is over or being cancelled, is GONE. ``by`` is the
        run whose node freed the slot: when that is this run, its runner goes on to take
        the node; another run needs a runner.
        """
        if self.board[node] != READY or self.stopping:
            return GONE
        gates = self._gates[self.plan.limit_of[node]]
        handed = len(gates) == 1 and gates[0] is gate
        if handed:
            self._granted[node] = 1
        self.ready.append(node)
        if by is not self and self._spawner is not None:
            self._spawner.spawn(self.runner)
        return HANDED if handed else WOKEN

    def _spawn_runners(self) -> None:
        """Start runners for the ready queue while this one stays with a suspended node.

        How many: up to ``_burst``, which doubles (to BURST_MAX) while suspending nodes
        keep coming and falls back to 1 when a runner finds nothing to do. Runners
        started in one go begin in the same event loop iteration, so a wave of I/O nodes
        does not cost one loop iteration per node; nodes that finish inline need only
        one runner.
        """
        want = min(len(self.ready) + self.marked, self._burst) - self._pending
        if want > 0:
            self._pending += want
            spawn = self._spawner.spawn  # type: ignore[union-attr]  # set while runners run
            for _ in range(want):
                spawn(self.runner, True)
        if self._burst < BURST_MAX:
            self._burst *= 2

    _pending = 0  # runners spawned that have not begun yet
    _burst = 1

    async def runner(self, spawned: bool = False) -> None:
        """Take READY nodes from the queue and run them until the queue is empty.

        ``spawned``: started by :meth:`_spawn_runners` (which counts it as pending).
        """
        if spawned:
            self._pending -= 1
            if not self.ready and not self.marked:
                self._burst = 1  # started for nothing: stop growing the bursts
                return
        plan = self.plan
        ready = self.ready
        board = self.board
        values = self.values
        fns = plan.fns
        mode = plan.mode
        special = plan.special
        slow = plan.slow
        pred_ptr = plan.pred_ptr
        pred_idx = plan.pred_idx
        nargs = plan.nargs
        kwargs = plan.kwargs
        attempts = self.attempts
        started = self.started
        timed = self.timed
        limited = self.limited
        mark = self.mark
        cached = plan.cached if self.caching else None
        otel = self.otel if self.otel is not None and self.otel.tracer is not None else None
        # A plain run -- no store, limits, events or cache, no branch -- settles a node
        # that succeeds inline right here: succeed() and settle()'s success path without
        # their calls and checks (decision 027: 1M random DAG, CPU us per node, A/B in
        # one process).
        trace = self.trace  # set once per run
        plain = (self.checkpoint is None and not limited and not trace
                 and not self.caching and self._branches is None)
        finished = self.finished
        succ_ptr = plan.succ_ptr
        succ_idx = plan.succ_idx
        trigger = plan.trigger
        remaining = self.remaining
        unsucceeded = self.unsucceeded
        streak = 0  # nodes finished inline since this runner last let the loop run
        while ready or self.marked:
            if self.stopping:
                return
            streak += 1
            if streak > INLINE_STREAK:
                streak = 0
                await anyio.lowlevel.checkpoint()
                if self.stopping or not (ready or self.marked):
                    break
            if ready:
                node = ready.popleft()
            else:  # the next marked node in id order; usually the very next id
                node = self.cursor
                if not mark[node]:
                    node = mark.find(1, node)
                mark[node] = 0
                self.marked -= 1
                self.cursor = node + 1
            called_apart = slow[node]  # more to it than a call: see Plan.slow
            if called_apart:
                if special[node] == WAIT:  # a wait node: it waits, holding no slot
                    self._begin_wait(node)
                    continue
                if cached is not None and cached[node] and self._from_cache(node):
                    continue  # read from the cache (or its key failed the node)
            if limited and not self._acquire(node):
                continue
            # start the attempt
            board[node] = RUNNING
            attempt = attempts[node] = attempts[node] + 1
            if timed[node] and attempt == 1:  # a node's time runs from its first attempt
                started[node] = clock()
            if trace:
                self.emit(EventKind.STARTED, node)
            k = pred_ptr[node]
            n_args = nargs[node]
            # Tuples written out for up to three arguments: a comprehension costs a call
            # (66 ns for two instead of 306, timeit; decision 027).
            if n_args == 0:
                args: Any = ()
            elif n_args == 1:
                args = (values[pred_idx[k]],)
            elif n_args == 2:
                args = (values[pred_idx[k]], values[pred_idx[k + 1]])
            elif n_args == 3:
                args = (values[pred_idx[k]], values[pred_idx[k + 1]], values[pred_idx[k + 2]])
            else:
                args = [values[j] for j in pred_idx[k : k + n_args]]
            try:
                if not called_apart:
                    coro = fns[node](*args)
                elif special[node] or mode[node]:
                    coro = self._attempt(node, args, kwargs[node])
                elif (bound := kwargs[node]) is None:  # a cached node
                    coro = fns[node](*args)
                else:
                    coro = fns[node](*args, **actor.call_kwargs(self.state, node, bound))
            except BaseException as error:  # the call itself failed (bad arguments...)
                if self.raised(node, error):
                    raise
                continue
            # Each node runs in its own copy of the context variables, as an asyncio
            # task would: what one node sets is not seen by others, nor by the caller.
            context = copy_context()
            if otel is not None:  # the node's code runs with its span current
                context.run(otel.enter_node, node)
            # Step the attempt inline: most finish right here. (One try, no nesting: a
            # nested one would pass every node's StopIteration through two handlers.)
            try:
                yielded = context.run(coro.send, None)
            except StopIteration as stop:
                if not plain:
                    self.succeed(node, stop.value)
                    continue
                # succeed() and settle(node, SUCCEEDED), inline (see them for the logic)
                if timed[node]:
                    finished[node] = clock()
                values[node] = stop.value
                board[node] = SUCCEEDED
                self.left -= 1
                a = succ_ptr[node]
                b = succ_ptr[node + 1]
                if a != b:
                    for s in succ_idx[a:b]:
                        left = remaining[s] - 1
                        remaining[s] = left
                        if left or board[s] != PENDING:
                            continue
                        if not trigger[s] and not unsucceeded[s]:  # ALL_SUCCESS holds
                            board[s] = READY
                            if s >= self.cursor:
                                mark[s] = 1
                                self.marked += 1
                            else:
                                ready.append(s)
                        else:  # another rule decides
                            self._deps_final(s)
                if not self.left and self._done is not None:
                    self._done.set()
                continue
            except AttributeError as error:
                if hasattr(coro, "send"):  # raised by the node
                    if self.raised(node, error):
                        raise
                    continue
                # A function marked async that returned another kind of awaitable:
                # awaited below, like an attempt that suspended.
                coro = actor.awaiting(coro)
                yielded = actor.NOT_STARTED
            except BaseException as error:
                if self.raised(node, error):
                    raise
                continue
            # The attempt really suspends: this runner stays with it; another takes
            # the rest of the queue.
            if (ready or self.marked) and not self.stopping:
                self._spawn_runners()
            streak = 0
            resume = actor.Resume(coro, yielded, context)
            # What the node yielded is Resume's now: a future the node waits on holds,
            # once it fails, an error whose traceback holds this frame; kept in a local
            # here too, it would make a cycle and leave the failed run for the garbage
            # collector (docs/decisions/031-per-run-allocations.md).
            yielded = None
            try:
                value = await resume
            except BaseException as error:
                if self.raised(node, error):
                    raise
                continue
            self.succeed(node, value)
        if self._waits and self.park and not self.stopping:
            self._maybe_park()

    def _attempt(self, node: int, args: Any, bound: Any) -> Any:
        """The coroutine of one attempt of a node that is not a plain async call."""
        plan = self.plan
        fn = plan.fns[node]
        kw = actor.call_kwargs(self.state, node, bound) if bound is not None else None
        if plan.trigger[node]:  # it may run without some dependency's output
            args, kw = actor.fill_missing(fn, args, kw)
        if plan.maps and node in plan.maps:
            assert self.map_runner is not None  # set by prepare_run for plans with maps
            return self.map_runner(self, node, args, kw or {})
        return self._call(node, fn, args, kw)

    def _call(self, node: int, fn: Callable[..., Any], args: Any,
              kw: dict[str, Any] | None) -> Any:
        """The coroutine calling ``fn(*args, **kw)`` as ``node``'s options say (its
        executor, its timeout)."""
        plan = self.plan
        if plan.mode[node]:
            where = self._executor_of(node)
            if self.otel is not None and where is not None and where != "loop":
                fn = self.otel.carry(node, fn)  # the span's context goes with the call
            if where is None:
                coro = run_in_thread(self.shared.thread_limiter(), fn, args, kw)
            elif isinstance(where, str):  # "loop"
                coro = actor.in_loop(fn, args, kw)
            else:
                keep = self._keep_remote
                if keep is not None and keep[node]:  # where is a RemoteExecutor
                    coro = actor.keeping_output(cast("RemoteExecutor", where), fn, args, kw)
                else:
                    coro = actor.in_executor(where, fn, args, kw)
        else:
            coro = fn(*args, **kw) if kw else fn(*args)
        timeout = plan.options_of(node).timeout
        if timeout is not None:
            coro = actor.with_timeout(timeout, coro)
        if plan.branch[node]:  # branches: the attempt returns the names chosen
            coro = actor.branching(plan, node, coro)
        return coro

    # -- messages -------------------------------------------------------------------

    def succeed(self, node: int, value: Any) -> None:
        """The attempt returned ``value``: the node SUCCEEDED.

        (A plain run's runner does this and settle()'s success case inline: a change to
        what a success does goes there too.)
        """
        if self.timed[node]:
            self.finished[node] = clock()
        if self.checkpoint is not None:
            try:
                self.checkpoint.succeeded(node, value)
            except SerializationError as error:  # the store cannot keep this output
                self.attempt_failed(node, error, retry=False)
                return
        if self.limited and self.board[node] == RUNNING:
            self._release(node)
        self.values[node] = value
        self.board[node] = SUCCEEDED
        if self.caching:
            self._to_cache(node, value)
        if self.trace:
            self.emit(EventKind.SUCCEEDED, node)
        if self._branches is not None and self._branches[node]:
            self._settle_branch(node, value)
            return
        self.settle(node, SUCCEEDED)

    def raised(self, node: int, error: BaseException) -> bool:
        """The attempt raised ``error``: True when that is the run's cancellation.

        Then the node ends CANCELLED and the caller re-raises ``error``; otherwise the
        attempt failed (retried or FAILED). A cancellation is the cancel exception of the
        running backend, or a group of nothing else (a node's own nursery or task group
        cancelled with it), delivered to this task: on asyncio a node may raise
        ``CancelledError`` by itself (it awaited something that was cancelled), and
        that is a failure like any other exception.
        """
        cancel = self._cancel_exc
        if (isinstance(error, cancel) or (
                isinstance(error, BaseExceptionGroup) and error.split(cancel)[1] is None)
                ) and (self.stopping or self._really_cancelled()):
            self._cancelled(node)
            return True
        self.attempt_failed(node, error)
        return False

    def attempt_failed(self, node: int, error: BaseException, retry: bool = True) -> None:
        """The attempt raised ``error``: retry the node, or it FAILED.

        KeyboardInterrupt and SystemExit are not node failures: they stop the run. A
        RUNNING node gives its limit slots back (one that failed before it ran -- its
        cache key could not be made -- holds none).
        """
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise error
        plan = self.plan
        if self.limited and self.board[node] == RUNNING:
            self._release(node)
        if isinstance(error, BranchError):  # branches: a bug to fix, not a hiccup
            retry = False
            if self._barred is None:
                self._barred = set()
            self._barred.update(plan.succ_idx[plan.succ_ptr[node] : plan.succ_ptr[node + 1]])
        attempt = self.attempts[node]
        if retry and attempt < plan.attempts[node] and not self.stopping:
            policy = plan.options_of(node).retry
            assert policy is not None
            if policy.retries(error):
                self.board[node] = READY
                if self.trace:
                    self.emit(EventKind.RETRYING, node, error)
                delay = policy.backoff(attempt)
                if delay > 0:
                    self._spawner.spawn(self._retry_later, node, delay)  # type: ignore[union-attr]
                else:
                    self.ready.append(node)
                return
        self.errors[node] = error
        self.board[node] = FAILED
        if self.timed[node]:
            self.finished[node] = clock()
        if self.log_failures:
            self.log.warning("node failed", node=plan.names[node], attempt=attempt,
                             error=f"{type(error).__name__}: {error}")
        if self.trace:
            self.emit(EventKind.FAILED, node, error)
        if self.checkpoint is not None:
            self.checkpoint.ended(node, FAILED, error)
        if self.fail_fast:
            self.stopped_by_failure = True
            self.settle(node, FAILED)
            self.stop()
            return
        self.settle(node, FAILED)

    async def _retry_later(self, node: int, delay: float) -> None:
        await anyio.sleep(delay)
        if self.board[node] == READY and not self.stopping:
            self.ready.append(node)
            await self.runner()

    def _cancelled(self, node: int) -> None:
        self.stopping = True  # the run is being cancelled: start nothing new
        if self.limited and self.board[node] == RUNNING:
            self._release(node)
        self.board[node] = CANCELLED
        if self.timed[node]:
            self.finished[node] = clock()
        if self.trace:
            self.emit(EventKind.CANCELLED, node)
        if self.checkpoint is not None:
            self.checkpoint.ended(node, CANCELLED, None)
        self.left -= 1
        if not self.left and self._done is not None:
            self._done.set()

    # -- waits (issue 14) -------------------------------------------------------------

    def _begin_wait(self, node: int) -> None:
        """READY wait ``node`` begins waiting for its signal or its time, in a task."""
        self.board[node] = WAITING
        self.attempts[node] = 1
        if self.timed[node]:
            self.started[node] = clock()
        assert self._waits is not None, "a plan with wait nodes has the sets"
        self._waits.add(node)
        if self.trace:
            self.emit(EventKind.WAITING, node)
        self._spawner.spawn(self._wait, node)  # type: ignore[union-attr]

    async def _wait(self, node: int) -> None:
        plan = self.plan
        spec = plan.wait_specs[node]
        waiter, waits, idle = self.waiter, self._waits, self._idle_waits
        assert waiter is not None, "prepare_run's caller gives a run with waits a waiter"
        assert waits is not None and idle is not None
        try:
            due = waiter.begin(node, spec)
            if spec.kind == TIMER:
                clock_ = self.shared.clock
                if due is not None and clock_.now() < due:
                    self._wait_idle(node)
                    await clock_.sleep_until(due)
                value = None
            else:
                got, value = await waiter.signal(node, due, lambda: self._wait_idle(node))
                if not got:
                    assert spec.timeout is not None
                    raise SignalTimeout(plan.names[node], spec.timeout)
                if spec.kind == APPROVAL:
                    value = approved(value, plan.names[node])
        except BaseException as error:
            waits.discard(node)
            idle.discard(node)
            if self.parked:  # stopped to park: the node still waits, in the store
                raise
            if self.raised(node, error):
                raise
        else:
            waits.discard(node)
            idle.discard(node)
            if self.board[node] != WAITING:  # the run ended meanwhile
                return
            self.succeed(node, value)
        if (self.ready or self.marked) and not self.stopping:
            await self.runner()
        elif waits and self.park and not self.stopping:
            self._maybe_park()

    def _wait_idle(self, node: int) -> None:
        """Wait ``node`` found nothing and sleeps: park the run if every node left does."""
        assert self._idle_waits is not None, "a plan with wait nodes has the sets"
        self._idle_waits.add(node)
        if self.park and not self.stopping:
            self._maybe_park()

    def _maybe_park(self) -> None:
        """Park the run (``park=True``) when every node left waits, asleep: nothing is
        READY (queued, in a limit's queue, between retries) or RUNNING."""
        assert self._waits is not None and self._idle_waits is not None
        if len(self._idle_waits) != len(self._waits):
            return
        board = self.board
        if board.count(RUNNING) or board.count(READY):
            return
        self.parked = True
        self.stop()

    def settle(self, node: int, status: int) -> None:
        """``node`` reached final ``status``: tell its dependents, transitively."""
        plan = self.plan
        succ_ptr = plan.succ_ptr
        if succ_ptr[node] == succ_ptr[node + 1]:  # no dependents: nothing to tell
            self.left -= 1
            if not self.left and self._done is not None:
                self._done.set()
            return
        succ_idx = plan.succ_idx
        trigger = plan.trigger
        remaining = self.remaining
        board = self.board
        unsucceeded = self.unsucceeded
        bypassed = self.bypassed  # empty unless the plan has branches
        trace = self.trace
        checkpoint = self.checkpoint
        left_in_run = self.left
        # branches: with no events and no store to tell node by node, bypass in sweeps
        sweep = not trace and checkpoint is None
        # Final nodes whose dependents are still to be told, and how they ended; the
        # BYPASSED ones wait apart, for the bypass cascade's own loop (issue 13's bar:
        # at most 0.3 us per bypassed node; perf/bench_branch.py).
        stack = [node]
        statuses = [status]
        passed: list[int] = []
        if status == BYPASSED:
            passed, stack = stack, passed
        try:
            while True:
                # -- branches: the bypass cascade --
                while passed:
                    node = passed.pop()
                    left_in_run -= 1
                    told: Sequence[int]
                    if sweep:
                        # Below the node, the region only it leads to is bypassed in one
                        # sweep; only the edges leaving the region are told one by one.
                        region, told = plan.bypass_region(node)
                        for s in region:
                            board[s] = BYPASSED
                        left_in_run -= len(region)
                    else:
                        told = succ_idx[succ_ptr[node] : succ_ptr[node + 1]]
                    for s in told:
                        bypassed[s] += 1
                        left = remaining[s] - 1
                        remaining[s] = left
                        if left or board[s]:  # not final yet, or not PENDING (0)
                            continue
                        if not trigger[s] and not unsucceeded[s]:
                            # ALL_SUCCESS, every dependency succeeded or was bypassed: no
                            # failure cascade reached it
                            board[s] = BYPASSED
                            if trace:
                                self.emit(EventKind.BYPASSED, s)
                            if checkpoint is not None:
                                checkpoint.ended(s, BYPASSED, None)
                            passed.append(s)
                            continue
                        verdict = self._verdict(s)
                        if verdict == READY:
                            board[s] = READY
                            if s >= self.cursor:
                                self.mark[s] = 1
                                self.marked += 1
                            else:
                                self.ready.append(s)
                            if trace:
                                self.emit(EventKind.READY, s)
                            continue
                        board[s] = verdict
                        if trace:
                            self.emit(EventKind.BYPASSED if verdict == BYPASSED
                                      else EventKind.SKIPPED, s)
                        if checkpoint is not None:
                            checkpoint.ended(s, verdict, None)
                        if verdict == BYPASSED:
                            passed.append(s)
                        else:
                            stack.append(s)
                            statuses.append(verdict)
                if not stack:
                    break
                node = stack.pop()
                status = statuses.pop()
                left_in_run -= 1
                for s in succ_idx[succ_ptr[node] : succ_ptr[node + 1]]:
                    if status == SUCCEEDED:
                        pass  # counted by remaining alone (see unsucceeded)
                    elif status == BRANCHED:  # branches: the edges of a branch
                        if s not in self._taken:
                            bypassed[s] += 1
                    else:  # FAILED, SKIPPED
                        unsucceeded[s] += 1
                        if status == FAILED:
                            self.failed[s] += 1
                    left = remaining[s] - 1
                    remaining[s] = left
                    if left or board[s] != PENDING:
                        continue
                    # The default rule is decided here (a direct successor of a branch
                    # that failed with BranchError has a failed dependency: SKIPPED);
                    # the other rules by _verdict.
                    if not trigger[s]:
                        if unsucceeded[s]:
                            verdict = SKIPPED
                        elif bypassed and bypassed[s]:
                            verdict = BYPASSED
                        else:
                            verdict = READY
                    else:
                        verdict = self._verdict(s)
                    if verdict == READY:
                        board[s] = READY
                        if s >= self.cursor:  # taken in id order (see mark)
                            self.mark[s] = 1
                            self.marked += 1
                        else:
                            self.ready.append(s)
                        if trace:
                            self.emit(EventKind.READY, s)
                        continue
                    board[s] = verdict
                    if trace:
                        self.emit(EventKind.SKIPPED if verdict == SKIPPED
                                  else EventKind.BYPASSED, s)
                    if checkpoint is not None:
                        checkpoint.ended(s, verdict, None)
                    if verdict == BYPASSED:
                        passed.append(s)
                    else:
                        stack.append(s)
                        statuses.append(verdict)
        finally:
            self.left = left_in_run
        if not left_in_run and self._done is not None:
            self._done.set()

    def _deps_final(self, node: int) -> None:
        """Every dependency of PENDING ``node`` is final: it becomes READY, or ends
        SKIPPED or BYPASSED and its dependents are told (what settle() does for it)."""
        verdict = self._verdict(node)
        self.board[node] = verdict
        if verdict == READY:
            if node >= self.cursor:
                self.mark[node] = 1
                self.marked += 1
            else:
                self.ready.append(node)
            if self.trace:
                self.emit(EventKind.READY, node)
            return
        if self.trace:
            self.emit(EventKind.SKIPPED if verdict == SKIPPED else EventKind.BYPASSED, node)
        if self.checkpoint is not None:
            self.checkpoint.ended(node, verdict, None)
        self.settle(node, verdict)

    def _verdict(self, node: int) -> int:
        """READY, SKIPPED or BYPASSED: how ``node`` goes on, all of its dependencies
        being final.

        Its trigger rule decides, over the dependencies that were not BYPASSED; but a
        node whose dependencies are all BYPASSED, or any of them under ``ALL_SUCCESS``
        (when none failed or was skipped: a failure cascade wins), is BYPASSED itself,
        and a direct successor of a branch that failed with BranchError is SKIPPED.
        """
        plan = self.plan
        deps = plan.pred_ptr[node + 1] - plan.pred_ptr[node]
        if not deps:
            return READY
        trigger = plan.trigger[node]
        succeeded = self.succeeded_deps(node)
        # -- branches (design.md, "Control flow"; issue 13, "Precisely") --
        if self._barred and node in self._barred:
            return SKIPPED
        bypassed = self.bypassed[node] if self.bypassed else 0
        if bypassed:
            if bypassed == deps:
                return BYPASSED
            if not trigger:  # ALL_SUCCESS
                return BYPASSED if succeeded + bypassed == deps else SKIPPED
            deps -= bypassed
        return READY if holds(trigger, deps, succeeded, self.failed[node]) else SKIPPED

    def succeeded_deps(self, node: int) -> int:
        """How many of ``node``'s dependencies succeeded so far (edges, duplicates
        counted): the final ones that neither did not succeed nor were bypassed."""
        final = self.plan.indegree[node] - self.remaining[node] - self.unsucceeded[node]
        return final - self.bypassed[node] if self.bypassed else final

    def _end_unrun(self, node: int, status: int) -> None:
        """``node`` ends SKIPPED or BYPASSED without running (at the start of a run)."""
        self.board[node] = status
        if self.trace:
            self.emit(EventKind.SKIPPED if status == SKIPPED else EventKind.BYPASSED, node)
        if self.checkpoint is not None:
            self.checkpoint.ended(node, status, None)
        self.settle(node, status)

    # -- branches (design.md, "Control flow") -------------------------------------------

    def _settle_branch(self, node: int, chosen: Any) -> None:
        """Branch ``node`` succeeded choosing ``chosen`` (a name or a list of names, as
        :func:`~flowrt._engine.invoke.branching` made it): its chosen direct successors
        see a succeeded dependency, the others a bypassed one."""
        self._taken = self._ids_of(chosen)
        try:
            self.settle(node, BRANCHED)
        finally:
            self._taken = _NONE_TAKEN

    def _ids_of(self, chosen: Any) -> frozenset[int]:
        """The ids of the nodes named in ``chosen`` (a name or a list of names)."""
        index = self.plan.index
        # anything but a name or a list of names: a value stored by another workflow
        names = [chosen] if isinstance(chosen, str) else (
            chosen if isinstance(chosen, list) else ())
        return frozenset(i for i in map(index.get, names) if i is not None)

    def restore(self, node: int, value: Any, attempts: int, started: float | None,
                finished: float | None) -> None:
        """Before the run starts: ``node`` already SUCCEEDED (a resumed durable run).

        ``started``/``finished`` are wall-clock times. The node is not run again; its
        dependents see a succeeded dependency.
        """
        self._restored_any = True
        self.board[node] = SUCCEEDED
        self.values[node] = value
        self.attempts[node] = attempts
        base = self.state.time_base
        if started is not None:
            self.started[node] = started - base
            self.timed[node] = 1
        if finished is not None:
            self.finished[node] = finished - base
        self.left -= 1
        plan = self.plan
        # A branch's recorded choice is applied again, never asked again.
        taken = self._ids_of(value) if plan.branch[node] else None
        for s in plan.succ_idx[plan.succ_ptr[node] : plan.succ_ptr[node + 1]]:
            self.remaining[s] -= 1
            if taken is not None and s not in taken:
                self.bypassed[s] += 1

    # -- saga compensation: resuming a rollback ------------------------------------

    def restore_ended(self, node: int, status: int, error: BaseException | None) -> None:
        """Before a rollback-only run: ``node`` ended with final ``status`` earlier."""
        self.board[node] = status
        if error is not None:
            self.errors[node] = error
        self.left -= 1

    def finish_unrun(self) -> None:
        """A rollback-only run: the nodes not restored will not run; they end CANCELLED."""
        self._finish_cancelled()
        self.left = 0
    # -- caching --------------------------------------------------------------------

    def _from_cache(self, node: int) -> bool:
        """Before ``node`` starts: True when it is over -- read from the cache (CACHED),
        or FAILED because its arguments cannot be hashed; False to run it."""
        if node in self._cache_keys:
            # It missed already: it waited for a limit slot (and may hold one now) or
            # is retried; its arguments, so its key, are the same.
            return False
        if self.plan.maps and node in self.plan.maps:
            return False  # a mapped node's items are cached, each on its own
        name = self.plan.names[node]
        try:
            key = self._cache_key(node)
        except Exception as error:  # CacheKeyError, or a Cache(key=...) that raised
            self.attempts[node] += 1  # READY still: it holds no slot to give back
            self.attempt_failed(node, error, retry=False)
            return True
        cache = self._cache
        assert cache is not None
        if not self._refresh:
            try:
                hit, value = cache.get(key, self.plan.fns[node])
            except Exception as error:  # an unreadable entry: run the node instead
                self.log.warning("cache entry could not be read; running the node",
                                 node=name, error=f"{type(error).__name__}: {error}")
                hit, value = False, None
            if hit:
                if self.checkpoint is not None:
                    try:
                        self.checkpoint.succeeded(node, value, cached=True)
                    except SerializationError:  # the run's store cannot keep it: run it
                        self._cache_keys[node] = key
                        return False
                self.values[node] = value
                self.board[node] = CACHED
                if self.trace:
                    self.emit(EventKind.CACHED, node)
                if self._branches is not None and self._branches[node]:
                    self._settle_branch(node, value)  # its stored choice, applied again
                else:
                    self.settle(node, SUCCEEDED)  # its dependents see a success
                return True
        self._cache_keys[node] = key
        return False

    def _cache_key(self, node: int) -> str:
        """The cache key of ``node``'s call now (raises CacheKeyError)."""
        spec = self._cache_specs.get(node)
        if spec is None:
            spec = self._cache_specs[node] = caching.cache_spec(self.plan, node)
        return caching.key_of(self.plan.names[node], spec,
                              caching.arguments(self.state, node, spec))

    def _to_cache(self, node: int, value: Any) -> None:
        """``node`` succeeded: keep its output under the key it missed (if cached)."""
        key = self._cache_keys.pop(node, None)
        if key is None:
            return
        cache = self.plan.options_of(node).cache
        assert cache is not None and self._cache is not None
        try:
            self._cache.put(key, value, cache.ttl)
        except Exception as error:  # the node succeeded all the same
            self.log.warning("node output not cached", node=self.plan.names[node],
                             error=f"{type(error).__name__}: {error}")

    # -- limits ---------------------------------------------------------------------

    def _acquire(self, node: int) -> bool:
        """Take a slot of every limit ``node`` is under, or wait in the first full one."""
        if self._granted[node]:  # handed its only slot by the node that freed it
            self._granted[node] = 0
            return True
        gates = self._gates[self.plan.limit_of[node]]
        for k, gate in enumerate(gates):
            if gate.in_use < gate.capacity:
                gate.in_use += 1
            else:
                gate.waiters.append((self, node))
                for taken in gates[:k]:
                    taken.release(self)
                return False
        return True

    def _release(self, node: int) -> None:
        """Give back the slots a RUNNING ``node`` holds (what _acquire took)."""
        for gate in self._gates[self.plan.limit_of[node]]:
            gate.release(self)

    def _leave_queues(self) -> None:
        """Take this run's waiting nodes out of the limits' queues (the run is over).

        They would be passed over anyway (``wake`` says GONE); a runtime's shared limit
        would keep this run alive until then.
        """
        seen: set[int] = set()
        for gates in self._gates:
            for gate in gates:
                if id(gate) in seen:
                    continue
                seen.add(id(gate))
                waiters = gate.waiters
                if any(sup is self for sup, _ in waiters):
                    kept = [w for w in waiters if w[0] is not self]
                    waiters.clear()
                    waiters.extend(kept)

    # -- events ---------------------------------------------------------------------

    def pass_on(self, event: Event) -> None:
        """Pass ``event`` to the hooks (emit's, or one the caller made: an item's)."""
        for hook in self._hooks:
            try:
                hook(event)
            except Exception as hook_error:  # a bug in a hook must not break the run
                errors = self.hook_errors
                assert errors is not None, "a run with hooks has the list"
                errors.append((event, hook_error))
                report_hook_error(hook, event, hook_error, len(errors) == 1)

    def emit(self, kind: EventKind, node: int, error: BaseException | None = None,
             status: str | None = None) -> None:
        """Log ``kind`` and pass it to the hooks (callers check ``self.trace`` first)."""
        if self.otel is not None:
            self.otel.event(self, kind, node, error)
        name = self.plan.names[node] if node >= 0 else None
        attempt = self.attempts[node] if node >= 0 else 0
        if node >= 0 and self._log_nodes:
            self.log.debug(str(kind), node=name, attempt=attempt,
                           error=None if error is None else repr(error))
        if self._hooks:
            self.pass_on(Event(kind, self.plan.workflow, self.run_id, name, attempt,
                               time.time(), error, status))
