"""The executors that run a sync callable on this machine: threads and processes."""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import anyio
import anyio.to_thread

from ._base import run_in_thread, until_called

__all__ = ["ProcessExecutor", "ThreadExecutor"]


class ThreadExecutor:
    """Worker threads (anyio's), at most ``max_workers`` busy at once.

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
    and the pool is replaced for the next calls. ``mp_context`` defaults to "spawn"
    (safe with threads, the same on every OS); pass "fork" or "forkserver" to choose.

    A call cancelled while it runs (a node's timeout, a cancelled run) cannot be stopped
    inside its worker, so the worker is stopped: the pool is retired at once (new calls
    go to a new pool, and calls of the old one that have not started move there), and
    its processes are killed as soon as no call still waits on it. So a timeout or a
    cancellation takes effect when it happens, and no abandoned call keeps a worker busy.
    """

    def __init__(self, max_workers: int | None = None, mp_context: str = "spawn") -> None:
        self.max_workers = max_workers or os.cpu_count() or 1
        self.mp_context = mp_context
        self._pool: ProcessPoolExecutor | None = None
        #: per pool, the futures of the calls someone awaits
        self._waiting: dict[ProcessPoolExecutor, set[Future[Any]]] = {}
        #: pools running a cancelled call: killed when nobody waits on them any more
        self._retired: set[ProcessPoolExecutor] = set()

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.max_workers, mp_context=multiprocessing.get_context(self.mp_context)
            )
        return self._pool

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
        while True:
            pool = self._get_pool()
            try:
                future = pool.submit(fn, *args, **kwargs)
            except BrokenProcessPool:
                self._discard(pool)
                pool = self._get_pool()
                future = pool.submit(fn, *args, **kwargs)
            waiting = self._waiting.setdefault(pool, set())
            waiting.add(future)
            try:
                if not future.done():
                    await until_called(future.add_done_callback)
            except BaseException:
                # Cancelled: a call that has not started is dropped; one that runs in a
                # worker cannot be stopped there, so that worker must go.
                if not future.cancel() and not future.done():
                    self._retire(pool)
                raise
            finally:
                waiting.discard(future)
                if not waiting:
                    del self._waiting[pool]
                    if pool in self._retired:
                        self._retired.discard(pool)
                        _kill_workers(pool)
            if future.cancelled() and pool is not self._pool and self._pool is not None:
                continue  # moved off a retired pool before it started: run it on the new one
            try:
                return future.result()
            except BrokenProcessPool:
                self._discard(pool)
                raise

    def _retire(self, pool: ProcessPoolExecutor) -> None:
        """``pool`` runs a call nobody waits for: stop using it, kill it when it is idle."""
        if self._pool is pool:
            self._pool = None
            self._get_pool()  # the calls moved off the old pool go to the new one
        self._retired.add(pool)
        waiting = self._waiting.get(pool, ())
        for future in list(waiting):
            future.cancel()  # those that have not started yet: their callers resubmit
        if not waiting:
            self._retired.discard(pool)
            _kill_workers(pool)

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> ProcessExecutor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Shut the pool down: wait for the calls it runs, kill what runs for nobody."""
        pool, self._pool = self._pool, None
        for retired in list(self._retired):
            self._retired.discard(retired)
            _kill_workers(retired)
        if pool is not None:
            await anyio.to_thread.run_sync(functools.partial(pool.shutdown, wait=True,
                                                             cancel_futures=True))

    def __repr__(self) -> str:
        return f"<ProcessExecutor max_workers={self.max_workers} {self.mp_context}>"


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the worker processes of ``pool`` and shut it down without waiting."""
    # CPython keeps a pool's workers in _processes (pid -> Process); Python 3.14 adds
    # ProcessPoolExecutor.kill_workers() for this.
    workers = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for worker in workers:
        with contextlib.suppress(Exception):  # already gone
            worker.kill()
