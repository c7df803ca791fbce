"""Bounded ``repr`` strings that never run user code.

Only exact built-in types are rendered through their own (C) repr; anything else, including
subclasses of built-ins, is shown by its type name and, for plain instances, its attributes. So a
user-defined ``__repr__``, ``__eq__``, ``__hash__`` or ``__getattr__`` is never called.
"""

from __future__ import annotations

import types

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_CHARS = 300  # one value in a step
MAX_ITEMS = 40  # elements shown of a container
MAX_DEPTH = 4

# Types are looked up by id(): ``t in (...)`` compares with ``==`` and a set hashes, both of
# which call a metaclass's __eq__ / __hash__ (user code) for a user-defined class.
_SCALARS = frozenset(
    map(id, (bool, float, complex, type(None), type(Ellipsis), type(NotImplemented)))
)
_CONTAINERS = frozenset(map(id, (list, tuple, set, frozenset, dict)))
_SMALL_INT = 10**18
# Values whose repr cannot change while they stay the same object.
IMMUTABLE_TYPES = frozenset(map(id, (int, str, bytes, float, bool, complex, type(None), range)))


# The interpreter's own descriptors, called directly: ``type.__getattribute__(t, "__mro__")``
# would find a metaclass's ``__mro__`` property first, ``object.__getattribute__(v,
# "__dict__")`` a class's ``__dict__`` property (both the program's code).
_TYPE_MRO = type.__dict__["__mro__"]
_TYPE_DICT = type.__dict__["__dict__"]
GETSET = type(_TYPE_DICT)


def real_mro(t: Any) -> tuple[Any, ...]:
    """``t.__mro__``, as the interpreter keeps it."""
    mro: tuple[Any, ...] = _TYPE_MRO.__get__(t)
    return mro


def instance_dict(value: Any, t: Any) -> dict[str, Any] | None:
    """The instance's own attribute dict, read through the interpreter's descriptor; None when
    it has none, or when its class defines ``__dict__`` itself (a property: user code)."""
    for base in real_mro(t):
        found = _TYPE_DICT.__get__(base).get("__dict__")
        if found is not None:
            if type(found) is not GETSET:
                return None
            attrs = found.__get__(value)
            return attrs if type(attrs) is dict else None
    return None


_FLAT = frozenset(map(id, (list, tuple, set, frozenset)))
_TUPLE = {id(tuple)}
MAX_FLAT = 64  # items of a container worth a fingerprint (past it, the bounded repr is cheaper)


def flat_items(value: object) -> tuple[Any, ...] | None:
    """The items of an exact list, tuple, set, frozenset or dict (its keys then its values)
    when there are at most MAX_FLAT and every one is an immutable scalar or an exact tuple of
    them (a pair from ``dict.items()``, say); None otherwise.

    While the caller holds this tuple its items stay alive, so their ``id()`` are theirs: if a
    later ``flat_ids`` of the same container equals the ids of this tuple, it holds the same
    objects in the same order, so its repr is unchanged (a tuple of immutable scalars cannot
    change either). Reads through the built-in types' own methods (no user code: the items
    are checked by their exact type)."""
    v: Any = value
    t = type(v)
    if t is dict:
        if dict.__len__(v) > MAX_FLAT:
            return None
        items = (*dict.keys(v), *dict.values(v))
    elif id(t) in _FLAT:
        if t.__len__(v) > MAX_FLAT:
            return None
        items = tuple(t.__iter__(v))
    else:
        return None
    # The items' exact types by id, in C (a set of types would hash them: a metaclass's code).
    kinds = set(map(id, map(type, items)))
    if kinds <= IMMUTABLE_TYPES:
        return items
    if kinds - IMMUTABLE_TYPES != _TUPLE:
        return None
    for item in items:  # the tuples: one level of immutable scalars each
        if type(item) is tuple and not set(map(id, map(type, item))) <= IMMUTABLE_TYPES:
            return None
    return items


def flat_ids(value: object) -> tuple[int, ...]:
    """The ``id()`` of the items ``flat_items`` reads, in its order (the container's type is the
    same exact built-in as when ``flat_items`` accepted it)."""
    v: Any = value
    t = type(v)
    if t is dict:
        return (*map(id, dict.keys(v)), *map(id, dict.values(v)))
    return tuple(map(id, t.__iter__(v)))


def safe_repr(value: object, limit: int = MAX_CHARS, max_items: int = MAX_ITEMS) -> str:
    """At most ``limit`` characters; containers show at most ``max_items`` elements each."""
    v: Any = value
    t = type(v)
    # Fast paths for the commonest values (most of a trace), skipping the general machinery.
    if t is int and -_SMALL_INT < v < _SMALL_INT:
        return int.__repr__(v)
    if t is str and len(v) * 4 + 2 <= limit:
        return str.__repr__(v)
    if t is bool or v is None or t is float:
        return str(repr(v))  # exact bool, None or float: the built-in repr
    if t is list or t is tuple or t is dict:
        flat = _flat_repr(v, t, limit, max_items)
        if flat is not None:
            return flat
    return _slow_repr(value, limit, max_items)


def _slow_repr(value: object, limit: int, max_items: int) -> str:
    parts: list[str] = []
    _render(value, parts, [limit, max_items], MAX_DEPTH, set())
    text = "".join(parts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_FLAT_SCALARS = frozenset(map(id, (float, bool, complex, type(None))))


def _flat_repr(v: Any, t: Any, limit: int, max_items: int) -> str | None:
    """The C repr of an exact list, tuple or dict of at most ``max_items`` short scalars (small
    ints, strs and bytes within ``limit``, floats, bools, complex, None) when it fits in
    ``limit``: then it is exactly what ``_render`` makes, several times faster; None otherwise.
    Each item's exact type is checked first, so only built-in C reprs run."""
    if t.__len__(v) > max_items:
        return None
    items = (*dict.keys(v), *dict.values(v)) if t is dict else t.__iter__(v)
    for item in items:
        it = type(item)
        if it is str or it is bytes:
            if len(item) > limit:
                return None
        elif it is int:
            if not -_SMALL_INT < item < _SMALL_INT:
                return None
        elif id(it) not in _FLAT_SCALARS:
            return None
    text: str = t.__repr__(v)
    return text if len(text) <= limit else None


def _emit(parts: list[str], budget: list[int], text: str) -> bool:
    parts.append(text)
    budget[0] -= len(text)
    return budget[0] > 0


def _render(value: Any, parts: list[str], budget: list[int], depth: int, seen: set[int]) -> None:
    t: Any = type(value)
    if t is str or t is bytes:
        # Slice first: the repr of a 10 MB string is not built to show 300 characters of it.
        head = value[: budget[0] + 2]
        text = t.__repr__(head)
        if len(head) < len(value):
            text = text[:-1] + "..." + text[-1]
        _emit(parts, budget, text)
    elif t is int:
        if value.bit_length() > 4000:
            digits = int(value.bit_length() * 0.30103)
            _emit(parts, budget, f"<int of about {digits} digits>")
        else:
            _emit(parts, budget, int.__repr__(value))
    elif id(t) in _SCALARS:
        _emit(parts, budget, t.__repr__(value))
    elif t is range:  # its own repr fails past 4,300 digits: its ints go through _render
        _emit(parts, budget, "range(")
        _render(value.start, parts, budget, depth, seen)
        _emit(parts, budget, ", ")
        _render(value.stop, parts, budget, depth, seen)
        if value.step != 1:
            _emit(parts, budget, ", ")
            _render(value.step, parts, budget, depth, seen)
        _emit(parts, budget, ")")
    elif id(t) in _CONTAINERS:
        _container(value, t, parts, budget, depth, seen)
    elif t is types.FunctionType:
        _emit(parts, budget, f"<function {value.__qualname__}>")
    elif t is types.BuiltinFunctionType:
        _emit(parts, budget, f"<built-in function {value.__name__}>")
    elif t is types.ModuleType:
        _emit(parts, budget, f"<module {_module_name(value)}>")
    elif t is type:
        _emit(parts, budget, f"<class {type.__getattribute__(value, '__qualname__')}>")
    elif t is types.GeneratorType:
        _emit(parts, budget, f"<generator {value.__qualname__}>")
    else:
        _instance(value, t, parts, budget, depth, seen)


def _module_name(value: object) -> str:
    name = object.__getattribute__(value, "__dict__").get("__name__", "?")
    return name if type(name) is str else "?"


def _container(
    value: Any, t: Any, parts: list[str], budget: list[int], depth: int, seen: set[int]
) -> None:
    if id(value) in seen:
        _emit(parts, budget, "[...]" if t is list else "{...}")
        return
    if depth <= 0:
        _emit(parts, budget, "[...]" if t is list else "(...)" if t is tuple else "{...}")
        return
    n = t.__len__(value)
    if n == 0:
        _emit(
            parts,
            budget,
            {list: "[]", tuple: "()", set: "set()", frozenset: "frozenset()", dict: "{}"}[t],
        )
        return
    opener, closer = {
        list: ("[", "]"),
        tuple: ("(", ")"),
        set: ("{", "}"),
        frozenset: ("frozenset({", "})"),
        dict: ("{", "}"),
    }[t]
    seen.add(id(value))
    _emit(parts, budget, opener)
    if t is dict:
        items: Any = dict.items(value)
    elif t in (set, frozenset):
        # Sets iterate in hash order; sort the element reprs for a deterministic trace.
        items = sorted(safe_repr(v, 60) for v in t.__iter__(value))
    else:
        items = t.__iter__(value)
    for k, item in enumerate(items):
        if k:
            _emit(parts, budget, ", ")
        if k >= budget[1] or budget[0] <= 0:
            _emit(parts, budget, f"... ({n} items)")
            break
        if t is dict:
            key, val = item
            _render(key, parts, budget, depth - 1, seen)
            _emit(parts, budget, ": ")
            _render(val, parts, budget, depth - 1, seen)
        elif t in (set, frozenset):
            _emit(parts, budget, item)
        else:
            _render(item, parts, budget, depth - 1, seen)
    if t is tuple and n == 1:
        _emit(parts, budget, ",")
    _emit(parts, budget, closer)
    seen.discard(id(value))


def _instance(
    value: Any, t: Any, parts: list[str], budget: list[int], depth: int, seen: set[int]
) -> None:
    name = type.__getattribute__(t, "__qualname__")
    attrs = instance_dict(value, t)
    if attrs is None or depth <= 0 or id(value) in seen:
        _emit(parts, budget, f"<{name} object>")
        return
    seen.add(id(value))
    _emit(parts, budget, f"{name}(")
    for k, (key, val) in enumerate(dict.items(attrs)):
        if k:
            _emit(parts, budget, ", ")
        if k >= budget[1] or budget[0] <= 0:
            _emit(parts, budget, "...")
            break
        _emit(parts, budget, f"{key}=" if type(key) is str else "?=")
        _render(val, parts, budget, depth - 1, seen)
    _emit(parts, budget, ")")
    seen.discard(id(value))
