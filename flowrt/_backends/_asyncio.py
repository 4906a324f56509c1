"""The asyncio backend (see :mod:`flowrt._backends`).

The spawner: on asyncio, anyio's ``TaskGroup.start_soon`` costs several times
``loop.create_task`` (measured: ~22 us against ~4 us per task here), and a run may start
one runner per node that really suspends. So the runners are plain asyncio tasks that
:class:`TaskSpawner` supervises itself, with the structure a task group gives (see
:class:`flowrt._backends.Spawner`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final

import anyio

__all__ = ["TaskSpawner", "call_soon", "name", "open_spawner", "really_cancelled",
           "threadsafe_call_soon"]

name: Final = "asyncio"


class TaskSpawner:
    """Plain asyncio tasks with the structure of a task group."""

    __slots__ = ("_cancelled", "_closed", "_error", "_host", "_host_cancelled", "_idle",
                 "_loop", "_tasks")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._host = asyncio.current_task()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._host_cancelled = False
        self._cancelled = False
        self._closed = False

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self._closed:
            raise RuntimeError("this spawner's block has ended: it starts no more tasks")
        task = self._loop.create_task(self._run(fn, args))
        self._tasks.add(task)
        if self._cancelled:
            task.cancel()

    async def _run(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        # The bookkeeping a done callback would do, done by the task itself as it ends:
        # a done callback costs a loop callback per task, and a run may start one task
        # per node that suspends. A task cancelled before its first step never gets
        # here; _wait deals with those.
        try:
            await fn(*args)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            if self._error is None:
                self._error = error  # a bug: runners catch every node error
                self._tasks.discard(asyncio.current_task())
                self.cancel()  # the others only
                if self._host is not None:
                    self._host_cancelled = True
                    self._host.cancel()
            if not isinstance(error, Exception):
                raise  # KeyboardInterrupt, SystemExit: the loop deals with them
        finally:
            tasks = self._tasks
            tasks.discard(asyncio.current_task())
            if not tasks and self._idle is not None and not self._idle.done():
                self._idle.set_result(None)

    def cancel(self) -> None:
        self._cancelled = True
        for task in list(self._tasks):
            task.cancel()
        idle = self._idle
        if idle is not None and not idle.done():
            idle.set_result(None)  # _wait goes on by waiting for the tasks themselves

    async def _wait(self) -> None:
        tasks = self._tasks
        while tasks:
            if self._cancelled:
                # A task cancelled before its first step never runs _run, so it never
                # leaves the set by itself: wait for the tasks, not for their bookkeeping.
                await asyncio.wait(list(tasks))
                tasks.difference_update([t for t in list(tasks) if t.done()])
            else:
                self._idle = self._loop.create_future()
                await self._idle

    async def __aenter__(self) -> TaskSpawner:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        try:
            if e is not None:
                self.cancel()
            try:
                await self._wait()
            except BaseException:  # cancelled while waiting: the tasks must end all the same
                self.cancel()
                with anyio.CancelScope(shield=True):
                    await self._wait()
                if self._error is None:
                    raise
        finally:
            self._closed = True
        # The block is over: let go of its task, which will hold the run's result. A
        # failed node's traceback holds a runner's frame, hence the supervisor and this
        # spawner; kept, the host task would close a cycle back to the error through
        # the result, and a failed run would wait for the garbage collector instead of
        # being freed with its result (docs/decisions/031-per-run-allocations.md).
        host, self._host = self._host, None
        if self._error is not None:
            if self._host_cancelled and host is not None:
                host.uncancel()  # that cancellation only served to raise the error
            raise self._error
        return None


def open_spawner() -> TaskSpawner:
    """A new :class:`TaskSpawner` in the running loop."""
    return TaskSpawner()


def really_cancelled() -> bool:
    """Whether the current task was asked to cancel (not a CancelledError of its own)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def call_soon() -> Callable[[Callable[[], object]], object]:
    """The running loop's ``call_soon``."""
    return asyncio.get_running_loop().call_soon


def threadsafe_call_soon() -> Callable[[Callable[[], object]], None]:
    """Call soon in the running loop, from any thread; nothing once the loop is closed."""
    loop = asyncio.get_running_loop()

    def call(fn: Callable[[], object]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(fn)

    return call
