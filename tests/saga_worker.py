"""Workflows run in a subprocess by the saga and sub-workflow crash tests.

    python saga_worker.py MODE SPEC RUN_ID LOG BACKEND SEED KILL

MODE is ``saga`` (a random DAG whose nodes all have a compensation, and whose last
node fails) or ``sub`` (a parent that runs a child workflow of a few nodes). SPEC names
a store (tests/stores.py). With KILL = ``kill``, one node chosen by SEED -- a
compensation in ``saga`` mode, a child node in ``sub`` mode -- waits for what came
before it to be recorded, then kills its own process with SIGKILL.

Every forward attempt appends ``start <node> <pid>`` to LOG, every compensation
``undo <node> <pid>``, before it works.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time

import anyio
from worker_kit import note, run_in_store

import flowrt

N = 8
#: the nodes the saga compensates (all but the failing one)
COMPENSATED = [f"n{i}" for i in range(N)]


def _die() -> None:
    time.sleep(0.3)  # what ended before is flushed to the store meanwhile
    os.kill(os.getpid(), signal.SIGKILL)


def saga(log: str, seed: int, kill: bool) -> flowrt.Workflow:
    rng = random.Random(seed)
    wf = flowrt.Workflow("saga-crash")
    deps_of = [rng.sample(range(i), min(i, rng.randint(1, 2))) if i else [] for i in range(N)]
    levels = [0] * N
    for i in range(N):
        levels[i] = max((levels[j] + 1 for j in deps_of[i]), default=0)
    # a node below the deepest level: some compensations are recorded before it dies
    victim = rng.choice([i for i in range(N) if levels[i] < max(levels)])
    for i in range(N):
        async def node(*values: int, ctx: flowrt.Context, i: int = i) -> int:
            note(log, f"start {ctx.node}")
            await anyio.sleep(0.001)
            return i + sum(values)

        async def undo(output: int, ctx: flowrt.Context, i: int = i) -> None:
            note(log, f"undo {ctx.node}")
            if kill and i == victim:
                await anyio.to_thread.run_sync(_die)
            await anyio.sleep(0.01)

        wf.add(f"n{i}", node, deps=[f"n{j}" for j in deps_of[i]], compensate=undo)

    async def fail(*values: int) -> None:
        raise RuntimeError("the last step fails")

    wf.add("fail", fail, deps=[f"n{i}" for i in range(N)])
    return wf


def sub(log: str, seed: int, kill: bool) -> flowrt.Workflow:
    rng = random.Random(seed)
    victim = rng.randrange(1, 6)
    child = flowrt.Workflow("child")
    prev: list[str] = []
    for i in range(6):
        async def step(*values: int, ctx: flowrt.Context, i: int = i, base: int = 0) -> int:
            note(log, f"start {ctx.run_id}:{ctx.node}")
            if kill and i == victim:
                await anyio.to_thread.run_sync(_die)
            await anyio.sleep(0.005)
            return base + i + sum(values)

        child.add(f"c{i}", step, deps=prev)
        prev = [f"c{i}"]
    parent = flowrt.Workflow("parent")

    async def base(ctx: flowrt.Context) -> int:
        note(log, f"start {ctx.run_id}:{ctx.node}")
        return 100

    parent.add("base", base)
    parent.add("child", child)

    async def after(child: int, ctx: flowrt.Context) -> int:
        note(log, f"start {ctx.run_id}:{ctx.node}")
        return child * 2

    parent.add("after", after)
    return parent


if __name__ == "__main__":
    mode, spec, run_id, log_path, backend, seed, kill = sys.argv[1:8]
    build = saga if mode == "saga" else sub
    result = run_in_store(build(log_path, int(seed), kill == "kill"), spec, run_id, backend)
    if mode == "sub" and result.ok:
        print(result["after"])
    sys.exit(0 if result.ok else 1)
