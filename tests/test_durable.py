"""Durable runs: the SQLite file's own guarantees (its mode, foreign and newer files), the
MemoryStore, fingerprints. Resuming, crashes (SIGKILL) and processes sharing a store run
against every store in tests/test_store_conformance.py."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path

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


