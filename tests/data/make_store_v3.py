"""Makes store-v3-maps.db, a store written by flowrt before maps (SQLite store schema 3),
for the migration test of the items table (tests/test_maps.py). Run it with the flowrt
of commit ec37e74 on the path: ``PYTHONPATH=<that checkout> python make_store_v3.py``.

Two runs of the workflow ``fixture3`` (files -> sizes): "done" succeeded; "half" failed
at sizes (files succeeded).
"""

from __future__ import annotations

import sys
from pathlib import Path

from fixture_files import finish, fresh

import flowrt

HERE = Path(__file__).resolve().parent
PATH = HERE / "store-v3-maps.db"


def build(fail: bool) -> flowrt.Workflow:
    wf = flowrt.Workflow("fixture3")

    @wf.node
    def files() -> list[str]:
        return ["a.csv", "bb.csv", "ccc.csv"]

    @wf.node
    def sizes(files: list[str]) -> list[int]:
        if fail:
            raise OSError("disk on fire")
        return [len(f) for f in files]

    return wf


def main() -> None:
    fresh(PATH)
    assert build(False).run_sync(store=str(PATH), run_id="done").ok
    assert not build(True).run_sync(store=str(PATH), run_id="half").ok
    finish(PATH, schema_version=3)
    print(f"(with flowrt from {flowrt.__file__})", file=sys.stderr)


if __name__ == "__main__":
    main()
