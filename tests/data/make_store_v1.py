"""Makes store-v1.db, a store written by flowrt 0.1.0 (store schema 1), for the
migration test (tests/test_durable_store.py). Run it with the flowrt of commit 4769958
on the path: ``PYTHONPATH=<that checkout> python make_store_v1.py``.

Three runs of the workflow ``fixture`` (a -> b -> c, a -> d): "done" succeeded; "half"
failed at b (a and d succeeded, c skipped); "crashed" was killed with SIGKILL while c
ran (a, b, d succeeded; its lease names a process that is gone).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from fixture_files import finish, fresh

import flowrt

HERE = Path(__file__).resolve().parent
PATH = HERE / "store-v1.db"


def build(fail_b: bool, slow_c: bool) -> flowrt.Workflow:
    wf = flowrt.Workflow("fixture")

    @wf.node
    def a() -> int:
        return 1

    @wf.node
    def b(a: int, ctx: flowrt.Context) -> int:
        ctx.data.set("seen", ["b", a])
        if fail_b:
            raise RuntimeError("b is broken")
        return a + 1

    @wf.node
    def c(b: int) -> int:
        if slow_c:
            time.sleep(60)
        return b * 10

    @wf.node
    def d(a: int) -> dict:
        return {"a": a, "pair": (1, 2)}

    return wf


if __name__ == "__main__":
    if sys.argv[1:] == ["crash"]:
        build(False, True).run_sync({}, store=str(PATH), run_id="crashed")
        sys.exit(0)
    fresh(PATH)
    assert build(False, False).run_sync(store=str(PATH), run_id="done").ok
    assert not build(True, False).run_sync(store=str(PATH), run_id="half").ok
    child = subprocess.Popen([sys.executable, __file__, "crash"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.05)
        with sqlite3.connect(f"file:{PATH}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT count(*) FROM nodes WHERE run_id = 'crashed' AND "
                               "node = 'b'").fetchone()
        conn.close()
        if row[0]:
            break
    time.sleep(0.1)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    finish(PATH, schema_version=1)
