"""What the crash tests and the workflows they run in subprocesses share
(durable_worker.py, map_worker.py, branch_worker.py, saga_worker.py): in the worker, a
log that several processes append to and the main that runs a workflow in a store and
exits with its outcome; in the test, starting a worker and reading who started what.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stores import open_spec

import flowrt


def note(path: str, line: str) -> None:
    """Append ``"<line> <pid>"`` to the log at ``path``: one ``write`` with O_APPEND, so
    lines from several processes never mix. The tests read which process started what
    from it."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, f"{line} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def run_in_store(wf: flowrt.Workflow, spec: str, run_id: str, backend: str,
                 **options: Any) -> flowrt.RunResult:
    """Run ``wf`` as run ``run_id`` in the store ``spec`` names (tests/stores.py) on
    ``backend``, with ``options`` for ``run_sync``; print the run's status."""
    store = open_spec(spec)
    try:
        result = wf.run_sync(store=store, run_id=run_id, backend=backend, **options)
    finally:
        store.close()
    print(result.status)
    return result


def main(build: Callable[[str], flowrt.Workflow], **options: Any) -> None:
    """``python WORKER.py SPEC RUN_ID LOG BACKEND``: run ``build(LOG)`` as
    :func:`run_in_store` does, and exit 0 when it succeeded, else 1."""
    spec, run_id, log_path, backend = sys.argv[1:5]
    result = run_in_store(build(log_path), spec, run_id, backend, **options)
    sys.exit(0 if result.ok else 1)


def start_worker(script: str, spec: str, run_id: str, log: Path,
                 backend: str = "asyncio") -> subprocess.Popen[bytes]:
    """Start ``python tests/<script> SPEC RUN_ID LOG BACKEND`` (a worker with
    :func:`main`), its output piped."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / script), spec, run_id, str(log),
         backend], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def starts(log: Path, pid: int | None = None) -> list[str]:
    """What the ``"start <what> <pid>"`` lines of ``log`` say was started (by process
    ``pid`` only, when given), in order; empty when nothing was logged yet."""
    if not log.exists():
        return []
    lines = [line.split() for line in log.read_text().splitlines() if line.strip()]
    return [what for _, what, p in lines if pid is None or int(p) == pid]
