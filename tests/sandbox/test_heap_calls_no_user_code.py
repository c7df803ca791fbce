"""Recording identity and the heap never calls the program's code: objects whose ``__repr__``,
``__eq__``, ``__hash__``, ``__iter__``, ``__len__``, ``__getattribute__``, ``__getattr__`` or a
property would raise or loop forever, container subclasses overriding ``__iter__`` and
``items``, a metaclass with a hostile ``__eq__`` and ``__hash__`` or a ``__mro__`` property, a
class whose ``__dict__`` is a property: tracing finishes and none is
triggered (each one notes its call in ``calls``, which the call expression returns)."""

from __future__ import annotations

from tests.sandbox.identity_hook import check_identity, trace

HOSTILE = """
calls = []

def trap(name):
    calls.append(name)
    raise RuntimeError(name)

class Meta(type):
    def __eq__(cls, other): trap('Meta.__eq__')
    def __hash__(cls): trap('Meta.__hash__')
    def __getattribute__(cls, name):
        if name in ('__mro__', '__dict__', '__qualname__', '__name__', '__module__'):
            trap('Meta.__getattribute__')
        return type.__getattribute__(cls, name)

class Evil(metaclass=Meta):
    def __init__(self):
        object.__setattr__(self, 'items', [1, 2])
        object.__setattr__(self, 'me', self)
    def __repr__(self): trap('__repr__')
    def __eq__(self, other): trap('__eq__')
    def __ne__(self, other): trap('__ne__')
    def __hash__(self): return 7
    def __iter__(self): trap('__iter__')
    def __len__(self): trap('__len__')
    def __bool__(self): trap('__bool__')
    def __getattribute__(self, name):
        calls.append('__getattribute__ ' + name)
        while True:
            pass
    def __getattr__(self, name): trap('__getattr__')
    @property
    def prop(self): trap('property')

class Loops:
    def __repr__(self):
        while True:
            pass
    def __eq__(self, other):
        while True:
            pass
    __hash__ = object.__hash__

class L(list):
    def __iter__(self): trap('L.__iter__')
    def __len__(self): trap('L.__len__')
    def __repr__(self): trap('L.__repr__')
    def __eq__(self, other): trap('L.__eq__')
    __hash__ = None

class D(dict):
    def items(self): trap('D.items')
    def keys(self): trap('D.keys')
    def values(self): trap('D.values')
    def __iter__(self): trap('D.__iter__')
    def __len__(self): trap('D.__len__')
    def __getitem__(self, key): trap('D.__getitem__')

class S(set):
    def __iter__(self): trap('S.__iter__')
    def __len__(self): trap('S.__len__')

class Slots:
    __slots__ = ('a',)
    def __init__(self): self.a = [1]

class MroMeta(type):
    @property
    def __mro__(cls): trap('MroMeta.__mro__')

class Odd(metaclass=MroMeta):
    def __init__(self): self.x = [2]

class OwnDict:
    @property
    def __dict__(self): trap('OwnDict.__dict__')

def make():
    e = Evil()
    lo = Loops()
    l = L([e, lo, 3])
    d = D()
    dict.__setitem__(d, e, l)
    dict.__setitem__(d, 'k', lo)
    s = S([e, lo])
    box = [e, l, d, s, Slots(), {e: [lo]}, Meta, Odd(), OwnDict()]
    box.append(box)
    alias = box
    return alias

result = make()
kept = result
"""


def test_tracing_hostile_objects_triggers_nothing() -> None:
    steps, hooked = trace(HOSTILE, "len(calls)")
    assert check_identity(steps, hooked) > 5
    final = steps[-1]
    assert final["event"] == "return"
    heaps = [e for s in steps for e in s.get("heap", {}).values()]
    kinds = {(e["kind"], e.get("type")) for e in heaps}
    assert {("object", "Evil"), ("list", "L"), ("dict", "D"), ("set", "S")} <= kinds
    evil = [e for e in heaps if e.get("type") == "Evil"][-1]
    assert [pair[0] for pair in evil["items"]] == ["'items'", "'me'"]


def test_the_program_saw_no_call() -> None:
    from playground.sandbox.inside.tracer import Execution
    from playground.sandbox.limits import Limits

    final: dict[str, object] = {}
    Execution(
        HOSTILE,
        "len(calls)",
        max_steps=Limits.max_steps,
        max_stdout=Limits.max_stdout,
        emit=lambda batch: None,
        finish=final.update,
    ).run()
    assert final["status"] == "ok", final
    assert final["result"] == "0"
