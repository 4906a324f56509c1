"""A durable workflow whose sync nodes run on a Dask cluster (run by test_executors).

argv: scheduler address, store path, log path. Each remote node appends its name to
the log when it runs; a restarted driver first appends '---'.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

import flowrt

sys.path.insert(0, str(Path(__file__).parent))
import remote_tasks


def main() -> int:
    address, store, log = sys.argv[1:4]
    if Path(log).exists():
        with open(log, "a") as f:
            f.write("---\n")

    async def run() -> flowrt.RunResult:
        async with flowrt.DaskExecutor(address=address) as ex:
            wf = flowrt.Workflow("dask-durable")
            wf.add("log", lambda: log)
            for i in range(8):
                wf.add(f"i{i}", lambda i=i: i)
                wf.add(f"sq{i}", remote_tasks.logged_square, deps=[f"i{i}", "log"],
                       executor=ex)
            wf.add("total", lambda *xs: sum(xs), deps=[f"sq{i}" for i in range(8)])
            return await wf.run(store=store, run_id="dask-run", max_concurrency=2)

    result = anyio.run(run)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
