"""A workflow run in a subprocess by the crash tests (python durable_worker.py SPEC RUN_ID
LOG BACKEND; SPEC names a store as tests/stores.py says).

Every attempt of a node appends "start <node> <pid>" to the log file before it works,
so the test can tell which nodes a process started.
"""

from __future__ import annotations

import random

import anyio
from worker_kit import main, note

import flowrt


def build(log_path: str, n: int = 40, seed: int = 7) -> flowrt.Workflow:
    rng = random.Random(seed)
    wf = flowrt.Workflow("crashy")
    for i in range(n):
        deps = [f"n{j}" for j in rng.sample(range(i), min(i, rng.randint(0, 3)))]

        async def node(*values: int, ctx: flowrt.Context, i: int = i) -> int:
            note(log_path, f"start {ctx.node}")
            await anyio.sleep(0.002 + (i % 5) * 0.002)
            if i % 7 == 0:
                ctx.data.set(f"seen-{ctx.node}", i)
            return i + sum(values)

        wf.add(f"n{i}", node, deps=deps)
    return wf


def expected(n: int = 40, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    out: dict[str, int] = {}
    for i in range(n):
        deps = rng.sample(range(i), min(i, rng.randint(0, 3)))
        out[f"n{i}"] = i + sum(out[f"n{j}"] for j in deps)
    return out


if __name__ == "__main__":
    main(build, max_concurrency=4)
