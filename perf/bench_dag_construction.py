"""DAG construction: build (``wf.add`` per node) + ``wf.compile()``, beside graphlib.

The seed's ``DAGConstruction_{10,100,1000,10000}_Nodes`` (random DAGs) and
``DAGTopologyCreation/{Linear,Diamond,BinaryTree,Random}DAG`` (100 nodes). Each flowrt
figure is a new ``flowrt.Workflow``, one ``wf.add(name, noop, deps=deps)`` per node of
the mapping from ``perf/graphs.py``, then ``wf.compile()`` (validation, ids, CSR arrays,
topological order). Beside it, ``graphlib.TopologicalSorter(deps).prepare()`` on the same
mapping (which builds graphlib's node table and checks for cycles). Times are per node.

    python perf/bench_dag_construction.py [--quick] [pyperf options, e.g. -o out.json]
"""

from __future__ import annotations

import functools
import graphlib

import graphs
from _common import Harness, clock, noop

import flowrt

SIZES = (10, 100, 1_000, 10_000)
FULL_SIZES = (100_000,)
TOPOLOGY_SIZE = 100
TOPOLOGIES = {  # the seed's names -> perf/graphs.py
    "LinearDAG": "linear",
    "DiamondDAG": "diamond",
    "BinaryTreeDAG": "binary_tree",
    "RandomDAG": "random",
}
#: The seed's Go figures (ns/op for the whole graph), seed/flow-orchestrator-benchmark-
#: analysis.md, "DAG Construction Performance" and "DAG Topology Performance".
SEED_NS = {10: 3362, 100: 17930, 1_000: 173131, 10_000: 1943485,
           "LinearDAG": 27808, "DiamondDAG": 50106, "BinaryTreeDAG": 29031,
           "RandomDAG": 265029}


@functools.cache
def graph(topology: str, n: int) -> graphs.Graph:
    return graphs.TOPOLOGIES[topology](n)


def time_flowrt(loops: int, topology: str, n: int, compile: bool = True) -> float:
    """``wf.add`` per node, then ``wf.compile()`` (without it: how the time splits)."""
    g = graph(topology, n)
    t0 = clock()
    for _ in range(loops):
        wf = flowrt.Workflow("dag")
        for name, deps in g.items():
            wf.add(name, noop, deps=deps)
        if compile:
            wf.compile()
    return clock() - t0


def time_flowrt_add_only(loops: int, topology: str, n: int) -> float:
    return time_flowrt(loops, topology, n, compile=False)


def time_graphlib(loops: int, topology: str, n: int) -> float:
    g = graph(topology, n)
    t0 = clock()
    for _ in range(loops):
        graphlib.TopologicalSorter(g).prepare()
    return clock() - t0


def main() -> None:
    h = Harness(__doc__.split("\n\n")[0])
    sizes = SIZES + (() if h.quick else FULL_SIZES)
    for n in sizes:
        heavy = n >= 100_000
        base = f"DAGConstruction/{n}_nodes"
        h.bench(f"{base}/flowrt", time_flowrt, "random", n, inner_loops=n, heavy=heavy)
        h.bench(f"{base}/graphlib_prepare", time_graphlib, "random", n, inner_loops=n,
                heavy=heavy)
        if n == 10_000:
            h.bench(f"{base}/flowrt_add_only", time_flowrt_add_only, "random", n,
                    inner_loops=n)
    for seed_name, topology in TOPOLOGIES.items():
        base = f"DAGTopologyCreation/{seed_name}"
        h.bench(f"{base}/flowrt", time_flowrt, topology, TOPOLOGY_SIZE,
                inner_loops=TOPOLOGY_SIZE)
        h.bench(f"{base}/graphlib_prepare", time_graphlib, topology, TOPOLOGY_SIZE,
                inner_loops=TOPOLOGY_SIZE)

    if h.worker:
        return
    rows = []
    for n in sizes:
        base = f"DAGConstruction/{n}_nodes"
        rows += [(f"random {n:>7} flowrt", f"{base}/flowrt", f"{base}/graphlib_prepare"),
                 (f"random {n:>7} graphlib", f"{base}/graphlib_prepare", None)]
        if n == 10_000:
            rows.append((f"random {n:>7} add only", f"{base}/flowrt_add_only",
                         f"{base}/flowrt"))
    for seed_name in TOPOLOGIES:
        base = f"DAGTopologyCreation/{seed_name}"
        rows += [(f"{seed_name:<14} flowrt", f"{base}/flowrt", f"{base}/graphlib_prepare"),
                 (f"{seed_name:<14} graphlib", f"{base}/graphlib_prepare", None)]
    h.summary("DAG construction, time per node (median of pyperf values)", rows,
              note="ratio: flowrt build+compile / graphlib prepare on the same mapping "
                   "(target <= 0.8 at 10,000 nodes)")
    print("\n   the seed's Go figures, per node: " + ", ".join(
        f"{k}: {v / (k if isinstance(k, int) else TOPOLOGY_SIZE):.0f} ns"
        for k, v in SEED_NS.items()))
    base = "DAGConstruction/10000_nodes"
    r = h.ratio(f"{base}/flowrt", f"{base}/graphlib_prepare")
    if r is not None:
        print(f"\n   headline: 10,000-node random DAG, flowrt / graphlib = {r:.3f} "
              f"(target <= 0.8): {'met' if r <= 0.8 else 'NOT met'}")


if __name__ == "__main__":
    main()
