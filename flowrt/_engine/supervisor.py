"""The supervisor: one per run. It owns the run's arrays and routes its messages.

State, per node id, in preallocated arrays (no object per node):

- ``board``: the status byte (:class:`~flowrt.Status`);
- ``remaining``: dependencies not final yet; ``succeeded``/``failed``: how many of the
  final ones ended so (what the trigger rules read);
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
rest of the queue (when the queue is not empty). Runners exit when the queue is empty,
so there are never more runners than nodes suspended at once, plus one. A node that
cannot get a limit slot waits in that limit's queue, not in a runner. See
docs/decisions/003-runners-not-tasks.md for the measurements behind this shape.
"""

from __future__ import annotations

import logging
import time
from array import array
from collections import deque
from collections.abc import Mapping
from contextvars import copy_context
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
import sniffio

from .._logging import is_enabled, logger
from .._types import Event, EventKind, Hook, Status, holds
from ..data._workflow_data import MISSING, WorkflowData
from ..errors import SerializationError
from ..executors._base import Remote, run_in_thread
from . import invoke as actor
from .events import report_hook_error
from .limits import GONE, HANDED, WOKEN, Limit
from .spawn import open_spawner

if TYPE_CHECKING:
    from ..runtime import Runtime
    from ..workflow import Plan

__all__ = ["Supervisor"]

PENDING = Status.PENDING.value
READY = Status.READY.value
RUNNING = Status.RUNNING.value
SUCCEEDED = Status.SUCCEEDED.value
FAILED = Status.FAILED.value
SKIPPED = Status.SKIPPED.value
CANCELLED = Status.CANCELLED.value

_clock = time.perf_counter


def _timed_nodes(n: int, metrics: bool | float) -> bytearray:
    if metrics is True:
        return bytearray(b"\x01") * n
    if metrics is False or n == 0:
        return bytearray(n)
    rate = float(metrics)
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"metrics must be True, False or a sampling rate in (0, 1], "
                         f"got {metrics!r}")
    every = max(1, round(1.0 / rate))
    timed = bytearray(n)
    timed[::every] = b"\x01" * len(range(0, n, every))
    return timed


class Supervisor:
    """Runs one plan once. Built and driven by :meth:`flowrt.Runtime.run`."""

    def __init__(
        self,
        runtime: Runtime,
        plan: Plan,
        run_id: str,
        inputs: Mapping[str, Any],
        data: WorkflowData,
        *,
        max_concurrency: int | None,
        limits: Mapping[str, int] | None,
        fail_fast: bool,
        hooks: tuple[Hook, ...],
        executor: Any,
        metrics: bool | float,
    ) -> None:
        n = len(plan)
        self.runtime = runtime
        self.plan = plan
        self.run_id = run_id
        self.inputs = inputs
        self.data = data
        self.values = data._values
        self.board = data.statuses.raw
        self.remaining = plan.indegree.copy()  # a memcpy, not a loop
        self.succeeded = [0] * n
        self.failed = [0] * n
        self.attempts = [0] * n
        self.started = array("d", bytes(8 * n))
        self.finished = array("d", bytes(8 * n))
        self.errors: dict[int, BaseException] = {}
        self.ready: deque[int] = deque()
        self.left = n  # nodes not final yet
        self.fail_fast = fail_fast
        self.stopping = False  # no new attempts start: the run is being cancelled
        self.stopped_by_failure = False
        self.timed_out = False
        self._timer_scope: anyio.CancelScope | None = None
        self.hook_errors: list[tuple[Event, BaseException]] = []
        self._hooks = hooks
        self._executor = executor
        self.metrics = metrics
        #: wall-clock time minus perf_counter: node times are perf_counter readings
        self.time_base = time.time() - _clock()
        #: where durable runs record node ends (see flowrt.durable); None otherwise
        self.checkpoint: Any = None
        #: per node, 1 when its attempts are timed (metrics on, or sampled)
        self.timed = _timed_nodes(n, metrics)
        self._spawner: Any = None
        self._scope: anyio.CancelScope | None = None
        self._done: anyio.Event | None = None
        self._cancel_exc: type[BaseException] = BaseException
        self._keep_remote: bytearray | None = None
        self._asyncio = False

        # Limits: the run's own cap, the runtime's cap, and one per named limit.
        run_cap = Limit("max_concurrency", max_concurrency) if max_concurrency else None
        caps = tuple(c for c in (run_cap, runtime._cap) if c is not None)
        own = {name: Limit(name, k) for name, k in (limits or {}).items()}
        named = [own.get(name) or runtime._limits.get(name) for name in plan.limit_names]
        #: the limits a node is under, by its plan.limit_of index; the last entry (index
        #: -1, nodes that name no limit) is the caps alone
        self._gates: list[tuple[Limit, ...]] = [
            caps + ((lim,) if lim is not None else ()) for lim in named
        ] + [caps]
        self.limited = any(self._gates)
        #: per node, 1 while it holds a slot handed over by Limit.release (not yet RUNNING)
        self._granted = bytearray(n)

        # Logging and events are built only when someone listens.
        self.log = logger().bind(workflow=plan.workflow, run_id=run_id)
        # Levels are read once per run: a disabled level costs nothing per call.
        self._log_nodes = is_enabled(self.log, logging.DEBUG)
        self.log_runs = self._log_nodes or is_enabled(self.log, logging.INFO)
        self.log_failures = self.log_runs or is_enabled(self.log, logging.WARNING)
        self.trace = bool(hooks) or self._log_nodes

    # -- running --------------------------------------------------------------------

    async def run(self, timeout: float | None) -> None:
        """Run every node to a final status, or until cancelled."""
        self._cancel_exc = anyio.get_cancelled_exc_class()
        self._asyncio = sniffio.current_async_library() == "asyncio"
        self._keep_remote = self._plan_remote_outputs()
        self._done = anyio.Event()
        self.emit(EventKind.RUN_STARTED, -1)
        plan = self.plan
        board = self.board
        ready = self.ready
        remaining = self.remaining
        for i in range(len(plan)):
            if board[i] == PENDING and not remaining[i]:
                if self._rule_holds(i):
                    board[i] = READY
                    ready.append(i)
                    if self.trace:
                        self.emit(EventKind.READY, i)
                else:  # dependencies restored from a store may not satisfy the rule
                    self._skip(i)
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                async with open_spawner() as spawner:
                    self._spawner = spawner
                    if timeout is not None:
                        spawner.spawn(self._timer, timeout)
                    await self.runner()
                    if self.left:
                        await self._done.wait()
                    if self._timer_scope is not None:
                        self._timer_scope.cancel()
        finally:
            self._finish_cancelled()
        if self._keep_remote is not None:
            await self._fetch_remote_outputs()

    def _executor_of(self, node: int) -> Any:
        """Where sync ``node`` runs: None (a thread), "loop", or an executor object."""
        where = self.plan.options_of(node).executor
        if where is None:
            where = self._executor
        if where is None or where == "thread":
            return None
        if where == "loop":
            return where
        return self.runtime.executor_for(where)

    def _plan_remote_outputs(self) -> bytearray | None:
        """Per node, 1 when its output may stay on its executor's cluster.

        That is when the executor can keep outputs (it has ``fetch_many``), no store
        needs the value as the node ends, and every node that depends on it (if any)
        runs on that same executor. None when no node qualifies (the usual case).
        """
        plan = self.plan
        if self.checkpoint is not None:
            return None
        local = (None, "thread", "loop")
        if not any(o.executor not in local for o in plan.node_options.values()) and (
            self._executor in (None, "thread", "loop")
        ):
            return None
        keep = bytearray(len(plan))
        where = [self._executor_of(i) if plan.mode[i] else "async" for i in range(len(plan))]
        any_kept = False
        for i, ex in enumerate(where):
            if ex is None or isinstance(ex, str) or not hasattr(ex, "fetch_many"):
                continue
            succ = plan.succ_idx[plan.succ_ptr[i] : plan.succ_ptr[i + 1]]
            if all(where[s] is ex for s in succ):  # sinks too: fetched in one batch
                keep[i] = 1
                any_kept = True
        return keep if any_kept else None

    async def _fetch_remote_outputs(self) -> None:
        """Bring outputs left on a cluster back for the result, in one batch per executor."""
        values = self.values
        by_executor: dict[int, tuple[Any, list[int]]] = {}
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
            release = getattr(executor, "release", None)
            if release is not None:
                release(handles)

    async def _timer(self, timeout: float) -> None:
        """The run's ``timeout=``: stop the run when it expires."""
        with anyio.CancelScope() as self._timer_scope:
            await anyio.sleep(timeout)
            if self.left:
                self.timed_out = True
                self.stop()

    def _finish_cancelled(self) -> None:
        """Every node that is not final now ends CANCELLED (the run was cancelled)."""
        if not self.left:
            return
        board = self.board
        now = _clock()
        for i in range(len(board)):
            if board[i] < SUCCEEDED:
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

    def stop(self) -> None:
        """Cancel the run: no new attempt starts, running ones are cancelled."""
        if self.stopping:
            return
        self.stopping = True
        if self._scope is not None:
            self._scope.cancel()
        if self._spawner is not None:
            self._spawner.cancel()

    def wake(self, node: int, by: Supervisor, gate: Limit) -> int:
        """A slot of ``gate`` is free for ``node``, waiting in its queue.

        A node under ``gate`` alone is handed the slot (HANDED: it will not ask again);
        another is put back on the ready queue to take all its slots (WOKEN); a node that
        no longer waits is GONE. ``by`` is the run whose node freed the slot: when that
        is this run, its runner goes on to take the node; another run needs a runner.
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

        How many: up to ``_burst``, which doubles (to 64) while suspending nodes keep coming
        and falls back to 1 when a runner finds nothing to do. Runners started in one
        go begin in the same event loop iteration, so a wave of I/O nodes does not cost
        one loop iteration per node; nodes that finish inline need only one runner.
        """
        want = min(len(self.ready), self._burst) - self._pending
        if want > 0:
            self._pending += want
            for _ in range(want):
                self._spawner.spawn(self.runner, True)
        if self._burst < 64:
            self._burst *= 2

    _pending = 0  # runners spawned that have not begun yet
    _burst = 1

    async def runner(self, spawned: bool = False) -> None:
        """Take READY nodes from the queue and run them until the queue is empty.

        ``spawned``: started by :meth:`_spawn_runners` (which counts it as pending).
        """
        if spawned:
            self._pending -= 1
            if not self.ready:
                self._burst = 1  # started for nothing: stop growing the bursts
                return
        plan = self.plan
        ready = self.ready
        board = self.board
        values = self.values
        fns = plan.fns
        mode = plan.mode
        special = plan.special
        pred_ptr = plan.pred_ptr
        pred_idx = plan.pred_idx
        nargs = plan.nargs
        kwargs = plan.kwargs
        attempts = self.attempts
        started = self.started
        timed = self.timed
        limited = self.limited
        streak = 0  # nodes finished inline since this runner last let the loop run
        while ready:
            if self.stopping:
                return
            streak += 1
            if streak > 1000:
                # A long stretch of nodes that never suspend must not starve the rest of
                # the application (nor delay a cancellation): let the loop run once.
                streak = 0
                await anyio.lowlevel.checkpoint()
                if self.stopping or not ready:
                    break
            node = ready.popleft()
            if limited and not self._acquire(node):
                continue
            # start the attempt
            board[node] = RUNNING
            attempt = attempts[node] = attempts[node] + 1
            if timed[node] and attempt == 1:  # a node's time runs from its first attempt
                started[node] = _clock()
            if self.trace:
                self.emit(EventKind.STARTED, node)
            k = pred_ptr[node]
            n_args = nargs[node]
            if n_args == 0:
                args: Any = ()
            elif n_args == 1:
                args = (values[pred_idx[k]],)
            else:
                args = [values[j] for j in pred_idx[k : k + n_args]]
            try:
                bound = kwargs[node]
                if special[node] or mode[node]:
                    coro = self._attempt(node, args, bound)
                elif bound is None:
                    coro = fns[node](*args)
                else:
                    coro = fns[node](*args, **actor.call_kwargs(self, node, bound))
            except BaseException as error:  # the call itself failed (bad arguments...)
                self.attempt_failed(node, error)
                continue
            # Each node runs in its own copy of the context variables, as an asyncio
            # task would: what one node sets is not seen by others, nor by the caller.
            context = copy_context()
            try:
                yielded = context.run(coro.send, None)
            except StopIteration as stop:
                self.succeed(node, stop.value)
                continue
            except self._cancel_exc as error:  # the run's scope is cancelled (trio)
                if self._really_cancelled():
                    self._cancelled(node)
                    raise
                self.attempt_failed(node, error)
                continue
            except AttributeError as error:
                if hasattr(coro, "send"):
                    self.attempt_failed(node, error)
                    continue
                # A function marked async that returned another kind of awaitable.
                coro = actor.awaiting(coro)
                try:
                    yielded = context.run(coro.send, None)
                except StopIteration as stop:
                    self.succeed(node, stop.value)
                    continue
                except BaseException as error2:
                    self.attempt_failed(node, error2)
                    continue
            except BaseException as error:
                self.attempt_failed(node, error)
                continue
            # The attempt really suspends: this runner stays with it; another takes
            # the rest of the queue.
            if ready and not self.stopping:
                self._spawn_runners()
            streak = 0
            try:
                value = await actor.Resume(coro, yielded, context)
            except BaseException as error:
                if isinstance(error, self._cancel_exc) and self._really_cancelled():
                    self._cancelled(node)
                    raise
                self.attempt_failed(node, error)
                continue
            self.succeed(node, value)

    def _really_cancelled(self) -> bool:
        # On asyncio a node may raise CancelledError on its own (it awaited something
        # that was cancelled); only a cancel request to this task cancels the node.
        if self.stopping or not self._asyncio:
            return True
        import asyncio

        task = asyncio.current_task()
        return task is None or task.cancelling() > 0

    def _attempt(self, node: int, args: Any, bound: Any) -> Any:
        """The coroutine of one attempt of a node that is not a plain async call."""
        plan = self.plan
        fn = plan.fns[node]
        kw = actor.call_kwargs(self, node, bound) if bound is not None else None
        if plan.mode[node]:
            where = self._executor_of(node)
            if where is None:
                coro = run_in_thread(self.runtime.thread_limiter(), fn, args, kw)
            elif where == "loop":
                coro = actor.in_loop(fn, args, kw)
            else:
                keep = self._keep_remote is not None and self._keep_remote[node] == 1
                coro = actor.in_executor(where, fn, args, kw, keep)
        else:
            coro = fn(*args, **kw) if kw else fn(*args)
        timeout = plan.options_of(node).timeout
        if timeout is not None:
            coro = actor.with_timeout(timeout, coro)
        return coro

    # -- messages -------------------------------------------------------------------

    def succeed(self, node: int, value: Any) -> None:
        """The attempt returned ``value``: the node SUCCEEDED."""
        if self.timed[node]:
            self.finished[node] = _clock()
        if self.checkpoint is not None:
            try:
                self.checkpoint.succeeded(node, value)
            except SerializationError as error:  # the store cannot keep this output
                self.attempt_failed(node, error, retry=False)
                return
        self.values[node] = value
        self.board[node] = SUCCEEDED
        if self.limited:
            self._release(node)
        if self.trace:
            self.emit(EventKind.SUCCEEDED, node)
        self.settle(node, SUCCEEDED)

    def attempt_failed(self, node: int, error: BaseException, retry: bool = True) -> None:
        """The attempt raised ``error``: retry the node, or it FAILED.

        KeyboardInterrupt and SystemExit are not node failures: they stop the run.
        """
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise error
        plan = self.plan
        if self.limited:
            self._release(node)
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
                    self._spawner.spawn(self._retry_later, node, delay)
                else:
                    self.ready.append(node)
                return
        self.errors[node] = error
        self.board[node] = FAILED
        if self.timed[node]:
            self.finished[node] = _clock()
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
        if self.limited:
            self._release(node)
        self.board[node] = CANCELLED
        if self.timed[node]:
            self.finished[node] = _clock()
        if self.trace:
            self.emit(EventKind.CANCELLED, node)
        if self.checkpoint is not None:
            self.checkpoint.ended(node, CANCELLED, None)
        self.left -= 1
        if not self.left and self._done is not None:
            self._done.set()

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
        remaining = self.remaining
        board = self.board
        stack = [node]
        statuses = [status]
        while stack:
            node = stack.pop()
            status = statuses.pop()
            self.left -= 1
            for s in succ_idx[succ_ptr[node] : succ_ptr[node + 1]]:
                if status == SUCCEEDED:
                    self.succeeded[s] += 1
                elif status == FAILED:
                    self.failed[s] += 1
                left = remaining[s] - 1
                remaining[s] = left
                if left or board[s] != PENDING:
                    continue
                trigger = plan.trigger[s]
                deps = plan.pred_ptr[s + 1] - plan.pred_ptr[s]
                if (self.succeeded[s] == deps) if trigger == 0 else holds(
                    trigger, deps, self.succeeded[s], self.failed[s]
                ):
                    board[s] = READY
                    self.ready.append(s)
                    if self.trace:
                        self.emit(EventKind.READY, s)
                else:
                    board[s] = SKIPPED
                    if self.trace:
                        self.emit(EventKind.SKIPPED, s)
                    if self.checkpoint is not None:
                        self.checkpoint.ended(s, SKIPPED, None)
                    stack.append(s)
                    statuses.append(SKIPPED)
        if not self.left and self._done is not None:
            self._done.set()

    def _rule_holds(self, node: int) -> bool:
        """The trigger rule of ``node``, all of whose dependencies are final."""
        plan = self.plan
        deps = plan.pred_ptr[node + 1] - plan.pred_ptr[node]
        return holds(plan.trigger[node], deps, self.succeeded[node], self.failed[node])

    def _skip(self, node: int) -> None:
        self.board[node] = SKIPPED
        if self.trace:
            self.emit(EventKind.SKIPPED, node)
        if self.checkpoint is not None:
            self.checkpoint.ended(node, SKIPPED, None)
        self.settle(node, SKIPPED)

    def restore(self, node: int, value: Any, attempts: int, started: float | None,
                finished: float | None) -> None:
        """Before the run starts: ``node`` already SUCCEEDED (a resumed durable run).

        ``started``/``finished`` are wall-clock times. The node is not run again; its
        dependents see a succeeded dependency.
        """
        self.board[node] = SUCCEEDED
        self.values[node] = value
        self.attempts[node] = attempts
        if started is not None:
            self.started[node] = started - self.time_base
            self.timed[node] = 1
        if finished is not None:
            self.finished[node] = finished - self.time_base
        self.left -= 1
        plan = self.plan
        for s in plan.succ_idx[plan.succ_ptr[node] : plan.succ_ptr[node + 1]]:
            self.remaining[s] -= 1
            self.succeeded[s] += 1

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

    # -- events ---------------------------------------------------------------------

    def emit(self, kind: EventKind, node: int, error: BaseException | None = None,
             status: str | None = None) -> None:
        """Log ``kind`` and pass it to the hooks (callers check ``self.trace`` first)."""
        name = self.plan.names[node] if node >= 0 else None
        attempt = self.attempts[node] if node >= 0 else 0
        if node >= 0 and self._log_nodes:
            self.log.debug(str(kind), node=name, attempt=attempt,
                           error=None if error is None else repr(error))
        if self._hooks:
            event = Event(kind, self.plan.workflow, self.run_id, name, attempt, time.time(),
                          error, status)
            for hook in self._hooks:
                try:
                    hook(event)
                except Exception as hook_error:  # a bug in a hook must not break the run
                    self.hook_errors.append((event, hook_error))
                    report_hook_error(hook, event, hook_error, len(self.hook_errors) == 1)
