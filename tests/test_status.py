"""Statuses, the status board and its legal transitions; trigger rules."""

import itertools

import pytest

from flowrt import Status, Trigger
from flowrt._types import FINAL
from flowrt.data import StatusBoard

P, RD, RN, S, F, SK, C = (
    Status.PENDING,
    Status.READY,
    Status.RUNNING,
    Status.SUCCEEDED,
    Status.FAILED,
    Status.SKIPPED,
    Status.CANCELLED,
)
BY = Status.BYPASSED  # branches
# -- caching --
CA = Status.CACHED

LEGAL = {
    (P, RD), (RD, RN), (RN, S), (RN, F),
    (RN, RD),  # a failed attempt waits for its retry
    (P, SK),
    (P, C), (RD, C), (RN, C),  # any non-final status may be cancelled
    (P, BY),  # branches: on a path a branch did not take
    # waits (issue 14)
    (RD, Status.WAITING), (Status.WAITING, S), (Status.WAITING, F), (Status.WAITING, C),
    # saga compensation: a rollback undoes a succeeded node
    (S, Status.COMPENSATED), (S, Status.COMPENSATION_FAILED),
    (RD, CA),  # caching: read from the cache instead of running
}


def test_status_names_and_finality() -> None:
    assert str(Status.SUCCEEDED) == "succeeded"
    assert [str(s) for s in Status] == [
        "pending", "ready", "running", "succeeded", "failed", "skipped", "cancelled",
        "bypassed", "waiting", "compensated", "compensation_failed", "cached",
    ]
    assert [s for s in Status if s.final] == [
        S, F, SK, C, BY, Status.COMPENSATED, Status.COMPENSATION_FAILED, CA]
    assert frozenset(s for s in Status if s.final) == FINAL
    assert not P.final and not RD.final and not RN.final
    assert not Status.WAITING.final  # a wait node waits: not final (issue 14)


def test_board_starts_pending() -> None:
    board = StatusBoard(4)
    assert len(board) == 4
    assert list(board) == [P] * 4
    assert board[2] is P
    assert board.counts() == {s: (4 if s is P else 0) for s in Status}


def test_a_node_life_through_the_legal_moves() -> None:
    board = StatusBoard(3)
    for s in (RD, RN, RD, RN, S):  # with one retry
        board.move(0, s)
    for s in (RD, RN, F):
        board.move(1, s)
    board.move(2, SK)
    assert list(board) == [S, F, SK]
    assert board.count(S) == 1 and board.count(P) == 0


@pytest.mark.parametrize(("old", "new"), list(itertools.product(Status, Status)))
def test_every_transition_is_legal_or_raises_naming_both_statuses(
    old: Status, new: Status
) -> None:
    board = StatusBoard(2)
    board.restore(1, old)
    if (old, new) in LEGAL:
        board.move(1, new)
        assert board[1] is new
    else:
        with pytest.raises(ValueError) as info:
            board.move(1, new)
        assert str(info.value) == f"illegal status change for node 1: {old} -> {new}"
        assert board[1] is old  # unchanged
    assert board[0] is P


@pytest.mark.parametrize("bad", [len(Status), len(Status) + 1, 255, -1])
def test_a_value_that_is_no_status_is_refused(bad: int) -> None:
    board = StatusBoard(1)
    with pytest.raises(ValueError, match="not a status"):
        board.move(0, bad)
    assert board[0] is P


def test_restore_skips_the_check() -> None:
    board = StatusBoard(1)
    board.restore(0, S)  # PENDING -> SUCCEEDED is no legal move; loading a run is
    assert board[0] is S


def test_counts_and_reset() -> None:
    board = StatusBoard(5)
    board.move(0, RD)
    board.move(1, RD)
    board.move(1, RN)
    board.move(2, SK)
    board.move(3, C)
    counts = board.counts()
    assert counts == {P: 1, RD: 1, RN: 1, S: 0, F: 0, SK: 1, C: 1, BY: 0,
                      Status.WAITING: 0, Status.COMPENSATED: 0, Status.COMPENSATION_FAILED: 0,
                      CA: 0}
    assert list(counts) == list(Status)  # every status listed
    assert sum(counts.values()) == len(board)
    assert repr(board) == (
        "<StatusBoard 5 nodes: pending=1, ready=1, running=1, skipped=1, cancelled=1>"
    )
    raw = board.raw
    board.reset()
    assert list(board) == [P] * 5
    assert len(board) == 5
    assert board.raw is raw  # same storage, capacity kept
    board.resize(2)
    assert list(board) == [P, P]


# -- trigger rules -----------------------------------------------------------------------


def _holds(trigger: Trigger, succeeded: int, failed: int, skipped: int) -> bool:
    return trigger.holds(succeeded + failed + skipped, succeeded, failed)


@pytest.mark.parametrize(
    ("trigger", "table"),
    [
        # (succeeded, failed, skipped) -> holds
        (Trigger.ALL_SUCCESS, {(2, 0, 0): True, (1, 1, 0): False, (1, 0, 1): False,
                               (0, 2, 0): False}),
        (Trigger.ALL_DONE, {(2, 0, 0): True, (1, 1, 0): True, (0, 0, 2): True,
                            (0, 2, 0): True}),
        (Trigger.ONE_SUCCESS, {(1, 1, 0): True, (1, 0, 1): True, (0, 1, 1): False,
                               (0, 0, 2): False}),
        (Trigger.ONE_FAILED, {(1, 1, 0): True, (0, 1, 1): True, (2, 0, 0): False,
                              (0, 0, 2): False}),
        (Trigger.NONE_FAILED, {(2, 0, 0): True, (1, 0, 1): True, (0, 0, 2): True,
                               (1, 1, 0): False}),
        (Trigger.ALL_FAILED, {(0, 2, 0): True, (1, 1, 0): False, (0, 1, 1): False,
                              (0, 0, 2): False}),
        # branches: the merge
        (Trigger.NONE_FAILED_MIN_ONE_SUCCESS, {(2, 0, 0): True, (1, 0, 1): True,
                                               (0, 0, 2): False, (1, 1, 0): False}),
    ],
)
def test_trigger_rules_have_airflow_meanings(
    trigger: Trigger, table: dict[tuple[int, int, int], bool]
) -> None:
    for (succeeded, failed, skipped), expected in table.items():
        assert _holds(trigger, succeeded, failed, skipped) is expected, (
            trigger, succeeded, failed, skipped)


@pytest.mark.parametrize("trigger", list(Trigger))
def test_a_node_without_dependencies_always_runs(trigger: Trigger) -> None:
    assert trigger.holds(0, 0, 0) is True


def test_trigger_values_and_codes() -> None:
    assert Trigger("all_success") is Trigger.ALL_SUCCESS
    assert str(Trigger.NONE_FAILED) == "none_failed"
    assert Trigger.ALL_SUCCESS.code == 0  # the default is the zero byte of a plan
    assert sorted(t.code for t in Trigger) == list(range(len(Trigger)))
