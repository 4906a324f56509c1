"""Run a scenario in a fresh interpreter with a deadline, so that a hang fails the test.

Cancellation bugs show up as hangs. A hang inside the test process would stall the
whole suite, so a scenario that could hang runs here instead: in a subprocess, under
``faulthandler.dump_traceback_later`` (a hang prints every thread's stack before the
child exits) and a hard ``timeout`` in the parent (the child is killed). Repeat the
scenario inside the program (a loop) as many times as it took to catch the bug before
the fix, and say how many in the test.

    out = run_program('''
        import anyio, flowrt
        ...
        for trial in range(200):
            anyio.run(main, backend=BACKEND)
        print("ok")
    ''', backend="trio", timeout=60)
    assert out.strip().endswith("ok")

``BACKEND`` is defined for the program (the ``backend`` argument); ``REPO`` is the
repository's root and ``TESTS`` this folder, both put on ``sys.path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def run_program(source: str, *, backend: str = "asyncio", timeout: float = 60.0,
                env: dict[str, str] | None = None, expect_exit: int = 0) -> str:
    """Run ``source`` in a new interpreter; return its stdout, or fail the test.

    Fails when the program outlives ``timeout`` seconds (a hang: its threads' stacks
    are in the failure message), or exits with another status than ``expect_exit``.
    """
    prologue = textwrap.dedent(f"""\
        import faulthandler, sys
        faulthandler.dump_traceback_later({max(timeout - 3.0, 1.0)!r}, exit=True)
        sys.path[:0] = [{str(REPO)!r}, {str(TESTS)!r}]
        BACKEND = {backend!r}
        REPO = {str(REPO)!r}
        TESTS = {str(TESTS)!r}
        """)
    program = prologue + textwrap.dedent(source)
    try:
        proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired as hang:
        err = hang.stderr.decode() if isinstance(hang.stderr, bytes) else (hang.stderr or "")
        pytest.fail(f"the scenario hung (killed after {timeout} s):\n{err[-6000:]}")
    if proc.returncode != expect_exit:
        if "Timeout (0:" in proc.stderr:
            pytest.fail(f"the scenario hung (stacks at the deadline):\n{proc.stderr[-6000:]}")
        pytest.fail(f"the scenario exited with {proc.returncode}, expected {expect_exit}:\n"
                    f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n"
                    f"{proc.stderr[-6000:]}")
    return proc.stdout
