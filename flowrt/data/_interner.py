"""String interning: a string key becomes a dense small integer id.

Ids are dense (0, 1, 2, ...) so that whatever is addressed by them -- the slots of a
:class:`~flowrt.WorkflowData`, the status board, the store -- is a flat array indexed by
id instead of a hash table of strings. An :class:`Interner` never forgets a key: ids stay
valid for its lifetime.

An interner may stand on a frozen *base* interner: ids ``0 .. len(base)-1`` are the
base's keys, new keys get ids after them. A compiled plan interns its node names once;
each run's data stands on that, so node ``i``'s output lives in slot ``i`` without
copying the plan's table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["Interner", "intern", "intern_many"]


class Interner:
    """Maps strings to dense integer ids, in order of first sight.

    Args:
        keys: keys to intern at once, in order (ids 0, 1, 2, ...).
        base: a frozen interner to stand on: its keys keep their ids, new keys get the
            ids after them.

    Raises:
        ValueError: ``base`` is not frozen.

    >>> names = Interner(["x", "y"])
    >>> names.intern("z"), names("x"), names.get("q"), names.key(2)
    (2, 0, None, 'z')
    """

    __slots__ = ("_base", "_frozen", "_ids", "_keys", "_offset")

    _frozen: bool

    def __init__(self, keys: Iterable[str] = (), *, base: Interner | None = None) -> None:
        if base is not None and not base._frozen:
            # A base that grew later would hand out the ids this interner already has.
            raise ValueError("the base of an interner must be frozen (call base.freeze())")
        self._base = base
        self._offset = len(base) if base is not None else 0
        self._ids: dict[str, int] = {}
        self._keys: list[str] = []
        self._frozen = False
        self.intern_many(keys)

    @classmethod
    def from_ids(cls, ids: dict[str, int], *, copy: bool = True) -> Interner:
        """An interner of ``ids``, whose values must be 0, 1, 2, ... in order.

        With ``copy=False`` it takes the dict itself: the caller promises never to change
        it again (a workflow hands its name index to the plan it compiles so).
        """
        self = cls()
        self._ids = ids.copy() if copy else ids
        self._keys = list(ids)
        return self

    def intern(self, key: str) -> int:
        """Return the id of ``key``, giving it the next id if it is new.

        Raises:
            TypeError: ``key`` is new and the interner is frozen, or ``key`` is not a str.
        """
        i = self._ids.get(key)  # not try/except: a miss would cost a raised KeyError
        if i is not None:
            return i
        base = self._base
        if base is not None:
            i = base.get(key)
            if i is not None:
                return i
        if self._frozen:
            raise TypeError("this interner is frozen; it takes no new keys")
        if not isinstance(key, str):
            raise TypeError(f"keys must be str, not {type(key).__name__}")
        i = self._offset + len(self._keys)
        self._ids[key] = i
        self._keys.append(key)
        return i

    __call__ = intern

    def intern_many(self, keys: Iterable[str]) -> list[int]:
        """Intern every key of ``keys``; return their ids in order (one list allocated)."""
        ids = self._ids
        get = ids.get
        out: list[int] = []
        append = out.append
        for key in keys:
            i = get(key)
            if i is None:
                i = self.intern(key)
            append(i)
        return out

    def get(self, key: str) -> int | None:
        """The id of ``key``, or None if it was never interned (nothing is added)."""
        i = self._ids.get(key)
        if i is None and self._base is not None:
            return self._base.get(key)
        return i

    def key(self, i: int) -> str:
        """The string whose id is ``i``.

        Raises:
            IndexError: no key has id ``i``.
        """
        if i < 0:
            raise IndexError(f"no key has id {i}")
        if i < self._offset:
            assert self._base is not None
            return self._base.key(i)
        try:
            return self._keys[i - self._offset]
        except IndexError:
            raise IndexError(f"no key has id {i}") from None

    def freeze(self) -> Interner:
        """Refuse new keys from now on (a plan's names are fixed); returns self."""
        self._frozen = True
        return self

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __len__(self) -> int:
        return self._offset + len(self._keys)

    def __iter__(self) -> Iterator[str]:
        if self._base is not None:
            yield from self._base
        yield from self._keys

    def __repr__(self) -> str:
        return f"<Interner {len(self)} keys>"


#: The process-wide interner behind :func:`intern` and :func:`intern_many`.
GLOBAL = Interner()

# Bound methods, not wrapper functions: flowrt.intern(key) is measured per call
# (perf/bench_interning.py, GlobalIntern). Their docstrings are Interner.intern's and
# Interner.intern_many's.
intern = GLOBAL.intern
intern_many = GLOBAL.intern_many
