"""Serializers of durable state: JSON by default, pickle when the user opts in.

The JSON serializer stores what node outputs usually are -- dict, list, str, int,
float, bool, None -- and tags the rest so that it comes back as it went in: tuple, set,
frozenset, bytes, datetime, date, time, timedelta, Decimal, UUID, dicts with non-str
keys. Instances of dataclasses, attrs classes and pydantic models are stored as their
fields and come back as plain dicts (the file never names a class to import); a resumed
run rebuilds them from the node's return annotation (:mod:`flowrt.durable._rebuild`).
Anything else fails with :class:`SerializationError`, naming the type: never a silent
pickle. So does what JSON cannot hold: a ``str`` with a lone surrogate (a file name
decoded with ``os.fsdecode``), an ``int`` longer than Python's digit limit.

Pickle (``serializer="pickle"``) stores anything picklable, and loading it runs code
chosen by whoever wrote the file: a store reads pickles only when it was opened with
``serializer="pickle"`` (:func:`reader_for`), whatever a row of the file says.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import json
import json.encoder
import json.scanner
import pickle
import uuid
from typing import Any, Protocol

from ..errors import SerializationError, StoreError

__all__ = ["JSONSerializer", "PickleSerializer", "SerializationError", "Serializer",
           "get_serializer", "reader_for"]

TAG = "__flowrt__"


class Serializer(Protocol):
    """Turns values into bytes and back; ``name`` is what a store records with a run."""

    name: str

    def dumps(self, value: Any) -> bytes:
        """``value`` as bytes.

        Raises:
            SerializationError: the value cannot be stored by this serializer.
        """
        ...

    def loads(self, data: bytes) -> Any:
        """The value that :meth:`dumps` turned into ``data``."""
        ...


#: the types _encode returns as they are. A list of only these is returned as it is,
#: checked by one C loop: the items of a map and the list a map returns are mostly that
#: (dumps(list(range(1000))): 118 -> 64 us, of [None] * 1000: 88 -> 54 us; timeit, load 0.8)
_PLAIN = frozenset((str, int, bool, type(None)))


def _encode(value: Any) -> Any:
    """A JSON-ready form of ``value`` (containers walked, other types tagged)."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is float:
        if value != value or value in (float("inf"), float("-inf")):
            return {TAG: "float", "v": repr(value)}
        return value
    if t is list:
        if _PLAIN.issuperset(map(type, value)):  # as it is: no call per element
            return value
        return [_encode(v) for v in value]
    if t is dict:
        if all(type(k) is str for k in value) and TAG not in value:
            return {k: _encode(v) for k, v in value.items()}
        return {TAG: "dict", "v": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if t is tuple:
        return {TAG: "tuple", "v": [_encode(v) for v in value]}
    if t is set or t is frozenset:
        return {TAG: t.__name__, "v": [_encode(v) for v in value]}
    if t is bytes or t is bytearray:
        return {TAG: "bytes", "v": base64.b64encode(value).decode("ascii")}
    if t is dt.datetime:
        return {TAG: "datetime", "v": value.isoformat()}
    if t is dt.date:
        return {TAG: "date", "v": value.isoformat()}
    if t is dt.time:
        return {TAG: "time", "v": value.isoformat()}
    if t is dt.timedelta:
        return {TAG: "timedelta", "v": value.total_seconds()}
    if t is decimal.Decimal:
        return {TAG: "decimal", "v": str(value)}
    if t is uuid.UUID:
        return {TAG: "uuid", "v": str(value)}
    # subclasses of the plain types (IntEnum, str enums, OrderedDict, named tuples...)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return _encode(float(value))
    if isinstance(value, dict):
        return _encode(dict(value))
    if isinstance(value, list):
        return _encode(list(value))
    if isinstance(value, tuple):
        if hasattr(value, "_asdict"):  # a named tuple: its fields
            return _encode(dict(value._asdict()))
        return _encode(tuple(value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if hasattr(type(value), "__attrs_attrs__"):
        return _encode({a.name: getattr(value, a.name) for a in type(value).__attrs_attrs__})
    dump = getattr(value, "model_dump", None)  # pydantic v2
    if callable(dump):
        return _encode(dump())
    raise SerializationError(
        f"a value of type {t.__module__}.{t.__qualname__} cannot be stored as JSON; "
        "return plain data (dict, list, str, numbers, bool, None, tuples, datetimes, "
        "Decimal, UUID, bytes, dataclasses) or use serializer='pickle' (trusted files only)"
    )


_DECODERS: dict[str, Any] = {
    "tuple": lambda v: tuple(_decode(x) for x in v),
    "set": lambda v: {_decode(x) for x in v},
    "frozenset": lambda v: frozenset(_decode(x) for x in v),
    "dict": lambda v: {_decode(k): _decode(x) for k, x in v},
    "bytes": lambda v: base64.b64decode(v),
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timedelta": lambda v: dt.timedelta(seconds=v),
    "decimal": decimal.Decimal,
    "uuid": uuid.UUID,
    "float": float,
}


def _decode(value: Any) -> Any:
    t = type(value)
    if t is list:
        return [_decode(v) for v in value]
    if t is dict:
        tag = value.get(TAG)
        if tag is not None and len(value) == 2:
            return _DECODERS[tag](value["v"])
        return {k: _decode(v) for k, v in value.items()}
    return value


_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_encode_str = json.encoder.encode_basestring  # what _encoder does with a top-level str
# One C encoder made once, where JSONEncoder.encode makes one per call (and checks its
# input twice first): a durable run serializes every node's output on the loop's
# thread. 0.9 -> 0.2 us for an int, 3.1 -> 1.3 us for a small dict (timeit, load ~5).
# Without the table of objects being encoded (check_circular off): _encode hands it
# plain containers, and a value that refers to itself is a RecursionError there first.
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)  # (not in typeshed)
_c_encode = (_c_make_encoder(None, _encoder.default, _encode_str, None, ":", ",", False,
                             False, False)
             if _c_make_encoder is not None else None)


def _json_encode(value: Any) -> str:
    if type(value) is str:
        return _encode_str(value)
    if _c_encode is None:  # pragma: no cover - a Python without the json accelerator
        return _encoder.encode(value)
    return "".join(_c_encode(value, 0))


# The decoder's own scanner, called directly: json.loads(bytes) guesses the encoding and
# matches whitespace before and after the value, ~2 us of every stored output read
# back on resume (2.2 -> 0.3 us for an int). Whatever it does not take as it is
# (whitespace, another encoding, damage) goes through json.loads, which reads it or
# raises its own error.
_make_scanner: Any = json.scanner.make_scanner  # (typeshed has it as a class)
_scan = _make_scanner(json.JSONDecoder())
_json_loads = json.loads


def _json_decode(data: bytes) -> Any:
    try:
        text = data.decode()
        value, end = _scan(text, 0)
        if end == len(text):
            return value
    except Exception:  # StopIteration (no value at 0), UnicodeDecodeError, ...
        pass
    return _json_loads(data)


_NULL = b"null"


class JSONSerializer:
    """JSON with tags for the common non-JSON types (see the module docs)."""

    name = "json"

    def dumps(self, value: Any) -> bytes:
        if value is None:  # the most common output of all: no work
            return _NULL
        try:
            return _json_encode(_encode(value)).encode()
        except RecursionError:
            raise SerializationError("the value is nested too deeply (or refers to "
                                     "itself) to be stored as JSON") from None
        except UnicodeEncodeError as error:  # a lone surrogate: no UTF-8 for it
            bad = error.object[error.start : error.end]
            raise SerializationError(
                f"a str holding {bad!r}, a lone surrogate, which cannot be stored as "
                "UTF-8 JSON (a name decoded with os.fsdecode? keep it as bytes: "
                "os.fsencode(name))") from None
        except ValueError as error:  # an int over sys.get_int_max_str_digits()
            raise SerializationError(f"a value that cannot be stored as JSON: {error} "
                                     "(store a long int as a str)") from None

    def loads(self, data: bytes) -> Any:
        return _decode(_json_decode(data))


class PickleSerializer:
    """Pickle: stores anything picklable. Loading runs code: trusted files only."""

    name = "pickle"

    def dumps(self, value: Any) -> bytes:
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            raise SerializationError(f"the value cannot be pickled: {error}") from error

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


def reader_for(name: str, serializer: Serializer) -> Serializer:
    """The serializer that reads what was written by serializer ``name`` (a run's
    ``serializer`` column), for a store opened with ``serializer``.

    A file says what it holds, but only the caller may decide to run code from it: a
    pickle is read only by a store opened with ``serializer="pickle"``. JSON is read by
    any store.

    Raises:
        StoreError: ``name`` is "pickle" and ``serializer`` is not, or is unknown.
    """
    if name == serializer.name:
        return serializer
    if name == "json":
        return JSONSerializer()
    if name == "pickle":
        raise StoreError(
            f"the data was stored with the pickle serializer, and this store was opened "
            f"with serializer={serializer.name!r}: reading a pickle runs code chosen by "
            "whoever wrote the file, so it is never done unless you open the store with "
            "serializer='pickle' (do that only for a file you trust)")
    raise StoreError(f"the data was stored with an unknown serializer {name!r} "
                     f"(this store uses {serializer.name!r})")


def get_serializer(name: str | Serializer) -> Serializer:
    """A serializer by ``name`` ("json", "pickle"), or the serializer object itself.

    Raises:
        ValueError: an unknown name.
    """
    if not isinstance(name, str):
        return name
    if name == "json":
        return JSONSerializer()
    if name == "pickle":
        return PickleSerializer()
    raise ValueError(f"unknown serializer {name!r}; expected 'json' or 'pickle'")
