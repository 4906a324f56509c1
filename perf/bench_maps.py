"""Dynamic maps: per-item overhead against static nodes and the peers (issue 13's figures).

pyperf harness: ``python perf/bench_maps.py [--quick] [pyperf options]``.

- ``maps/noop-10000/map``: root -> a node mapped over root's 10,000-item list (no-op
  async items) -> sink; ``maps/noop-10000/static``: the same shape with 10,000 static
  no-op nodes (root -> n0..n9999 -> sink). Target: the map at most 1.5x the static
  nodes, per item.
- ``maps/noop-10000/gather``: ``asyncio.gather`` over 10,000 no-op coroutines, in a new
  event loop per run (``asyncio.run``): the floor.
- ``maps/noop-10000/dask-bag`` and ``dask-delayed``: ``dask.bag.from_sequence(...).map``
  and one ``dask.delayed`` call per item, computed with the sync scheduler (sync no-op
  functions: Dask does not await coroutines). ``maps/noop-1000/dask-client-map``:
  ``client.map`` + ``client.gather`` on a ``distributed.LocalCluster`` (one in-process
  worker of 2 threads, started once per worker process, outside the timing), 1,000
  items.
- ``maps/sleep1ms-1000/memory`` and ``sqlite``: 1,000 items that each ``await
  anyio.sleep(0.001)`` with ``concurrency=50``, in memory and durable (a SQLite store
  kept open by a ``flowrt.Runtime``, every item recorded). Target: at most 1.15x.
- Memory (printed, not pyperf): the peak ``tracemalloc`` size of a run of 100,000 no-op
  items (items list and outputs included) per item. Target: at most 600 B.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import gc
import shutil
import tempfile
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import anyio
from _common import Harness, clock, noop

import flowrt

N = 10_000


async def item(n: int) -> None:
    return None


def item_sync(n: int) -> None:
    return None


@functools.cache
def mapped(n: int = N) -> flowrt.Workflow:
    wf = flowrt.Workflow("mapped")
    wf.add("root", lambda: list(range(n)), executor="loop")
    wf.add("items", item, map={"n": "root"}, max_items=max(n, 1))
    wf.add("sink", noop, deps=["items"])
    wf.compile()
    return wf


@functools.cache
def static(n: int = N) -> flowrt.Workflow:
    wf = flowrt.Workflow("static")
    wf.add("root", noop)
    for i in range(n):
        wf.add(f"n{i}", noop, deps=["root"])
    wf.add("sink", noop, deps=[f"n{i}" for i in range(n)])
    wf.compile()
    return wf


def time_flowrt(loops: int, wf: flowrt.Workflow) -> float:
    async def main() -> float:
        total = 0.0
        async with flowrt.Runtime() as rt:
            for _ in range(loops):
                t0 = clock()
                result = await rt.run(wf, metrics=False)
                total += clock() - t0
                assert result.ok
        return total

    return anyio.run(main)


def time_gather(loops: int) -> float:
    async def main() -> None:
        await asyncio.gather(*[item(i) for i in range(N)])

    total = 0.0
    for _ in range(loops):
        t0 = clock()
        asyncio.run(main())
        total += clock() - t0
    return total


def time_dask_bag(loops: int) -> float:
    import dask.bag as db

    total = 0.0
    for _ in range(loops):
        t0 = clock()
        out = db.from_sequence(range(N), npartitions=8).map(item_sync).compute(
            scheduler="sync")
        total += clock() - t0
        assert len(out) == N
    return total


def time_dask_delayed(loops: int) -> float:
    import dask

    total = 0.0
    for _ in range(loops):
        t0 = clock()
        out = dask.compute(*[dask.delayed(item_sync)(i) for i in range(N)],
                           scheduler="sync")
        total += clock() - t0
        assert len(out) == N
    return total


@functools.cache
def client() -> Any:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                           dashboard_address=None)
    c = Client(cluster)
    atexit.register(cluster.close)
    atexit.register(c.close)
    return c


def time_dask_client_map(loops: int) -> float:
    c = client()
    total = 0.0
    for _ in range(loops):
        t0 = clock()
        futures = c.map(item_sync, range(1000), pure=False)
        out = c.gather(futures)
        total += clock() - t0
        assert len(out) == 1000
    return total


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="flowrt-bench-maps-"))
    atexit.register(shutil.rmtree, path, True)
    return path


async def nap(n: int) -> None:
    await anyio.sleep(0.001)


@functools.cache
def sleepy() -> flowrt.Workflow:
    wf = flowrt.Workflow("sleepy-map")
    wf.add("root", lambda: list(range(1000)), executor="loop")
    wf.add("items", nap, map={"n": "root"}, concurrency=50)
    wf.compile()
    return wf


def time_sleepy(loops: int, durable: bool) -> float:
    db = str(workdir() / f"{uuid.uuid4().hex}.db")

    async def main() -> float:
        total = 0.0
        async with flowrt.Runtime(store=db if durable else None) as rt:
            for _ in range(loops):
                t0 = clock()
                result = await rt.run(sleepy(), run_id=uuid.uuid4().hex)
                total += clock() - t0
                assert result.ok
        return total

    return anyio.run(main)


def peak_bytes_per_item(n: int) -> float:
    """Peak tracemalloc bytes of one run of ``n`` no-op items, per item (the workflow is
    compiled before; the items' list and outputs are counted)."""
    wf = mapped(n)
    gc.collect()
    tracemalloc.start()
    try:
        result = wf.run_sync(metrics=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.ok
    return peak / n


def main() -> None:
    h = Harness(__doc__.splitlines()[0])
    # per item: pyperf divides each value by the item count (inner_loops)
    h.bench("maps/noop-10000/map", functools.partial(time_flowrt, wf=mapped()), inner_loops=N)
    h.bench("maps/noop-10000/static", functools.partial(time_flowrt, wf=static()),
            inner_loops=N)
    h.bench("maps/noop-10000/gather", time_gather, inner_loops=N)
    h.bench("maps/noop-10000/dask-bag", time_dask_bag, inner_loops=N)
    h.bench("maps/noop-10000/dask-delayed", time_dask_delayed, inner_loops=N)
    h.bench("maps/noop-1000/dask-client-map", time_dask_client_map, inner_loops=1000)
    h.bench("maps/sleep1ms-1000/memory", functools.partial(time_sleepy, durable=False))
    h.bench("maps/sleep1ms-1000/sqlite", functools.partial(time_sleepy, durable=True))
    if h.worker:
        return
    h.summary("no-op items, time per item: root -> items -> sink", [
        ("static nodes (root -> 10,000 nodes -> sink)", "maps/noop-10000/static", None),
        ("flowrt map of 10,000 items", "maps/noop-10000/map", "maps/noop-10000/static"),
        ("asyncio.gather (floor)", "maps/noop-10000/gather", "maps/noop-10000/static"),
        ("dask.bag, sync scheduler", "maps/noop-10000/dask-bag", "maps/noop-10000/static"),
        ("dask.delayed, sync scheduler", "maps/noop-10000/dask-delayed",
         "maps/noop-10000/static"),
        ("dask client.map, LocalCluster (1,000)", "maps/noop-1000/dask-client-map",
         "maps/noop-10000/static"),
    ], unit="us", note="target: the map at most 1.5x the static nodes")
    h.summary("durable map: 1,000 items x 1 ms, concurrency=50", [
        ("in memory", "maps/sleep1ms-1000/memory", None),
        ("SQLite store kept open (Runtime)", "maps/sleep1ms-1000/sqlite",
         "maps/sleep1ms-1000/memory"),
    ], unit="ms", note="target: at most 1.15x in memory")
    if h.selected("memory"):
        n = 100_000
        print(f"\n== peak memory of a map of {n:,} no-op items (tracemalloc)\n"
              "   target: at most 600 B per item")
        print(f"   {peak_bytes_per_item(n):.0f} B per item")


if __name__ == "__main__":
    main()
