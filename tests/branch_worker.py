"""A workflow with a branch, run in a subprocess by the branch crash tests
(python branch_worker.py SPEC RUN_ID LOG BACKEND; SPEC names a store as tests/stores.py
says).

``route`` is a branch whose choice changes each time it is asked: the first evaluation
in a log takes ``slow``, any later one ``fast``. So a resumed run that asked the branch
again would take the other path. Every node appends "start <node> <pid>" to the log
before it works.
"""

from __future__ import annotations

import anyio
from worker_kit import main, note

import flowrt


def build(log_path: str) -> flowrt.Workflow:
    wf = flowrt.Workflow("branchy")

    @wf.node
    async def order() -> dict[str, int]:
        note(log_path, "start order")
        return {"total": 250}

    @wf.branch
    async def route(order: dict[str, int]) -> str:
        with open(log_path) as f:
            asked = sum(1 for line in f if line.startswith("start route "))
        note(log_path, "start route")
        return "slow" if asked == 0 else "fast"

    @wf.node(after=[route])
    async def slow(order: dict[str, int]) -> str:
        note(log_path, "start slow")
        await anyio.sleep(1.0)  # the kill lands in here (the test waits at most 0.3 s)
        return f"slow {order['total']}"

    @wf.node(after=[route])
    async def fast(order: dict[str, int]) -> str:
        note(log_path, "start fast")
        return f"fast {order['total']}"

    @wf.node(trigger=flowrt.Trigger.NONE_FAILED_MIN_ONE_SUCCESS)
    async def ship(slow: str | None = None, fast: str | None = None) -> str:
        note(log_path, "start ship")
        return slow or fast or "nothing"

    return wf


if __name__ == "__main__":
    main(build)
