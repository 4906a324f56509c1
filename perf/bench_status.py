"""Node status: ``flowrt.data.StatusBoard`` beside a dict of name -> ``flowrt.Status``.

For N = 10 / 100 / 1,000 nodes:

- ``Move/N``: every node through PENDING -> READY -> RUNNING -> SUCCEEDED, then back to
  PENDING for the next loop. flowrt: ``board.move(id, status)`` (each move checked
  against the legal transitions) and ``board.reset()``. Baselines: a plain dict
  ``status[name] = Status.X`` (no check) and ``dict.fromkeys(names, PENDING)``; and the
  same dict with the legality check a board does (``new in LEGAL[old]``). Time per move
  (the reset is included, spread over the 3N moves).
- ``Get/N``: read every node's status: ``board[id]`` (returns a ``Status``) beside
  ``status[name]``. Time per read.
- ``Count/N``: how many nodes have succeeded: ``board.count(SUCCEEDED)`` beside
  ``sum(1 for s in status.values() if s is SUCCEEDED)``. Time per count.

    python perf/bench_status.py [--quick] [pyperf options]
"""

from __future__ import annotations

import functools

from _common import Harness, clock, python_line

from flowrt import Status
from flowrt.data import StatusBoard

SIZES = (10, 100, 1_000)
PENDING, READY, RUNNING, SUCCEEDED = (Status.PENDING, Status.READY, Status.RUNNING,
                                      Status.SUCCEEDED)
#: The legal moves as a user would write them next to a dict (flowrt's own rules).
LEGAL = {
    PENDING: {READY, Status.SKIPPED, Status.CANCELLED},
    READY: {RUNNING, Status.CANCELLED},
    RUNNING: {SUCCEEDED, Status.FAILED, READY, Status.CANCELLED},
    SUCCEEDED: set(), Status.FAILED: set(), Status.SKIPPED: set(), Status.CANCELLED: set(),
}


@functools.cache
def names(n: int) -> tuple[str, ...]:
    return tuple(f"n{i}" for i in range(n))


def time_board_move(loops: int, n: int) -> float:
    board = StatusBoard(n)
    move = board.move
    ids = range(n)
    t0 = clock()
    for _ in range(loops):
        for i in ids:
            move(i, READY)
            move(i, RUNNING)
            move(i, SUCCEEDED)
        board.reset()
    return clock() - t0


def time_dict_move(loops: int, n: int) -> float:
    ns = names(n)
    status = dict.fromkeys(ns, PENDING)
    t0 = clock()
    for _ in range(loops):
        for k in ns:
            status[k] = READY
            status[k] = RUNNING
            status[k] = SUCCEEDED
        status = dict.fromkeys(ns, PENDING)
    return clock() - t0


def _checked(status: dict[str, Status], k: str, new: Status) -> None:
    if new not in LEGAL[status[k]]:
        raise ValueError(f"illegal status change for {k}: {status[k]} -> {new}")
    status[k] = new


def time_dict_checked_move(loops: int, n: int) -> float:
    ns = names(n)
    status = dict.fromkeys(ns, PENDING)
    t0 = clock()
    for _ in range(loops):
        for k in ns:
            _checked(status, k, READY)
            _checked(status, k, RUNNING)
            _checked(status, k, SUCCEEDED)
        status = dict.fromkeys(ns, PENDING)
    return clock() - t0


def _finished_board(n: int) -> StatusBoard:
    board = StatusBoard(n)
    for i in range(n):
        for s in (READY, RUNNING, SUCCEEDED):
            board.move(i, s)
    return board


def time_board_get(loops: int, n: int) -> float:
    board = _finished_board(n)
    ids = range(n)
    t0 = clock()
    for _ in range(loops):
        for i in ids:
            board[i]
    return clock() - t0


def time_dict_get(loops: int, n: int) -> float:
    ns = names(n)
    status = dict.fromkeys(ns, SUCCEEDED)
    t0 = clock()
    for _ in range(loops):
        for k in ns:
            status[k]
    return clock() - t0


def time_board_count(loops: int, n: int) -> float:
    board = _finished_board(n)
    t0 = clock()
    for _ in range(loops):
        board.count(SUCCEEDED)
    return clock() - t0


def time_dict_count(loops: int, n: int) -> float:
    status = dict.fromkeys(names(n), SUCCEEDED)
    t0 = clock()
    for _ in range(loops):
        sum(1 for s in status.values() if s is SUCCEEDED)
    return clock() - t0


def main() -> None:
    h = Harness(__doc__.split("\n\n")[0])
    for n in SIZES:
        h.bench(f"NodeStatus/Move/{n}/StatusBoard", time_board_move, n, inner_loops=3 * n)
        h.bench(f"NodeStatus/Move/{n}/dict", time_dict_move, n, inner_loops=3 * n)
        h.bench(f"NodeStatus/Move/{n}/dict_checked", time_dict_checked_move, n,
                inner_loops=3 * n)
        h.bench(f"NodeStatus/Get/{n}/StatusBoard", time_board_get, n, inner_loops=n)
        h.bench(f"NodeStatus/Get/{n}/dict", time_dict_get, n, inner_loops=n)
        h.bench(f"NodeStatus/Count/{n}/StatusBoard", time_board_count, n)
        h.bench(f"NodeStatus/Count/{n}/dict", time_dict_count, n)
    if h.worker:
        return
    print(f"\n{python_line()}")
    rows = []
    for n in SIZES:
        for op in ("Move", "Get", "Count"):
            base = f"NodeStatus/{op}/{n}"
            rows += [(f"{op:<5} {n:>5} StatusBoard", f"{base}/StatusBoard", f"{base}/dict"),
                     (f"{op:<5} {n:>5} dict", f"{base}/dict", None)]
            if op == "Move":
                rows.append((f"{op:<5} {n:>5} dict_checked", f"{base}/dict_checked",
                             f"{base}/dict"))
    h.summary("Node status: time per move / per read / per count", rows, unit="ns",
              note="ratio against the plain dict of name -> Status")


if __name__ == "__main__":
    main()
