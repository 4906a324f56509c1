"""The status board of a run: a status byte per node.

The board is one ``bytearray`` with a byte per node: no object per node, counts by
C-speed ``bytearray.count``, and a transition check that is one table lookup.
"""

from __future__ import annotations

from collections.abc import Iterator

from .._types import BY_VALUE, Status

__all__ = ["StatusBoard"]


_N = len(Status)
# _LEGAL[old * _N + new] is 1 when old -> new is a legal move.
_legal = bytearray(_N * _N)
for _old, _news in {
    Status.PENDING: (Status.READY, Status.SKIPPED, Status.CANCELLED,
                     Status.BYPASSED),  # branches: on a path a branch did not take
    Status.READY: (Status.RUNNING, Status.CANCELLED, Status.WAITING,
                   Status.CACHED),  # caching: read from the cache instead of running
    # RUNNING -> READY: the attempt failed and the node waits to be retried.
    Status.RUNNING: (Status.SUCCEEDED, Status.FAILED, Status.READY, Status.CANCELLED),
    # A durable run resumes: its final nodes become what the store says.
    # -- waits (issue 14): a READY wait node waits, then ends as its wait does
    Status.WAITING: (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED),
    # -- saga compensation: a rollback undoes a succeeded node --
    Status.SUCCEEDED: (Status.COMPENSATED, Status.COMPENSATION_FAILED),
}.items():
    for _new in _news:
        _legal[_old * _N + _new] = 1
_LEGAL = bytes(_legal)


class StatusBoard:
    """A preallocated array of the statuses of ``size`` nodes, indexed by node id.

    Every node starts PENDING. :meth:`move` enforces the legal transitions::

        PENDING -> READY -> RUNNING -> SUCCEEDED | FAILED
                                    -> READY            (waiting for a retry)
        PENDING -> SKIPPED | BYPASSED;  any non-final -> CANCELLED
        READY -> WAITING -> SUCCEEDED | FAILED   (a signal, approval or timer node)
        SUCCEEDED -> COMPENSATED | COMPENSATION_FAILED   (a rollback undid it)
    """

    __slots__ = ("_board",)

    def __init__(self, size: int) -> None:
        self._board = bytearray(size)

    def move(self, node: int, new: int) -> None:
        """Move ``node`` to status ``new``; raise ValueError if that move is illegal."""
        board = self._board
        old = board[node]
        # The range check: an out-of-range ``new`` would read another row of the table.
        if not (0 <= new < _N and _LEGAL[old * _N + new]):
            shown = Status(new) if 0 <= new < _N else f"{new!r} (not a status)"
            raise ValueError(f"illegal status change for node {node}: {Status(old)} -> {shown}")
        board[node] = new

    def restore(self, node: int, status: int) -> None:
        """Set ``node``'s status without the transition check (loading a stored run)."""
        self._board[node] = status

    def __getitem__(self, node: int) -> Status:
        return BY_VALUE[self._board[node]]

    def count(self, status: int) -> int:
        """How many nodes have ``status`` now."""
        return self._board.count(status)

    def counts(self) -> dict[Status, int]:
        """Nodes per status, every status listed."""
        board = self._board
        return {s: board.count(s) for s in Status}

    def reset(self) -> None:
        """Every node back to PENDING, keeping the capacity."""
        board = self._board
        board[:] = bytes(len(board))

    def resize(self, size: int) -> None:
        """Make room for exactly ``size`` nodes, all PENDING."""
        self._board = bytearray(size)

    @property
    def raw(self) -> bytearray:
        """The underlying bytes (one per node), for the supervisor's hot path."""
        return self._board

    def __len__(self) -> int:
        return len(self._board)

    def __iter__(self) -> Iterator[Status]:
        return map(BY_VALUE.__getitem__, self._board)

    def __repr__(self) -> str:
        parts = ", ".join(f"{s}={c}" for s, c in self.counts().items() if c)
        return f"<StatusBoard {len(self)} nodes: {parts}>"
