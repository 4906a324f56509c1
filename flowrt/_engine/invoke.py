"""The node actor: how one attempt of a node is called.

A node is an actor whose mailbox is a few slots in the run's arrays (see
:mod:`flowrt._engine.supervisor`): while it waits it costs no task and no coroutine
frame. When its dependencies are done, a runner takes it and makes a coroutine for the
attempt (its arguments come from :func:`call_kwargs`; a sync callable is wrapped by
:func:`in_loop`, :func:`in_executor` or a thread call). The runner steps that coroutine
inline once
(:meth:`coroutine.send`); most attempts that do no real I/O finish right there. Only
an attempt that really suspends is awaited, through :class:`Resume`, which hands the
object the coroutine yielded to the event loop as if the coroutine had been awaited
from the start.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Generator, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ..data._workflow_data import MISSING
from ..errors import BranchError
from ..workflow._context import Context as NodeContext
from ..workflow._plan import BIND_CONTEXT, BIND_INPUT, BIND_NODE

if TYPE_CHECKING:
    from contextvars import Context

    from .._types import Executor, RemoteExecutor
    from ..workflow import Plan
    from .state import RunState

__all__ = ["NOT_STARTED", "Resume", "awaiting", "branching", "call_kwargs", "choice_of",
           "fill_missing", "in_executor", "in_loop", "keeping_output", "with_timeout"]


#: ``Resume(coro, NOT_STARTED, ...)``: the coroutine has not been stepped yet
NOT_STARTED: Any = object()


class Resume:
    """Await a coroutine that has already been stepped once and yielded ``first``
    (or, with ``first=NOT_STARTED``, one that has not been stepped yet).

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
        if value is NOT_STARTED:
            try:
                value = run(coro.send, None)
            except StopIteration as stop:
                return stop.value
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the loop: cancellation, mostly
                value = None  # (see below)
                try:
                    value = run(coro.throw, exc)
                except StopIteration as stop:
                    return stop.value
            else:
                # Let go of what was yielded before the next step: a future that fails
                # holds its error, whose traceback holds this frame; keeping the future
                # here would make a cycle, and the failed node's run would be left for
                # the garbage collector (docs/decisions/031-per-run-allocations.md).
                value = None
                try:
                    value = run(coro.send, sent)
                except StopIteration as stop:
                    return stop.value


def call_kwargs(state: RunState, node: int, bound: tuple[tuple[str, int, Any], ...]
                ) -> dict[str, Any]:
    """The keyword arguments of one attempt of ``node``, from its bindings."""
    values = state.values
    inputs = state.bindable  # run inputs and resources
    kwargs: dict[str, Any] = {}
    for param, kind, source in bound:
        if kind == BIND_NODE:
            kwargs[param] = values[source]
        elif kind == BIND_INPUT:
            kwargs[param] = inputs[source]
        elif kind == BIND_CONTEXT:
            kwargs[param] = NodeContext(state.plan.workflow, state.run_id,
                                        state.plan.names[node], state.attempts[node],
                                        state.data)
        elif source in inputs:  # BIND_OPTIONAL
            kwargs[param] = inputs[source]
    return kwargs


def fill_missing(fn: Callable[..., Any], args: Any, kwargs: dict[str, Any] | None
                 ) -> tuple[Any, dict[str, Any] | None]:
    """The arguments of a node that runs although a dependency left no output.

    A trigger rule such as ``ALL_DONE`` runs a node after a dependency failed or was
    skipped; that dependency's argument is the parameter's default when it has one, else
    None (design.md, "Control flow"), never the output slot's internal marker.
    """
    if not (any(a is MISSING for a in args)
            or (kwargs and any(v is MISSING for v in kwargs.values()))):
        return args, kwargs
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # a callable whose signature cannot be read
        params = []
    empty = inspect.Parameter.empty
    defaults = {p.name: None if p.default is empty else p.default for p in params}
    positional = [p.name for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(a is MISSING for a in args):
        args = [(defaults[positional[k]] if k < len(positional) else None)
                if a is MISSING else a for k, a in enumerate(args)]
    if kwargs:
        kwargs = {name: defaults.get(name) if v is MISSING else v
                  for name, v in kwargs.items()}
    return args, kwargs


async def in_executor(executor: Executor, fn: Callable[..., Any], args: Any,
                      kwargs: Mapping[str, Any] | None) -> Any:
    """Call a sync function through an executor object (see :mod:`flowrt.executors`)."""
    return await executor.run(fn, tuple(args), dict(kwargs) if kwargs else {})


async def keeping_output(executor: RemoteExecutor, fn: Callable[..., Any], args: Any,
                         kwargs: Mapping[str, Any] | None) -> Any:
    """:func:`in_executor`, leaving the output where it is computed (a
    :class:`~flowrt.executors.Remote`): only nodes on that same executor read it."""
    return await executor.run(fn, tuple(args), dict(kwargs) if kwargs else {}, keep=True)


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


# -- branches (design.md, "Control flow") -----------------------------------------------


async def branching(plan: Plan, node: int, coro: Coroutine[Any, Any, Any]) -> Any:
    """Await a branch's attempt and return what it chose (see :func:`choice_of`)."""
    return choice_of(plan, node, await coro)


def choice_of(plan: Plan, node: int, returned: Any) -> str | list[str]:
    """The direct successors branch ``node`` chose by returning ``returned``.

    ``returned`` is a node's name, a node's function, or a list (tuple, set) of them;
    None takes none. The result is what the branch's output is (and what a store
    keeps): the name, or the list of names without repeats, in the order given.

    Raises:
        BranchError: something returned is no direct successor of ``node`` (the message
            lists them, and the near match of a misspelt name).
    """
    successors = plan.dependents(plan.names[node])
    single = not isinstance(returned, list | tuple | set | frozenset)
    if returned is None:
        return []
    if isinstance(returned, set | frozenset):  # no order of its own: the plan's
        returned = sorted(returned, key=lambda r: plan.index.get(_name(plan, r) or "", -1))
    names: list[str] = []
    for item in [returned] if single else returned:
        name = _name(plan, item)
        if name is None or name not in successors:
            raise BranchError(plan.names[node], repr(item if name is None else name),
                              successors)
        if name not in names:
            names.append(name)
    return names[0] if single else names


def _name(plan: Plan, ref: Any) -> str | None:
    """The node name ``ref`` (a name or a node's function) stands for, or None."""
    if isinstance(ref, str):
        return str(ref)  # a str subclass (a StrEnum member) is stored as its text
    if callable(ref):
        try:
            return plan.name_of(ref)
        except TypeError:
            return None
    return None
