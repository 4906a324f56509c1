"""What a Python user could write or pick instead of flowrt, for the same work.

Each baseline takes the same dependency mapping (name -> dependency names) and a node
function, runs the whole graph (every node, each after its dependencies) and returns
the outputs. They are written the way a competent user would write them, without
tricks that only work for no-op nodes.
"""

from __future__ import annotations

import asyncio
import graphlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

Graph = Mapping[str, Sequence[str]]
AsyncNode = Callable[..., Awaitable[Any]]


async def sequential_await(graph: Graph, fn: AsyncNode) -> dict[str, Any]:
    """The floor: await every node in topological order, one at a time."""
    out: dict[str, Any] = {}
    for name in graphlib.TopologicalSorter(graph).static_order():
        out[name] = await fn(*[out[d] for d in graph.get(name, ())])
    return out


async def graphlib_wait(graph: Graph, fn: AsyncNode) -> dict[str, Any]:
    """``graphlib.TopologicalSorter`` + ``asyncio.wait``: one task per ready node."""
    ts = graphlib.TopologicalSorter(graph)
    ts.prepare()
    out: dict[str, Any] = {}
    running: dict[asyncio.Task[Any], str] = {}

    def start_ready() -> None:
        for name in ts.get_ready():
            task = asyncio.ensure_future(fn(*[out[d] for d in graph.get(name, ())]))
            running[task] = name

    start_ready()
    while running:
        done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            name = running.pop(task)
            out[name] = task.result()
            ts.done(name)
        start_ready()
    return out


async def taskgroup_events(graph: Graph, fn: AsyncNode) -> dict[str, Any]:
    """``asyncio.TaskGroup``, one task per node that waits on its deps' events."""
    out: dict[str, Any] = {}
    events = {name: asyncio.Event() for name in graph}

    async def node(name: str, deps: Sequence[str]) -> None:
        for d in deps:
            await events[d].wait()
        out[name] = await fn(*[out[d] for d in deps])
        events[name].set()

    async with asyncio.TaskGroup() as tg:
        for name, deps in graph.items():
            tg.create_task(node(name, deps))
    return out


def graphlib_sync(graph: Graph, fn: Callable[..., Any]) -> dict[str, Any]:
    """``graphlib.TopologicalSorter`` driving sync calls: ``get_ready`` / call / ``done``.

    What a user writes to resolve dependencies as nodes finish, without an event loop:
    graphlib keeps a count of unfinished predecessors per node, so each ``done`` costs
    O(successors), O(1) per status change on these graphs.
    """
    ts = graphlib.TopologicalSorter(graph)
    ts.prepare()
    out: dict[str, Any] = {}
    while ts.is_active():
        for name in ts.get_ready():
            out[name] = fn(*[out[d] for d in graph.get(name, ())])
            ts.done(name)
    return out


def naive_scan(graph: Graph, fn: Callable[..., Any]) -> dict[str, Any]:
    """Resolve dependencies by scanning every waiting node after each round of finishes.

    The approach the seed measured as O(n^2) (BenchmarkWorkflowDataDependencyResolution):
    no successor lists and no counters, so readiness is found by checking every pending
    node's dependencies again. Here for contrast only, not as an alternative to pick.
    """
    out: dict[str, Any] = {}
    pending = list(graph)
    while pending:
        ready = [name for name in pending if all(d in out for d in graph[name])]
        if not ready:
            raise ValueError("cycle or unknown dependency")
        for name in ready:
            out[name] = fn(*[out[d] for d in graph[name]])
        pending = [name for name in pending if name not in out]
    return out


def _dask_graph(graph: Graph, fn: Callable[..., Any]) -> dict[str, Any]:
    return {name: (fn, *deps) for name, deps in graph.items()}


def dask_get_sync(graph: Graph, fn: Callable[..., Any]) -> dict[str, Any]:
    """``dask.local.get_sync`` on the equivalent task graph, every key requested."""
    from dask.local import get_sync

    keys = list(graph)
    return dict(zip(keys, get_sync(_dask_graph(graph, fn), keys), strict=True))


def dask_threaded(graph: Graph, fn: Callable[..., Any]) -> dict[str, Any]:
    """``dask.threaded.get`` (a thread pool) on the equivalent task graph."""
    from dask.threaded import get

    keys = list(graph)
    return dict(zip(keys, get(_dask_graph(graph, fn), keys), strict=True))


async def gather(n: int, fn: AsyncNode) -> list[Any]:
    """``asyncio.gather`` of n independent calls (the seed's DirectGoroutines)."""
    return await asyncio.gather(*(fn() for _ in range(n)))


async def semaphore(n: int, fn: AsyncNode, limit: int) -> list[Any]:
    """n independent calls, at most ``limit`` at once, through an ``asyncio.Semaphore``."""
    sem = asyncio.Semaphore(limit)

    async def limited() -> Any:
        async with sem:
            return await fn()

    return await asyncio.gather(*(limited() for _ in range(n)))


async def workers_floor(workers: int, per_worker: int, fn: AsyncNode) -> int:
    """The floor of the I/O scaling benchmark: ``workers`` tasks, each awaiting ``fn()``
    ``per_worker`` times in a row. No graph, no limit, no bookkeeping: what the event
    loop alone costs for the same sleeps. Returns how many calls ran."""

    async def worker() -> int:
        for _ in range(per_worker):
            await fn()
        return per_worker

    return sum(await asyncio.gather(*(worker() for _ in range(workers))))


class DictStore:
    """The plain-dict baseline of ``WorkflowData``: set / get / delete / clear."""

    __slots__ = ("_d",)

    def __init__(self) -> None:
        self._d: dict[str, Any] = {}

    def set(self, key: str, value: Any) -> None:
        self._d[key] = value

    def get(self, key: str, default: Any = None) -> Any:
        return self._d.get(key, default)

    def delete(self, key: str) -> bool:
        return self._d.pop(key, None) is not None

    def reset(self) -> None:
        self._d.clear()


class DictInterner:
    """The hand-written interner baseline: a dict of key -> next id."""

    __slots__ = ("_ids",)

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def intern(self, key: str) -> int:
        ids = self._ids
        i = ids.get(key)
        if i is None:
            i = ids[key] = len(ids)
        return i

    def intern_many(self, keys: Sequence[str]) -> list[int]:
        ids = self._ids
        get = ids.get
        out = []
        for key in keys:
            i = get(key)
            if i is None:
                i = ids[key] = len(ids)
            out.append(i)
        return out
