"""The executors that run a sync callable on this machine: threads and processes."""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
from collections import deque
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

    At most ``max_workers`` calls are in the pool at once; the others wait here, where
    cancelling them costs nothing. A call cancelled while in the pool (a node's timeout,
    a cancelled run) cannot be stopped inside its worker, so the worker is: the pool is
    retired at once (new calls go to a new pool) and its processes are killed as soon as
    the calls still running on it have ended. So a timeout or a cancellation takes effect
    when it happens, and no abandoned call keeps a worker busy.
    """

    def __init__(self, max_workers: int | None = None, mp_context: str = "spawn") -> None:
        self.max_workers = max_workers or os.cpu_count() or 1
        self.mp_context = mp_context
        self._pool: ProcessPoolExecutor | None = None
        self._in_pool = 0  # calls submitted and not over (at most max_workers)
        self._queue: deque[anyio.Event] = deque()  # calls waiting for room in the pool
        #: per pool, the calls someone awaits
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
        # Room first: a call submitted to the pool may sit in its queue, where a worker
        # busy with a cancelled call would hold it up; here waiting costs nothing.
        await self._enter()
        try:
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
                # Cancelled. The call runs in a worker (or is about to): it cannot be
                # stopped there, so that worker must go.
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
        finally:
            self._leave()
        try:
            return future.result()
        except BrokenProcessPool:
            self._discard(pool)
            raise

    async def _enter(self) -> None:
        """Wait until fewer than ``max_workers`` calls are in the pool, and count this one."""
        if self._in_pool < self.max_workers and not self._queue:
            self._in_pool += 1
            return
        ready = anyio.Event()
        self._queue.append(ready)
        try:
            await ready.wait()  # _leave hands its place over: _in_pool stays counted
        except BaseException:
            if ready.is_set():
                self._leave()  # handed a place while being cancelled: pass it on
            else:
                self._queue.remove(ready)
            raise

    def _leave(self) -> None:
        if self._queue:
            self._queue.popleft().set()
        else:
            self._in_pool -= 1

    def _retire(self, pool: ProcessPoolExecutor) -> None:
        """``pool`` runs a call nobody waits for: stop using it, kill it when it is idle."""
        if self._pool is pool:
            self._pool = None
        if self._waiting.get(pool):
            self._retired.add(pool)
        else:
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
        """Shut the pool down: wait for the calls it runs (calls still queued are
        cancelled), kill what runs for nobody; it restarts if used."""
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
