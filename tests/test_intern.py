"""String interning: dense ids, batches, layered and frozen interners, the global one."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowrt
from flowrt import Interner
from flowrt.data._interner import GLOBAL


def test_ids_are_dense_in_order_of_first_sight() -> None:
    it = Interner()
    assert [it.intern(k) for k in ["a", "b", "c"]] == [0, 1, 2]
    assert len(it) == 3
    assert list(it) == ["a", "b", "c"]


def test_interning_is_idempotent() -> None:
    it = Interner()
    first = it.intern("order")
    assert it.intern("order") == first
    assert it("order") == first  # callable shorthand
    assert len(it) == 1


def test_initial_keys() -> None:
    it = Interner(["x", "y", "x"])
    assert list(it) == ["x", "y"]
    assert it.get("y") == 1


def test_batch_returns_ids_in_order() -> None:
    it = Interner(["b"])
    assert it.intern_many(["a", "b", "c", "a"]) == [1, 0, 2, 1]
    assert it.intern_many(iter(["c", "d"])) == [2, 3]
    assert it.intern_many([]) == []
    assert list(it) == ["b", "a", "c", "d"]


def test_get_does_not_insert() -> None:
    it = Interner(["a"])
    assert it.get("a") == 0
    assert it.get("zzz") is None
    assert len(it) == 1
    assert "zzz" not in it
    assert "a" in it
    assert 0 not in it


def test_key_is_the_inverse_of_intern() -> None:
    it = Interner()
    ids = it.intern_many(["alpha", "beta", "gamma"])
    assert [it.key(i) for i in ids] == ["alpha", "beta", "gamma"]
    with pytest.raises(IndexError, match="no key has id 3"):
        it.key(3)
    with pytest.raises(IndexError, match="no key has id -1"):
        it.key(-1)


def test_keys_must_be_strings() -> None:
    it = Interner()
    with pytest.raises(TypeError, match="keys must be str, not int"):
        it.intern(5)  # type: ignore[arg-type]
    assert len(it) == 0


def test_layered_interner_continues_numbering_after_its_base() -> None:
    base = Interner(["a", "b"]).freeze()
    layer = Interner(base=base)
    assert len(layer) == 2
    assert layer.intern("a") == 0  # the base's id, not a new one
    assert layer.intern("c") == 2
    assert layer.intern_many(["d", "b", "c"]) == [3, 1, 2]
    assert layer.get("b") == 1 and layer.get("d") == 3 and layer.get("zzz") is None
    assert [layer.key(i) for i in range(4)] == ["a", "b", "c", "d"]
    assert list(layer) == ["a", "b", "c", "d"]
    assert "a" in layer and "d" in layer
    assert len(base) == 2  # the base is untouched
    assert base.get("c") is None


def test_a_base_must_be_frozen() -> None:
    base = Interner(["a"])
    with pytest.raises(ValueError, match="must be frozen"):
        Interner(base=base)


def test_two_layers_on_one_base_are_independent() -> None:
    base = Interner(["a"]).freeze()
    one, two = Interner(base=base), Interner(base=base)
    assert one.intern("x") == 1
    assert two.intern("y") == 1
    assert one.get("y") is None and two.get("x") is None


def test_freeze_refuses_new_keys_but_answers_known_ones() -> None:
    it = Interner(["a"])
    assert it.freeze() is it
    assert it.intern("a") == 0
    assert it.get("b") is None
    with pytest.raises(TypeError, match="frozen"):
        it.intern("b")
    with pytest.raises(TypeError, match="frozen"):
        it.intern_many(["a", "b"])
    assert len(it) == 1


def test_global_interner_is_shared() -> None:
    i = flowrt.intern("flowrt-test-global-key")
    assert flowrt.intern("flowrt-test-global-key") == i
    assert GLOBAL.get("flowrt-test-global-key") == i
    ids = flowrt.intern_many(["flowrt-test-global-key", "flowrt-test-global-other"])
    assert ids[0] == i
    assert GLOBAL.key(ids[1]) == "flowrt-test-global-other"
    assert flowrt.intern("flowrt-test-global-other") == ids[1]


def test_repr() -> None:
    assert repr(Interner(["a", "b"])) == "<Interner 2 keys>"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=5)))
def test_interning_random_keys(keys: list[str]) -> None:
    it = Interner()
    ids = it.intern_many(keys)
    distinct = list(dict.fromkeys(keys))
    assert len(it) == len(distinct)
    assert sorted(set(ids)) == list(range(len(distinct)))  # dense
    assert [it.key(i) for i in ids] == keys
    assert [it.intern(k) for k in keys] == ids
