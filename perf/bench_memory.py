"""Memory per node (tracemalloc): build + compile, and build + compile + run, 100,000 nodes.

Not a timing benchmark and not a pyperf script. Each scenario runs in a fresh Python
process (``--child``), so that nothing another scenario allocated or cached is counted.
In that process: flowrt, anyio and the baselines are imported and warmed up on a
10-node graph (lazy imports, the event loop machinery), the dependency mapping is built
(``perf/graphs.py: random_dag``; the mapping and its name strings are the input, not
counted), the garbage collector runs, then tracemalloc starts and the scenario runs.

- *peak*: the most memory traced at once during the scenario, over what was traced
  when it started;
- *retained*: what is still traced after it (and a ``gc.collect()``), while the
  scenario holds on to what a user would hold (the workflow and its plan; the run's
  result; the baseline's outputs).

Scenarios: ``flowrt_build_compile`` (``wf.add`` per node + ``wf.compile()``; target
<= 600 B/node), ``flowrt_build_compile_run`` (the same + ``wf.run_sync()`` with no-op
async nodes; target <= 1,000 B/node), ``flowrt_run`` (only ``wf.run_sync()`` of an
already compiled workflow), and for reference ``graphlib_prepare``
(``graphlib.TopologicalSorter(deps).prepare()``), ``graphlib_wait`` and
``sequential_await`` (``perf/baselines.py``, under ``asyncio.run``), and
``graph_mapping`` (the input mapping itself, built under tracing).

    python perf/bench_memory.py [--nodes N] [--quick] [-o FILE.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tracemalloc
from typing import Any

SCENARIOS = ("flowrt_build_compile", "flowrt_build_compile_run", "flowrt_run",
             "graphlib_prepare", "graphlib_wait", "sequential_await", "graph_mapping")
QUICK_SCENARIOS = ("flowrt_build_compile", "flowrt_build_compile_run", "graphlib_prepare",
                   "graphlib_wait")
TARGETS = {"flowrt_build_compile": 600, "flowrt_build_compile_run": 1_000}
HERE = os.path.dirname(os.path.abspath(__file__))


def child(scenario: str, n: int) -> dict[str, Any]:
    """Measure one scenario in this (fresh) process."""
    import asyncio
    import graphlib

    import baselines
    import graphs
    from _common import build_workflow, check_outputs, check_result, noop

    # Warm up on a small, different graph: imports and one-time setup are not per node.
    small = {"w" + k[1:]: ["w" + d[1:] for d in v]
             for k, v in graphs.random_dag(10, seed=7).items()}
    check_result(build_workflow(small).run_sync(), 10)
    asyncio.run(baselines.graphlib_wait(small, noop))
    asyncio.run(baselines.sequential_await(small, noop))
    graphlib.TopologicalSorter(small).prepare()

    graph = graphs.random_dag(n) if scenario != "graph_mapping" else None
    held: list[Any] = []
    wf = None
    if scenario == "flowrt_run":  # built and compiled before tracing starts
        assert graph is not None
        wf = build_workflow(graph)
        wf.compile()
    gc.collect()
    tracemalloc.start()
    start, _ = tracemalloc.get_traced_memory()

    if scenario == "flowrt_build_compile":
        assert graph is not None
        wf = build_workflow(graph)
        held += [wf, wf.compile()]
    elif scenario == "flowrt_build_compile_run":
        assert graph is not None
        wf = build_workflow(graph)
        wf.compile()
        result = wf.run_sync()
        held += [wf, result]
    elif scenario == "flowrt_run":
        assert wf is not None
        result = wf.run_sync()
        held.append(result)
    elif scenario == "graphlib_prepare":
        ts = graphlib.TopologicalSorter(graph)
        ts.prepare()
        held.append(ts)
    elif scenario in ("graphlib_wait", "sequential_await"):
        assert graph is not None
        held.append(asyncio.run(getattr(baselines, scenario)(graph, noop)))
    elif scenario == "graph_mapping":
        held.append(graphs.random_dag(n))
    else:
        raise ValueError(f"unknown scenario {scenario!r}")

    _, peak = tracemalloc.get_traced_memory()
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if scenario.startswith("flowrt") and scenario != "flowrt_build_compile":
        check_result(held[-1], n)
    elif scenario in ("graphlib_wait", "sequential_await"):
        check_outputs(held[-1], n, scenario)
    return {"scenario": scenario, "nodes": n, "peak_bytes": peak - start,
            "retained_bytes": current - start,
            "peak_per_node": (peak - start) / n, "retained_per_node": (current - start) / n,
            "target_per_node": TARGETS.get(scenario)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true",
                        help="only the flowrt scenarios and the graphlib references")
    parser.add_argument("--only", action="append", choices=SCENARIOS,
                        help="run only this scenario (repeatable)")
    parser.add_argument("-o", "--output", default=os.path.join(HERE, "results", "memory.json"),
                        help="JSON file to write (default: perf/results/memory.json)")
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print(json.dumps(child(args.child, args.nodes)))
        return

    sys.path.insert(0, HERE)
    from _common import python_line

    scenarios = args.only or (QUICK_SCENARIOS if args.quick else SCENARIOS)
    rows = []
    print(f"tracemalloc, {args.nodes:,} nodes, random DAG (<= 3 deps each); "
          f"one fresh process per scenario\n{python_line()}\n")
    print(f"{'scenario':<26} {'peak B/node':>12} {'retained B/node':>16} {'target':>8}")
    for scenario in scenarios:
        proc = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", scenario,
             "--nodes", str(args.nodes)],
            capture_output=True, text=True, check=False)
        if proc.returncode:
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            print(f"{scenario:<26} FAILED:\n{tail}", file=sys.stderr)
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        target = row["target_per_node"]
        verdict = ""
        if target is not None:
            verdict = f"{target:>8} {'met' if row['peak_per_node'] <= target else 'NOT met'}"
        print(f"{scenario:<26} {row['peak_per_node']:>12.0f} {row['retained_per_node']:>16.0f} "
              f"{verdict}")
    print("\ntargets are checked against the peak (the retained figure is at most the peak)")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({"benchmark": "memory", "tool": "tracemalloc", "nodes": args.nodes,
                   "python": python_line(), "rows": rows}, f, indent=1)
    print(f"written: {args.output}")


if __name__ == "__main__":
    main()
