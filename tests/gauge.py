"""A gauge of how many callers are inside a block at once, for the tests that check a
cap on concurrency (max_concurrency, named limits, a map's ``concurrency``)."""

from __future__ import annotations

import threading

import anyio


class Gauge:
    """Counts how many callers are inside at once (``now``) and the most ever
    (``peak``), overall and per key; thread-safe, so sync nodes in worker threads can
    use it too."""

    def __init__(self) -> None:
        self.now: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self.lock = threading.Lock()

    def enter(self, *keys: str) -> None:
        with self.lock:
            for k in keys:
                self.now[k] = self.now.get(k, 0) + 1
                self.peak[k] = max(self.peak.get(k, 0), self.now[k])

    def leave(self, *keys: str) -> None:
        with self.lock:
            for k in keys:
                self.now[k] -= 1

    async def hold(self, seconds: float, *keys: str) -> None:
        """Be inside under ``keys`` for ``seconds`` (an async sleep)."""
        self.enter(*keys)
        try:
            await anyio.sleep(seconds)
        finally:
            self.leave(*keys)
