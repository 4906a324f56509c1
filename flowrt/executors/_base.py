"""Where a sync node's callable runs: the event loop, a thread, a process, a cluster.

Async nodes always run in the event loop. A sync node runs where its own
``executor=`` option says, else where the run's (or runtime's) ``executor=`` says,
else in a worker thread. An executor is any object with::

    async def run(self, fn, args: tuple, kwargs: dict) -> Any

that calls ``fn(*args, **kwargs)`` somewhere and returns its result; cancelling the
``run`` call must give the work up (and cancel it where that is possible). Executors
start what they need on first use. Whoever makes an executor closes it: a runtime
closes the ones it made from a name (``executor="process"``); an object you pass is
yours to close (``await executor.aclose()``, or ``async with executor``). Built in:
:class:`ThreadExecutor`, :class:`ProcessExecutor`; ``flowrt.executors.DaskExecutor`` in the
``dask`` extra.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Coroutine, Mapping
from types import CoroutineType
from typing import Any

import anyio
import anyio.to_thread

from .._backends import current as current_backend
from .._types import Executor, RemoteExecutor

__all__ = ["Executor", "Remote", "RemoteExecutor", "run_in_thread", "until_called",
           "wait_future"]


class Remote:
    """An output left where it was computed (on a cluster), with the executor that has it.

    An executor that can pass outputs between its own nodes (a :class:`RemoteExecutor`
    such as ``DaskExecutor``) returns one from ``run(..., keep=True)``; given back to the
    same executor as an argument, it stays remote. flowrt asks for the value
    (``executor.fetch_many``) only when a node elsewhere, the store or the run's result
    needs it. ``handle`` is whatever names the output on the executor's cluster (a Dask
    future).
    """

    __slots__ = ("executor", "handle")

    def __init__(self, executor: RemoteExecutor, handle: Any) -> None:
        self.executor = executor
        self.handle = handle

    def __repr__(self) -> str:
        return f"<Remote {self.handle!r}>"


class _Returned:
    """A sync call's coroutine result on its way out of the worker thread (trio refuses a
    thread function whose result is a coroutine; flowrt's contract takes it as is)."""

    __slots__ = ("value",)

    def __init__(self, value: Coroutine[Any, Any, Any]) -> None:
        self.value = value


async def run_in_thread(limiter: anyio.CapacityLimiter, fn: Callable[..., Any], args: Any,
                        kwargs: Mapping[str, Any] | None) -> Any:
    """Call a sync function in a worker thread; a cancelled call abandons the thread.

    Its result is returned as is, a coroutine too (design.md: not awaited), on both
    backends: trio would refuse a coroutine result with its own error, so it crosses
    the thread boxed.
    """
    def call() -> Any:
        value = fn(*args, **kwargs) if kwargs else fn(*args)
        return _Returned(value) if type(value) is CoroutineType else value

    result = await anyio.to_thread.run_sync(call, abandon_on_cancel=True, limiter=limiter)
    return result.value if type(result) is _Returned else result


async def until_called(register: Callable[[Callable[[Any], None]], None]) -> None:
    """Wait, without blocking the loop, until the callback given to ``register`` is called.

    ``register`` is a future's ``add_done_callback``; the callback may be called from any
    thread (a process pool's, a Dask client's). Works on asyncio and trio.
    """
    done = anyio.Event()
    call_soon = current_backend().threadsafe_call_soon()

    def wake(_: Any) -> None:
        call_soon(done.set)

    register(wake)
    await done.wait()


async def wait_future(future: concurrent.futures.Future[Any]) -> Any:
    """Await a ``concurrent.futures.Future`` on any backend; cancelling cancels it."""
    if not future.done():
        try:
            await until_called(future.add_done_callback)
        except BaseException:
            future.cancel()  # a call already running in a process cannot be stopped
            raise
    return future.result()
