"""The runners' spawner: the structure of a task group, on both backends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from flowrt._backends import Spawner
from flowrt._backends import current as current_backend

pytestmark = pytest.mark.anyio


def open_spawner() -> Spawner:
    """The running backend's spawner (what a run's supervisor opens)."""
    return current_backend().open_spawner()


def _sleeper(ended: list[int]) -> Callable[[int], Awaitable[None]]:
    """A task that sleeps until cancelled and notes in ``ended`` that it ended."""

    async def sleeper(i: int) -> None:
        try:
            await anyio.sleep(10)
        finally:
            ended.append(i)

    return sleeper


async def test_the_block_ends_after_every_task() -> None:
    done: list[int] = []

    async def task(i: int) -> None:
        await anyio.sleep(0.01 * i)
        done.append(i)

    async with open_spawner() as spawner:
        for i in range(5):
            spawner.spawn(task, i)
    assert sorted(done) == [0, 1, 2, 3, 4]


async def test_tasks_may_spawn_more_tasks() -> None:
    done: list[int] = []

    async def task(i: int) -> None:
        await anyio.sleep(0)
        if i < 3:
            spawner.spawn(task, i + 1)
        done.append(i)

    async with open_spawner() as spawner:
        spawner.spawn(task, 0)
    assert sorted(done) == [0, 1, 2, 3]


async def test_an_error_in_a_task_cancels_the_others_and_is_raised() -> None:
    cancelled: list[int] = []

    async def sleeper(i: int) -> None:
        try:
            await anyio.sleep(10)
        except anyio.get_cancelled_exc_class():
            cancelled.append(i)
            raise

    async def broken() -> None:
        await anyio.sleep(0.01)
        raise RuntimeError("a bug")

    with anyio.fail_after(5):
        with pytest.raises((RuntimeError, ExceptionGroup)) as info:  # trio: in a group
            async with open_spawner() as spawner:
                spawner.spawn(sleeper, 1)
                spawner.spawn(sleeper, 2)
                spawner.spawn(broken)
    error = info.value
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    assert str(error) == "a bug"
    assert sorted(cancelled) == [1, 2]


async def test_cancel_cancels_every_task_and_the_block_still_waits_for_them() -> None:
    ended: list[int] = []
    sleeper = _sleeper(ended)

    with anyio.fail_after(5):
        async with open_spawner() as spawner:
            for i in range(3):
                spawner.spawn(sleeper, i)
            await anyio.sleep(0.01)
            spawner.cancel()
    assert sorted(ended) == [0, 1, 2]


async def test_cancelling_the_host_cancels_the_tasks() -> None:
    ended: list[int] = []
    sleeper = _sleeper(ended)

    with anyio.move_on_after(0.05) as scope:
        async with open_spawner() as spawner:
            for i in range(3):
                spawner.spawn(sleeper, i)
    assert scope.cancelled_caught
    assert sorted(ended) == [0, 1, 2]
