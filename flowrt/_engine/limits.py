"""Concurrency limits: how many nodes may run at once, overall or per named limit.

A :class:`Limit` counts the nodes holding one of its slots and keeps the nodes waiting
for one in a FIFO queue. A waiting node costs one queue entry: no task, no coroutine.
One limit may be shared by the runs of a :class:`~flowrt.Runtime`; a slot freed by one
run wakes the node that waited longest, whichever run it belongs to.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .supervisor import Supervisor

__all__ = ["Limit"]

GONE, WOKEN, HANDED = 0, 1, 2  # what Supervisor.wake did with a waiter


class Limit:
    """At most ``capacity`` holders at once; the others wait in order.

    The supervisor takes a slot by ``in_use += 1`` when ``in_use < capacity`` (inline,
    on its hot path) and gives it back with :meth:`release`.
    """

    __slots__ = ("capacity", "in_use", "name", "waiters")

    def __init__(self, name: str, capacity: int) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"limit {name!r} must be an int >= 1, got {capacity!r}")
        self.name = name
        self.capacity = capacity
        self.in_use = 0
        self.waiters: deque[tuple[Supervisor, int]] = deque()

    def release(self, by: Supervisor) -> None:
        """Give up a slot (held by a node of run ``by``) to the longest waiter, if any.

        A waiter under this limit alone takes the slot as it is (it will not ask again);
        one under several limits is woken to take them all itself.
        """
        waiters = self.waiters
        while waiters:
            sup, node = waiters.popleft()
            woken = sup.wake(node, by, self)
            if woken == HANDED:
                return
            if woken == WOKEN:
                break
        self.in_use -= 1

    def __repr__(self) -> str:
        return (f"<Limit {self.name!r} {self.in_use}/{self.capacity}, "
                f"{len(self.waiters)} waiting>")
