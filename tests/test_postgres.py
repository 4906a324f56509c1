"""PostgresStore's own: its schema (created once by workers starting together, versioned,
refused when damaged or foreign), reaching the server, reconnecting through dropped
connections and restarts, runs cancelled every way on both backends. What every store
does is in tests/test_store_conformance.py, which runs against PostgreSQL too.

A real PostgreSQL server: ``FLOWRT_TEST_PG_URL``, or a throwaway one (tests/conftest.py);
the restart tests start a server of their own (``pg_server``).
"""

from __future__ import annotations

import functools
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pgserver
import pytest
from stores import CANCEL_PROGRAM, PostgresKit, drop_schema, new_schema
from subproc import run_program

import flowrt
from flowrt.durable import Lease, NodeRecord, RunRecord
from flowrt.durable._postgres import SCHEMA_VERSION

HERE = Path(__file__).parent


def _chain(n: int, pause: float, calls: list[str]) -> flowrt.Workflow:
    """n0 -> n1 -> ... each sleeping ``pause``; every execution appended to ``calls``."""
    wf = flowrt.Workflow("chain")
    for i in range(n):

        async def node(prev: int | None = None, i: int = i) -> int:
            calls.append(f"n{i}")
            await anyio.sleep(pause)
            return i

        wf.add(f"n{i}", node, deps={"prev": f"n{i - 1}"} if i else {})
    return wf


# -- the schema ----------------------------------------------------------------------------

_CREATOR = """
import sys, time, flowrt
url, schema, t0, me = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
wf = flowrt.Workflow("first")
wf.add("a", lambda: 1)
time.sleep(max(0.0, t0 - time.time()))
with flowrt.PostgresStore(url, schema=schema) as store:
    assert wf.run_sync(store=store, run_id=me).ok
print("ok")
"""


def test_workers_starting_together_create_the_schema_once(pg_kit: PostgresKit) -> None:
    """8 processes open one store that does not exist yet at the same moment: no error,
    one schema, each process's run in it."""
    for round_ in range(1):
        schema = new_schema()
        try:
            t0 = time.time() + 2.0
            procs = [subprocess.Popen([sys.executable, "-c", _CREATOR, pg_kit.url, schema,
                                       str(t0), f"p{k}"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for k in range(8)]
            for p in procs:
                out, err = p.communicate(timeout=120)
                assert p.returncode == 0 and out.strip() == "ok", (round_, err[-3000:])
            with flowrt.PostgresStore(pg_kit.url, schema=schema) as store:
                assert sorted(r.run_id for r in store.runs()) == [f"p{k}" for k in range(8)]
            kit = PostgresKit(pg_kit.url)
            kit.schema = schema
            assert sorted(kit.sql("SELECT key, value FROM meta")) == [
                ("app", "flowrt"), ("schema_version", str(SCHEMA_VERSION))]
        finally:
            drop_schema(pg_kit.url, schema)


def test_threads_opening_a_new_store_at_once_create_it_once(pg_kit: PostgresKit) -> None:
    """8 stores opened at once (released by a barrier), 20 times. Without the advisory
    lock, 94 of the 160 opens failed ("duplicate key value violates unique constraint
    pg_namespace...", "relation meta already exists")."""
    errors: list[str] = []
    for _ in range(20):
        schema = new_schema()
        barrier = threading.Barrier(8)

        def open_one(schema: str = schema, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                flowrt.PostgresStore(pg_kit.url, schema=schema).close()
            except Exception as error:
                errors.append(str(error))

        threads = [threading.Thread(target=open_one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        drop_schema(pg_kit.url, schema)
    assert errors == []


def test_a_store_of_schema_version_1_is_migrated_and_resumes(pg_kit: PostgresKit) -> None:
    """A store written by the first PostgresStore (schema 1: no queue): opened, it is
    migrated in place in one transaction, and its runs resume."""
    from flowrt.durable._postgres import _SCHEMA

    for statement in _SCHEMA:
        pg_kit.sql(statement.replace("{s}", f'"{pg_kit.schema}"'))
    pg_kit.sql("INSERT INTO meta VALUES ('app', 'flowrt'), ('schema_version', '1')")
    calls: list[str] = []
    wf = _chain(3, 0.0, calls)
    plan = wf.compile()
    pg_kit.sql("INSERT INTO runs VALUES ('old', 'chain', %s, %s, '{}', 'failed', 'json', "
               "1.0, 1.0, 2.0, 0, NULL, NULL, 1)", plan.fingerprint, plan.structure_json)
    pg_kit.sql("INSERT INTO nodes VALUES ('old', 'n0', 'succeeded', 1, '0', NULL, NULL, "
               "1.0, 1.5, 1), ('old', 'n1', 'failed', 1, NULL, 'E: x', 'tb', 1.5, 2.0, 1)")
    store = pg_kit.make()
    assert pg_kit.sql("SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(SCHEMA_VERSION),)]
    record = store.get_run("old")
    assert record.status == "failed" and record.queue is None and record.waits == {}
    result = wf.run_sync(store=store, run_id="old")
    assert result.ok and sorted(calls) == ["n1", "n2"] and result.nodes["n0"].restored
    assert store.signals("old") == [] and store.schedules() == []
    # -- caching: schema 3 added the cache table --
    store.put_cached("k", b"1", "json", 1.0, None)
    assert store.get_cached("k", 2.0) == (b"1", "json")


def test_the_node_rows_of_a_schema_5_store_become_batches_with_every_field(
        pg_kit: PostgresKit) -> None:
    """Schema 6 keeps node records as batches: opening a store of schema 5 converts its
    ``nodes`` rows (of several runs and fences, NULLs and all) and drops the table; the
    records read back are the rows, and the runs go on from them."""
    from flowrt.durable._postgres import _MIGRATIONS, _SCHEMA

    s = f'"{pg_kit.schema}"'
    for statement in _SCHEMA + [m for v in range(1, 5) for m in _MIGRATIONS[v]]:
        pg_kit.sql(statement.replace("{s}", s))
    pg_kit.sql("INSERT INTO meta VALUES ('app', 'flowrt'), ('schema_version', '5')")
    calls: list[str] = []
    wf = _chain(3, 0.0, calls)
    plan = wf.compile()
    for run_id, fence in (("one", 2), ("two", 1)):
        pg_kit.sql("INSERT INTO runs (run_id, workflow, fingerprint, structure, inputs, "
                   "status, serializer, created, started, finished, fence) VALUES "
                   "(%s, 'chain', %s, %s, '{}', 'failed', 'json', 1.0, 1.0, 2.0, %s)",
                   run_id, plan.fingerprint, plan.structure_json, fence)
    rows = [("one", "n0", "succeeded", 1, b"0", None, None, 1.0, 1.5, 1, None),
            ("one", "n1", "failed", 3, None, "E: x", "tb\n", 1.5, 2.0, 2, None),
            ("one", "n2", "waiting", 1, None, None, None, 2.0, None, 2, 99.5),
            ("two", "n0", "succeeded", 1, b"7", None, None, None, None, 1, None)]
    for row in rows:
        pg_kit.sql("INSERT INTO nodes (run_id, node, status, attempts, output, error, "
                   "traceback, started, finished, fence, due) VALUES "
                   "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", *row)
    store = pg_kit.make()
    assert pg_kit.sql("SELECT value FROM meta WHERE key = 'schema_version'") == [
        (str(SCHEMA_VERSION),)]
    assert pg_kit.sql("SELECT to_regclass('nodes')") == [(None,)]
    for run_id in ("one", "two"):
        stored = store.load(run_id)
        assert stored is not None
        assert {n: tuple(r) for n, r in stored.nodes.items()} == {
            r[1]: r[1:] for r in rows if r[0] == run_id}
    result = wf.run_sync(store=store, run_id="two")
    assert result.ok and sorted(calls) == ["n1", "n2"] and result.nodes["n0"].restored
    assert result["n0"] == 7 and result["n2"] == 2  # n0 read back, not run


def test_a_schema_of_something_else_is_refused_and_left_as_it_was(pg_kit: PostgresKit
                                                                  ) -> None:
    pg_kit.sql(f'CREATE SCHEMA "{pg_kit.schema}"')
    pg_kit.sql("CREATE TABLE customers (id int PRIMARY KEY, name text)")
    pg_kit.sql("INSERT INTO customers VALUES (1, 'ada')")
    with pytest.raises(flowrt.StoreError, match=r"not a flowrt store.*customers"):
        pg_kit.make()
    tables = pg_kit.sql("SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = %s", pg_kit.schema)
    assert tables == [("customers",)]
    assert pg_kit.sql("SELECT name FROM customers") == [("ada",)]


@pytest.mark.parametrize(("damage", "message"), [
    ("UPDATE meta SET value = '99' WHERE key = 'schema_version'", "written by a newer flowrt"),
    ("UPDATE meta SET value = 'two' WHERE key = 'schema_version'", "'two'"),
    ("UPDATE meta SET value = '0' WHERE key = 'schema_version'", "schema version 0"),
    ("DROP TABLE node_batches", "table 'node_batches' is missing"),
    ("ALTER TABLE runs DROP COLUMN fence", "no column 'fence'"),
])
def test_a_damaged_or_newer_store_is_refused_untouched(pg_kit: PostgresKit, damage: str,
                                                        message: str) -> None:
    wf = flowrt.Workflow("x")
    wf.add("a", lambda: 1)
    wf.run_sync(store=pg_kit.make(), run_id="r")
    pg_kit.sql(damage)
    before = pg_kit.sql("SELECT key, value FROM meta ORDER BY key")
    with pytest.raises(flowrt.StoreError, match=message):
        pg_kit.make()
    assert pg_kit.sql("SELECT key, value FROM meta ORDER BY key") == before


@pytest.mark.parametrize(("damage", "message"), [
    ("UPDATE runs SET structure = '{\"a\": ['", "structure"),
    # valid JSON of another shape: is_structure() refuses it as SQLiteStore does
    ("UPDATE runs SET structure = '{\"a\": [1]}'", "structure"),
    ("UPDATE runs SET structure = '[\"a\"]'", "structure"),
    ("UPDATE runs SET lease = 'held'", "not a lease"),
])
def test_a_damaged_run_is_a_store_error(pg_kit: PostgresKit, damage: str, message: str
                                        ) -> None:
    store = pg_kit.make()
    wf = flowrt.Workflow("x")
    wf.add("a", lambda: 1)
    wf.run_sync(store=store, run_id="r")
    pg_kit.sql(damage)
    for read in (store.runs, lambda: store.load("r"), lambda: store.get_run("r")):
        with pytest.raises(flowrt.StoreError, match=f"run 'r'.*{message}"):
            read()
    with pytest.raises(flowrt.StoreError, match=message):
        wf.run_sync(store=store, run_id="r")


def test_store_urls_and_schemas(pg_kit: PostgresKit, tmp_path: Path) -> None:
    """``store="postgresql://...?schema=..."`` everywhere a path works: runs, the CLI."""
    url = f"{pg_kit.url}?schema={pg_kit.schema}"
    wf = flowrt.Workflow("url")
    wf.add("a", lambda: 41)
    wf.add("b", lambda a: a + 1, deps=["a"])
    assert wf.run_sync(store=url, run_id="u")["b"] == 42
    assert pg_kit.make().get_run("u").status == "succeeded"
    out = subprocess.run([sys.executable, "-m", "flowrt", "runs", "--store", url, "--json"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and '"run_id": "u"' in out.stdout, out.stderr
    out = subprocess.run([sys.executable, "-m", "flowrt", "show", "u", "--store", url],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "succeeded" in out.stdout, out.stderr
    page = tmp_path / "u.html"
    out = subprocess.run([sys.executable, "-m", "flowrt", "report", "u", "--store", url,
                          "-o", str(page)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "url" in page.read_text() and page.stat().st_mode & 0o777 == 0o600
    with pytest.raises(ValueError, match="give one"):
        flowrt.PostgresStore(url, schema="other")
    with pytest.raises(ValueError, match="plain identifier"):
        flowrt.PostgresStore(pg_kit.url, schema="drop table; --")
    with pytest.raises(ValueError, match="synchronous_commit must be one of off, local"):
        flowrt.PostgresStore(url, synchronous_commit="sometimes")
    durable = pg_kit.make(synchronous_commit="on")  # waits for the disk: the same records
    assert wf.run_sync(store=durable, run_id="v")["b"] == 42


def test_an_unreachable_server_is_a_store_error_without_the_password() -> None:
    pytest.importorskip("psycopg")
    started = time.monotonic()
    with pytest.raises(flowrt.StoreError, match=r"cannot reach postgresql://127\.0\.0\.1:1/"
                                                r"db within 0\.5 s") as info:
        flowrt.PostgresStore("postgresql://me:s3cret@127.0.0.1:1/db", connect_timeout=0.5)
    assert "s3cret" not in str(info.value) and "refused" in str(info.value)
    assert time.monotonic() - started < 5


def test_a_wrong_role_fails_at_once(pg_url: str) -> None:
    wrong = pg_url.replace("://", "://nobody-here@", 1).replace("flowrt@", "", 1)
    started = time.monotonic()
    with pytest.raises(flowrt.StoreError, match="nobody-here"):
        flowrt.PostgresStore(wrong)
    assert time.monotonic() - started < 5  # not connect_timeout: asking again is no use
    out = subprocess.run([sys.executable, "-m", "flowrt", "runs", "--store", wrong],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "nobody-here" in out.stderr
    assert "Traceback" not in out.stderr


async def _side(i: int, calls: list[str]) -> int:
    calls.append(f"side{i}")
    await anyio.sleep(0.0025 * (i % 400))
    return i


# -- the group commit's arrays -----------------------------------------------------------


def test_the_arrays_the_writer_builds_are_what_the_server_reads(pg_url: str) -> None:
    """The writer builds its arrays in PostgreSQL's binary format itself: every element
    type, NULLs anywhere, empty arrays, long and non-UTF-8 blobs, text of any character
    (a NUL escaped, in messages), columns of thousands, and text cached or not."""
    import psycopg

    from flowrt.durable import _postgres as pg

    blob = bytes(range(256)) * 40  # longer than the cached length prefixes
    columns: list[tuple[Any, list[Any], str]] = [
        (pg._texts, ["a", "é ü 漢字 🙂", None, "", "x" * 5000, '{"q",\\}'], "text[]"),
        (pg._texts, [], "text[]"),
        (pg._texts, [None, None], "text[]"),
        (pg._messages, ["a\x00b", None, "Traceback ...\n  line 1"], "text[]"),
        (pg._blobs, [b"\x00\xff", None, b"", blob], "bytea[]"),
        (pg._int4s, [1, -2, 2**31 - 1, -(2**31)], "integer[]"),
        (pg._int4s, [None, 7], "integer[]"),
        (pg._int8s, [2**62, -1, 0], "bigint[]"),
        (pg._int8s, [3, None], "bigint[]"),
        (pg._float8s, [1.5, -0.0, 1e300, float("inf"), 2], "double precision[]"),
        (pg._float8s, [2.5, None], "double precision[]"),
        (pg._float8s, [], "double precision[]"),
        (pg._float8s, [i / 7 for i in range(10_000)], "double precision[]"),
        (pg._texts, [f"node {i}" for i in range(10_000)], "text[]"),
    ]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        pg._register_arrays(conn)
        for build, values, sql_type in columns:
            for _ in range(2):  # the second time from the cache of text elements
                got = conn.execute(f"SELECT %b::{sql_type}", (build(values),)).fetchone()
                expected = [v.replace("\x00", "\\x00") if isinstance(v, str) else v
                            for v in values]
                assert got is not None and got[0] == expected, (sql_type, values[:3])
        pg._PREFIXED.clear()  # as when it grows too large: refilled
        got = conn.execute("SELECT %b::text[]", (pg._texts(["a", None]),)).fetchone()
        assert got == (["a", None],) and pg._PREFIXED[None] == pg._NULL


def test_a_run_made_by_another_process_during_a_claim_is_claimed_again(
        pg_kit: PostgresKit) -> None:
    """A new run's claim looks for the run, then inserts it, without a transaction
    around them; when another process made the run in between, the insert does nothing
    and the claim goes on as a stored run's: it takes the run as that process left it."""
    store, other = pg_kit.make(), pg_kit.make()
    record = RunRecord("r", "wf", "fp", {"a": []}, b"{}", "running", "json", 1.0, 1.0)
    mine = Lease("here", 1, "mine")
    seen: list[Any] = []

    def decide(stored: Any) -> Any:
        seen.append(stored)
        if stored is None:  # meanwhile another process makes the run and ends it
            _, theirs = other.claim("r", Lease("there", 2, "theirs"),
                                    lambda s: record)
            other.finish(theirs, "failed", 2.0)
            other.flush()
        return record

    stored, claim = store.claim("r", mine, decide)
    assert seen[0] is None and seen[1].record.status == "failed" and len(seen) == 2
    assert stored is seen[1] and claim is not None and claim.fence == 2
    assert store.get_run("r").owner == mine



def test_a_claim_the_server_lost_and_another_process_made_again_writes_nothing(
        pg_kit: PostgresKit) -> None:
    """Claims follow ``synchronous_commit`` (off by default): a crash of the server may
    lose one. Another process may then make the run again under the same fence; the
    first holder's writes carry its lease too, and are refused."""
    store, other = pg_kit.make(), pg_kit.make()
    record = RunRecord("r", "wf", "fp", {"a": [], "b": []}, b"{}", "running", "json", 1.0,
                       1.0)
    _, first = store.claim("r", Lease("here", 1, "first"), lambda s: record)
    assert first is not None and first.fence == 1
    pg_kit.sql("DELETE FROM runs WHERE run_id = 'r'")  # what the server lost
    _, second = other.claim("r", Lease("there", 2, "second"), lambda s: record)
    assert second is not None and second.fence == 1
    store.write(first, [NodeRecord("a", "failed", 9)], None)
    store.finish(first, "failed", 2.0)
    store.flush()
    assert isinstance(first.error, flowrt.LeaseLost) and "process 2" in str(first.error)
    assert not store.renew(first)
    other.write(second, [NodeRecord("b", "succeeded", 1, b"2")], None)
    other.flush()
    stored = other.load("r")
    assert set(stored.nodes) == {"b"} and stored.record.status == "running"
    assert stored.record.owner == Lease("there", 2, "second")
    other.finish(second, "succeeded", 3.0)
    other.flush()
    assert other.get_run("r").status == "succeeded"


# -- the group commit: rows locked between renewals ------------------------------------------


def _run_row(pg_kit: PostgresKit, run_id: str) -> tuple[Any, ...]:
    return pg_kit.sql("SELECT fence, lease_expires, xmin::text FROM runs WHERE run_id = %s",
                      run_id)[0]


def test_commits_between_renewals_lock_the_run_without_rewriting_its_row(
        pg_kit: PostgresKit) -> None:
    """A commit that neither renews the leases nor ends a run only locks the run's row
    (FOR SHARE): the row keeps its version and its lease; the claim's deadline stays
    where the claim put it. The renewal, every lease_ttl / 3, moves both."""
    store = pg_kit.make(lease_ttl=3.0)  # renewed every second
    _, claim = store.claim("r", Lease.mine(), lambda s: RunRecord(
        "r", "wf", "fp", {"a": [], "b": []}, b"{}", "running", "json", 1.0, 1.0))
    assert claim is not None
    store.flush()
    before, deadline = _run_row(pg_kit, "r"), claim.valid_until
    store.write(claim, [NodeRecord("a", "succeeded", 1, b"1")], None)
    store.flush()
    assert _run_row(pg_kit, "r") == before and claim.valid_until == deadline
    assert [r[0] for r in pg_kit.sql("SELECT unnest(nodes) FROM node_batches "
                                     "WHERE run_id = 'r'")] == ["a"]
    time.sleep(1.2)  # the renewal is due: the writer renews by itself
    store.write(claim, [NodeRecord("b", "succeeded", 1, b"2")], None)
    store.flush()
    fence, expires, version = _run_row(pg_kit, "r")
    assert fence == before[0] and expires > before[1] and version != before[2]
    assert claim.valid_until > deadline and claim.error is None
    store.finish(claim, "succeeded", 2.0)
    store.flush()
    assert store.get_run("r").status == "succeeded"


def test_a_commit_waits_for_a_claim_in_progress_and_is_fenced_out_by_it(
        pg_kit: PostgresKit) -> None:
    """The commit's lock on the run's row waits for a claim that holds the row (FOR
    UPDATE), then checks the fence again on the row that claim wrote: the records of the
    holder it fenced out are not written, and that holder learns it lost the run."""
    import psycopg

    store = pg_kit.make()
    _, claim = store.claim("r", Lease.mine(), lambda s: RunRecord(
        "r", "wf", "fp", {"a": []}, b"{}", "running", "json", 1.0, 1.0))
    assert claim is not None
    store.flush()
    with psycopg.connect(pg_kit.url) as other:  # a claim by another process, half done
        other.execute(f'SELECT fence FROM "{pg_kit.schema}".runs WHERE run_id = %s '
                      "FOR UPDATE".encode(), ("r",))
        store.write(claim, [NodeRecord("a", "succeeded", 1, b"1")], None)
        time.sleep(0.3)  # the writer's commit waits for the row meanwhile
        assert pg_kit.sql("SELECT nodes FROM node_batches") == []
        assert claim.error is None
        other.execute(f'UPDATE "{pg_kit.schema}".runs SET fence = fence + 1, lease = %s '
                      "WHERE run_id = %s".encode(),
                      (Lease("there", 2, "theirs").to_json(), "r"))
        other.commit()
    store.flush()
    assert isinstance(claim.error, flowrt.LeaseLost)
    assert pg_kit.sql("SELECT nodes FROM node_batches") == []


def test_the_writer_is_connected_and_prepared_when_the_store_opens(pg_kit: PostgresKit
                                                                   ) -> None:
    """The connection that found the server is the writer's, its two statements
    prepared before the store is returned: a run's first commit makes no connection."""
    def writer_backends() -> int:
        return len(pg_kit.sql(
            "SELECT 1 FROM pg_stat_activity WHERE application_name = 'flowrt' "
            "AND query LIKE %s AND query LIKE %s",
            "%WITH held AS%", f'%"{pg_kit.schema}".runs%'))

    assert writer_backends() == 0
    store = pg_kit.make()
    assert writer_backends() == 1
    _, claim = store.claim("r", Lease.mine(), lambda s: RunRecord(
        "r", "wf", "fp", {"a": []}, b"{}", "running", "json", 1.0, 1.0))
    assert claim is not None
    store.write(claim, [NodeRecord("a", "succeeded", 1, b"1")], None)
    store.finish(claim, "succeeded", 2.0)
    store.flush()
    assert writer_backends() == 1 and store.load("r").nodes["a"].output == b"1"
    store.close()
    deadline = time.monotonic() + 10
    while writer_backends():
        assert time.monotonic() < deadline, "the writer's connection was not closed"
        time.sleep(0.02)


def test_the_pool_is_ready_for_claims_when_the_store_opens_and_wrote_nothing(
        pg_kit: PostgresKit) -> None:
    """A new store's pool holds a connection on which a new run's claim is prepared --
    by running it once, writing nothing -- so that no run pays for that; the first
    claim then takes no new connection."""
    def pooled_backends() -> list[tuple[Any, ...]]:
        return pg_kit.sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'flowrt' "
            "AND query LIKE %s AND query LIKE %s",
            "INSERT INTO%", f'%"{pg_kit.schema}".runs%')

    store = pg_kit.make()
    ready = pooled_backends()
    assert len(ready) == 1
    assert pg_kit.sql(f'SELECT count(*) FROM "{pg_kit.schema}".runs') == [(0,)]
    _, claim = store.claim("r", Lease.mine(), lambda s: RunRecord(
        "r", "wf", "fp", {"a": []}, b"{}", "running", "json", 1.0, 1.0))
    assert claim is not None and claim.fence == 1
    assert pooled_backends() == ready
    assert [r.run_id for r in store.runs()] == ["r"]
    store.close()


# -- reconnection ---------------------------------------------------------------------------


def _terminate_flowrt_connections(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return len(conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'flowrt' AND pid <> pg_backend_pid()").fetchall())


@pytest.mark.anyio
async def test_dropped_connections_pause_checkpointing_and_the_run_goes_on(
        pg_kit: PostgresKit) -> None:
    calls: list[str] = []
    wf = _chain(20, 0.05, calls)
    for i in range(400):  # busy: the writer is often in the middle of a commit
        wf.add(f"side{i}", functools.partial(_side, i, calls))
    store = pg_kit.make()
    killed = []

    async def cut() -> None:
        rng = random.Random(7)
        for _ in range(12):  # mid-commit sometimes: the writer's pipeline is cut too
            await anyio.sleep(rng.uniform(0.02, 0.08))
            killed.append(await anyio.to_thread.run_sync(_terminate_flowrt_connections,
                                                         pg_kit.url))

    async with flowrt.Runtime(store=store) as rt, anyio.create_task_group() as tg:
        tg.start_soon(cut)
        result = await rt.run(wf, run_id="r")
    assert result.ok and sum(1 for k in killed if k) >= 4, killed
    assert sorted(calls) == sorted([f"n{i}" for i in range(20)]
                                   + [f"side{i}" for i in range(400)])  # each once
    stored = pg_kit.make().load("r")
    assert stored.record.status == "succeeded" and stored.record.owner is None
    assert {n for n, r in stored.nodes.items() if r.status == "succeeded"} == set(calls)


def test_a_server_restart_mid_run(pg_server: pgserver.Server) -> None:
    """The server restarts while a run checkpoints (and another process reads): the run
    goes on through it, and the store has every node, each run once."""
    calls: list[str] = []
    wf = _chain(30, 0.04, calls)
    store = flowrt.PostgresStore(pg_server.url, schema="restart")

    def restart_soon() -> None:
        time.sleep(0.3)
        pgserver.restart(pg_server.dir)

    restarter = threading.Thread(target=restart_soon)
    restarter.start()
    try:
        result = wf.run_sync(store=store, run_id="r", backend="trio")
    finally:
        restarter.join()
    assert result.ok, result.errors
    assert sorted(calls) == sorted(f"n{i}" for i in range(30))
    stored = store.load("r")  # its pool's connections were cut too: reads reconnect
    assert stored.record.status == "succeeded" and len(stored.nodes) == 30
    store.close()


@pytest.mark.anyio
async def test_an_outage_longer_than_the_lease_stops_the_run_then_it_resumes(
        pg_server: pgserver.Server) -> None:
    """A run never goes on past a checkpoint it could not write: with the server down
    for longer than its lease, it stops (StoreError); back up, a resume runs only what
    was not recorded."""
    calls: list[str] = []
    ttl = 1.0
    wf = _chain(60, 0.04, calls)
    store = flowrt.PostgresStore(pg_server.url, schema="outage", lease_ttl=ttl,
                                 connect_timeout=1.0)
    down_at: list[float] = []

    def take_down() -> None:
        time.sleep(0.5)
        down_at.append(time.monotonic())
        pgserver.down(pg_server.dir)

    taker = threading.Thread(target=take_down)
    taker.start()
    try:
        async with flowrt.Runtime(store=store) as rt:
            with pytest.raises(flowrt.StoreError, match="unreachable") as info:
                await rt.run(wf, run_id="r")
            stopped_at = time.monotonic()
    finally:
        taker.join()
        store.close()
    assert "resume it once the store can be written" in str(info.value)
    # it stopped about a lease after the server went away, not at the end of the chain
    assert stopped_at - down_at[0] < ttl + 1.5, stopped_at - down_at[0]
    ran_before = list(calls)
    assert len(ran_before) < 50
    pgserver.up(pg_server.dir)
    calls.clear()
    again = flowrt.PostgresStore(pg_server.url, schema="outage", lease_ttl=ttl)
    try:
        stored = again.load("r")
        recorded = {n for n, r in stored.nodes.items() if r.status == "succeeded"}
        assert recorded and recorded <= set(ran_before)
        result = await wf.run(store=again, run_id="r")
        assert result.ok
        assert not recorded & set(calls)  # nothing recorded ran again
        assert sorted(recorded | set(calls)) == sorted(f"n{i}" for i in range(60))
    finally:
        again.close()


# -- cancellation --------------------------------------------------------------------------




@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("how", ["outer", "timeout", "fail_fast"])
def test_durable_runs_cancelled_every_way_stay_consistent(pg_kit: PostgresKit, how: str,
                                                          backend: str) -> None:
    """Cancelled while claiming, waiting for a limit, retrying or running: the store says
    the run ended (no lease left), and a resume runs only what was not recorded. 15
    trials per case, in a subprocess (a hang fails the test)."""
    pg_kit.make().close()
    out = run_program(CANCEL_PROGRAM.format(spec=pg_kit.spec, how=how, trials=15),
                      backend=backend, timeout=120)
    assert out.strip().endswith("ok")


def test_the_store_a_url_opens_is_closed_with_its_runtime(pg_kit: PostgresKit) -> None:
    url = f"{pg_kit.url}?schema={pg_kit.schema}"

    async def main() -> Any:
        async with flowrt.Runtime(store=url) as rt:
            assert isinstance(rt.store, flowrt.PostgresStore)
            opened = rt.store
            wf = flowrt.Workflow("w")
            wf.add("a", lambda: 1)
            assert (await rt.run(wf, run_id="x")).ok
        return opened

    store = anyio.run(main)
    with pytest.raises(flowrt.StoreError, match="closed"):
        store.runs()
