"""The node actor: how one attempt of a node is called.

A node is an actor whose mailbox is a few slots in the supervisor's arrays (see
:mod:`flowrt.supervisor`): while it waits it costs no task and no coroutine frame. When
its dependencies are done, a runner takes it and calls :func:`start_attempt`, which
returns a coroutine for the attempt. The runner steps that coroutine inline once
(:meth:`coroutine.send`); most attempts that do no real I/O finish right there. Only
an attempt that really suspends is awaited, through :class:`Resume`, which hands the
object the coroutine yielded to the event loop as if the coroutine had been awaited
from the start.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ..workflow._context import Context as NodeContext
from ..workflow._plan import BIND_CONTEXT, BIND_INPUT, BIND_NODE

if TYPE_CHECKING:
    from contextvars import Context

    from .supervisor import Supervisor

__all__ = ["Resume", "call_kwargs"]


class Resume:
    """Await a coroutine that has already been stepped once and yielded ``first``.

    Forwards every value the coroutine yields to the event loop and every value or
    exception the loop sends back, exactly as ``await`` would; works on any backend
    because it never looks at what is yielded. Each step runs in ``context``, the
    node's own copy of the context variables (as an asyncio task would have).
    """

    __slots__ = ("context", "coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any, context: Context) -> None:
        self.coro = coro
        self.first = first
        self.context = context

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        run = self.context.run
        value = self.first
        self.first = None
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the loop: cancellation, mostly
                try:
                    value = run(coro.throw, exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = run(coro.send, sent)
                except StopIteration as stop:
                    return stop.value


def call_kwargs(sup: Supervisor, node: int, bound: tuple[tuple[str, int, Any], ...]
                ) -> dict[str, Any]:
    """The keyword arguments of one attempt of ``node``, from its bindings."""
    values = sup.values
    inputs = sup.inputs
    kwargs: dict[str, Any] = {}
    for param, kind, source in bound:
        if kind == BIND_NODE:
            kwargs[param] = values[source]
        elif kind == BIND_INPUT:
            kwargs[param] = inputs[source]
        elif kind == BIND_CONTEXT:
            kwargs[param] = NodeContext(sup.plan.workflow, sup.run_id, sup.plan.names[node],
                                    sup.attempts[node], sup.data)
        elif source in inputs:  # BIND_OPTIONAL
            kwargs[param] = inputs[source]
    return kwargs


async def in_executor(executor: Any, fn: Callable[..., Any], args: Any,
                      kwargs: Mapping[str, Any] | None, keep: bool = False) -> Any:
    """Call a sync function through an executor object (see :mod:`flowrt.executors`).

    ``keep``: the executor may leave the output where it is (a :class:`Remote`), because
    only nodes on that same executor will read it.
    """
    if keep:
        return await executor.run(fn, tuple(args), dict(kwargs) if kwargs else {}, keep=True)
    return await executor.run(fn, tuple(args), dict(kwargs) if kwargs else {})


async def in_loop(fn: Callable[..., Any], args: Any, kwargs: Mapping[str, Any] | None) -> Any:
    """Call a sync function right in the event loop (``executor="loop"``)."""
    return fn(*args, **kwargs) if kwargs else fn(*args)


async def with_timeout(timeout: float, coro: Coroutine[Any, Any, Any]) -> Any:
    """Await ``coro``, failing with ``TimeoutError`` after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        return await coro


async def awaiting(awaitable: Any) -> Any:
    """Await any awaitable (a node marked async that returned a non-coroutine)."""
    return await awaitable
