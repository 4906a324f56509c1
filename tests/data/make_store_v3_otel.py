"""Makes store-v3-otel.db, a store written by the flowrt of commit ec37e74 (SQLite store
schema 3: the work queue, before runs kept their trace), for the migration test of
schema 4 (tests/test_otel.py). Run it with that flowrt on the path:
``git archive ec37e74 | tar -x -C /tmp/v3 && PYTHONPATH=/tmp/v3 python make_store_v3_otel.py``.

Two runs of the workflow ``fixture`` (a -> b): "half" failed at b (a succeeded);
"queued" was submitted to the queue "default" and never taken.
"""

from __future__ import annotations

from pathlib import Path

import anyio
from fixture_files import finish, fresh

import flowrt

HERE = Path(__file__).resolve().parent
PATH = HERE / "store-v3-otel.db"


def build(fail_b: bool) -> flowrt.Workflow:
    wf = flowrt.Workflow("fixture")

    @wf.node
    def a() -> int:
        return 1

    @wf.node
    def b(a: int) -> int:
        if fail_b:
            raise RuntimeError("b is broken")
        return a + 1

    return wf


async def main() -> None:
    async with flowrt.Runtime(store=str(PATH)) as rt:
        assert not (await rt.run(build(True), run_id="half")).ok
        await rt.submit(build(False), run_id="queued")


if __name__ == "__main__":
    fresh(PATH)
    anyio.run(main)
    finish(PATH, schema_version=3)
