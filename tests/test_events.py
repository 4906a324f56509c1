"""Events, hooks and logging."""

from __future__ import annotations

import logging
import warnings

import pytest
import structlog

import flowrt
from flowrt import EventKind

pytestmark = pytest.mark.anyio


def _small() -> flowrt.Workflow:
    wf = flowrt.Workflow("ev")
    wf.add("a", lambda: 1)

    def b(a: int) -> None:
        raise ValueError("bad b")

    wf.add("b", b)
    wf.add("c", lambda b: b, deps=["b"])
    return wf


async def test_every_state_change_is_an_event() -> None:
    events: list[flowrt.Event] = []
    await _small().run(run_id="r1", on_event=events.append)
    kinds = [(e.kind, e.node) for e in events]
    assert kinds[0] == (EventKind.RUN_STARTED, None)
    assert kinds[-1] == (EventKind.RUN_FINISHED, None)
    assert events[-1].status == "failed"
    assert (EventKind.STARTED, "a") in kinds
    assert (EventKind.SUCCEEDED, "a") in kinds
    assert (EventKind.READY, "b") in kinds
    assert (EventKind.FAILED, "b") in kinds
    assert (EventKind.SKIPPED, "c") in kinds
    assert kinds.index((EventKind.STARTED, "a")) < kinds.index((EventKind.SUCCEEDED, "a"))
    failed = next(e for e in events if e.kind is EventKind.FAILED)
    assert isinstance(failed.error, ValueError) and failed.attempt == 1
    assert all(e.run_id == "r1" and e.workflow == "ev" for e in events)
    assert str(EventKind.STARTED) == "started"


async def test_retry_events() -> None:
    wf = flowrt.Workflow("retry")

    @wf.node(retry=flowrt.Retry(attempts=2, delay=0))
    async def flaky(ctx: flowrt.Context) -> None:
        if ctx.attempt == 1:
            raise ConnectionError

    events: list[flowrt.Event] = []
    await wf.run(on_event=[events.append])
    kinds = [str(e.kind) for e in events if e.node == "flaky"]
    assert kinds == ["ready", "started", "retrying", "started", "succeeded"]


async def test_failing_hook_is_reported_and_run_goes_on() -> None:
    calls = []

    def bad_hook(event: flowrt.Event) -> None:
        calls.append(event.kind)
        raise RuntimeError("hook bug")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = await _small().run(on_event=bad_hook)
    assert result["a"] == 1
    assert len(calls) > 3
    assert len(result.hook_errors) == len(calls)
    hook_warnings = [w for w in caught if issubclass(w.category, flowrt.HookError)]
    assert len(hook_warnings) == 1
    assert "hook bug" in str(hook_warnings[0].message)


async def test_logging_through_stdlib_when_structlog_is_not_configured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    structlog.reset_defaults()
    with caplog.at_level(logging.DEBUG, logger="flowrt"):
        await _small().run(run_id="log-run")
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "flowrt"]
    levels = {m: lvl for lvl, m in messages}
    assert levels["run started"] == logging.INFO
    assert levels["node failed"] == logging.WARNING
    assert "started" in levels and levels["started"] == logging.DEBUG
    record = next(r for r in caplog.records if r.getMessage() == "node failed")
    assert record.__dict__.get("node") == "b" and record.__dict__.get("run_id") == "log-run"


async def test_no_node_events_built_when_nobody_listens(
    caplog: pytest.LogCaptureFixture,
) -> None:
    structlog.reset_defaults()
    built = []
    original = flowrt.Event.__init__

    def spy(self: flowrt.Event, *args: object, **kwargs: object) -> None:
        built.append(args)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    with caplog.at_level(logging.INFO, logger="flowrt"):
        flowrt.Event.__init__ = spy  # type: ignore[method-assign]
        try:
            result = await _small().run()
        finally:
            flowrt.Event.__init__ = original  # type: ignore[method-assign]
    assert not result.ok
    assert built == []
    assert not any(r.levelno == logging.DEBUG for r in caplog.records)


async def test_structlog_configured_by_the_application() -> None:
    cap = structlog.testing.LogCapture()
    structlog.configure(processors=[cap],
                        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        await _small().run(run_id="sl")
    finally:
        structlog.reset_defaults()
    events = [e["event"] for e in cap.entries]
    assert "run started" in events and "node failed" in events and "run finished" in events
    assert "started" not in events  # DEBUG is filtered by the app's configuration
    failed = next(e for e in cap.entries if e["event"] == "node failed")
    assert failed["node"] == "b" and failed["run_id"] == "sl" and failed["workflow"] == "ev"


async def test_context_log_is_bound() -> None:
    cap = structlog.testing.LogCapture()
    structlog.configure(processors=[cap])
    wf = flowrt.Workflow("ctxlog")

    @wf.node
    async def talk(ctx: flowrt.Context) -> None:
        ctx.log.info("hello", extra=1)

    try:
        await wf.run(run_id="r9")
    finally:
        structlog.reset_defaults()
    hello = next(e for e in cap.entries if e["event"] == "hello")
    assert hello["node"] == "talk" and hello["run_id"] == "r9" and hello["attempt"] == 1
