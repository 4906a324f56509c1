"""What flowrt does differently on each event loop: one module per backend.

anyio hides the event loop almost everywhere. Four things it does not offer in the form
or at the speed flowrt needs, so each backend module provides them, the way anyio lays
out its own backends (``anyio/_backends/_asyncio.py``, ``_trio.py``):

- ``open_spawner()``: the task group of a run's runner tasks. On asyncio the runners are
  plain tasks supervised by :mod:`._asyncio` (``TaskGroup.start_soon`` costs several
  times ``loop.create_task``; docs/decisions/003-runners-not-tasks.md); on trio, an
  anyio task group.
- ``really_cancelled()``: whether a cancellation exception caught in the current task
  is a request to cancel that task. On asyncio a coroutine can raise ``CancelledError``
  by itself (it awaited something that was cancelled); on trio it cannot.
- ``call_soon()``: the loop's "call this on its next turn", from the loop's own thread
  (durable checkpoints hand their records to the store once per turn).
- ``threadsafe_call_soon()``: the same from any thread, dropped quietly once the loop has
  ended (an executor wakes the waiting task from a process pool's or a Dask client's
  thread).

Look the backend up once, where a run (or a call) starts, with :func:`current`; after
that the calls are direct (structlog's habit: the fast path is chosen once, not per
node).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import sniffio

__all__ = ["Backend", "Spawner", "current", "running"]


class Spawner(Protocol):
    """Starts tasks that all end before its ``async with`` block does.

    A task group's structure: the block does not end before every task has; leaving it
    by an exception, :meth:`cancel` or the cancellation of the enclosing scope cancels
    every task; an unexpected error in a task cancels the others and is raised from the
    block. A task spawned after :meth:`cancel` is cancelled at once; spawning after the
    block ended raises ``RuntimeError``.
    """

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None: ...

    def cancel(self) -> None: ...

    async def __aenter__(self) -> Spawner: ...

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> bool | None: ...


class Backend(Protocol):
    """What a backend module provides (see the module docs)."""

    @property
    def name(self) -> str: ...

    def open_spawner(self) -> Spawner: ...

    def really_cancelled(self) -> bool: ...

    def call_soon(self) -> Callable[[Callable[[], object]], object]: ...

    def threadsafe_call_soon(self) -> Callable[[Callable[[], object]], None]: ...


_loaded: dict[str, Backend] = {}


def current() -> Backend:
    """The backend of the running event loop (asyncio or trio).

    Raises ``RuntimeError`` outside an event loop or on another one.
    """
    try:
        return _loaded[sniffio.current_async_library()]
    except KeyError:
        pass
    except sniffio.AsyncLibraryNotFoundError:
        raise RuntimeError("flowrt needs a running asyncio or trio event loop") from None
    name = sniffio.current_async_library()
    backend: Backend
    if name == "asyncio":
        from . import _asyncio as backend
    elif name == "trio":
        from . import _trio as backend
    else:
        raise RuntimeError(f"flowrt runs on asyncio or trio, not on {name!r}")
    _loaded[name] = backend
    return backend


def running() -> str | None:
    """The name of the event loop running in this thread ("asyncio", "trio"...), or None."""
    try:
        return sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        pass
    try:  # a plain callback of a running asyncio loop has no current task
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    return "asyncio"


if TYPE_CHECKING:  # both modules provide every function of Backend
    from . import _asyncio, _trio

    _asyncio_backend: Backend = _asyncio
    _trio_backend: Backend = _trio
