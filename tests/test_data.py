"""WorkflowData: the slab store, reset, snapshots, node outputs and statuses, metrics."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowrt
from flowrt import Status, Workflow, WorkflowData

# -- by key ------------------------------------------------------------------------------


def test_set_get_getitem_contains_len() -> None:
    data = WorkflowData()
    assert len(data) == 0
    data.set("a", 1)
    data["b"] = [2]
    assert data.get("a") == 1
    assert data["b"] == [2]
    assert data.get("zzz") is None
    assert data.get("zzz", "dflt") == "dflt"
    assert "a" in data and "zzz" not in data
    assert 1 not in data  # not a str key
    assert len(data) == 2
    with pytest.raises(KeyError, match="zzz"):
        data["zzz"]


def test_falsy_and_none_values_are_values() -> None:
    data = WorkflowData()
    data.set("none", None)
    data.set("zero", 0)
    assert "none" in data and "zero" in data
    assert data["none"] is None
    assert data.get("none", "dflt") is None
    assert len(data) == 2


def test_overwrite() -> None:
    data = WorkflowData()
    data.set("a", 1)
    data.set("a", 2)
    assert data["a"] == 2
    assert len(data) == 1


def test_delete() -> None:
    data = WorkflowData()
    data.set("a", 1)
    data.set("b", 2)
    assert data.delete("a") is True
    assert data.delete("a") is False
    assert data.delete("never") is False
    assert "a" not in data
    assert data.get("a", "gone") == "gone"
    assert len(data) == 1
    assert data.to_dict() == {"b": 2}
    data.set("a", 3)  # may be set again
    assert data["a"] == 3


def test_items_in_id_order_and_iteration() -> None:
    data = WorkflowData()
    for k in ["c", "a", "b"]:
        data.set(k, k.upper())
    data.delete("a")
    assert list(data.items()) == [("c", "C"), ("b", "B")]
    assert list(data) == ["c", "b"]
    assert data.to_dict() == {"c": "C", "b": "B"}


# -- by id -------------------------------------------------------------------------------


def test_key_set_at_get_at() -> None:
    data = WorkflowData()
    i = data.key("a")
    assert data.key("a") == i  # stable
    j = data.key("b")
    assert j == i + 1  # dense
    assert "a" not in data  # key() interns; it stores nothing
    data.set_at(i, "A")
    assert data["a"] == "A"
    assert data.get_at(i) == "A"
    data.set("b", "B")
    assert data.get_at(j) == "B"
    assert data.get_at(j + 100) is None
    assert data.get_at(j + 100, "dflt") == "dflt"
    assert len(data) == 2


def test_set_at_refuses_ids_that_were_never_issued() -> None:
    data = WorkflowData()
    data.key("a")
    with pytest.raises(IndexError, match="no key has id 1"):
        data.set_at(1, "x")
    with pytest.raises(IndexError, match="no key has id -1"):
        data.set_at(-1, "x")
    assert len(data) == 0


def test_get_at_with_a_negative_id_reads_nothing() -> None:
    data = WorkflowData(2)
    data.set("a", 1)
    data.set_at(data.key("last"), "L")  # the last slot
    assert data.capacity == 2
    assert data.get_at(-1) is None
    assert data.get_at(-1, "dflt") == "dflt"


def test_capacity_grows_past_the_initial_one() -> None:
    data = WorkflowData(capacity=2)
    assert data.capacity == 2
    for i in range(50):
        data.set(f"k{i}", i)
    assert data.capacity >= 50
    assert len(data) == 50
    assert all(data[f"k{i}"] == i for i in range(50))
    zero = WorkflowData(capacity=0)
    zero.set_at(zero.key("a"), 1)
    assert zero["a"] == 1
    with pytest.raises(ValueError, match="capacity must be >= 0"):
        WorkflowData(capacity=-1)


# -- reset -------------------------------------------------------------------------------


def test_reset_leaves_nothing_readable_and_keeps_capacity_and_ids() -> None:
    data = WorkflowData(capacity=4)
    for i in range(10):
        data.set(f"k{i}", i)
    ids = {f"k{i}": data.key(f"k{i}") for i in range(10)}
    capacity = data.capacity
    data.reset()
    assert len(data) == 0
    for k, i in ids.items():
        assert data.get(k) is None
        assert data.get(k, "dflt") == "dflt"
        assert k not in data
        assert data.get_at(i) is None
        with pytest.raises(KeyError):
            data[k]
    assert list(data.items()) == []
    assert data.snapshot()["values"] == {}
    assert data.capacity == capacity
    assert {k: data.key(k) for k in ids} == ids
    data.set("k3", "again")
    assert data.get_at(ids["k3"]) == "again"
    assert len(data) == 1


def test_reset_clears_statuses_loaded_from_a_snapshot() -> None:
    data = WorkflowData.from_snapshot(
        {"version": 1, "values": {"k": 1}, "statuses": {"a": "succeeded"}}
    )
    data.reset()
    assert data.snapshot() == {"version": 1, "values": {}, "statuses": {}}


def test_reset_of_attached_data_clears_outputs_and_statuses() -> None:
    plan = _plan()
    data = WorkflowData()
    data.attach(plan)
    data.set_at(plan.index["b"], 2)
    data.statuses.move(plan.index["a"], Status.READY)
    data.reset()
    assert "b" not in data
    assert data.statuses.counts()[Status.PENDING] == len(plan)


# -- attached to a plan ------------------------------------------------------------------


def _plan() -> flowrt.workflow.Plan:
    wf = Workflow("w")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a + 1)
    wf.add("c", lambda b: b + 1)
    return wf.compile()


def test_attach_puts_node_outputs_in_the_node_slots() -> None:
    plan = _plan()
    data = WorkflowData(capacity=1)
    data.set("config", {"x": 1})
    data.set("b", "stale")  # a node name: the node's output slot wins
    data.attach(plan)
    assert data.capacity >= len(plan)
    assert data["config"] == {"x": 1}  # other keys are kept
    assert "b" not in data
    for name, i in plan.index.items():
        assert data.key(name) == i
    data.set_at(plan.index["b"], "B")
    assert data["b"] == "B"
    assert data.get_at(plan.index["b"]) == "B"
    data.set("c", "C")
    assert data.get_at(plan.index["c"]) == "C"
    assert data.key("config") >= len(plan)
    assert len(data.statuses) == len(plan)
    assert all(s is Status.PENDING for s in data.statuses)


def test_attaching_again_clears_node_outputs_and_statuses() -> None:
    plan = _plan()
    data = WorkflowData()
    data.attach(plan)
    data.set("a", 1)
    data.set("extra", 2)
    data.statuses.move(0, Status.READY)
    data.attach(plan)
    assert "a" not in data
    assert data["extra"] == 2
    assert data.statuses[0] is Status.PENDING


def test_a_run_leaves_outputs_readable_and_reset_clears_them() -> None:
    wf = Workflow("w")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a + 1)
    data = WorkflowData()
    data.set("note", "kept")
    result = wf.run_sync(data=data)
    assert result.ok
    assert data["a"] == 1 and data["b"] == 2
    assert len(data) == 3
    assert data.to_dict() == {"a": 1, "b": 2, "note": "kept"}
    snap = data.snapshot()
    assert snap["values"] == {"a": 1, "b": 2, "note": "kept"}
    assert snap["statuses"] == {"a": "succeeded", "b": "succeeded"}
    data.reset()
    assert len(data) == 0
    assert "a" not in data and "b" not in data and "note" not in data
    assert data.get("b") is None
    assert data.snapshot() == {"version": 1, "values": {}, "statuses": {}}
    assert wf.run_sync(data=data).ok  # reusable
    assert data["b"] == 2 and len(data) == 2


# -- snapshots ---------------------------------------------------------------------------


def test_snapshot_is_json_ready_and_round_trips() -> None:
    data = WorkflowData()
    data.set("s", "text")
    data.set("n", 1.5)
    data.set("l", [1, {"x": None}])
    data.set("gone", 0)
    data.delete("gone")
    snap = data.snapshot()
    assert snap == {
        "version": 1,
        "values": {"s": "text", "n": 1.5, "l": [1, {"x": None}]},
        "statuses": {},
    }
    loaded = json.loads(json.dumps(snap))
    again = WorkflowData.from_snapshot(loaded)
    assert again.snapshot() == snap
    assert again["l"] == [1, {"x": None}]
    assert len(again) == 3


def test_snapshot_round_trips_node_statuses_of_attached_data() -> None:
    plan = _plan()
    data = WorkflowData()
    data.attach(plan)
    board = data.statuses
    a, b, c = plan.index["a"], plan.index["b"], plan.index["c"]
    board.move(a, Status.READY)
    board.move(a, Status.RUNNING)
    board.move(a, Status.SUCCEEDED)
    board.move(b, Status.READY)
    board.move(b, Status.RUNNING)
    board.move(c, Status.SKIPPED)
    data.set_at(a, {"out": 1})
    data.set("user-key", "u")
    snap = data.snapshot()
    assert snap == {
        "version": 1,
        "values": {"a": {"out": 1}, "user-key": "u"},
        "statuses": {"a": "succeeded", "b": "running", "c": "skipped"},
    }
    assert json.loads(json.dumps(snap)) == snap
    restored = WorkflowData.from_snapshot(json.loads(json.dumps(snap)))
    assert restored.snapshot() == snap
    assert restored["a"] == {"out": 1}
    assert WorkflowData.from_snapshot(restored.snapshot()).snapshot() == snap


def test_from_snapshot_refuses_unknown_versions() -> None:
    with pytest.raises(ValueError, match="unsupported WorkflowData snapshot version 2"):
        WorkflowData.from_snapshot({"version": 2, "values": {}})
    with pytest.raises(ValueError, match="version None"):
        WorkflowData.from_snapshot({"values": {}})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=12))
def test_snapshot_round_trip_property(values: dict[str, object]) -> None:
    data = WorkflowData(capacity=2)
    for k, v in values.items():
        data.set(k, v)
    snap = data.snapshot()
    assert snap["values"] == values
    assert WorkflowData.from_snapshot(json.loads(json.dumps(snap))).snapshot() == snap


# -- metrics -----------------------------------------------------------------------------


def test_metrics_are_off_by_default() -> None:
    data = WorkflowData()
    data.set("a", 1)
    assert data.metrics is None
    assert WorkflowData(metrics=False).metrics is None


def test_metrics_on_counts_and_times_every_operation() -> None:
    data = WorkflowData(metrics=True)
    assert isinstance(data, WorkflowData)
    data.set("a", 1)
    data.set("b", 2)
    data["c"] = 3
    assert data.get("a") == 1
    assert data.get("zzz") is None  # a miss
    assert data["b"] == 2
    with pytest.raises(KeyError):
        data["nope"]  # another miss
    assert data.delete("a") is True
    m = data.metrics
    assert m is not None
    assert (m.sets, m.gets, m.misses, m.deletes) == (3, 4, 2, 1)
    assert m.timed == 8
    assert m.total_ns >= 0
    assert m.mean_ns == m.total_ns / 8


def test_metrics_sampled_counts_everything_and_times_a_sample() -> None:
    data = WorkflowData(metrics=0.1)
    for i in range(100):
        data.set(f"k{i}", i)
    for i in range(100):
        data.get(f"k{i}")
    m = data.metrics
    assert m is not None
    assert (m.sets, m.gets, m.misses, m.deletes) == (100, 100, 0, 0)
    assert 10 <= m.timed <= 40  # about 10% of 200


def test_metrics_from_snapshot() -> None:
    data = WorkflowData.from_snapshot({"version": 1, "values": {"a": 1}}, metrics=True)
    assert data["a"] == 1
    assert data.metrics is not None
    assert data.metrics.gets == 1


def test_mean_of_nothing_timed_is_zero() -> None:
    assert flowrt.DataMetrics(0, 0, 0, 0, 0, 0).mean_ns == 0.0


@pytest.mark.parametrize("rate", [0, 0.0, -0.5, 1.5, 2])
def test_invalid_sampling_rate(rate: float) -> None:
    with pytest.raises(ValueError, match="sampling rate must be in \\(0, 1\\]"):
        WorkflowData(metrics=rate)


def test_repr() -> None:
    data = WorkflowData(capacity=8)
    data.set("a", 1)
    assert repr(data) == "<WorkflowData 1 keys, capacity 8>"
