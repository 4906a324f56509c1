"""Every run option is accepted by Runtime.run, Workflow.run and run_sync alike.

The three take ``**options: Unpack[RunOptions]``, one definition (issue 12); these tests
iterate over ``RunOptions`` itself, so an option added there without a value here
fails until it is tried on all three.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

import flowrt
from flowrt.runtime import RUN_OPTIONS, RunOptions


def sample_values() -> dict[str, Any]:
    """A valid value of every run option (a new option must be added here)."""
    return {
        "run_id": "options-run",
        "max_concurrency": 2,
        "limits": {"api": 1},
        "fail_fast": True,
        "timeout": 30.0,
        "data": flowrt.WorkflowData(),
        "executor": "thread",
        "on_event": lambda event: None,
        "resume": "force",  # needs a store: every run below has one
        "metrics": False,
        "strict_inputs": False,
        "park": True,  # needs a store too; a run without wait nodes never parks
        "compensate": False,
        # -- resources and caching --
        "resources": {"client": object()},
        "refresh": True,
    }


def workflow() -> flowrt.Workflow:
    wf = flowrt.Workflow("options")
    wf.add("a", lambda n: n + 1, limit="api")
    return wf


def test_every_run_option_has_a_sample_value() -> None:
    assert set(sample_values()) == set(RunOptions.__annotations__) == RUN_OPTIONS


@pytest.mark.parametrize("option", sorted(RUN_OPTIONS))
def test_run_sync_accepts_every_run_option(option: str) -> None:
    value = sample_values()[option]
    result = workflow().run_sync({"n": 1}, store=flowrt.MemoryStore(), **{option: value})
    assert result["a"] == 2


@pytest.mark.anyio
@pytest.mark.parametrize("option", sorted(RUN_OPTIONS))
async def test_workflow_run_accepts_every_run_option(option: str) -> None:
    value = sample_values()[option]
    result = await workflow().run({"n": 1}, store=flowrt.MemoryStore(), **{option: value})
    assert result["a"] == 2


@pytest.mark.anyio
@pytest.mark.parametrize("option", sorted(RUN_OPTIONS))
async def test_runtime_run_accepts_every_run_option(option: str) -> None:
    value = sample_values()[option]
    async with flowrt.Runtime(store=flowrt.MemoryStore()) as rt:
        result = await rt.run(workflow(), {"n": 1}, **{option: value})
    assert result["a"] == 2


@pytest.mark.anyio
async def test_all_run_options_at_once_on_all_three() -> None:
    wf = workflow()
    for run in (
        lambda **o: wf.run({"n": 1}, store=flowrt.MemoryStore(), **o),
        lambda **o: anyio.to_thread.run_sync(
            lambda: wf.run_sync({"n": 1}, store=flowrt.MemoryStore(), **o)),
    ):
        assert (await run(**sample_values()))["a"] == 2
    async with flowrt.Runtime(store=flowrt.MemoryStore()) as rt:
        assert (await rt.run(wf, {"n": 1}, **sample_values()))["a"] == 2


@pytest.mark.anyio
async def test_a_misspelt_option_is_refused_by_all_three_with_the_near_match() -> None:
    wf = workflow()
    message = r"unexpected keyword argument 'strict_input'; did you mean 'strict_inputs'\?"
    with pytest.raises(TypeError, match=message):
        wf.run_sync({"n": 1}, strict_input=False)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=message):
        await wf.run({"n": 1}, strict_input=False)  # type: ignore[call-arg]
    async with flowrt.Runtime() as rt:
        with pytest.raises(TypeError, match=message):
            await rt.run(wf, {"n": 1}, strict_input=False)  # type: ignore[call-arg]
