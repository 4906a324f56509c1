"""What the scripts that write the store fixtures share (make_store_v1.py,
make_store_v3.py, make_store_v3_otel.py): a fresh file to write, then a check that the
old flowrt wrote the schema version the migration test expects, and the file compacted.

No flowrt here: the scripts run with an old flowrt checkout on the path.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path


def fresh(path: Path) -> None:
    """Remove ``path`` and its WAL files, so that the script writes a new store."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def finish(path: Path, schema_version: int | None = None) -> None:
    """Check that the store at ``path`` has ``schema_version`` (when given), compact it
    (VACUUM) and say what was written."""
    conn = sqlite3.connect(path)
    try:
        if schema_version is not None:
            version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                                   ).fetchone()
            assert version == (str(schema_version),), (
                f"{path} has schema {version}, not {schema_version}: run this script "
                "with the flowrt its docstring names on the path")
        conn.execute("VACUUM")
    finally:
        conn.close()
    print(path, path.stat().st_size, "bytes", file=sys.stderr)
