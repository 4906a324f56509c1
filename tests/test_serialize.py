"""The JSON serializer of durable state: what it stores comes back as it went in, byte for
byte what the standard library's encoder writes, and what it reads is what ``json.loads``
reads (its fast paths call the json module's C encoder and scanner directly)."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowrt import SerializationError
from flowrt.durable._serialize import JSONSerializer, _encode

SERIALIZER = JSONSerializer()
STDLIB = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)

scalars = (st.none() | st.booleans() | st.integers() | st.text()
           | st.floats(allow_nan=True, allow_infinity=True) | st.binary(max_size=8)
           | st.datetimes() | st.dates() | st.decimals(allow_nan=False) | st.uuids())
values = st.recursive(
    scalars,
    lambda inner: (st.lists(inner, max_size=4) | st.tuples(inner, inner)
                   | st.dictionaries(st.text(max_size=5), inner, max_size=4)
                   | st.dictionaries(st.integers(), inner, max_size=3)),
    max_leaves=12)


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return type(b) is dict and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(values)
def test_values_round_trip_as_the_standard_encoder_writes_them(value: Any) -> None:
    try:
        blob = SERIALIZER.dumps(value)
    except SerializationError:  # a lone surrogate in a str: refused either way
        with pytest.raises(UnicodeEncodeError):
            STDLIB.encode(_encode(value)).encode()
        return
    assert blob == STDLIB.encode(_encode(value)).encode()
    assert _same(SERIALIZER.loads(blob), value)


@pytest.mark.parametrize("blob", [
    b" 5 ", b"[1, 2]\n", b'\xef\xbb\xbf{"a": 1}', '{"a": "\u00e9"}'.encode("utf-16"),
    b'"\xed\xb2\x80"',  # a lone surrogate, as surrogatepass wrote it
])
def test_what_json_loads_reads_is_read(blob: bytes) -> None:
    assert SERIALIZER.loads(blob) == json.loads(blob)


@pytest.mark.parametrize("blob", [b'{"a"', b"5 6", b"\xff", b"", b"nul"])
def test_damage_raises_what_json_loads_raises(blob: bytes) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(blob)
    with pytest.raises(type(expected.value)) as raised:
        SERIALIZER.loads(blob)
    assert str(raised.value) == str(expected.value)


def test_tagged_values_come_back_as_their_types() -> None:
    value = {"when": dt.datetime(2026, 12, 2, 5, 0), "amount": decimal.Decimal("1.50"),
             "id": uuid.UUID(int=7), "pair": (1, "a"), "tags": {"x"}, "raw": b"\x00\xff",
             "by_number": {1: "one"}, "inf": float("inf"), "wait": dt.timedelta(seconds=3)}
    assert SERIALIZER.loads(SERIALIZER.dumps(value)) == value
