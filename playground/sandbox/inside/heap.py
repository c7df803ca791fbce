"""Object identity and the heap for the step recorder: which shown values are the same object,
and what each mutable container or instance holds, recorded as a delta from step to step.

Its own module because it is a separate concern from the trace callback (tracer.py, at its size
limit, keeps the events and the limits) with its own rules and bounds; the runner zip picks up
every module of ``inside/``. Standard library only, no imports: this runs inside the sandbox.

Ids are small integers, 1, 2, 3... in order of first sight, stable for the whole run and never
reused. The recorder holds a reference to each object it gave an id, so the ``id()`` it is
filed under cannot pass to another object while it is filed; and it lets go of an object as soon
as nothing else holds it, so the program's memory and its finalizers (``__del__``, ``weakref``
callbacks) are not kept waiting: right after a step whose name let go of it, or at the next
sweep (every ``SWEEP_EVERY`` new ids) for one dropped from a container. An object let go of
dies then (as it would have when the program dropped it; a finalizer runs untraced, between two
steps) and its id retires: a new object at the same address gets a new id. Past
``MAX_OBJECTS`` ids a new object gets none (its name shows its repr only).

An object is recorded again when a step shows a name bound to it or to a container that holds
it, which the tracer does when the name's bounded repr changed (or it was rebound): a change
the repr cannot show (an item past the first 40 replaced, the length unchanged) waits for the
next one it can.

Never calls user code: containers are read through the built-in base type's own C methods
(``list.__iter__(obj)``, ``dict.items(obj)``, even on a subclass that overrides them), an
instance's attributes through its raw ``__dict__`` (only when the type's ``__dict__`` is the
interpreter's own descriptor, not a property), and values through ``saferepr``. Types are
cached by ``id()``, never hashed (a metaclass may define ``__hash__``).
"""

from __future__ import annotations

import sys
from _collections import deque  # built in: no import from the zip

try:  # in the sandbox, where /runner is on sys.path
    from saferepr import GETSET, instance_dict, real_mro, safe_repr
except ImportError:  # in the project (tests, benchmarks)
    from playground.sandbox.inside.saferepr import GETSET, instance_dict, real_mro, safe_repr

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX_OBJECTS = 10_000  # objects given an id in one run
SWEEP_EVERY = 64  # new ids between two sweeps for objects only the recorder still holds
MAX_PER_STEP = 50  # objects recorded in one step's heap besides the shown names' own
MAX_ITEMS = 40  # items recorded of one container
MAX_DEPTH = 3  # containers followed below a shown name
ITEM_CHARS = 100  # the repr of one immutable item

_KINDS = ((list, "list"), (dict, "dict"), (set, "set"), (bytearray, "bytearray"), (deque, "deque"))
_NOT_INSTANCES = (type, type(sys), type(len), type(safe_repr))


def _kind(t: Any) -> tuple[str, Any] | None:
    """``(kind, base type)`` for a type whose values get an id: a mutable container (its built-in
    base, read through it) or an instance with a ``__dict__``; None for everything else. Types
    are compared by identity only: ``in`` or ``==`` could call a metaclass's ``__eq__``."""
    mro = real_mro(t)
    for base in mro:
        for known, kind in _KINDS:
            if base is known:
                return kind, base
        for excluded in _NOT_INSTANCES:
            if base is excluded:
                return None
    for base in mro:
        found = type.__dict__["__dict__"].__get__(base).get("__dict__")
        if found is not None:
            return ("object", None) if type(found) is GETSET else None
    return None


# The kinds of the built-in types, worked out once (they are immortal and their bases never
# change): a run starts with them instead of walking each one's MRO again.
_BUILT_IN_TYPES: tuple[Any, ...] = (
    int, str, float, bool, type(None), bytes, complex, tuple, frozenset, range, list,
    dict, set, bytearray, deque, type, type(len), type(_kind), type(sys), slice,
    type(iter([])), type(iter("")), type(iter(range(0))), type(iter({}.items())),
    type(iter(())), type(iter({})), type(iter(set())), type(reversed([])),
    type(enumerate([])), type(zip()), type(map(len, [])), type(filter(None, [])),
)  # fmt: skip
_BUILT_IN_KINDS: dict[int, tuple[Any, tuple[str, Any] | None]] = {
    id(t): (t, _kind(t)) for t in _BUILT_IN_TYPES
}


class Heap:
    """Gives ids to the shown values and records the objects new or changed since last shown."""

    def __init__(self) -> None:
        self.held: dict[int, tuple[Any, int]] = {}  # id() -> (the object, its recorded id)
        self.given = 0  # ids given in this run (never reused: a released object's id retires)
        self.since_sweep = 0
        self.suspects: list[int] = []  # id() of objects let go of: maybe ours alone now
        self.keys: dict[int, int] = {}  # recorded id -> the id() it is filed under in held
        # id(type) -> (the type, held so its id stays its own; its kind)
        self.types: dict[int, tuple[Any, tuple[str, Any] | None]] = dict(_BUILT_IN_KINDS)
        self.last: dict[int, dict[str, Any]] = {}  # recorded id -> the entry last recorded

    def kind(self, value: Any) -> tuple[str, Any] | None:
        t = type(value)
        known = self.types.get(id(t))
        if known is None:
            known = self.types[id(t)] = (t, _kind(t))
        return known[1]

    def tracked(self, value: Any) -> bool:
        """Whether ``value`` is an object the heap records (so a rebinding shows)."""
        return self.kind(value) is not None

    def id_of(self, value: Any) -> int | None:
        held = self.held.get(id(value))
        if held is not None:
            return held[1]
        if self.given >= MAX_OBJECTS:
            return None
        self.given += 1
        self.held[id(value)] = (value, self.given)
        self.keys[self.given] = id(value)
        self.since_sweep += 1
        if self.since_sweep >= SWEEP_EVERY:
            self.sweep()
        return self.given

    def let_go(self, value: Any) -> None:
        """A name that was bound to ``value`` is bound to something else now: at the next
        ``release_suspects`` the object is let go if the recorder is all that holds it."""
        if id(value) in self.held:
            self.suspects.append(id(value))

    def release_suspects(self) -> None:
        """Let go of the objects only the recorder still holds, among those names let go of
        (called between steps, when no step's own references remain)."""
        if self.suspects:
            suspects, self.suspects = self.suspects, []
            self._release(suspects)

    def sweep(self) -> None:
        """Let go of every held object nothing but the recorder holds (one dropped from a
        container, say): every ``SWEEP_EVERY`` new ids, so at most that many are kept past
        their time."""
        self.since_sweep = 0
        self._release(list(self.held))

    def _release(self, keys: list[int]) -> None:
        held = self.held
        for key in keys:
            pair = held.get(key)
            # Two references: the pair's and getrefcount's own argument. Letting go frees the
            # object now, as the program's own last reference would have (its id retires).
            if pair is not None and sys.getrefcount(pair[0]) <= 2:
                del held[key]
                self.last.pop(pair[1], None)
                del self.keys[pair[1]]

    def record(self, values: dict[str, Any]) -> tuple[dict[str, int], dict[str, Any]]:
        """The ids of ``values`` that are tracked objects, and the heap delta: ``{str(id):
        entry}`` for each object reachable from them (bounded) whose contents changed."""
        ids: dict[str, int] = {}
        delta: dict[str, Any] = {}
        seen: set[int] = set()
        budget = [MAX_PER_STEP]
        for name, value in values.items():
            if self.kind(value) is None:
                continue
            rid = self.id_of(value)
            if rid is not None:
                ids[name] = rid
                if rid not in seen:
                    self._visit(value, rid, MAX_DEPTH, delta, seen, budget)
        return ids, delta

    def _dropped(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """The objects ``before`` referred to and ``after`` no longer does: let go of them (a
        ``pop``, a ``del d[k]``); they die at the end of the step if nothing else holds them."""
        kept = set(_refs(after))
        for rid in _refs(before):
            if rid not in kept:
                key = self.keys.get(rid)
                if key is not None:
                    self.suspects.append(key)

    def forget(self, rids: Any) -> None:
        """Entries of a step taken back (Chain of Code): they are recorded again when next seen."""
        for key in rids:
            self.last.pop(int(key), None)

    def _visit(
        self,
        value: Any,
        rid: int,
        depth: int,
        delta: dict[str, Any],
        seen: set[int],
        budget: list[int],
    ) -> None:
        seen.add(rid)
        kind, base = self.kind(value) or ("object", None)
        entry: dict[str, Any] = {"kind": kind}
        t = type(value)
        if t is not base:  # an instance's class, a subclass of a built-in container
            name = type.__getattribute__(t, "__qualname__")
            if name != kind:
                entry["type"] = name
        # Each item: ``[text or id]``; followed children are visited after this entry.
        follow: list[tuple[Any, int]] = []
        walk = (depth, seen, budget, follow)
        items: list[Any] = []
        cut = False
        if kind == "bytearray":
            n = bytearray.__len__(value)
            head = bytearray.__getitem__(value, slice(0, ITEM_CHARS))
            items.append(safe_repr(bytes(head), ITEM_CHARS + 10))
            cut = n > ITEM_CHARS
        elif kind == "dict" or kind == "object":
            source = value if kind == "dict" else instance_dict(value, t)
            if source is None:
                source = {}
            n = dict.__len__(source)
            item_of = self._item
            for k, (key, val) in enumerate(dict.items(source)):
                if k >= MAX_ITEMS:
                    cut = True
                    break
                pair = [item_of(key, walk), item_of(val, walk)]
                if type(pair[0]) is tuple or type(pair[1]) is tuple:  # (text, cut)
                    cut = True
                    pair = [p[0] if type(p) is tuple else p for p in pair]
                items.append(pair)
        else:
            assert base is not None  # the container kinds have their base
            n = base.__len__(value)
            item_of = self._item
            for k, val in enumerate(base.__iter__(value)):
                if k >= MAX_ITEMS:
                    cut = True
                    break
                item = item_of(val, walk)
                if type(item) is tuple:
                    cut = True
                    item = item[0]
                items.append(item)
            if kind == "set":  # hash order: sorted for a deterministic trace
                items.sort(key=_set_order)
        entry["items"] = items
        if cut:
            entry["cut"] = True
            entry["len"] = n
        before = self.last.get(rid)
        if before != entry:
            if before is not None:
                self._dropped(before, entry)
            self.last[rid] = entry
            delta[str(rid)] = entry
        for child_value, child in follow:
            self._visit(child_value, child, depth - 1, delta, seen, budget)

    def _item(self, v: Any, walk: tuple[int, set[int], list[int], list[Any]]) -> Any:
        """One item: its repr (an immutable), its id (an object, followed when within the
        bounds), or ``(repr, True)`` for an object cut off (not followed, never recorded)."""
        t = type(v)
        if t is str:
            if len(v) <= 24:
                return str.__repr__(v)
            return safe_repr(v, ITEM_CHARS, 10)
        if t is int and -_SMALL < v < _SMALL:
            return int.__repr__(v)
        known = self.types.get(id(t))
        if known is None:
            known = self.types[id(t)] = (t, _kind(t))
        if known[1] is None:
            return safe_repr(v, ITEM_CHARS, 10)
        depth, seen, budget, follow = walk
        held = self.held.get(id(v))
        child = held[1] if held is not None else None
        if child is not None and child in seen:  # recorded in this step
            return child
        if depth > 0 and budget[0] > 0:
            child = self.id_of(v)
            if child is not None:
                seen.add(child)
                budget[0] -= 1
                follow.append((v, child))
                return child
        # Not followed: by id when recorded before (its contents maybe stale), else as text.
        if child is not None and child in self.last:
            return (child, True)
        return (safe_repr(v, ITEM_CHARS, 10), True)


def _refs(entry: dict[str, Any]) -> list[int]:
    """The recorded ids an entry refers to (its items, or its pairs' keys and values)."""
    found: list[int] = []
    for item in entry["items"]:
        if type(item) is list:
            found.extend(part for part in item if type(part) is int)
        elif type(item) is int:
            found.append(item)
    return found


def _set_order(item: Any) -> tuple[int, str, int]:
    return (1, "", item) if type(item) is int else (0, item, 0)


_SMALL = 10**18


def entry_size(entry: dict[str, Any]) -> int:
    """About the characters of one heap entry in JSON (with its key)."""
    size = 40 + len(entry.get("type", ""))
    for item in entry["items"]:
        if type(item) is list:
            size += 4
            for part in item:
                size += len(part) + 4 if type(part) is str else 8
        else:
            size += len(item) + 4 if type(item) is str else 8
    return size
