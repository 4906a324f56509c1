"""Headless Chromium driven through the DevTools protocol, for the dashboard's tests.

Debian's ``chromium`` is started with ``--remote-debugging-pipe``: commands go to its
file descriptor 3 and answers come from its descriptor 4, as NUL-terminated JSON (no
port, no WebSocket library, no browser download). ``Page.eval`` runs JavaScript in the
page; ``Page.wait_for`` polls an expression until it is truthy, so that a test waits
for what a person would see rather than sleeping.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import itertools
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

__all__ = ["Browser", "BrowserError", "Page", "chromium"]


class BrowserError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


def chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _above_9(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Browser:
    """A headless Chromium with a profile in ``folder``; close it with :meth:`close`."""

    def __init__(self, executable: str, folder: Path, *, width: int = 1300,
                 height: int = 1000) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # the browser's ends move above 9 first, so that placing them at 3 and 4 in the
        # child never closes one of them (a pipe may well get descriptor 3 or 4 here)
        to_browser_r, from_browser_w = (_above_9(to_browser_r), _above_9(from_browser_w))
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
                 f"--user-data-dir={folder / 'profile'}", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--hide-scrollbars",
                 "--disable-features=Translate,MediaRouter,OptimizationHints",
                 f"--window-size={width},{height}", "about:blank"]
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "chromium.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} '
                               f"{to_browser_r}<&- {from_browser_w}>&-", executable, *flags],
                pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._ids = itertools.count(1)
        self._buffer = b""
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, *,
             session: str | None = None, timeout: float = 30.0) -> dict[str, Any]:
        """Send a command; its result (events that come meanwhile go to ``events``)."""
        call_id = next(self._ids)
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for answer in self._read(deadline, method):
                if answer.get("id") == call_id:
                    if "error" in answer:
                        raise BrowserError(f"{method}: {answer['error']}")
                    return dict(answer.get("result", {}))
                self.events.append(answer)

    def _read(self, deadline: float, what: str) -> list[dict[str, Any]]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no answer to {what} in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError(f"the browser closed the pipe (see {self.log})")
                self._buffer += chunk
        *messages, self._buffer = self._buffer.split(b"\0")
        return [json.loads(m) for m in messages if m]

    def new_page(self) -> Page:
        """A new tab (its own target; cookies are shared with the other tabs)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target,
                                                      "flatten": True})["sessionId"]
        page = Page(self, session, target)
        page.send("Page.enable")
        page.send("Runtime.enable")
        return page

    def close(self) -> None:
        """Close the browser (killed if it does not go within 10 seconds)."""
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)


class Page:
    """One tab of a :class:`Browser`."""

    def __init__(self, browser: Browser, session: str, target: str) -> None:
        self.browser = browser
        self.session = session
        self.target = target

    def send(self, method: str, params: dict[str, Any] | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        """A DevTools command for this tab."""
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def eval(self, expression: str, timeout: float = 30.0) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.send("Runtime.evaluate", {"expression": expression,
                                                "returnByValue": True, "awaitPromise": True},
                           timeout=timeout)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.eval(expression)
            except BrowserError as error:  # a navigation in between
                last = error
            else:
                if last:
                    return last
            time.sleep(0.05)
        raise BrowserError(f"{expression!r} did not hold within {timeout}s (last: {last!r})")

    def goto(self, url: str, timeout: float = 60.0) -> None:
        """Open ``url`` and wait until it has loaded."""
        self.send("Page.navigate", {"url": url}, timeout=timeout)
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'",
                      timeout)

    def screenshot(self, path: Path) -> Path:
        """A PNG of what the tab shows now (its window, not the whole page)."""
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.write_bytes(base64.b64decode(data))
        return path
