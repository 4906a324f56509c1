"""Saga compensation and sub-workflows: what they cost.

- ``Saga/Forward/N/{plain,compensate}``: a run of N no-op async nodes (root -> N -> sink)
  that succeeds, without and with a ``compensate=`` on every node: a compensation costs
  the forward path nothing (it is an option the supervisor never reads).
- ``Saga/Rollback/N/{off,on}``: the same N nodes, the sink fails; ``off`` runs with
  ``compensate=False``, ``on`` rolls the N nodes back (N no-op async compensations,
  one level, concurrently). (on - off) / N is the cost of a compensation.
- ``Saga/Rollback/N/gather``: the floor: the N compensations called by hand in one
  ``asyncio.gather``, as a user would roll back without flowrt.
- ``SubWorkflow/{node,subworkflow}``: a run of one node that calls a one-node workflow
  as a sub-workflow, beside a run of that one node: the price of a child run.

Per run, in the caller's loop (asyncio), no store.

    python perf/bench_saga.py [--quick] [pyperf options]
"""

from __future__ import annotations

import asyncio

from _common import Harness, clock

import flowrt

SIZES = (100, 1_000)


async def _noop(*_: object) -> int:
    return 1


async def _undo(_: object) -> None:
    return None


async def _fail(*_: object) -> None:
    raise RuntimeError("rollback")


def fan(n: int, compensate: bool, fail: bool) -> flowrt.Workflow:
    wf = flowrt.Workflow(f"saga{n}")
    wf.add("root", _noop)
    undo = _undo if compensate else None
    for i in range(n):
        wf.add(f"n{i}", _noop, deps=["root"], compensate=undo)
    wf.add("sink", _fail if fail else _noop, after=[f"n{i}" for i in range(n)])
    wf.compile()
    return wf


def time_runs(loops: int, wf: flowrt.Workflow, compensate: bool = True) -> float:
    async def main() -> float:
        async with flowrt.Runtime(metrics=False) as rt:
            t0 = clock()
            for _ in range(loops):
                await rt.run(wf, compensate=compensate)
            return clock() - t0

    return asyncio.run(main())


def time_gather(loops: int, n: int) -> float:
    async def main() -> float:
        outputs = [1] * n
        t0 = clock()
        for _ in range(loops):
            await asyncio.gather(*[_undo(o) for o in reversed(outputs)])
        return clock() - t0

    return asyncio.run(main())


def one_node() -> flowrt.Workflow:
    wf = flowrt.Workflow("one")
    wf.add("step", _noop)
    return wf


def with_child() -> flowrt.Workflow:
    wf = flowrt.Workflow("parent")
    wf.add("child", one_node())
    return wf


def main() -> None:
    h = Harness(__doc__.split("\n\n")[0])
    for n in SIZES:
        h.bench(f"Saga/Forward/{n}/plain", time_runs, fan(n, False, False))
        h.bench(f"Saga/Forward/{n}/compensate", time_runs, fan(n, True, False))
        failing = fan(n, True, True)
        h.bench(f"Saga/Rollback/{n}/off", time_runs, failing, False)
        h.bench(f"Saga/Rollback/{n}/on", time_runs, failing, True)
        h.bench(f"Saga/Rollback/{n}/gather", time_gather, n)
    h.bench("SubWorkflow/node", time_runs, one_node())
    h.bench("SubWorkflow/subworkflow", time_runs, with_child())
    for n in SIZES:
        h.summary(f"a run of {n} nodes, with and without compensations", [
            ("forward, no compensate=", f"Saga/Forward/{n}/plain", None),
            ("forward, compensate= on all", f"Saga/Forward/{n}/compensate",
             f"Saga/Forward/{n}/plain"),
            ("failing, compensate=False", f"Saga/Rollback/{n}/off", None),
            ("failing, rolled back", f"Saga/Rollback/{n}/on", f"Saga/Rollback/{n}/off"),
            ("asyncio.gather of the undos", f"Saga/Rollback/{n}/gather", None),
        ], unit="ms")
        on, off = h.median(f"Saga/Rollback/{n}/on"), h.median(f"Saga/Rollback/{n}/off")
        if on is not None and off is not None:
            print(f"   rollback: {(on - off) / n * 1e6:.2f} us per compensated node")
    h.summary("a sub-workflow node", [
        ("one node", "SubWorkflow/node", None),
        ("one sub-workflow node (of one node)", "SubWorkflow/subworkflow", "SubWorkflow/node"),
    ], unit="us")


if __name__ == "__main__":
    main()
