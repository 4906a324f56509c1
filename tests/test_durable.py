"""Durable runs: the SQLite file's own guarantees (its mode, foreign and newer files), the
MemoryStore, fingerprints. Resuming, crashes (SIGKILL) and processes sharing a store run
against every store in tests/test_store_conformance.py."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

import flowrt
from flowrt import MemoryStore, SQLiteStore


def test_store_file_is_private(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    old = os.umask(0)
    try:
        store = SQLiteStore(db)
        wf = flowrt.Workflow("mode")
        wf.add("a", lambda: 1)
        wf.run_sync(store=store, run_id="m")
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        store.close()
    finally:
        os.umask(old)


def test_corrupt_or_foreign_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is no database" * 100)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers VALUES (1, 'ada')")
    conn.commit()
    conn.close()
    wf = flowrt.Workflow("x")
    wf.add("a", lambda: 1)
    for path, message in ((garbage, "not a flowrt store"), (foreign, "customers")):
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        with pytest.raises(flowrt.StoreError, match=message):
            wf.run_sync(store=str(path))
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
        assert not Path(f"{path}-wal").exists()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    SQLiteStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(flowrt.StoreError, match="newer flowrt"):
        SQLiteStore(db)


def test_memory_store_resumes_in_process() -> None:
    store = MemoryStore()
    broken = [True]
    wf = flowrt.Workflow("mem")
    wf.add("a", lambda: 1)

    def b(a: int) -> int:
        if broken[0]:
            raise RuntimeError
        return a + 1

    wf.add("b", b)
    assert not wf.run_sync(store=store, run_id="m").ok
    broken[0] = False
    result = wf.run_sync(store=store, run_id="m")
    assert result.ok and result["b"] == 2
    assert store.get_run("m").resumes == 1  # type: ignore[union-attr]


def test_fingerprint_ignores_the_order_nodes_were_added_in(tmp_path: Path) -> None:
    def build(order: list[str]) -> flowrt.Workflow:
        wf = flowrt.Workflow("fp")
        makers = {
            "a": lambda: wf.add("a", lambda: 1),
            "b": lambda: wf.add("b", lambda: 2),
            "c": lambda: wf.add("c", lambda a, b: a + b, deps=["a", "b"]),
        }
        for name in order:
            makers[name]()
        return wf

    assert build(["a", "b", "c"]).compile().fingerprint == \
        build(["b", "a", "c"]).compile().fingerprint
    assert build(["c", "a", "b"]).compile().fingerprint == \
        build(["a", "b", "c"]).compile().fingerprint




class _Recording(MemoryStore):
    """A MemoryStore that keeps what each write was handed, as it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: list[tuple[Any, list[Any]]] = []

    def write(self, claim: Any, nodes: Any, data: bytes | None, items: Any = ()) -> None:
        self.handed.append((nodes, list(nodes)))
        super().write(claim, nodes, data, items)


def test_node_records_reach_the_store_in_order_and_read_the_same_later() -> None:
    """Successes are handed over as records made when read (SucceededRecords): they
    keep their place among the other records of a turn, and read the same later."""
    store = _Recording()
    wf = flowrt.Workflow("order")

    async def one() -> int:
        return 1

    async def two() -> int:
        return 2

    async def broken() -> int:
        raise RuntimeError("c broke")

    async def after(a: int) -> int:
        return a + 1

    wf.add("a", one)
    wf.add("b", two)
    wf.add("c", broken)
    wf.add("d", after, deps=["a"])
    result = wf.run_sync(store=store, run_id="o", metrics=True)
    assert not result.ok
    flat = [r for _, records in store.handed for r in records]
    assert [(r.node, r.status) for r in flat] == [
        ("a", "succeeded"), ("b", "succeeded"), ("c", "failed"), ("d", "succeeded")]
    # (a, b and c end in one turn: the failure comes after the successes in one write)
    assert [r.node for r in store.handed[0][1]][:3] == ["a", "b", "c"]
    assert [list(nodes) for nodes, _ in store.handed] == [
        records for _, records in store.handed]
    stored = store.load("o")
    assert stored is not None
    for r in flat:
        assert stored.nodes[r.node][:8] == r[:8]
    a = stored.nodes["a"]
    assert (a.output, a.attempts) == (b"1", 1)
    assert a.started is not None and a.finished is not None and a.started <= a.finished
