"""The stores the tests run against, made alike (tests/conftest.py's fixtures use them).

A *spec* names a store so that a subprocess can open the same one: a path means an
SQLite file; ``pg:<schema>:<url>`` a PostgreSQL schema. :func:`open_spec` opens it.

:class:`StoreKit` is one kind of store in one test: ``make(**options)`` opens a store
(every store made is closed when the test ends), ``spec`` names it for a subprocess,
``take_over(run_id)`` does what another process claiming the run would do to its row
(a new fencing token and holder), ``shared`` says whether other processes can use it.
A new kind of store joins the conformance suite (tests/test_store_conformance.py) by
adding a kit here and a parameter to the ``store_kit`` fixture.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import flowrt
from flowrt.durable import Lease, MemoryStore, SQLiteStore, Store

ELSEWHERE = Lease("elsewhere", 1, "taken-over")


def open_spec(spec: str, **options: Any) -> Store:
    """The store named by ``spec`` (see the module's docstring)."""
    if spec.startswith("pg:"):
        _, schema, url = spec.split(":", 2)
        return flowrt.PostgresStore(url, schema=schema, **options)
    return SQLiteStore(spec, **options)


def new_schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


class StoreKit:
    """One kind of store for one test (see the module's docstring)."""

    kind = ""
    shared = True  # other processes can open it

    def __init__(self) -> None:
        self.made: list[Store] = []

    def make(self, **options: Any) -> Store:
        store = self._make(**options)
        self.made.append(store)
        return store

    def _make(self, **options: Any) -> Store:
        raise NotImplementedError

    @property
    def spec(self) -> str:
        raise NotImplementedError

    def take_over(self, run_id: str) -> None:
        raise NotImplementedError

    def unlocked(self, run_id: str) -> bool:
        """Whether another process could claim ``run_id`` now without waiting for a
        lock (one held by a process stopped in the middle of a commit)."""
        return True

    def close(self) -> None:
        for store in reversed(self.made):
            with contextlib.suppress(Exception):
                store.close()


class MemoryKit(StoreKit):
    kind = "memory"
    shared = False

    def __init__(self) -> None:
        super().__init__()
        self.store: MemoryStore | None = None

    def _make(self, **options: Any) -> Store:
        # One store object plays "the same store" (its runs live as long as it does);
        # other options make a new one (a serializer, a lease_ttl).
        if self.store is None or (options and options != self.options):
            self.store = MemoryStore(**options)
            self.options = options
        return self.store

    options: dict[str, Any] = {}  # noqa: RUF012 (replaced, never mutated)

    def take_over(self, run_id: str) -> None:
        import attrs

        assert self.store is not None
        with self.store._lock:
            run = self.store._runs[run_id]
            self.store._runs[run_id] = attrs.evolve(run, fence=run.fence + 1, owner=ELSEWHERE)


class SQLiteKit(StoreKit):
    kind = "sqlite"

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.path = folder / "runs.db"

    def _make(self, **options: Any) -> Store:
        return SQLiteStore(self.path, **options)

    @property
    def spec(self) -> str:
        return str(self.path)

    def take_over(self, run_id: str) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("UPDATE runs SET fence = fence + 1, lease = ? WHERE run_id = ?",
                         (ELSEWHERE.to_json(), run_id))
        finally:
            conn.close()

    def unlocked(self, run_id: str) -> bool:
        conn = sqlite3.connect(self.path, timeout=0.05, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")  # SQLite's write lock is the whole file's
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()


class PostgresKit(StoreKit):
    kind = "postgres"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.schema = new_schema()

    def _make(self, **options: Any) -> Store:
        return flowrt.PostgresStore(self.url, schema=self.schema, **options)

    @property
    def spec(self) -> str:
        return f"pg:{self.schema}:{self.url}"

    def sql(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run one statement on the kit's database (its schema first on the path)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{self.schema}"')
            cur = conn.execute(statement.encode(), args or None)
            return cur.fetchall() if cur.description else []

    def take_over(self, run_id: str) -> None:
        self.sql("UPDATE runs SET fence = fence + 1, lease = %s WHERE run_id = %s",
                 ELSEWHERE.to_json(), run_id)

    def unlocked(self, run_id: str) -> bool:
        import psycopg

        with psycopg.connect(self.url) as conn:  # a transaction: the lock ends with it
            try:
                conn.execute(f'SELECT 1 FROM "{self.schema}".runs WHERE run_id = %s '
                             "FOR UPDATE NOWAIT".encode(), (run_id,))
            except psycopg.errors.LockNotAvailable:
                return False
            return True

    def close(self) -> None:
        super().close()
        drop_schema(self.url, self.schema)


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with contextlib.suppress(psycopg.Error), psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'.encode())


#: a program (``str.format``: spec, how, trials; run by ``subproc.run_program``) that
#: cancels durable runs of the store ``spec`` -- by an outer scope, a run timeout or
#: fail_fast, at random points: claiming, waiting for a limit, retrying, running --
#: checks that the store says each ended (no lease left), resumes each, and checks that
#: no node recorded as succeeded runs again; it prints "ok"
CANCEL_PROGRAM = """
import random, anyio, flowrt
from stores import open_spec

SPEC = {spec!r}
HOW = {how!r}
# fail_fast while b waits to retry: the engine cancels the pending retry (issue 11)
RETRIES = 2
ran = []

def build(fail):
    wf = flowrt.Workflow("cancel-" + HOW)

    @wf.node(limit="db")
    async def a(ctx: flowrt.Context) -> int:
        ran.append((ctx.run_id, "a"))
        await anyio.sleep(random.uniform(0, 0.02))
        return 1

    @wf.node(retries=RETRIES)
    async def b(a: int, ctx: flowrt.Context) -> int:
        ran.append((ctx.run_id, "b"))
        await anyio.sleep(random.uniform(0, 0.03))
        if fail[0] and ctx.attempt < 3:
            raise ConnectionError("flaky")
        return a + 1

    @wf.node(limit="db")
    async def c(a: int, ctx: flowrt.Context) -> int:
        ran.append((ctx.run_id, "c"))
        await anyio.sleep(random.uniform(0, 0.03))
        if fail[0] and HOW == "fail_fast":
            raise RuntimeError("c fails")
        return a + 2

    for i in range(6):
        @wf.node(name=f"w{{i}}")
        async def wide(b: int, ctx: flowrt.Context) -> int:
            ran.append((ctx.run_id, ctx.node))
            await anyio.sleep(random.uniform(0, 0.04))
            return b

    @wf.node
    async def end(c: int, w0: int, w5: int) -> int:
        return c + w0 + w5

    return wf

async def main():
    store = open_spec(SPEC, lease_ttl=5.0)
    fail = [True]
    async with flowrt.Runtime(store=store, limits={{"db": 1}}) as rt:
        for trial in range({trials}):
            run_id = f"{{HOW}}-{{trial}}"
            fail[0] = True
            wf = build(fail)
            if HOW == "outer":
                with anyio.move_on_after(random.uniform(0, 0.08)):
                    await rt.run(wf, run_id=run_id)
            elif HOW == "timeout":
                result = await rt.run(wf, run_id=run_id, timeout=random.uniform(0, 0.08))
                assert result.status in (flowrt.RunStatus.CANCELLED, flowrt.RunStatus.SUCCEEDED)
            else:
                result = await rt.run(wf, run_id=run_id, fail_fast=True)
                assert result.status is flowrt.RunStatus.FAILED, result.status
            await anyio.to_thread.run_sync(store.flush)
            record = store.get_run(run_id)
            if record is not None:  # cancelled before its claim: nothing was written
                assert record.status in ("cancelled", "failed", "succeeded"), record.status
                assert record.owner is None and record.lease_expires is None
                stored = store.load(run_id)
                done = {{n for n, r in stored.nodes.items() if r.status == "succeeded"}}
            else:
                done = set()
            before = len(ran)
            fail[0] = False
            result = await rt.run(wf, run_id=run_id)
            assert result.ok and result["end"] == 7, result.errors
            again = {{node for rid, node in ran[before:] if rid == run_id}}
            assert not done & again, (done, again)
    store.close()
    print("ok")

anyio.run(main, backend=BACKEND)
"""
