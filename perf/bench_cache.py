"""Cached nodes: a hit's cost per node against running the no-op node itself (issue 16).

pyperf harness: ``python perf/bench_cache.py [--quick] [pyperf options]``.

- ``cache/noop-10000/{run,hit}-memory``: 10,000 no-op async nodes (random DAG) in a
  ``flowrt.Runtime`` without a store: ``run`` without ``cache=``, ``hit`` every node
  with ``cache=flowrt.Cache(version="1")`` and every key in the runtime's memory cache
  (a first run filled it). Per run; divide by 10,000 for the time per node.
- ``cache/noop-10000/{run,hit}-sqlite``: the same as durable runs on an SQLite store
  kept open by the runtime: ``run`` records every node; ``hit`` reads every node from
  the store's cache table and records it ``cached``.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import uuid
from pathlib import Path

import anyio
from _common import Harness, clock, noop
from graphs import random_dag

import flowrt

N = 10_000


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="flowrt-bench-cache-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@functools.cache
def workflow(cached: bool) -> flowrt.Workflow:
    wf = flowrt.Workflow("cache-bench")
    cache = flowrt.Cache(version="1") if cached else None
    for node, deps in random_dag(N).items():
        if cache is None:
            wf.add(node, noop, deps=deps)
        else:
            wf.add(node, noop, deps=deps, cache=cache)
    wf.compile()
    return wf


def time_runs(loops: int, mode: str, cached: bool) -> float:
    wf = workflow(cached)
    store = (flowrt.SQLiteStore(workdir() / f"{uuid.uuid4().hex}.db")
             if mode == "sqlite" else None)

    async def main() -> float:
        total = 0.0
        async with flowrt.Runtime(store=store) as rt:
            if cached:  # fill the cache: every timed run is all hits
                first = await rt.run(wf, run_id=uuid.uuid4().hex)
                assert first.ok
                if store is not None:
                    store.flush()
            for _ in range(loops):
                t0 = clock()
                result = await rt.run(wf, run_id=uuid.uuid4().hex)
                total += clock() - t0
                assert result.ok
                if cached:
                    assert result.counts() == {"cached": N}, result.counts()
        return total

    try:
        return anyio.run(main)
    finally:
        if store is not None:
            store.close()


def main() -> None:
    h = Harness(__doc__.splitlines()[0])
    for mode in ("memory", "sqlite"):
        h.bench(f"cache/noop-{N}/run-{mode}", functools.partial(time_runs, mode=mode,
                                                                cached=False))
        h.bench(f"cache/noop-{N}/hit-{mode}", functools.partial(time_runs, mode=mode,
                                                                cached=True))
    h.summary(f"cached no-op nodes (all hits) vs running them, {N:,} nodes", [
        ("run, in memory", f"cache/noop-{N}/run-memory", None),
        ("hit, runtime's memory cache", f"cache/noop-{N}/hit-memory",
         f"cache/noop-{N}/run-memory"),
        ("run, SQLite store", f"cache/noop-{N}/run-sqlite", None),
        ("hit, SQLite store's cache", f"cache/noop-{N}/hit-sqlite",
         f"cache/noop-{N}/run-sqlite"),
    ], unit="ms")
    if not h.worker:
        for mode in ("memory", "sqlite"):
            run = h.median(f"cache/noop-{N}/run-{mode}")
            hit = h.median(f"cache/noop-{N}/hit-{mode}")
            if run is not None and hit is not None:
                print(f"   per node, {mode}: run {run / N * 1e6:.2f} us, "
                      f"hit {hit / N * 1e6:.2f} us")


if __name__ == "__main__":
    main()
