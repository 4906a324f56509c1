"""``DaskExecutor``: sync nodes run on a Dask cluster (the ``dask`` extra).

flowrt keeps orchestrating -- dependencies, retries with backoff, per-attempt timeouts,
limits, durable state -- and hands each sync node's call to Dask. Dask's own retries are
off (flowrt's replace them); a timed-out or cancelled attempt is cancelled on the
cluster; an exception raised on a worker reaches ``RunResult.errors`` with its own type,
the worker's traceback added as a note.

An output stays on the cluster when only nodes on the same executor read it: the next
node gets the Dask future, and Dask moves the data between workers without a trip
through this process. Outputs come back when a node elsewhere, the store or the run's
result needs them (the result's in one batch at the end of the run).

The client runs its own event loop in a thread of its own (a synchronous
``distributed.Client``), so it works the same under asyncio and trio and never competes
with the application's loop; flowrt waits for futures through callbacks.
"""

from __future__ import annotations

import functools
import traceback
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread

from ._base import Remote, until_called

__all__ = ["DaskExecutor"]


def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # Runs on a worker. Futures inside args/kwargs have been replaced by their values.
    return fn(*args, **kwargs)


def _unwrap(value: Any, executor: DaskExecutor) -> Any:
    if type(value) is Remote and value.executor is executor:
        return value.handle
    return value


class DaskExecutor:
    """Run sync nodes on a Dask cluster.

    ``DaskExecutor(client)`` uses a ``distributed.Client`` you made (and still own);
    ``DaskExecutor(address="tcp://scheduler:8786")`` connects to a running scheduler;
    ``DaskExecutor()`` starts a ``LocalCluster`` (``n_workers`` processes of
    ``threads_per_worker`` threads; ``cluster_options``, the other keyword arguments,
    go to ``LocalCluster``) and owns it. What the executor started, :meth:`aclose` (or
    ``async with``) stops.

    Raises:
        ValueError: both ``client`` and ``address`` are given.
    """

    def __init__(self, client: Any = None, *, address: str | None = None,
                 n_workers: int = 2, threads_per_worker: int = 1,
                 **cluster_options: Any) -> None:
        if client is not None and address is not None:
            raise ValueError("give DaskExecutor a client or an address, not both")
        self._client = client
        self._address = address
        self._cluster_options = dict(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                     dashboard_address=None)  # no web server unless asked
        self._cluster_options.update(cluster_options)
        self._cluster: Any = None
        self._owns_client = client is None
        self._lock: anyio.Lock | None = None
        self._counter = 0
        self._token = uuid.uuid4().hex[:12]  # task keys unique across drivers

    # -- lifecycle ------------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (None until first used, when the executor makes it)."""
        return self._client

    async def start(self) -> DaskExecutor:
        """Connect (or start the cluster) now rather than at the first node."""
        await self._ensure_client()
        return self

    async def _ensure_client(self) -> Any:
        if self._client is not None:
            return self._client
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self._client is None:
                self._client = await anyio.to_thread.run_sync(self._connect)
        return self._client

    def _connect(self) -> Any:
        from distributed import Client, LocalCluster

        if self._address is not None:
            return Client(self._address, asynchronous=False)  # type: ignore[no-untyped-call]
        self._cluster = LocalCluster(**self._cluster_options)  # type: ignore[no-untyped-call]
        return Client(self._cluster, asynchronous=False)  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        """Close the client and the cluster if this executor made them."""
        client, cluster = self._client, self._cluster
        if self._owns_client:
            self._client = None
        self._cluster = None
        with anyio.CancelScope(shield=True):
            if client is not None and self._owns_client:
                await anyio.to_thread.run_sync(client.close)
            if cluster is not None:
                await anyio.to_thread.run_sync(cluster.close)

    async def __aenter__(self) -> DaskExecutor:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- running --------------------------------------------------------------------

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any], keep: bool = False) -> Any:
        """Run ``fn(*args, **kwargs)`` on the cluster; a :class:`Remote` when ``keep``."""
        client = await self._ensure_client()
        args = tuple(_unwrap(a, self) for a in args)
        kwargs = {k: _unwrap(v, self) for k, v in kwargs.items()}
        self._counter += 1
        name = getattr(fn, "__name__", "node")
        future = client.submit(_call, fn, args, kwargs, pure=False, retries=0,
                               key=f"flowrt-{name}-{self._token}-{self._counter}")
        try:
            if not future.done():
                await until_called(future.add_done_callback)
        except BaseException:
            # Cancelled (a timeout, or the run): cancel the task on the cluster too.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(functools.partial(future.cancel, force=True))
            raise
        if future.status == "error":
            try:
                raise await anyio.to_thread.run_sync(_error_of, future)
            finally:
                future.release()
        if keep:
            return Remote(self, future)
        try:
            return await anyio.to_thread.run_sync(future.result)
        finally:
            future.release()

    async def fetch_many(self, handles: list[Any]) -> list[Any]:
        """The values of ``handles``, futures this executor left on the cluster, in order."""
        client = await self._ensure_client()
        return list(await anyio.to_thread.run_sync(client.gather, handles))

    def release(self, handles: list[Any]) -> None:
        """Let the cluster forget the outputs of ``handles``."""
        for future in handles:
            future.release()

    def __repr__(self) -> str:
        where = self._address or ("LocalCluster" if self._client is None else self._client)
        return f"<DaskExecutor {where}>"


def _error_of(future: Any) -> BaseException:
    """The exception a task raised on a worker, with the worker's traceback as a note."""
    error: BaseException = future.exception()
    tb = future.traceback()
    text = "".join(traceback.format_tb(tb)) if tb is not None else ""
    if text:
        error.add_note("Traceback on the Dask worker:\n" + text)
    return error
