"""Running work from the command line: under Ctrl-C, with progress and logging.

What ``run`` and ``examples`` share: the work runs in a fresh event loop that SIGINT and
SIGTERM cancel cleanly, and log records go to stderr beside the progress display.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from .._progress import Display, LiveDisplay
from ._common import err

__all__ = ["Interrupted", "exit_now_if_threads_left", "progress_options", "run_interruptible",
           "setup_logging"]

T = TypeVar("T")


class Interrupted(Exception):
    """The work was stopped by a signal (Ctrl-C: SIGINT, or SIGTERM)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


# -- running async work that Ctrl-C can stop ----------------------------------------------


def run_interruptible(make: Callable[[], Awaitable[T]]) -> T:
    """Run ``make()`` in a new asyncio event loop; SIGINT/SIGTERM cancel it cleanly.

    The signal cancels the work's cancel scope: every running node is cancelled, a
    durable run's store records the run as cancelled (resumable), then
    :class:`Interrupted` is raised here. Exceptions of the work are raised as they are.
    """
    box: dict[str, Any] = {}

    async def watch(signals: Any, scope: anyio.CancelScope) -> None:
        async for signum in signals:
            box["signal"] = int(signum)
            scope.cancel()
            return

    async def work() -> None:
        try:
            box["value"] = await make()
        except Exception as error:  # raised after the loop, without an exception group
            box["error"] = error

    async def host() -> None:
        try:
            receiver = anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
            signals = receiver.__enter__()
        except (NotImplementedError, RuntimeError, ValueError):  # no signals here
            await work()
            return
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch, signals, tg.cancel_scope)
                await work()
                tg.cancel_scope.cancel()
        finally:
            receiver.__exit__(None, None, None)

    anyio.run(host)
    if "error" in box:
        raise box["error"]
    if "value" in box:
        return box["value"]  # type: ignore[no-any-return]
    raise Interrupted(box.get("signal", signal.SIGINT))


def _abandoned_threads(grace: float = 0.5) -> int:
    """Worker threads still running a sync node that a cancelled run gave up on.

    Idle workers stop by themselves once the event loop has ended; give them ``grace``
    seconds to do so, so that only the busy ones are counted.
    """
    workers = [t for t in threading.enumerate()
               if t.name.startswith("AnyIO worker thread") and not t.daemon]
    deadline = time.monotonic() + grace
    for t in workers:
        t.join(max(0.0, deadline - time.monotonic()))
    return sum(1 for t in workers if t.is_alive())


def exit_now_if_threads_left(code: int) -> None:
    """Before exiting on a signal: do not wait for abandoned worker threads."""
    left = _abandoned_threads()
    if left:
        err(f"not waiting for {left} sync node{'s' if left > 1 else ''} still running in "
            "worker threads (their results are discarded)")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


# -- logging -------------------------------------------------------------------------------

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
#: flowrt's own lifecycle records: the progress display already shows them
_LIFECYCLE = frozenset({"run started", "run finished", "node failed"})


class _Formatter(logging.Formatter):
    """``LEVEL logger: message key=value ...`` with the values structlog bound."""

    def format(self, record: logging.LogRecord) -> str:
        base = f"{record.levelname.lower()} {record.name}: {record.getMessage()}"
        extras = " ".join(f"{k}={v}" for k, v in vars(record).items()
                          if k not in _STANDARD_ATTRS and not k.startswith("_"))
        text = f"{base} {extras}" if extras else base
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _SkipLifecycle(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "flowrt" and record.getMessage() in _LIFECYCLE)


def setup_logging(level_name: str, display: Display) -> logging.Handler:
    """Show log records of ``level_name`` and above on stderr (the CLI configures
    logging; the library never does)."""
    level = getattr(logging, level_name.upper())
    handler: logging.Handler
    if isinstance(display, LiveDisplay):
        from rich.logging import RichHandler  # type: ignore[import-not-found,unused-ignore]

        handler = RichHandler(console=display.console, show_path=False, markup=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter())
    if level > logging.DEBUG:
        handler.addFilter(_SkipLifecycle())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def progress_options(p: argparse.ArgumentParser) -> None:
    """The options of commands that show progress: --progress, --quiet, --log-level."""
    p.add_argument("--progress", choices=["auto", "live", "plain", "off"], default="auto",
                   help="how progress is shown on stderr: live on a terminal (with rich), "
                        "plain lines otherwise (default: auto)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("--log-level", default="warning",
                   choices=["debug", "info", "warning", "error", "critical"],
                   help="log records shown on stderr (default: warning)")
