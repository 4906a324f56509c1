"""The executors that run a sync callable on this machine: threads and processes."""

from __future__ import annotations

import concurrent.futures
import functools
import multiprocessing
import os
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread

from ._base import run_in_thread, wait_future

__all__ = ["ProcessExecutor", "ThreadExecutor"]


class ThreadExecutor:
    """Worker threads (anyio's), at most ``max_workers`` busy at once.

    What ``executor="thread"`` makes; its own limiter, apart from the runtime's
    (``Runtime(threads=...)``).

    A cancelled call abandons its thread: Python cannot interrupt a thread, so the
    function runs to its end and its result is thrown away.
    """

    def __init__(self, max_workers: int = 40) -> None:
        self.max_workers = max_workers
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_workers)
        return await run_in_thread(self._limiter, fn, args, kwargs)

    def __repr__(self) -> str:
        return f"<ThreadExecutor max_workers={self.max_workers}>"


class ProcessExecutor:
    """A pool of worker processes (``concurrent.futures.ProcessPoolExecutor``).

    The callable, its arguments and its result must pickle. A worker that dies fails
    the attempt it ran with ``BrokenProcessPool`` (so a node with retries is retried)
    and the pool is replaced for the next calls.

    Args:
        max_workers: processes in the pool (default: the number of CPUs).
        mp_context: how workers start: "spawn" (the default: safe with threads, the
            same on every OS), "fork" or "forkserver".

    The pool starts at the first call; :meth:`aclose` (or ``async with``) stops it.
    """

    def __init__(self, max_workers: int | None = None, mp_context: str = "spawn") -> None:
        self.max_workers = max_workers or os.cpu_count() or 1
        self.mp_context = mp_context
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _get_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.max_workers, mp_context=multiprocessing.get_context(self.mp_context)
            )
        return self._pool

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
        pool = self._get_pool()
        try:
            future = pool.submit(fn, *args, **kwargs)
        except concurrent.futures.process.BrokenProcessPool:
            self._discard(pool)
            future = self._get_pool().submit(fn, *args, **kwargs)
        try:
            return await wait_future(future)
        except concurrent.futures.process.BrokenProcessPool:
            self._discard(pool)
            raise

    def _discard(self, pool: concurrent.futures.ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> ProcessExecutor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Shut the pool down (calls still queued are cancelled); it restarts if used."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await anyio.to_thread.run_sync(functools.partial(pool.shutdown, wait=True,
                                                             cancel_futures=True))

    def __repr__(self) -> str:
        return f"<ProcessExecutor max_workers={self.max_workers} {self.mp_context}>"
