"""A run's end waits for its store through the writer's own wake-up (``flush_then``).

``flowrt.durable._run.flushed`` is how a run waits, at its end and before a rollback,
until what it recorded is in the store: a store with ``flush_then`` (SQLite,
PostgreSQL) wakes the run's event loop from its writer thread; any other store is
flushed in a worker thread, as before. The wait is not cancellable, as the thread was
not: a run cancelled from outside still returns only once its end is written.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from subproc import run_program

import flowrt
from flowrt.durable._run import flushed
from flowrt.durable._store import FlushMarker, Lease, NodeRecord, RunRecord

BACKENDS = ["asyncio", "trio"]


def _record(run_id: str) -> RunRecord:
    return RunRecord(run_id, "wf", "fp", {"a": []}, b"{}", "running", "json", 1.0, 1.0)


def test_flush_marker_calls_back_and_swallows_its_errors() -> None:
    calls: list[int] = []
    FlushMarker(lambda: calls.append(1)).set()

    def boom() -> None:
        raise RuntimeError("the loop is gone")

    FlushMarker(boom).set()  # the writer thread goes on
    assert calls == [1]


def test_sqlite_flush_then_calls_back_once_the_records_are_committed(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = flowrt.SQLiteStore(path, commit_interval=0.05)
    try:
        _, claim = store.claim("r", Lease.mine(), lambda s: _record("r"))
        assert claim is not None
        store.write(claim, [NodeRecord("a", "succeeded", 1, b"1")], None)
        seen: list[Any] = []
        done = threading.Event()

        def look() -> None:  # from the writer's thread: read with another store
            with flowrt.SQLiteStore(path) as other:
                seen.append(other.load("r"))
            done.set()

        store.flush_then(look)
        assert done.wait(10)
        assert seen[0].nodes["a"].status == "succeeded"
    finally:
        store.close()


class _Silent:
    """A store whose writer never answers ``flush_then`` (it died in between)."""

    def __init__(self) -> None:
        self.flushed = 0

    def flush_then(self, callback: Any) -> None:
        pass

    def flush(self) -> None:
        self.flushed += 1


class _Plain:
    """A store without ``flush_then``: flushed in a worker thread."""

    def __init__(self) -> None:
        self.thread: str | None = None

    def flush(self) -> None:
        self.thread = threading.current_thread().name


@pytest.mark.parametrize("backend", BACKENDS)
def test_flushed_falls_back_on_flush_when_the_writer_never_answers(backend: str) -> None:
    store = _Silent()

    async def main() -> float:
        t0 = time.monotonic()
        await flushed(store)  # type: ignore[arg-type]
        return time.monotonic() - t0

    waited = anyio.run(main, backend=backend)
    assert store.flushed == 1 and 0.4 < waited < 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_flushed_without_flush_then_flushes_in_a_thread(backend: str) -> None:
    store = _Plain()
    anyio.run(flushed, store, backend=backend)
    assert store.thread is not None and store.thread != threading.current_thread().name


@pytest.mark.parametrize("backend", BACKENDS)
def test_flushed_is_not_cancelled_by_an_outer_scope(backend: str) -> None:
    """As the worker thread it replaces: cancelled while it waits, it still waits for
    the writer's answer (20 trials; a hang fails in the subprocess)."""
    out = run_program("""
        import threading, time
        import anyio
        from flowrt.durable._run import flushed

        class Slow:  # the writer answers 50 ms later, from its own thread
            def __init__(self):
                self.answered = False
            def flush_then(self, callback):
                def later():
                    time.sleep(0.05)
                    self.answered = True
                    callback()
                threading.Thread(target=later).start()
            def flush(self):
                raise AssertionError("the writer answered: no fallback")

        async def main():
            store = Slow()
            with anyio.CancelScope() as scope:
                scope.cancel()
                await flushed(store)
            assert store.answered and scope.cancelled_caught is False
            with anyio.move_on_after(0.01):  # a deadline passing during the wait
                store = Slow()
                await flushed(store)
                assert store.answered

        for trial in range(20):
            anyio.run(main, backend=BACKEND)
        print("ok")
    """, backend=backend, timeout=60)
    assert out.strip().endswith("ok")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_durable_run_ends_through_flush_then_even_when_cancelled(backend: str) -> None:
    """A run on SQLite waits for its end's commit through ``flush_then``; cancelled by
    an outer scope and by its timeout mid-run, it still returns once its end is written
    (the store says cancelled, not running), 10 trials each."""
    out = run_program("""
        import tempfile, uuid
        from pathlib import Path
        import anyio, flowrt
        from flowrt.durable import _sqlite

        calls = []
        real = _sqlite.SQLiteStore.flush_then
        def spy(self, callback):
            calls.append(1)
            return real(self, callback)
        _sqlite.SQLiteStore.flush_then = spy

        async def nap():
            await anyio.sleep(0.001)

        async def forever():
            await anyio.sleep(60)

        wf = flowrt.Workflow("w")
        wf.add("a", nap)
        wf.add("b", forever, after=["a"])
        quick = flowrt.Workflow("q")
        quick.add("a", nap)
        path = Path(tempfile.mkdtemp()) / "s.db"

        async def main():
            async with flowrt.Runtime(store=flowrt.SQLiteStore(path)) as rt:
                result = await rt.run(quick, run_id=uuid.uuid4().hex)
                assert result.ok and calls
                run_id = uuid.uuid4().hex
                with anyio.move_on_after(0.2):
                    await rt.run(wf, run_id=run_id)
                assert rt.store.get_run(run_id).status == "cancelled"
                run_id = uuid.uuid4().hex
                result = await rt.run(wf, run_id=run_id, timeout=0.2)
                assert not result.ok
                assert rt.store.get_run(run_id).status != "running"

        for trial in range(10):
            anyio.run(main, backend=BACKEND)
        print("ok")
    """, backend=backend, timeout=120)
    assert out.strip().endswith("ok")
