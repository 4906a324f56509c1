"""The hang harness itself: a hang fails, an error fails, output comes back."""

from __future__ import annotations

import pytest
from subproc import run_program


def test_output_comes_back() -> None:
    assert run_program("print('ok', BACKEND)", backend="trio").split() == ["ok", "trio"]


def test_a_hang_fails_with_the_stacks() -> None:
    with pytest.raises(pytest.fail.Exception, match="hung"):
        run_program("import time\ntime.sleep(30)", timeout=4)


def test_an_error_fails() -> None:
    with pytest.raises(pytest.fail.Exception, match="ZeroDivisionError"):
        run_program("1 / 0")
