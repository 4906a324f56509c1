"""Saga compensation: undo the succeeded nodes of a run that failed.

A node with ``compensate=fn`` that SUCCEEDED in a run that then failed, was cancelled or
timed out is undone by ``fn(output)`` (plus a :class:`~flowrt.Context` when ``fn`` asks
for one). The compensations run in reverse topological order, a level at a time (the
nodes of one :attr:`Plan.levels <flowrt.workflow.Plan.levels>` value concurrently, and
a level's compensations all end before the level above starts), since a node's
effect may be what its dependents built on. Each ends ``COMPENSATED`` or
``COMPENSATION_FAILED``; one that raises does not stop the others.

The rollback is shielded from the caller's cancellation: a caller cancelled while the
rollback runs (or whose cancellation is why it runs) gives it :data:`ROLLBACK_GRACE`
more seconds; compensations still running then are cut off (``COMPENSATION_FAILED``
with a ``TimeoutError``) and the levels not started yet are left to a resume of the
durable run (docs/decisions/020-saga-rollback.md).
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING, Any

import anyio

from .._types import Event, EventKind, Status
from ..data._workflow_data import MISSING
from ..errors import RollbackCutOff
from ..executors._base import run_in_thread
from ..workflow._context import Context
from .mapping import ItemBoard

if TYPE_CHECKING:
    from collections.abc import Callable

    from .supervisor import Supervisor

__all__ = ["ROLLBACK_GRACE", "pending_compensations", "roll_back"]

SUCCEEDED = Status.SUCCEEDED.value
COMPENSATED = Status.COMPENSATED.value
COMPENSATION_FAILED = Status.COMPENSATION_FAILED.value

#: Seconds a rollback may still take once the caller that runs it is cancelled
#: (a bound, so that a hanging compensation cannot hold a cancelled caller forever).
ROLLBACK_GRACE: float = 30.0


def pending_compensations(sup: Supervisor) -> list[int]:
    """The nodes a rollback would undo now: those with a ``compensate=`` that
    SUCCEEDED, and the mapped ones with items that succeeded (whatever the node's own
    status: a map that failed at one item undoes the items that did not)."""
    plan = sup.plan
    board = sup.board
    maps = plan.maps
    return sorted(i for i, o in plan.node_options.items()
                  if o.compensate is not None and (
                      _items_to_undo(sup, i) if maps and i in maps
                      else board[i] == SUCCEEDED))


def _items_to_undo(sup: Supervisor, node: int) -> list[int]:
    """The items of mapped ``node`` that a rollback undoes, in the order it undoes them:
    the succeeded ones (not those read from the cache), last item first."""
    items = sup.items.get(node)
    if items is None:
        recorded = sup.recorded_items.get(node)  # a resumed rollback: the store's items
        if recorded is None or not recorded.succeeded:
            return []
        items = sup.items[node] = ItemBoard.from_record(recorded, outputs=True)
    outputs = items.outputs
    if outputs is None:
        return []
    board = items.board
    return [k for k in range(len(board) - 1, -1, -1)
            if board[k] == SUCCEEDED and outputs[k] is not MISSING]


async def roll_back(sup: Supervisor, nodes: list[int]) -> None:
    """Compensate ``nodes`` (see :func:`pending_compensations`), deepest level first.

    Shielded from the caller's cancellation; when the caller is cancelled, the rollback
    gets :data:`ROLLBACK_GRACE` seconds more, then it is cut off (see the module).
    Raises the caller's cancellation, if any, once the rollback is over.
    """
    if not nodes:
        return
    checkpoint = sup.checkpoint
    if checkpoint is not None:
        # Durable: the store learns that a rollback is under way (and which nodes it
        # undoes) before the first compensation starts, so that a crash from here on
        # resumes the rollback, not the forward run.
        with anyio.CancelScope(shield=True):
            if not await checkpoint.rolling_back(nodes):
                return
    scope = anyio.CancelScope(shield=True)
    done = anyio.Event()

    async def rollback() -> None:
        try:
            with scope:
                await _levels(sup, nodes, scope)
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(rollback)
        try:
            await done.wait()
        except anyio.get_cancelled_exc_class():
            # The caller is cancelled: the rollback goes on, for a bounded time.
            grace = ROLLBACK_GRACE
            scope.deadline = min(scope.deadline, anyio.current_time() + grace)
            with anyio.CancelScope(shield=True):
                await done.wait()
            raise


async def _levels(sup: Supervisor, nodes: list[int], scope: anyio.CancelScope) -> None:
    levels = sup.plan.levels
    by_level: dict[int, list[int]] = {}
    for i in nodes:
        by_level.setdefault(levels[i], []).append(i)
    checkpoint = sup.checkpoint
    calls: dict[int, tuple[bool, str | None]] = {}  # id(fn) -> (is async, context param)
    for level in sorted(by_level, reverse=True):
        if scope.cancel_called:  # the grace ran out: the rest is left to a resume
            return
        if checkpoint is not None and not checkpoint.writable():
            return  # the store is out of reach or the run lost its lease: same
        group = by_level[level]
        if len(group) == 1:
            await _compensate(sup, group[0], scope, calls)
            continue
        # A task each: a compensation that suspends must go on in the task it started
        # in (trio's cancel scopes are bound to their task), so they cannot be stepped
        # inline as the runners step nodes.
        async with anyio.create_task_group() as tg:
            for i in group:
                tg.start_soon(_compensate, sup, i, scope, calls)


async def _compensate(sup: Supervisor, node: int, scope: anyio.CancelScope,
                      calls: dict[int, tuple[bool, str | None]]) -> None:
    """Run one node's compensation and record how it ended."""
    fn = sup.plan.options_of(node).compensate
    assert fn is not None
    if sup.trace:
        sup.emit(EventKind.COMPENSATING, node)
    how = calls.get(id(fn))
    if how is None:  # read a function's signature once per rollback, not once per node
        how = calls[id(fn)] = (_is_async(fn), _context_param(fn))
    is_async, context_param = how
    state = sup.state
    if state.plan.maps and node in state.plan.maps:
        await _compensate_items(sup, node, fn, is_async, context_param, scope)
        return
    value = state.values[node]
    kwargs: dict[str, Any] = {}
    if context_param is not None:
        kwargs[context_param] = Context(state.plan.workflow, state.run_id,
                                        state.plan.names[node], state.attempts[node],
                                        state.data)
    try:
        if is_async:
            await fn(value, **kwargs)
        else:
            await run_in_thread(sup.shared.thread_limiter(), fn, (value,), kwargs)
    except anyio.get_cancelled_exc_class():
        if not scope.cancel_called:
            raise  # not ours (cannot happen under the shield; never swallow it)
        _ended(sup, node, COMPENSATION_FAILED,
               RollbackCutOff(sup.plan.names[node], ROLLBACK_GRACE))
        return
    except Exception as error:
        _ended(sup, node, COMPENSATION_FAILED, error)
        return
    _ended(sup, node, COMPENSATED, None)


async def _compensate_items(sup: Supervisor, node: int, fn: Callable[..., Any],
                            is_async: bool, context_param: str | None,
                            scope: anyio.CancelScope) -> None:
    """Undo the succeeded items of mapped ``node``, one after another, last item first;
    record each item's outcome as it ends, then the node's (COMPENSATION_FAILED when an
    item's compensation failed: the first such error is the node's)."""
    state = sup.state
    name = state.plan.names[node]
    items = sup.items[node]
    outputs = items.outputs
    assert outputs is not None  # pending_compensations chose it for its items
    checkpoint = sup.checkpoint
    first_error: BaseException | None = None
    hooks = bool(sup._hooks)
    for k in _items_to_undo(sup, node):
        if checkpoint is not None and not checkpoint.writable():
            return  # the rest is left to a resume of the rollback
        if hooks:
            sup.pass_on(Event(EventKind.COMPENSATING, state.plan.workflow, state.run_id, name,
                              items.attempts[k], time.time(), None, None, k))
        kwargs: dict[str, Any] = {}
        if context_param is not None:
            kwargs[context_param] = Context(state.plan.workflow, state.run_id, name,
                                            items.attempts[k], state.data, k)
        error: BaseException | None = None
        try:
            if is_async:
                await fn(outputs[k], **kwargs)
            else:
                await run_in_thread(sup.shared.thread_limiter(), fn, (outputs[k],), kwargs)
        except anyio.get_cancelled_exc_class():
            if not scope.cancel_called:
                raise  # not ours (cannot happen under the shield; never swallow it)
            error = RollbackCutOff(f"{name}[{k}]", ROLLBACK_GRACE)
        except Exception as failure:
            error = failure
        status = COMPENSATED if error is None else COMPENSATION_FAILED
        items.board[k] = status
        if error is not None:
            items.errors[k] = error
            if first_error is None:
                first_error = error
            if sup.log_failures:
                sup.log.warning("compensation failed", node=name, item=k,
                                error=f"{type(error).__name__}: {error}")
        if hooks:
            sup.pass_on(Event(EventKind.COMPENSATED if error is None
                              else EventKind.COMPENSATION_FAILED, state.plan.workflow,
                              state.run_id, name, items.attempts[k], time.time(), error,
                              None, k))
        if checkpoint is not None:
            begin, end = items.started[k], items.finished[k]
            checkpoint.item_ended(node, k, status, error, items.attempts[k],
                                  begin or None, end or None)
        if scope.cancel_called:
            return  # cut off: the items left are left to a resume of the rollback
    status = COMPENSATED if first_error is None else COMPENSATION_FAILED
    if sup.board[node] == SUCCEEDED:
        _ended(sup, node, status, first_error)
        return
    # A map that failed (or was cancelled) keeps that status; its items say what was
    # undone (their events, result.compensation). Its record goes back to that status.
    if checkpoint is not None:
        checkpoint.ended(node, sup.board[node], sup.errors.get(node))


def _ended(sup: Supervisor, node: int, status: int, error: BaseException | None) -> None:
    sup.board[node] = status
    if error is not None:
        sup.errors[node] = error
        if sup.log_failures:
            sup.log.warning("compensation failed", node=sup.plan.names[node],
                            error=f"{type(error).__name__}: {error}")
    if sup.trace:
        sup.emit(EventKind.COMPENSATED if status == COMPENSATED
                 else EventKind.COMPENSATION_FAILED, node, error)
    if sup.checkpoint is not None:
        sup.checkpoint.ended(node, status, error)


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)  # noqa: B004 -- a callable object
    return (call is not None and not inspect.isfunction(fn)
            and inspect.iscoroutinefunction(call))


def _context_param(fn: Callable[..., Any]) -> str | None:
    """The name of ``fn``'s parameter annotated Context (after the output), or None."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    for p in params[1:]:
        a = p.annotation
        if a is Context or (isinstance(a, str) and a.rsplit(".", 1)[-1] == "Context"):
            return p.name
    return None
