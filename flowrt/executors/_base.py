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
import contextlib
import functools
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.to_thread
import sniffio

__all__ = ["Executor", "Remote", "run_in_thread", "until_called", "wait_future"]


class Remote:
    """An output left where it was computed (on a cluster), with the executor that has it.

    An executor that can pass outputs between its own nodes (``DaskExecutor``) returns
    one from ``run(..., keep=True)``; given back to the same executor as an argument, it
    stays remote. flowrt asks for the value (``executor.fetch_many``) only when a node
    elsewhere, the store or the run's result needs it. ``handle`` is whatever names the
    output on the executor's cluster (a Dask future).
    """

    __slots__ = ("executor", "handle")

    def __init__(self, executor: Any, handle: Any) -> None:
        self.executor = executor
        self.handle = handle

    def __repr__(self) -> str:
        return f"<Remote {self.handle!r}>"


@runtime_checkable
class Executor(Protocol):
    """Runs a sync callable somewhere and awaits its result.

    Any object with this ``run`` method is an executor (``isinstance(x, Executor)``
    checks it); see docs/executors.md, "Writing an executor".
    """

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
        """Call ``fn(*args, **kwargs)`` somewhere and return its result.

        Awaited in the run's event loop, on asyncio or trio. The exception ``fn`` raises
        is raised here (it fails or retries the node's attempt). Cancelling this call
        (a timeout, a cancelled run) must give the work up, and cancel it where that
        is possible.
        """
        ...


async def run_in_thread(limiter: anyio.CapacityLimiter, fn: Callable[..., Any], args: Any,
                        kwargs: Mapping[str, Any] | None) -> Any:
    """Call a sync function in a worker thread; a cancelled call abandons the thread."""
    call = functools.partial(fn, *args, **kwargs) if kwargs else functools.partial(fn, *args)
    return await anyio.to_thread.run_sync(call, abandon_on_cancel=True, limiter=limiter)


async def until_called(register: Callable[[Callable[[Any], None]], None]) -> None:
    """Wait, without blocking the loop, until the callback given to ``register`` is called.

    ``register`` is a future's ``add_done_callback``; the callback may be called from any
    thread (a process pool's, a Dask client's). Works on asyncio and trio.
    """
    done = anyio.Event()
    if sniffio.current_async_library() == "asyncio":
        import asyncio

        loop = asyncio.get_running_loop()

        def wake(_: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(done.set)
    else:
        import trio

        token = trio.lowlevel.current_trio_token()

        def wake(_: Any) -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(done.set)

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
