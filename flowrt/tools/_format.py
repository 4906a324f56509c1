"""How the tools write values for people: durations, times, errors, stored text.

One formatter per kind of value, shared by the command line, the progress displays
and the HTML report, so that a duration or a time reads the same everywhere.
"""

from __future__ import annotations

import re
import time

from ..errors import describe_error

__all__ = ["duration", "error_text", "for_terminal", "one_line", "short_repr", "timestamp"]


def duration(s: float | None) -> str:
    """A duration for people: ``0.012s``, ``3.40s``, ``2m05s``, ``1h02m``; ``-`` for None."""
    if s is None:
        return "-"
    if s < 0:
        s = 0.0
    if s < 1:
        return f"{s:.3f}s"
    if s < 60:
        return f"{s:.2f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def timestamp(t: float | None, *, millis: bool = False) -> str:
    """A wall-clock time (seconds since the epoch) in local time,
    ``2026-11-26 19:53:38`` (``.123`` more with ``millis``); ``-`` for None."""
    if t is None:
        return "-"
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))
    return text + f".{int(t % 1 * 1000):03d}" if millis else text


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` with its runs of whitespace made single spaces, cut to ``limit``."""
    text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        return text[: max(0, limit - 3)] + "..."
    return text


def short_repr(value: object, limit: int = 160) -> str:
    """``repr(value)`` on one line, cut to ``limit`` (a ``repr`` that raises is named so)."""
    try:
        text = repr(value)
    except Exception as error:  # a user's __repr__: the result is still printed
        text = f"<{type(value).__qualname__} object: repr() raised {describe_error(error)}>"
    return one_line(text, limit)


def error_text(error: BaseException | None, limit: int = 200) -> str:
    """``"Type: message"`` of ``error`` on one line, cut to ``limit`` characters."""
    return "" if error is None else one_line(describe_error(error), limit)


# C0 controls but tab and newline, DEL, the C1 controls (0x9b is a one-byte CSI), and
# the Unicode bidirectional overrides/isolates (text that reads other than it runs).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def for_terminal(text: str) -> str:
    """``text`` (from a store, a user's node, an exception) safe to print on a terminal.

    Escape sequences could move the cursor, retitle the window, rewrite what was
    printed before or, on some terminals, answer back into the input: every control
    character but newline and tab becomes a visible ``\\x..`` escape. A lone surrogate
    (a file name decoded with ``surrogateescape``) becomes ``\\udc..``, which any
    stream can encode.
    """
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
