"""Starting a run's runner tasks cheaply, on each anyio backend.

On asyncio, anyio's ``TaskGroup.start_soon`` costs several times
``loop.create_task`` (measured: ~22 us against ~4 us per task here), and a run may
start one runner per node that really suspends. So on asyncio the runners are plain
asyncio tasks that this module supervises itself, with the same structure a task group
gives: the spawner does not exit before every task has ended; cancellation of the
spawner's host or a call to :meth:`cancel` cancels every task; an unexpected error in a
task cancels the others and is raised from the ``async with`` block. On other backends
(trio) an anyio task group does the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol

import anyio
import sniffio

__all__ = ["Spawner", "open_spawner"]


class Spawner(Protocol):
    """Starts tasks that all end before the ``async with`` block does."""

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None: ...

    def cancel(self) -> None: ...

    async def __aenter__(self) -> Spawner: ...

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> bool | None: ...


class _AsyncioSpawner:
    __slots__ = ("_error", "_host", "_host_cancelled", "_idle", "_loop", "_tasks")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._host = asyncio.current_task()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._host_cancelled = False

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._tasks.add(self._loop.create_task(self._run(fn, args)))

    async def _run(self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]) -> None:
        # The bookkeeping a done callback would do, done by the task itself as it ends:
        # a done callback costs a loop callback per task, and a run may start one task
        # per node that suspends.
        try:
            await fn(*args)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            if self._error is None:
                self._error = error  # a bug: runners catch every node error
                self._tasks.discard(asyncio.current_task())  # cancel the others only
                self.cancel()
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
        for task in list(self._tasks):
            task.cancel()

    async def _wait(self) -> None:
        while self._tasks:
            self._idle = self._loop.create_future()
            await self._idle

    async def __aenter__(self) -> _AsyncioSpawner:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
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
        if self._error is not None:
            if self._host_cancelled and self._host is not None:
                self._host.uncancel()  # that cancellation only served to raise the error
            raise self._error
        return None


class _TaskGroupSpawner:
    __slots__ = ("_tg",)

    def __init__(self) -> None:
        self._tg = anyio.create_task_group()

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._tg.start_soon(fn, *args)  # type: ignore[arg-type]

    def cancel(self) -> None:
        self._tg.cancel_scope.cancel()

    async def __aenter__(self) -> _TaskGroupSpawner:
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self._tg.__aexit__(t, e, tb)


def open_spawner() -> Spawner:
    """A spawner for the running backend."""
    if sniffio.current_async_library() == "asyncio":
        return _AsyncioSpawner()
    return _TaskGroupSpawner()
