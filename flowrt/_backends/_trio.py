"""The trio backend (see :mod:`flowrt._backends`).

The spawner is an anyio task group: trio's nurseries already cost little per task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final

import anyio
import trio

__all__ = ["TaskGroupSpawner", "call_soon", "name", "open_spawner", "really_cancelled",
           "threadsafe_call_soon"]

name: Final = "trio"


class TaskGroupSpawner:
    """An anyio task group behind the :class:`flowrt._backends.Spawner` interface."""

    __slots__ = ("_tg",)

    def __init__(self) -> None:
        self._tg = anyio.create_task_group()

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._tg.start_soon(fn, *args)  # type: ignore[arg-type]

    def cancel(self) -> None:
        self._tg.cancel_scope.cancel()

    async def __aenter__(self) -> TaskGroupSpawner:
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self._tg.__aexit__(t, e, tb)


def open_spawner() -> TaskGroupSpawner:
    """A new :class:`TaskGroupSpawner`."""
    return TaskGroupSpawner()


def really_cancelled() -> bool:
    """Always True: on trio, only a cancel scope raises ``Cancelled``."""
    return True


def call_soon() -> Callable[[Callable[[], object]], object]:
    """The running trio loop's ``run_sync_soon``."""
    return trio.lowlevel.current_trio_token().run_sync_soon


def threadsafe_call_soon() -> Callable[[Callable[[], object]], None]:
    """Call soon in the running trio loop, from any thread; nothing once it has ended."""
    token = trio.lowlevel.current_trio_token()

    def call(fn: Callable[[], object]) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(fn)

    return call
