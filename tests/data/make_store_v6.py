"""Makes store-v6-items.db, a store written by the flowrt of commit f35e8e6 (SQLite store
schema 6: one ``items`` row per item of a mapped node), for the migration test of schema
7 (item records packed per batch: tests/test_maps.py). Run it with that flowrt on the
path: ``git archive f35e8e6 | tar -x -C /tmp/v6 && PYTHONPATH=/tmp/v6 python
make_store_v6.py``.

Runs of the workflow ``fixture6`` (numbers -> square, mapped, ``retries=1``):
"done" succeeded (item 2 succeeded at its second attempt); "half" failed at item 3
(its error and traceback recorded; items 0, 1, 2, 4 and 5 succeeded: the map does not
stop its other items); "empty" mapped an empty list.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fixture_files import finish, fresh

import flowrt

HERE = Path(__file__).resolve().parent
PATH = HERE / "store-v6-items.db"


def build(fail: bool, numbers: list[int] | None = None) -> flowrt.Workflow:
    wf = flowrt.Workflow("fixture6")
    tried: set[int] = set()

    @wf.node
    def numbers_() -> list[int]:
        return list(range(6)) if numbers is None else numbers

    def square(n: int) -> dict[str, int]:
        if n == 2 and n not in tried:
            tried.add(n)
            raise ConnectionError("flaky")
        if fail and n == 3:
            raise ValueError("three is right out")
        return {"n": n, "square": n * n}

    wf.add("square", square, map={"n": "numbers_"}, retries=1, concurrency=2)
    return wf


def main() -> None:
    fresh(PATH)
    assert build(False).run_sync(store=str(PATH), run_id="done").ok
    assert not build(True).run_sync(store=str(PATH), run_id="half").ok
    assert build(False, []).run_sync(store=str(PATH), run_id="empty").ok
    finish(PATH, schema_version=6)
    print(f"(with flowrt from {flowrt.__file__})", file=sys.stderr)


if __name__ == "__main__":
    main()
