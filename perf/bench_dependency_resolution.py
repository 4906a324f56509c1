"""Dependency resolution as nodes finish: the seed's WorkflowDataDependencyResolution.

The seed measured resolving dependencies (finding the nodes a finished node makes ready)
on linear and diamond graphs of 10 / 100 / 1,000 nodes and found it O(n^2): 641 ns per
node at 10 nodes, 15,214 ns per node at 1,000 (linear). flowrt keeps, per node, a count
of unfinished dependencies and a CSR list of successors, so a status change costs
O(successors): the time per node must stay flat as the graph grows.

What is timed is the real cost: a whole run of the graph, each node a no-op, so that
what is left is the runtime's own work per node (the three status changes READY ->
RUNNING -> SUCCEEDED, the dependency counters, handing outputs on), with no I/O and no
thread hop. Times are per node; the sizes go to 10,000 (in both modes) so that the flat
line is visible past the seed's largest size.

- ``flowrt_sync_loop``: sync no-op nodes with ``executor="loop"`` (called in the event
  loop, no worker thread), the runtime's bookkeeping alone.
- ``flowrt_async``: async no-op nodes (``async def noop(*deps)``).

Both run as ``await rt.run(wf)`` on one ``flowrt.Runtime`` inside one event loop per
pyperf value (a service that runs the same compiled workflow again and again), so
starting an event loop is not counted; the fixed cost of a run (creating its supervisor
and result) is, which is why 10 nodes cost more per node than 1,000. Beside them, on the
same mapping (``perf/baselines.py``):

- ``graphlib_sync``: ``graphlib.TopologicalSorter`` ``get_ready`` / call / ``done`` with
  the sync no-op (the hand-written O(1)-per-change resolver; floor for the sync case);
- ``graphlib_wait``: ``TopologicalSorter`` + one task per ready node + ``asyncio.wait``
  with the async no-op, inside one ``asyncio`` loop per value (beside ``flowrt_async``);
- ``naive_scan``: re-check every pending node's dependencies after each round of
  finishes, the seed's O(n^2) approach, for contrast (up to 1,000 nodes).

    python perf/bench_dependency_resolution.py [--quick] [pyperf options]
"""

from __future__ import annotations

import asyncio
import functools

import anyio
import baselines
import graphs
from _common import (
    Harness,
    check_outputs,
    check_result,
    clock,
    noop,
    noop_sync,
    python_line,
)

import flowrt

TOPOLOGIES = {"Linear": "linear", "Diamond": "diamond"}  # the seed's names -> graphs.py
SIZES = (10, 100, 1_000, 10_000)
NAIVE_MAX = 1_000  # naive_scan is O(n^2): 10,000 nodes would take seconds per run
RUNNERS = ("flowrt_sync_loop", "flowrt_async", "graphlib_sync", "graphlib_wait",
           "naive_scan")
#: The seed's Go figures, ns/op for the whole graph, seed/flow-orchestrator-benchmark-
#: analysis.md, "Dependency Resolution Performance"
#: (BenchmarkWorkflowDataDependencyResolution/{Linear,Diamond}_Size_N).
SEED_NS = {("Linear", 10): 6415, ("Linear", 100): 236719, ("Linear", 1_000): 15214251,
           ("Diamond", 10): 6621, ("Diamond", 100): 172992, ("Diamond", 1_000): 13545006}


@functools.cache
def graph(topology: str, n: int) -> graphs.Graph:
    return graphs.TOPOLOGIES[topology](n)


@functools.cache
def workflow(kind: str, topology: str, n: int) -> flowrt.Workflow:
    wf = flowrt.Workflow(f"deps-{kind}")
    for name, deps in graph(topology, n).items():
        if kind == "sync_loop":
            wf.add(name, noop_sync, deps=deps, executor="loop")
        else:
            wf.add(name, noop, deps=deps)
    wf.compile()
    check_result(wf.run_sync(), n)
    return wf


def time_flowrt(loops: int, kind: str, topology: str, n: int) -> float:
    wf = workflow(kind, topology, n)

    async def main() -> float:
        async with flowrt.Runtime() as rt:
            check_result(await rt.run(wf), n)  # outside the timed region
            t0 = clock()
            for _ in range(loops):
                await rt.run(wf)
            return clock() - t0

    return anyio.run(main)


def time_sync_baseline(loops: int, which: str, topology: str, n: int) -> float:
    g = graph(topology, n)
    fn = getattr(baselines, which)
    check_outputs(fn(g, noop_sync), n, which)
    t0 = clock()
    for _ in range(loops):
        fn(g, noop_sync)
    return clock() - t0


def time_graphlib_wait(loops: int, topology: str, n: int) -> float:
    g = graph(topology, n)

    async def main() -> float:
        check_outputs(await baselines.graphlib_wait(g, noop), n, "graphlib_wait")
        t0 = clock()
        for _ in range(loops):
            await baselines.graphlib_wait(g, noop)
        return clock() - t0

    return asyncio.run(main())


def main() -> None:
    h = Harness(__doc__.split("\n\n")[0])
    sizes = SIZES
    for seed_name, topology in TOPOLOGIES.items():
        for n in sizes:
            base = f"DependencyResolution/{seed_name}_Size_{n}"
            h.bench(f"{base}/flowrt_sync_loop", time_flowrt, "sync_loop", topology, n,
                    inner_loops=n)
            h.bench(f"{base}/flowrt_async", time_flowrt, "async", topology, n,
                    inner_loops=n)
            h.bench(f"{base}/graphlib_sync", time_sync_baseline, "graphlib_sync",
                    topology, n, inner_loops=n)
            h.bench(f"{base}/graphlib_wait", time_graphlib_wait, topology, n,
                    inner_loops=n)
            if n <= NAIVE_MAX:
                h.bench(f"{base}/naive_scan", time_sync_baseline, "naive_scan", topology,
                        n, inner_loops=n)
    if h.worker:
        return
    print(f"\n{python_line()}")
    rows = []
    for seed_name in TOPOLOGIES:
        for n in sizes:
            base = f"DependencyResolution/{seed_name}_Size_{n}"
            rows += [
                (f"{seed_name:<7} {n:>6} flowrt sync (loop)", f"{base}/flowrt_sync_loop",
                 f"{base}/graphlib_sync"),
                (f"{seed_name:<7} {n:>6} flowrt async", f"{base}/flowrt_async",
                 f"{base}/graphlib_wait"),
                (f"{seed_name:<7} {n:>6} graphlib_sync", f"{base}/graphlib_sync", None),
                (f"{seed_name:<7} {n:>6} graphlib_wait", f"{base}/graphlib_wait", None),
                (f"{seed_name:<7} {n:>6} naive_scan", f"{base}/naive_scan",
                 f"{base}/graphlib_sync"),
            ]
    h.summary("Dependency resolution: a whole run of no-op nodes, time per node", rows,
              note="flat across sizes = O(1) per status change")
    print("   the seed's Go figures, per node: " + ", ".join(
        f"{t} {n}: {ns / n:,.0f} ns" for (t, n), ns in SEED_NS.items()))


if __name__ == "__main__":
    main()
