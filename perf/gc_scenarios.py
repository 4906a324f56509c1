"""What the garbage collector does per op of a real-world scenario (counts, not times).

``python perf/gc_scenarios.py [SCENARIO ...] [--ops N]`` (scenarios of
``perf/bench_scenarios.py``; approval by default). Per scenario and side (flowrt, its
hand-written asyncio twin), ops in turn as in ``perf/ab_scenarios.py``, it prints the
collector's passes per op (``gc.callbacks``) and the cyclic garbage one op leaves: the
objects only a collection frees (``gc.DEBUG_SAVEALL`` after one op with the collector
off). Counts do not depend on how loaded the machine is, so two commits can be compared
on a busy machine: copy this file into the other tree's ``perf/`` and run it there.
Docs: docs/decisions/031-per-run-allocations.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
from typing import Any

import bench_scenarios as scenarios


async def passes_per_op(scenario: str, ops: int, warmup: int = 10) -> dict[str, float]:
    """Collector passes per op, per side (sides in turn, the order swapped every pair)."""
    side: list[str | None] = [None]
    passes = {"flowrt": 0, "asyncio": 0}

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and side[0] is not None:
            passes[side[0]] += 1

    setup, check = scenarios.SETUP[scenario], scenarios.CHECK[scenario]
    gc.callbacks.append(count)
    try:
        for i in range(ops + warmup):
            for runner in ("flowrt", "asyncio") if i % 2 else ("asyncio", "flowrt"):
                env = setup()
                side[0] = runner if i >= warmup else None
                result = await scenarios.RUN[(scenario, runner)](env)
                side[0] = None
                check(runner, result, env)
    finally:
        gc.callbacks.remove(count)
    return {k: v / ops for k, v in passes.items()}


async def cyclic_garbage(scenario: str, runner: str) -> collections.Counter[str]:
    """The objects one op of ``runner`` leaves for the collector, by type."""
    setup, check = scenarios.SETUP[scenario], scenarios.CHECK[scenario]
    env = setup()
    check(runner, await scenarios.RUN[(scenario, runner)](env), env)  # warm
    gc.collect()
    gc.disable()
    try:
        env = setup()
        check(runner, await scenarios.RUN[(scenario, runner)](env), env)
        del env
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        return collections.Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO")
    parser.add_argument("--ops", type=int, default=300)
    args = parser.parse_args()
    chosen = args.scenarios or ["approval"]
    for name in chosen:
        if name not in scenarios.SCENARIOS:
            parser.error(f"unknown scenario {name!r}; choose from {', '.join(scenarios.SCENARIOS)}")
    for name in chosen:
        passes = asyncio.run(passes_per_op(name, args.ops))
        for runner in ("flowrt", "asyncio"):
            garbage = asyncio.run(cyclic_garbage(name, runner))
            top = ", ".join(f"{k} {v}" for k, v in garbage.most_common(4))
            print(f"{name:9s} {runner:8s} collector passes per op {passes[runner]:.2f}   "
                  f"cyclic garbage per op {sum(garbage.values())} objects"
                  + (f" ({top})" if top else ""))


if __name__ == "__main__":
    main()
