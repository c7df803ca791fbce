"""The test-only hook for the identity tests: a tracer that also notes the ``id()`` of every
value a step gives an object id, run in-process as bench/tracer_cost.py runs the tracer.

Its own file because two test modules use it; production has no such hook (the tracer records
recorded ids only, never ``id()``)."""

from __future__ import annotations

import contextlib
from types import FrameType
from typing import Any

from playground.sandbox import schema
from playground.sandbox.inside.heap import MAX_DEPTH, MAX_PER_STEP, Heap
from playground.sandbox.inside.tracer import Execution, LimitReached, Tracer
from playground.sandbox.limits import Limits


class HookedTracer(Tracer):
    """``Tracer`` plus ``actual``: step index -> {name: id() of its value} for the names in the
    step's ``ids``; ``untracked``: names shown with no id whose value is an object the heap
    records (there should be none below the object limit); and ``contents``: step index ->
    {recorded id: the entry a fresh heap's general walk makes of that object now}, for the
    shown objects that hold no objects (their entries name no ids, so any heap makes the same):
    the reference the tracer's shortcuts (``_visit_flat``, the texts it shares with the repr,
    the entries it keeps when the items are the same) must agree with."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.actual: dict[int, dict[str, int]] = {}
        self.untracked: list[tuple[int, str]] = []
        self.contents: dict[int, dict[int, dict[str, Any]]] = {}

    def _identity(
        self, step: dict[str, Any], frame: FrameType, changed: dict[str, str], returned: Any
    ) -> int:
        size = super()._identity(step, frame, changed, returned)
        snap = self.snapshots[frame]
        ids = step.get("ids", {})
        values = {
            name: returned if name == "__return__" else snap[name][0]
            for name in changed
            if name == "__return__" or name in snap
        }
        assert self.heap is not None
        self.actual[step["i"]] = {name: id(values[name]) for name in ids}
        self.untracked += [
            (step["i"], name)
            for name, value in values.items()
            if name not in ids and self.heap.tracked(value)
        ]
        contents = self.contents.setdefault(step["i"], {})
        for name, rid in ids.items():
            reference = Heap()
            delta: dict[str, Any] = {}
            reference.kind(values[name])
            own = reference.id_of(values[name])
            assert own is not None
            reference._visit(values[name], own, MAX_DEPTH, delta, set(), [MAX_PER_STEP])
            if len(delta) == 1 and not reference.refs:  # holds no objects
                contents[rid] = delta[str(own)]
        return size


def trace(source: str, call: str | None = None) -> tuple[list[dict[str, Any]], HookedTracer]:
    """The steps of ``source`` (then ``call``), traced in this process with the hook."""
    steps: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    execution = Execution(
        source,
        call,
        max_steps=Limits.max_steps,
        max_stdout=Limits.max_stdout,
        emit=steps.extend,
        finish=final.update,
    )
    hooked = HookedTracer(
        max_steps=Limits.max_steps,
        output=execution.output,
        emit=steps.extend,
        on_limit=execution.limit,
    )
    execution.tracer = hooked
    with contextlib.suppress(LimitReached):
        execution.run()
    return steps, hooked


def check_identity(steps: list[dict[str, Any]], hooked: HookedTracer) -> int:
    """Asserts that recorded ids match ``id()``: within each step for every pair of names, and
    across the run (a recorded id always names the object at one address; an address names one
    recorded id until that object is let go of, and a retired id never comes back); and that the
    steps pass the reader's validation; and that the heap the steps describe (each entry as last
    recorded) holds, for every shown object that holds no objects, what a fresh walk of it
    found at that step. Returns the number of (step, name) ids checked."""
    assert not hooked.untracked
    by_rid: dict[int, int] = {}
    by_id: dict[int, int] = {}
    retired: set[int] = set()
    checked = 0
    objects: set[int] = set()
    heap: dict[str, Any] = {}  # recorded id -> its entry as last recorded, replayed
    for step in steps:
        heap.update(step.get("heap", {}))
        for rid, entry in hooked.contents.get(step["i"], {}).items():
            assert heap[str(rid)] == entry, (step, rid)
        ids = step.get("ids", {})
        actual = hooked.actual.get(step["i"], {})
        assert set(ids) == set(actual)
        names = list(ids)
        for a in names:
            for b in names:
                assert (ids[a] == ids[b]) == (actual[a] == actual[b]), (step, a, b)
            assert by_rid.setdefault(ids[a], actual[a]) == actual[a], (step, a)
            assert ids[a] not in retired, (step, a)
            if by_id.get(actual[a], ids[a]) != ids[a]:  # the address now holds a new object
                retired.add(by_id[actual[a]])
            by_id[actual[a]] = ids[a]
            checked += 1
        clean = schema.clean_step(step, step["i"], max_stdout=Limits.max_stdout, objects=objects)
        assert clean.get("ids", {}) == ids
        assert clean.get("heap", {}) == step.get("heap", {})
    return checked
