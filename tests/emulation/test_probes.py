"""Probes (``playground/emulation/probes.py``): generated deterministically from a seed, every true
answer true of the real trace (checked here by a separate, naive reading of the trace), the
prompts bounded on a long run, hostile answers graded unreadable without running anything, and
incremental consistency on hand-computed cases."""

from __future__ import annotations

import ast
import json
import time
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playground import sandbox
from playground.emulation import probes
from playground.emulation.base import Item
from playground.programs.library import DATASETS_DIR

# Hand-written programs for what CRUXEval lacks: calls between functions, recursion, an
# exception caught, a generator, a comprehension, lines never run, a run without a call.
PROGRAMS: list[tuple[str, str]] = [
    (
        "def g(x):\n    return x * 2\n\ndef f(xs):\n    total = 0\n    for x in xs:\n"
        "        if x > 1:\n            total += g(x)\n        else:\n            total -= 1\n"
        "    return total\n",
        "f([1, 2, 3])",
    ),
    (
        "def fact(n):\n    if n <= 1:\n        return 1\n    r = n * fact(n - 1)\n    return r\n",
        "fact(5)",
    ),
    (
        "def f(d):\n    out = {}\n    for k in sorted(d):\n        try:\n"
        "            out[k] = 10 // d[k]\n"
        "        except ZeroDivisionError:\n            out[k] = None\n    s = {1, 2}\n"
        "    t = (1.5, True, 'x')\n    return out, s, t\n",
        "f({'a': 2, 'b': 0, 'c': 5})",
    ),
    (
        "def gen(n):\n    i = 0\n    while i < n:\n        yield i * i\n        i += 1\n\n"
        "def f(n):\n    squares = [v for v in gen(n)]\n    return sum(squares), squares\n",
        "f(4)",
    ),
    (
        "words = ['a', 'bb', 'ccc']\ncount = 0\nfor w in words:\n    if len(w) > 1:\n"
        "        count += len(w)\n        print(w)\nif count > 100:\n    print('never')\n",
        "",
    ),
]
CRUXEVAL = 25  # programs of the library's CRUXEval, the first ones


@cache
def _runs() -> list[tuple[str, str, dict[str, Any]]]:
    """Each program with its call and its real trace, run once for the module."""
    path = DATASETS_DIR / "cruxeval" / "cruxeval.jsonl"
    items = [json.loads(line) for line in path.read_text().splitlines()[:CRUXEVAL]]
    programs = PROGRAMS + [(i["code"], f"f({i['input']})") for i in items]

    def run(program: tuple[str, str]) -> tuple[str, str, dict[str, Any]]:
        source, call = program
        return source, call, sandbox.run(source, call=call or None)

    with ThreadPoolExecutor(max_workers=2) as workers:
        return list(workers.map(run, programs))


# -- a naive reading of the trace, apart from probes.index --------------------------------


def _depths(steps: list[dict[str, Any]]) -> list[int]:
    """Each step's frame depth: a call step is one deeper than the step before it; a step
    after a return or unwind one shallower."""
    depths, depth = [], 0
    for step in steps:
        event = step.get("event", "line")
        if event == "call":
            depth += 1
        depths.append(depth)
        if event in ("return", "unwind"):
            depth -= 1
    return depths


def _kth_line(steps: list[dict[str, Any]], line: int, k: int) -> int:
    seen = 0
    for i, step in enumerate(steps):
        if step.get("event", "line") == "line" and step["line"] == line:
            seen += 1
            if seen == k:
                return i
    raise AssertionError(f"line {line} does not run {k} times")


def _check(probe: probes.Probe, source: str, call: str, trace: dict[str, Any]) -> None:
    """The probe's true answer, and its step, are what the trace says."""
    steps = trace["steps"]
    true = ast.literal_eval(probe.truth)
    lines = [s["line"] for s in steps if s.get("event", "line") == "line"]
    if probe.kind == "coverage":
        assert probe.line is not None
        assert true is (probe.line in lines)
        assert probe.line in probes.statement_lines(source)
        if true:
            assert steps[probe.step]["line"] == probe.line  # type: ignore[index]
        return
    if probe.kind == "path":
        assert probe.line is not None
        assert probe.k is not None
        at = _kth_line(steps, probe.line, probe.k)
        after = [s["line"] for s in steps[at + 1 :] if s.get("event", "line") == "line"]
        assert true == (after[0] if after else None)
        assert probe.step == at
        return
    if probe.kind == "state":
        assert probe.line is not None
        assert probe.k is not None
        assert probe.variable
        depths = _depths(steps)
        at = _kth_line(steps, probe.line, probe.k)
        depth = depths[at]
        following = next(j for j in range(at + 1, len(steps)) if depths[j] <= depth)
        assert depths[following] == depth
        assert steps[following].get("event") != "exception"
        assert probe.step == following
        value = None
        for j in range(following, -1, -1):  # the latest value in this frame, going back
            if depths[j] < depth or (depths[j] == depth and j < following and _exits(steps[j])):
                break
            if depths[j] == depth and probe.variable in (steps[j].get("locals") or {}):
                value = steps[j]["locals"][probe.variable]
                break
            if depths[j] == depth and steps[j].get("event") == "call":
                break
        assert value is not None, "the variable has no value in its frame there"
        read = ast.literal_eval(value)
        assert type(read) is type(true)
        assert read == true
        return
    if probe.kind == "output":
        if call:
            assert trace["status"] == "ok"
            assert ast.literal_eval(trace["result"]) == true
        else:
            assert trace["stdout"] == true
        return
    assert probe.kind == "sequence"
    assert true == lines[: probe.length]
    assert len(true) <= probes.MAX_SEQUENCE


def _exits(step: dict[str, Any]) -> bool:
    return step.get("event") in ("return", "unwind")


configs = st.builds(
    probes.Config,
    coverage=st.integers(0, 8),
    state=st.integers(0, 8),
    path=st.integers(0, 8),
    output=st.integers(0, 1),
    sequence=st.integers(0, 1),
)


@settings(max_examples=150, deadline=None)
@given(
    which=st.integers(0, len(PROGRAMS) + CRUXEVAL - 1), seed=st.integers(0, 2**32), config=configs
)
def test_generation_is_deterministic_and_every_answer_is_true_of_the_trace(
    which: int, seed: int, config: probes.Config
) -> None:
    source, call, trace = _runs()[which]
    made = probes.generate(trace, source, call=call, seed=seed, config=config)
    again = probes.generate(
        json.loads(json.dumps(trace)), source, call=call, seed=seed, config=config
    )
    assert made == again
    for kind in probes.KINDS:  # never more than asked for
        assert sum(p.kind == kind for p in made) <= config.count(kind)
    for probe in made:
        _check(probe, source, call, trace)
        # The real run grades its own true answers right, each at the same step.
        mark = probes.grade(probe, probe.truth)
        assert mark["status"] == "correct", mark


def test_the_library_programs_get_every_kind_and_seeds_differ() -> None:
    """Not vacuous: over the programs every kind is asked, chains are formed, and another seed
    asks other questions somewhere."""
    kinds: set[str] = set()
    chains = 0
    differ = False
    for source, call, trace in _runs():
        made = probes.generate(trace, source, call=call, seed=1)
        kinds |= {p.kind for p in made}
        chains += len({p.chain for p in made if p.chain is not None})
        differ |= made != probes.generate(trace, source, call=call, seed=2)
        assert all(p.step is None or 0 <= p.step < len(trace["steps"]) for p in made)
    assert kinds == set(probes.KINDS)
    assert chains >= len(_runs())
    assert differ
    never = [
        p
        for source, call, trace in _runs()
        for p in probes.generate(trace, source, call=call, seed=0, config=probes.Config(coverage=8))
        if p.kind == "coverage" and p.truth == "False"
    ]
    assert never, "no line that never runs was asked about"


def test_a_long_run_makes_a_bounded_prompt() -> None:
    """A 10,000-step trace: the sequence asks for its first 200 lines, and the prompt stays
    small whatever the configuration."""
    source = "def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t\n"
    trace = sandbox.run(source, call="f(4000)")
    assert len(trace["steps"]) > 8_000
    started = time.process_time()  # CPU time: another test worker shares the cores
    made = probes.generate(trace, source, call="f(4000)", seed=7, config=probes.Config(*[20] * 5))
    assert time.process_time() - started < 5
    sequence = next(p for p in made if p.kind == "sequence")
    assert sequence.length == probes.MAX_SEQUENCE
    assert "the first 200 of" in sequence.question
    prompt = probes.all_at_once(Item("program", source=source, call="f(4000)"), made)
    assert len(prompt[0]["content"]) < 20_000
    for probe in made:
        _check(probe, source, "f(4000)", trace)


# -- answers -------------------------------------------------------------------------------


def _probe(kind: str, truth: str) -> probes.Probe:
    return probes.Probe(kind, "?", truth, 0, line=1, k=1)


@pytest.mark.parametrize(
    ("kind", "truth", "answer", "status"),
    [
        ("coverage", "True", "True", "correct"),
        ("coverage", "True", "1", "wrong"),  # a bool is asked for
        ("coverage", "False", "'no'", "wrong"),  # a string literal, not a yes/no answer
        ("coverage", "True", "Yes, line 5 runs during the first call.", "correct"),
        ("coverage", "False", "**No**: the loop never runs", "correct"),
        ("coverage", "True", "no", "wrong"),
        ("coverage", "True", "false.", "wrong"),
        ("coverage", "True", "Nobody knows", "unparsable"),  # only a whole first word
        ("coverage", "True", "It is executed, yes", "unparsable"),
        ("state", "True", "Yes", "unparsable"),  # only coverage reads yes/no
        ("state", "1", "1", "correct"),
        ("state", "1", "1.0", "wrong"),  # the type counts (REval grades type and value)
        ("state", "1", "True", "wrong"),
        ("state", "[1, 'a']", "[1, 'a']", "correct"),
        ("state", "[1, 'a']", "(1, 'a')", "wrong"),
        ("state", "{1, 2}", "{2, 1}", "correct"),
        ("path", "None", "None", "correct"),
        ("path", "4", "4.0", "wrong"),
        ("output", "0.30000000000000004", "0.3", "wrong"),  # exact ==, as the verdict
        ("sequence", "[1, 2, 3]", "(1, 2, 3)", "correct"),
        ("sequence", "[1, 2, 3]", "[1, 2]", "wrong"),
        ("state", "1", "x", "unparsable"),
    ],
)
def test_answers_are_graded_by_kind(kind: str, truth: str, answer: str, status: str) -> None:
    assert probes.grade(_probe(kind, truth), answer)["status"] == status


@pytest.mark.parametrize(
    "answer",
    [
        "9" * 5_000_000,  # huge
        "[" * 100_000 + "]" * 100_000,  # nested far past the parser's limits
        "[[[[[[[[[[[[[[1]]]]]]]]]]]]]]",  # 14 deep: refused before parsing
        "__import__('pathlib').Path('{marker}').touch()",  # code
        "(lambda: open('{marker}', 'w'))()",
        "[1] * 10**9",  # an expression that would be huge
        'f\'{{open("{marker}", "w")}}\'',
        "1; import os",
        "",
    ],
)
def test_hostile_answers_are_unreadable_and_nothing_runs(answer: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    answer = answer.replace("{marker}", str(marker)) if "{marker}" in answer else answer
    started = time.perf_counter()
    mark = probes.grade(_probe("state", "[1]"), answer)
    text = f"[ANSWERS]\n1: {answer}\n[/ANSWERS]"
    read = probes.read_answers(text, 1)
    assert mark["status"] == "unparsable", mark
    assert mark["why"]
    assert len(mark["answer"]) <= 300  # what is kept of it is capped
    assert (
        read[0] is None or probes.grade(_probe("state", "[1]"), read[0])["status"] == "unparsable"
    )
    assert time.perf_counter() - started < 2
    assert not marker.exists()


def test_answers_are_read_by_number_from_the_last_block() -> None:
    text = (
        "Thinking: 1: False\n[ANSWERS]\n1: True\n[/ANSWERS]\nOn reflection:\n"
        "[ANSWERS]\n1: False\n3) [1, 2]\nA4: 'x'\n9: 5\n[/ANSWERS]"
    )
    assert probes.read_answers(text, 4) == ["False", None, "[1, 2]", "'x'"]
    assert probes.read_answers("1: None\n2: 3", 2) == ["None", "3"]  # no tags: the whole text
    assert probes.read_one("So:\n[ANSWER]\n7\n[/ANSWER]") == "7"
    assert probes.read_one("") is None


# -- incremental consistency ------------------------------------------------------------------


def _chain(number: int, coverage: bool, state: bool, path: bool) -> list[dict[str, Any]]:
    def mark(kind: str, right: bool) -> dict[str, Any]:
        return {"kind": kind, "chain": number, "status": "correct" if right else "wrong"}

    return [mark("coverage", coverage), mark("state", state), mark("path", path)]


def _output(right: bool) -> dict[str, Any]:
    return {"kind": "output", "status": "correct" if right else "unparsable"}


@pytest.mark.parametrize(
    ("marks", "prefix", "ic"),
    [
        ([*_chain(0, True, True, True), _output(True)], 1.0, 1.0),
        ([*_chain(0, True, True, False), _output(False)], 0.5, 0.25),  # REval's {1,1,0,0}
        ([*_chain(0, True, True, True), _output(False)], 0.75, 0.5),
        ([*_chain(0, True, False, False), _output(False)], 0.25, 0.125),
        ([*_chain(0, False, True, True), _output(True)], 0.0, 0.0),  # right after wrong
        ([*_chain(0, True, False, True), _output(False)], 0.25, 0.0),  # not consistent
        ([*_chain(0, False, False, False), _output(False)], 0.0, 0.0),
        # Two items share the run's output: (1 + 1/4) / 2 and (1 + 1/8) / 2.
        (
            _chain(0, True, True, True) + _chain(1, True, False, False) + [_output(True)],
            0.625,
            0.5,
        ),
        # Without an output probe the chain is coverage -> state -> path: {1,1,0} is 1/2.
        (_chain(0, True, True, False), 2 / 3, 0.5),
    ],
)
def test_incremental_consistency_on_hand_computed_cases(
    marks: list[dict[str, Any]], prefix: float, ic: float
) -> None:
    found = probes.consistency(marks)
    assert found["prefix"] == pytest.approx(prefix, abs=1e-4)
    assert found["ic"] == pytest.approx(ic, abs=1e-4)
    assert found["items"] == len({m["chain"] for m in marks if "chain" in m})


def test_no_chain_no_consistency() -> None:
    found = probes.consistency([_output(True), {"kind": "coverage", "status": "correct"}])
    assert found == {"items": 0, "prefix": None, "ic": None}


def test_the_verdict_counts_per_kind_and_leaves_unanswerable_probes_out() -> None:
    marks = [
        *_chain(0, True, True, False),
        _output(True),
        {"kind": "coverage", "status": "unknown"},
    ]
    verdict = probes.summary(marks)
    assert verdict["status"] == "wrong"
    assert verdict["scores"]["path"] == {"asked": 1, "correct": 0, "wrong": 1, "unparsable": 0}
    assert verdict["scores"]["coverage"]["asked"] == 1
    assert "3 of 4 probes" in verdict["explanation"]
    assert probes.summary([_output(False)])["status"] == "unparsable"
    assert probes.summary([_output(True)])["status"] == "correct"


def test_the_verdict_regrades_against_the_real_trace_it_is_given() -> None:
    """Judging takes each probe's true answer again from the run's real trace: a program that
    ran differently there (fewer loop turns) leaves the questions it cannot answer ungraded
    (``unknown``, out of the scores) and grades the rest by what it did."""
    source = "def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t\n"
    made = probes.generate(sandbox.run(source, call="f(4)"), source, call="f(4)", seed=3,
                           config=probes.Config(coverage=2, state=6, path=6))  # fmt: skip
    details = {"probes": [p.as_dict() for p in made], "answers": [p.truth for p in made]}
    same = probes.judge(sandbox.run(source, call="f(4)"), details, source=source, call="f(4)")
    assert same["status"] == "correct"
    other = probes.judge(sandbox.run(source, call="f(2)"), details, source=source, call="f(4)")
    statuses = {m["status"] for m in other["probes"]}
    assert "unknown" in statuses  # line 4's 3rd and 4th runs never happen with f(2)
    assert "wrong" in statuses  # the output and the sequence differ
    unknown = [m for m in other["probes"] if m["status"] == "unknown"]
    assert all("truth" not in m and m["why"] for m in unknown)
    asked = sum(row["asked"] for row in other["scores"].values())
    assert asked == len(made) - len(unknown)
    assert (
        probes.judge(sandbox.run(source, call="f(4)"), {}, source=source, call="f(4)")["status"]
        == "unparsable"
    )
