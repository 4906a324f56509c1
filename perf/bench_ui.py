"""The dashboard (``flowrt ui``), server side: what drawing its two big pages costs.

- ``ui/runs-page/10000/read``: reading every run of a store of 10,000 runs (5 nodes
  each) into the runs list's snapshot (``store.runs()`` and ``RunRecord.to_dict``):
  what the server does at most once per refresh (1 s), however many pages look.
- ``ui/runs-page/10000/draw``: drawing the runs page's HTML (counts of every state,
  the newest 100 rows, the filters) from that snapshot.
- ``ui/run-page/10000/first``: a run of 10,000 nodes, first look: read the run and
  its node records, ``StoredRun.to_dict``, the view, and every section (the graph
  summarised by level, the timeline of the longest nodes, the table).
- ``ui/run-page/10000/again``: the same page asked again (a live page polling) while
  nothing changed: the run's record is read, the page comes from the cache.
- ``ui/run-page/10000/live-again``: the same for a run still running: its node records
  are read again and compared, the page comes from the cache.

End to end (a real server, HTTP, Chromium, the server's memory): ``perf/ui_browser.py``.

    python perf/bench_ui.py [--quick] [pyperf options]
"""

from __future__ import annotations

import functools
import random
import tempfile
import time
from pathlib import Path

from _common import Harness, clock, python_line

from flowrt.durable import Lease, NodeRecord, RunRecord, SQLiteStore
from flowrt.tools.ui._app import Dashboard
from flowrt.tools.ui._data import RunFilter, Snapshot
from flowrt.tools.ui._pages import Layout, runs_body, runs_sections
from flowrt.tools.ui._security import Guard

RUNS = 10_000
NODES = 10_000


def make_runs_store(path: Path, runs: int = RUNS) -> Path:
    """A store of ``runs`` finished runs of 7 workflows, 5 nodes each (1 in 10 failed)."""
    store = SQLiteStore(path)
    structure = {f"n{i}": ([f"n{i - 1}"] if i else []) for i in range(5)}
    lease = Lease.mine()
    t0 = time.time() - runs
    for k in range(runs):
        now = t0 + k
        record = RunRecord(f"run-{k:05d}", f"wf{k % 7}", "fp", structure, b"{}", "running",
                           "json", now, now)
        _, claim = store.claim(record.run_id, lease, lambda _, r=record: r)
        assert claim is not None
        store.write(claim, [NodeRecord(f"n{i}", "succeeded", 1, b"1", None, None, now,
                                       now + 0.01) for i in range(5)], None)
        store.finish(claim, "failed" if k % 10 == 0 else "succeeded", now + 0.05)
    store.flush()
    store.close()
    return path


def make_big_run_store(path: Path, nodes: int = NODES, *, finish: bool = True) -> Path:
    """A store with run ``big`` of ``nodes`` nodes, each depending on up to 3 earlier
    ones (1 in 97 failed); still running (its lease held by this process) unless
    ``finish``."""
    store = SQLiteStore(path)
    rng = random.Random(1)
    structure = {f"n{i}": sorted({f"n{rng.randrange(i)}" for _ in range(rng.randint(0, 3))})
                 if i else [] for i in range(nodes)}
    now = time.time()
    record = RunRecord("big", "big", "fp", structure, b"{}", "running", "json", now, now)
    _, claim = store.claim("big", Lease.mine(), lambda _: record)
    assert claim is not None
    store.write(claim, [NodeRecord(f"n{i}", "succeeded" if i % 97 else "failed", 1, b"1",
                                   "ValueError: no" if i % 97 == 0 else None, None,
                                   now + i * 1e-4, now + i * 1e-4 + 1e-3)
                        for i in range(nodes)], None)
    if finish:
        store.finish(claim, "failed", now + 2)
    store.flush()
    store.close()
    return path


@functools.cache
def folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="flowrt-bench-ui-"))


@functools.cache
def runs_store() -> SQLiteStore:
    return SQLiteStore(make_runs_store(folder() / "runs.db"))


@functools.cache
def big_store(finish: bool) -> SQLiteStore:
    return SQLiteStore(make_big_run_store(folder() / f"big-{finish}.db", finish=finish))


@functools.cache
def snapshot() -> Snapshot:
    return Snapshot.read(runs_store())


def layout() -> Layout:
    return Layout("", "runs.db", "c" * 64)


def time_read(loops: int) -> float:
    store = runs_store()
    t0 = clock()
    for _ in range(loops):
        Snapshot.read(store)
    return clock() - t0


def time_draw(loops: int) -> float:
    snap, flt, lay = snapshot(), RunFilter(), layout()
    t0 = clock()
    for _ in range(loops):
        runs_body(lay, snap, flt, runs_sections(lay, snap, flt))
    return clock() - t0


def dashboard(finish: bool) -> Dashboard:
    return Dashboard(big_store(finish), Guard(None), "big.db")


def time_run_first(loops: int) -> float:
    total = 0.0
    for _ in range(loops):
        board = dashboard(True)  # an empty page cache
        t0 = clock()
        board._run_sections(layout(), "big")
        total += clock() - t0
    return total


def time_run_again(loops: int, finish: bool) -> float:
    board = dashboard(finish)
    lay = layout()
    board._run_sections(lay, "big")
    t0 = clock()
    for _ in range(loops):
        board._run_sections(lay, "big")
    return clock() - t0


def main() -> None:
    h = Harness(__doc__.split("\n\n")[0])
    h.bench(f"ui/runs-page/{RUNS}/read", time_read)
    h.bench(f"ui/runs-page/{RUNS}/draw", time_draw)
    h.bench(f"ui/run-page/{NODES}/first", time_run_first)
    h.bench(f"ui/run-page/{NODES}/again", time_run_again, True)
    h.bench(f"ui/run-page/{NODES}/live-again", time_run_again, False)
    if h.worker:
        return
    print(f"\n{python_line()}")
    h.summary("The dashboard's pages, server side (per page)", [
        (f"runs page, {RUNS:,} runs: read the store", f"ui/runs-page/{RUNS}/read", None),
        (f"runs page, {RUNS:,} runs: draw", f"ui/runs-page/{RUNS}/draw", None),
        (f"run page, {NODES:,} nodes: first look", f"ui/run-page/{NODES}/first", None),
        (f"run page, {NODES:,} nodes: again (finished)", f"ui/run-page/{NODES}/again", None),
        (f"run page, {NODES:,} nodes: again (running)", f"ui/run-page/{NODES}/live-again",
         None),
    ], unit="ms")


if __name__ == "__main__":
    main()
