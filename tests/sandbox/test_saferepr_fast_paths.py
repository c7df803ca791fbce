"""The tracer's shortcuts change nothing a user sees: the C repr of a flat list, tuple or dict
is exactly the general renderer's text (hypothesis, on values the fast path takes and on values
it must refuse), so is the repr the tracer makes from the texts of a list's or dict's heap entry,
and a small container of scalars (or of tuples of them) that holds the same objects as last step
is skipped only when its repr is indeed unchanged (every in-place change still shows)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from playground.sandbox.inside.heap import item_texts
from playground.sandbox.inside.saferepr import _slow_repr, flat_ids, flat_items, safe_repr
from playground.sandbox.inside.tracer import Execution, _joined

scalars = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.text(max_size=120),
    st.binary(max_size=40),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.complex_numbers(allow_nan=False),
)
keys = st.one_of(st.integers(), st.text(max_size=30), st.booleans(), st.none())
flat = st.one_of(
    st.lists(scalars, max_size=50),
    st.lists(scalars, max_size=50).map(tuple),
    st.dictionaries(keys, scalars, max_size=50),
)


pairs = st.tuples(st.one_of(st.integers(), st.text(max_size=10)), scalars)
with_pairs = st.one_of(
    st.lists(st.one_of(scalars, pairs), max_size=50),
    st.dictionaries(keys, st.one_of(scalars, pairs), max_size=50),
)


class Loud:
    def __repr__(self) -> str:
        raise AssertionError("user code was called")

    __eq__ = __hash__ = __repr__  # type: ignore[assignment]


@settings(max_examples=400, deadline=None)
@given(value=flat, limit=st.sampled_from([40, 300, 10_000]), max_items=st.sampled_from([3, 40]))
def test_the_fast_path_renders_exactly_like_the_general_one(
    value: Any, limit: int, max_items: int
) -> None:
    assert safe_repr(value, limit, max_items) == _slow_repr(value, limit, max_items)


@settings(max_examples=400, deadline=None)
@given(value=st.one_of(flat, with_pairs))
def test_the_repr_made_from_the_heap_texts_is_the_general_one(value: Any) -> None:
    items = flat_items(value)
    if type(value) is tuple or items is None:
        return
    texts, exact = item_texts(items)
    joined = _joined(type(value), texts) if exact else None
    if joined is not None:
        assert joined == _slow_repr(value, 300, 40)


def test_a_range_past_the_int_digits_limit_is_rendered() -> None:
    # range's own repr raises ValueError past 4,300 digits: a program that holds one must
    # still be traced (it ended the run with the tracer's error before).
    big = range(10**5000)
    assert safe_repr(big).startswith("range(0, <int of about 500")
    assert safe_repr([range(3), big]).startswith("[range(0, 3), range(0, <int of about")
    steps = _steps("r = range(10**5000)\nxs = [r, range(1, 9, 2)]\n")
    shown = {k: v for s in steps for k, v in s.get("locals", {}).items()}
    assert shown["xs"].startswith("[range(0, <int of about 500")
    assert shown["xs"].endswith(", range(1, 9, 2)]")


def test_containers_the_fast_path_refuses_are_still_rendered_safely() -> None:
    for value in ([Loud()], {"a": [1]}, [10**30], ["x" * 500], (1, Loud()), [1] * 41):
        assert safe_repr(value) == _slow_repr(value, 300, 40)
    assert flat_items([1, Loud()]) is None
    assert flat_items({"a": [1]}) is None
    assert flat_items(list(range(65))) is None
    assert flat_items([(1, "a"), 2]) is not None  # a tuple of scalars cannot change
    assert flat_items([(1, [2])]) is None
    assert flat_items([(1, Loud())]) is None


def test_flat_ids_follow_the_same_objects() -> None:
    a = [1, "two", None]
    held = flat_items(a)
    assert held is not None
    assert flat_ids(a) == tuple(map(id, held))
    a[1] = "tw" + "o" * (len(a) - 2)  # an equal string, maybe another object
    a.append(3)
    assert flat_ids(a) != tuple(map(id, held))


def _steps(source: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    Execution(
        source, "", max_steps=1000, max_stdout=10_000, emit=steps.extend, finish=lambda f: None
    ).run()
    return steps


def test_every_in_place_change_of_a_small_container_still_shows() -> None:
    source = (
        "a = [1, 2]\n"
        "x = 0\n"  # a unchanged: not shown
        "a[0] = 5\n"
        "a[0] = 5\n"  # the same int object: not shown again
        "a[1] = 'b'\n"
        "a.reverse()\n"
        "d = {'k': 1}\n"
        "d['k'] = 2\n"
        "d['j'] = d['k']\n"
        "t = (1, 2)\n"
        "t = (1, 2)\n"  # rebound to an equal tuple: the same repr, not shown
        "del x\n"
    )
    shown = [(s["line"], s.get("locals", {})) for s in _steps(source)]
    changes = {
        line - 1: {k: v for k, v in locals_.items() if k != "__return__"} for line, locals_ in shown
    }
    assert changes[1] == {"a": "[1, 2]"}
    assert changes[2] == {"x": "0"}
    assert changes[3] == {"a": "[5, 2]"}
    assert changes[4] == {}
    assert changes[5] == {"a": "[5, 'b']"}
    assert changes[6] == {"a": "['b', 5]"}
    assert changes[8] == {"d": "{'k': 2}"}
    assert changes[9] == {"d": "{'k': 2, 'j': 2}"}
    assert changes[11] == {}


def test_every_change_of_a_list_of_pairs_still_shows() -> None:
    source = (
        "p = [(1, 'a')]\n"
        "p[0] = (1, 'a')\n"  # an equal tuple, another object: the same repr, not shown
        "p.append((2, 'b'))\n"
        "p[0] = (1, [2])\n"  # a tuple holding a list: not a flat container any more
        "p[0][1].append(3)\n"  # changed inside: shown (the list is not skipped)
        "x = 0\n"
        "del x\n"  # the return step is on this last line
    )
    shown = [(s["line"], s.get("locals", {})) for s in _steps(source)]
    changes = {
        line - 1: {k: v for k, v in locals_.items() if k != "__return__"} for line, locals_ in shown
    }
    assert changes[1] == {"p": "[(1, 'a')]"}
    assert changes[2] == {}
    assert changes[3] == {"p": "[(1, 'a'), (2, 'b')]"}
    assert changes[4] == {"p": "[(1, [2]), (2, 'b')]"}
    assert changes[5] == {"p": "[(1, [2, 3]), (2, 'b')]"}
