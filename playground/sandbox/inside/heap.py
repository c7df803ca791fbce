"""Object identity and the heap for the step recorder: which shown values are the same object,
and what each mutable container or instance holds, recorded as a delta from step to step.

Its own module because it is a separate concern from the trace callback (tracer.py, at its size
limit, keeps the events and the limits) with its own rules and bounds; the runner zip picks up
every module of ``inside/``. Standard library only, no imports: this runs inside the sandbox.
About 460 lines, one unit: the walk has a general path and a shortcut for the commonest entry (a
list, set or dict of scalars: ``_visit_flat``, with the texts the tracer already made), which
must agree item for item, so they sit side by side (tests/sandbox/identity_hook.py checks every
shortcut's entry against a fresh general walk).

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
from itertools import islice as _islice  # built in too

try:  # in the sandbox, where /runner is on sys.path
    from saferepr import GETSET, flat_ids, instance_dict, real_mro, safe_repr
except ImportError:  # in the project (tests, benchmarks)
    from playground.sandbox.inside.saferepr import (
        GETSET,
        flat_ids,
        instance_dict,
        real_mro,
        safe_repr,
    )

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    # A walk's state: depth left, ids recorded in this step, the step's budget, the children
    # to visit after the current entry.
    Walk = tuple[int, set[int], list[int], list[Any]]

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


def untracked_built_in(value: Any) -> bool:
    """Whether ``value`` is of a built-in type the heap never records (a str, an int, a
    function...): known without a heap."""
    known = _BUILT_IN_KINDS.get(id(type(value)))
    return known is not None and known[1] is None


class Heap:
    """Gives ids to the shown values and records the objects new or changed since last shown."""

    def __init__(self) -> None:
        self.held: dict[int, tuple[Any, int]] = {}  # id() -> (the object, its recorded id)
        self.given = 0  # ids given in this run (never reused: a released object's id retires)
        self.since_sweep = 0
        self.suspects: list[int] = []  # id() of objects let go of: maybe ours alone now
        self.keys: dict[int, int] = {}  # recorded id -> the id() it is filed under in held
        # id(type) -> (the type, held so its id stays its own; its kind): the types this run
        # met, each taken from _BUILT_IN_KINDS or worked out once (a copy of all the built-in
        # ones per run cost more than the lookups it saved: every allocation in a fresh
        # sandbox process touches fresh memory)
        self.types: dict[int, tuple[Any, tuple[str, Any] | None]] = {}
        self.last: dict[int, dict[str, Any]] = {}  # recorded id -> the entry last recorded
        self.refs: dict[int, list[int]] = {}  # recorded id -> the ids its last entry refers to
        # recorded id -> (flat_items when last recorded (held: their ids stay theirs), their
        # ids): a flat container holding the same items is recorded as it was, not walked
        self.flat: dict[int, tuple[tuple[Any, ...], tuple[int, ...]]] = {}
        # An upper bound of the characters of the entries the last ``record`` put in its delta
        # (for the tracer's batch size): counted as they are made, where a repr of the delta
        # cost as much as the walk.
        self.chars = 0

    def kind(self, value: Any) -> tuple[str, Any] | None:
        known = self.types.get(id(type(value)))
        if known is None:
            known = self._learn(type(value))
        return known[1]

    def _learn(self, t: Any) -> tuple[Any, tuple[str, Any] | None]:
        known = _BUILT_IN_KINDS.get(id(t))
        if known is None:
            known = (t, _kind(t))
        self.types[id(t)] = known
        return known

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

    def release_suspects(self) -> None:
        """Let go of the objects only the recorder still holds, among ``suspects`` (the tracer
        files there the objects a name or a frame let go of; called between steps, when no
        step's own references remain)."""
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
                self.refs.pop(pair[1], None)
                self.flat.pop(pair[1], None)
                del self.keys[pair[1]]

    def record(
        self, objects: list[tuple[str, Any, Any, list[str] | None, Any]]
    ) -> tuple[dict[str, int], dict[str, Any]]:
        """The ids of the named ``objects`` (values ``tracked`` said yes to, with their
        ``flat_items``, ``item_texts`` and the items' ids when the tracer has them), and the
        heap delta: ``{str(id): entry}`` for each object reachable from them (bounded) whose
        contents changed."""
        ids: dict[str, int] = {}
        delta: dict[str, Any] = {}
        self.chars = 0
        seen: set[int] = set()
        budget: list[int] | None = None  # a walk's, made for the first one
        held = self.held
        for name, value, flat, texts, item_ids in objects:
            pair = held.get(id(value))  # id_of's first lines, inline
            rid = pair[1] if pair is not None else self.id_of(value)
            if rid is None or rid in seen:
                if rid is not None:
                    ids[name] = rid
                continue
            ids[name] = rid
            seen.add(rid)
            known = self.flat.get(rid)
            if known is not None and known[1] == (item_ids or flat_ids(value)):
                continue  # the same items as when last recorded: the same entry
            if flat is None:
                if budget is None:
                    budget = [MAX_PER_STEP]
                self._visit(value, rid, MAX_DEPTH, delta, seen, budget)
            else:
                self._visit_flat(value, rid, flat, texts, delta)
                self.flat[rid] = (flat, item_ids or tuple(map(id, flat)))
        return ids, delta

    def _dropped(self, before: list[int], after: list[int]) -> None:
        """The objects an entry referred to (``before``, its ids) and no longer does: let go of
        them (a ``pop``, a ``del d[k]``); they die at the end of the step if nothing else holds
        them."""
        kept = set(after)
        for rid in before:
            if rid not in kept:
                key = self.keys.get(rid)
                if key is not None:
                    self.suspects.append(key)

    def forget(self, rids: Any) -> None:
        """Entries of a step taken back (Chain of Code): they are recorded again when next seen."""
        for key in rids:
            self.last.pop(int(key), None)
            self.flat.pop(int(key), None)

    def _visit_flat(
        self,
        value: Any,
        rid: int,
        flat: tuple[Any, ...],
        texts: list[str] | None,
        delta: dict[str, Any],
    ) -> None:
        """``_visit`` for an exact list, set or dict of immutable scalars (and tuples of them)
        whose items the tracer holds (``flat_items``: a dict's keys, then its values): the same
        entry, without the walk's bookkeeping (no item is an object). The commonest change a
        step records."""
        if texts is None:  # not made by the tracer (a set)
            texts = item_texts(flat)[0]
        t = type(value)
        items: list[Any]
        if t is dict:
            n = len(texts) // 2
            items = list(map(list, zip(texts[:n], texts[n:], strict=True)))
        else:
            n = len(texts)
            items = texts
            if t is set:
                del items[MAX_ITEMS:]  # the first ones in hash order, as _visit takes them
                items.sort()  # all texts: _set_order's order
        kind = "list" if t is list else "dict" if t is dict else "set"  # the tracked flat types
        entry: dict[str, Any] = {"kind": kind, "items": items}
        if n > MAX_ITEMS:
            del items[MAX_ITEMS:]
            entry["cut"] = True
            entry["len"] = n
        if self.last.get(rid) != entry:
            if self.refs:
                old = self.refs.pop(rid, None)
                if old is not None:
                    self._dropped(old, [])
            self.last[rid] = entry
            delta[str(rid)] = entry
            # Each text, its quotes and separators (a dict's pair adds brackets), the key and
            # the entry's own fields.
            self.chars += sum(map(len, texts)) + 6 * len(texts) + 60

    def _visit(
        self,
        value: Any,
        rid: int,
        depth: int,
        delta: dict[str, Any],
        seen: set[int],
        budget: list[int],
    ) -> None:
        """Records the entry of ``value`` (id ``rid``) when it changed, then its children.

        Each item is ``text or id``: an immutable's repr, an object's id. The commonest items,
        a short str and a small int, are rendered here without a call; the rest by ``_item``.
        On the critical path of every step that shows a changed container."""
        seen.add(rid)
        t = type(value)
        kind, base = self.types[id(t)][1] or ("object", None)  # cached: kind() was asked first
        entry: dict[str, Any] = {"kind": kind}
        if t is not base:  # an instance's class, a subclass of a built-in container
            name = type.__getattribute__(t, "__qualname__")
            if name != kind:
                entry["type"] = name
        follow: list[tuple[Any, int]] = []  # children to visit after this entry
        walk = (depth, seen, budget, follow)
        items: list[Any] = []
        refs: list[int] = []  # the ids among the items
        cut = False
        item_of = self._item
        if base is dict or base is None:  # a dict, or an instance's attributes
            source = value if base is dict else instance_dict(value, t)
            if source is None:
                source = {}
            n = dict.__len__(source)
            pairs: Any = dict.items(source)
            if n > MAX_ITEMS:
                pairs, cut = _islice(pairs, MAX_ITEMS), True
            for key, val in pairs:
                pair = [_plain(key) or item_of(key, walk), _plain(val) or item_of(val, walk)]
                for j in (0, 1):
                    part = pair[j]
                    if type(part) is not str:
                        if type(part) is tuple:  # (text or id, cut)
                            cut = True
                            part = pair[j] = part[0]
                        if type(part) is int:
                            refs.append(part)
                items.append(pair)
        elif base is bytearray:
            n = bytearray.__len__(value)
            head = bytearray.__getitem__(value, slice(0, ITEM_CHARS))
            items.append(safe_repr(bytes(head), ITEM_CHARS + 10))
            cut = n > ITEM_CHARS
        else:
            n = base.__len__(value)
            values: Any = base.__iter__(value)
            if n > MAX_ITEMS:
                values, cut = _islice(values, MAX_ITEMS), True
            append = items.append
            for val in values:
                tv = type(val)
                if tv is str and len(val) <= 24:
                    append(str.__repr__(val))
                elif tv is int and -_SMALL < val < _SMALL:
                    append(int.__repr__(val))
                else:
                    item = item_of(val, walk)
                    if type(item) is not str:
                        if type(item) is tuple:  # (text or id, cut)
                            cut = True
                            item = item[0]
                        if type(item) is int:
                            refs.append(item)
                    append(item)
            if base is set:  # hash order: sorted for a deterministic trace
                items.sort(key=_set_order)
        entry["items"] = items
        if cut:
            entry["cut"] = True
            entry["len"] = n
        if self.last.get(rid) != entry:
            old = self.refs.pop(rid, None)
            if old is not None:
                self._dropped(old, refs)
            if refs:
                self.refs[rid] = refs
            self.last[rid] = entry
            self.flat.pop(rid, None)  # its flat items, if any, are not what was last recorded
            delta[str(rid)] = entry
            self.chars += len(_repr(entry)) + 12
        for child_value, child in follow:
            self._visit(child_value, child, depth - 1, delta, seen, budget)

    def _item(self, v: Any, walk: Walk) -> Any:
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
            known = self._learn(t)
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


def item_texts(items: tuple[Any, ...]) -> tuple[list[str], bool]:
    """What ``Heap._item`` gives each of ``items`` (immutable scalars and tuples of them, from
    ``flat_items``), and whether every text is the item's own repr (a str of at most 24
    characters, a small int, a float, a bool, None): then the container's repr can be made from
    them (the tracer does: one pass over the items where there were two)."""
    texts: list[str] = []
    append = texts.append
    exact = True
    for v in items:
        t = type(v)
        if t is str and len(v) <= 24:
            append(str.__repr__(v))
        elif t is int and -_SMALL < v < _SMALL:
            append(int.__repr__(v))
        else:
            append(safe_repr(v, ITEM_CHARS, 10))
            exact = exact and (t is float or t is bool or v is None)
    return texts, exact


def _plain(v: Any) -> str:
    """The text of a short str or a small int (the commonest keys and values), else ``""``
    (no repr is empty): what ``Heap._item`` gives for them, without its walk."""
    t = type(v)
    if t is str:
        return str.__repr__(v) if len(v) <= 24 else ""
    if t is int and -_SMALL < v < _SMALL:
        return int.__repr__(v)
    return ""


def _set_order(item: Any) -> tuple[int, str, int]:
    return (1, "", item) if type(item) is int else (0, item, 0)


_SMALL = 10**18
_repr = repr  # bound at import: the program may replace builtins.repr
