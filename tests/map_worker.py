"""A durable run with maps, run in a subprocess by the crash tests of tests/test_maps.py
(python map_worker.py SPEC RUN_ID LOG BACKEND; SPEC names a store as tests/stores.py
says).

``files`` lists 30 items; ``parse`` maps over them (concurrency 4, one retry), ``score``
maps over parse's output (a depth-first chain), ``total`` sums the scores. Every attempt
of an item appends "start <node>/<item> <pid>" to the log before it works, so the test
can tell which items a process started.
"""

from __future__ import annotations

import anyio
from worker_kit import main, note

import flowrt

N = 30


def build(log_path: str) -> flowrt.Workflow:
    wf = flowrt.Workflow("mapped")

    def started(ctx: flowrt.Context) -> None:
        note(log_path, f"start {ctx.node}/{ctx.item}")

    @wf.node
    def files() -> list[int]:
        return list(range(N))

    @wf.map(path="files", concurrency=4, retries=1)
    async def parse(path: int, ctx: flowrt.Context) -> int:
        started(ctx)
        await anyio.sleep(0.003 + (path % 4) * 0.003)
        return path * 10

    @wf.map(row="parse")
    async def score(row: int, ctx: flowrt.Context) -> int:
        started(ctx)
        await anyio.sleep(0.002)
        return row + 1

    @wf.node
    def total(score: list[int]) -> int:
        return sum(score)

    return wf


def expected() -> dict[str, object]:
    parse = [i * 10 for i in range(N)]
    score = [p + 1 for p in parse]
    return {"files": list(range(N)), "parse": parse, "score": score, "total": sum(score)}


if __name__ == "__main__":
    main(build)
