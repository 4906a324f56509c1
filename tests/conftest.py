"""Shared fixtures: every async test runs on both anyio backends; the stores.

PostgreSQL (``pg_url``): ``FLOWRT_TEST_PG_URL`` points the tests at a server; without
it, in CI (the ``CI`` variable is set) every PostgreSQL test fails -- they are never
skipped there -- and elsewhere a throwaway server is started for the session when
PostgreSQL is installed (tests/pgserver.py), else they are skipped with the reason.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import pgserver
from stores import MemoryKit, PostgresKit, SQLiteKit, StoreKit


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _no_postgres(reason: str) -> None:
    """Fail in CI, skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _need_psycopg() -> None:
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        _no_postgres("psycopg is not installed (pip install -e '.[postgres]')")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The URL of a PostgreSQL server for the tests (see the module's docstring)."""
    _need_psycopg()
    url = os.environ.get("FLOWRT_TEST_PG_URL")
    if url:
        yield url
        return
    if os.environ.get("CI"):
        _no_postgres("FLOWRT_TEST_PG_URL is not set (.ci/run starts a server and sets it)")
    if pgserver.find_bindir() is None:
        _no_postgres("PostgreSQL is not installed and FLOWRT_TEST_PG_URL is not set "
                     "(apt-get install postgresql, or point FLOWRT_TEST_PG_URL at a server)")
    try:
        server = pgserver.start()
    except RuntimeError as error:
        _no_postgres(f"a throwaway PostgreSQL server did not start: {error}")
    try:
        yield server.url
    finally:
        pgserver.stop(server.dir)


@pytest.fixture
def pg_server() -> Iterator[pgserver.Server]:
    """A PostgreSQL server of this test's own, which the test may restart or stop."""
    _need_psycopg()
    if pgserver.find_bindir() is None:
        _no_postgres("PostgreSQL is not installed (these tests restart a server of their "
                     "own: apt-get install postgresql)")
    try:
        server = pgserver.start()
    except RuntimeError as error:
        _no_postgres(f"a throwaway PostgreSQL server did not start: {error}")
    try:
        yield server
    finally:
        pgserver.stop(server.dir)


def _kit(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreKit:
    if kind == "memory":
        return MemoryKit()
    if kind == "sqlite":
        return SQLiteKit(tmp_path)
    return PostgresKit(request.getfixturevalue("pg_url"))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreKit]:
    """Each kind of store in turn (tests/stores.py): the conformance suite's fixture."""
    kit = _kit(str(request.param), request, tmp_path)
    try:
        yield kit
    finally:
        kit.close()


@pytest.fixture(params=["sqlite", "postgres"])
def shared_kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreKit]:
    """Each kind of store that several processes share."""
    kit = _kit(str(request.param), request, tmp_path)
    try:
        yield kit
    finally:
        kit.close()


@pytest.fixture
def any_store(store_kit: StoreKit) -> Any:
    """A store of each kind in turn (closed when the test ends)."""
    return store_kit.make()


@pytest.fixture
def pg_kit(pg_url: str) -> Iterator[PostgresKit]:
    """A PostgreSQL schema of this test's own on the session's server (dropped after)."""
    kit = PostgresKit(pg_url)
    try:
        yield kit
    finally:
        kit.close()
