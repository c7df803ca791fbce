"""Object identity through the real sandbox (``playground.sandbox.run``): aliasing and in-place
mutation, a self-containing list, the reader's strict checks on ``ids`` and ``heap`` (a trace is
untrusted), and older traces read as before."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from playground import sandbox
from playground.sandbox import schema
from playground.sandbox.inside import heap


def test_two_names_one_list_and_the_append_re_records_it() -> None:
    trace = sandbox.run("a = [1]\nb = a\nb.append(2)\nprint(a)\n")
    assert trace["status"] == "ok"
    steps = trace["steps"]
    created = next(s for s in steps if s.get("ids", {}).get("a") and s["line"] == 2)
    rid = created["ids"]["a"]
    assert created["heap"] == {str(rid): {"kind": "list", "items": ["1"]}}
    aliased = next(s for s in steps if s["line"] == 3)
    assert aliased["ids"] == {"b": rid}
    assert "heap" not in aliased  # nothing changed: the delta is empty
    appended = next(s for s in steps if s["line"] == 4)
    assert appended["ids"] == {"a": rid, "b": rid}
    assert appended["heap"] == {str(rid): {"kind": "list", "items": ["1", "2"]}}


def test_a_list_that_contains_itself_is_recorded_once_and_bounded() -> None:
    trace = sandbox.run("a = [1]\na.append(a)\nb = list(range(100))\nb.append([a, b])\n")
    assert trace["status"] == "ok"
    rid = next(s["ids"]["a"] for s in trace["steps"] if "ids" in s)
    cycle = next(s for s in trace["steps"] if s["line"] == 3)
    assert cycle["heap"] == {str(rid): {"kind": "list", "items": ["1", rid]}}
    for step in trace["steps"]:
        entries = step.get("heap", {})
        assert len(entries) <= heap.MAX_PER_STEP + len(step.get("ids", {}))
        for entry in entries.values():
            assert len(entry["items"]) <= heap.MAX_ITEMS
    wide = trace["steps"][-1]
    (b,) = wide["ids"].values()
    assert wide["heap"][str(b)]["cut"] is True
    assert wide["heap"][str(b)]["len"] == 101


def test_a_deep_nesting_is_cut_at_the_depth_limit() -> None:
    trace = sandbox.run("x = []\nfor _ in range(30):\n    x = [x]\n")
    assert trace["status"] == "ok"
    for step in trace["steps"]:
        assert len(step.get("heap", {})) <= heap.MAX_DEPTH + 1


def _step(**extra: Any) -> dict[str, Any]:
    return {"i": 0, "line": 1, "func": "<module>", "locals": {"a": "[1]"}, **extra}


GOOD = _step(ids={"a": 1}, heap={"1": {"kind": "list", "items": ["1", 1]}})


@pytest.mark.parametrize(
    "change",
    [
        {"ids": {"a": 2}},  # an object never recorded
        {"ids": {"b": 1}},  # a name the step does not show
        {"ids": {"a": "1"}},
        {"ids": {"a": True}},
        {"heap": {"1": {"kind": "list", "items": ["1", 5]}}},  # a reference to nothing
        {"heap": {"x": {"kind": "list", "items": []}}},
        {"heap": {"0": {"kind": "list", "items": []}}},
        {"heap": {"1": {"kind": "tuple", "items": []}}},
        {"heap": {"1": {"kind": "list", "items": [None]}}},
        {"heap": {"1": {"kind": "dict", "items": ["1"]}}},
        {"heap": {"1": {"kind": "list", "items": ["1"] * 41}}},
        {"heap": {"1": {"kind": "list", "items": [], "cut": 1, "len": 3}}},
        {"heap": {str(k): {"kind": "list", "items": []} for k in range(1, 300)}},
        {"heap": []},
    ],
)
def test_the_reader_refuses_bad_ids_and_heaps(change: dict[str, Any]) -> None:
    with pytest.raises(schema.TraceInvalid):
        schema.clean_step(dict(GOOD, **change), 0, max_stdout=100, objects=set())


def test_the_reader_keeps_good_ones_and_counts_them_in_the_size() -> None:
    objects: set[int] = set()
    clean = schema.clean_step(copy.deepcopy(GOOD), 0, max_stdout=100, objects=objects)
    assert clean == GOOD
    assert objects == {1}
    later = _step(i=1, ids={"a": 1})  # recorded by an earlier step
    assert schema.clean_step(later, 1, max_stdout=100, objects=objects)["ids"] == {"a": 1}
    assert schema.stored_size(clean) > schema.stored_size(_step()) + 60


def test_older_traces_read_as_before() -> None:
    v2 = {"schema": 2, "status": "ok", "steps": [_step()], "stdout": "", "result": None}
    read = schema.upgrade(v2)
    assert read["schema"] == schema.SCHEMA_VERSION == 3
    assert read["steps"] == v2["steps"]
    assert read["upgraded_from"] == 2
    v1 = dict(v2, schema=1)
    assert schema.upgrade(v1)["steps"] == v2["steps"]


def _plain_output(source: str) -> str:
    """What the program prints run by Python itself, untraced."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<program>", "exec"), {"__name__": "__main__"})  # noqa: S102
    return out.getvalue()


def test_objects_the_program_drops_are_not_kept_alive() -> None:
    """Each list is 800 kB and lives one iteration: 2.4 GB if the recorder kept them all, far
    past the run's 256 MB. The recorder lets go of each as the program does."""
    source = "for i in range(3000):\n    x = [i] * 100_000\nprint('done')\n"
    trace = sandbox.run(source)
    assert trace["status"] == "ok", trace.get("error")
    assert trace["stdout"] == "done\n"
    ids = [s["ids"]["x"] for s in trace["steps"] if "x" in s.get("ids", {})]
    assert len(ids) == len(set(ids))  # each new list its own id, none reused


def test_finalizers_run_when_the_program_drops_the_object() -> None:
    """``__del__`` and a weakref callback print where they print untraced, not at exit."""
    source = (
        "import weakref\n"
        "class D:\n"
        "    def __init__(self, name):\n"
        "        self.name = name\n"
        "    def __del__(self):\n"
        "        print('del', self.name)\n"
        "d = D('one')\n"
        "d = None\n"
        "print('after one')\n"
        "def f():\n"
        "    local = D('two')\n"
        "    return 1\n"
        "f()\n"
        "print('after two')\n"
        "box = [D('three')]\n"
        "box.pop()\n"
        "print('after three')\n"
        "e = D('four')\n"
        "w = weakref.ref(e, lambda r: print('callback'))\n"
        "e = 0\n"
        "print('after four')\n"
    )
    expected = _plain_output(source)
    assert expected.startswith("del one\nafter one\ndel two\nafter two\n")
    trace = sandbox.run(source)
    assert trace["status"] == "ok", trace.get("error")
    assert trace["stdout"] == expected
