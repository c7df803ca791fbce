"""Chain of Code mode: the program runs once in the real sandbox; a line Python cannot run goes to
the lmulator (here a plain function: exactly what the parent calls) and execution continues."""

from __future__ import annotations

import ast
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from playground import sandbox
from playground.sandbox.lmulator import (
    MAX_LM_CALLS,
    MAX_REPLY_CHARS,
    LMRequest,
    LMulatorError,
    ReplyInvalid,
    parse_reply,
)
from playground.sandbox.warm_pool import pool

FRUITS = {"apple", "pear", "banana", "fig"}

COUNT_FRUITS = """def count_fruits(words):
    count = 0
    for w in words:
        if is_fruit(w):
            count += 1
    return count
"""


class Recorder:
    """An lmulator that answers from a function and records every request."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.requests: list[LMRequest] = []
        self.lock = threading.Lock()

    def __call__(self, request: LMRequest) -> str:
        with self.lock:
            self.requests.append(request)
        return str(self.answer(request))


def _python_steps(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in trace["steps"] if s.get("by", "python") == "python"]


def test_fruit_counting_asks_the_model_once_per_failing_line() -> None:
    def is_fruit(request: LMRequest) -> str:
        assert request.kind == "expression"
        return repr({"__value__": ast.literal_eval(request.locals["w"]) in FRUITS})

    lm = Recorder(is_fruit)
    trace = sandbox.run(COUNT_FRUITS, call="count_fruits(['apple', 'chair', 'pear'])", lmulator=lm)
    assert trace["status"] == "ok", trace["error"]
    assert trace["result"] == "2"
    assert (trace["source"], trace["method"]) == ("emulated", "coc")
    assert trace["stats"]["lm_calls"] == 3
    assert len(lm.requests) == 3  # once per failing line execution: nothing is re-run
    first = lm.requests[0]
    assert (first.line, first.code, first.func) == (4, "if is_fruit(w):", "count_fruits")
    assert first.error == "NameError: name 'is_fruit' is not defined"
    assert first.locals == {"words": "['apple', 'chair', 'pear']", "count": "0", "w": "'apple'"}
    assert [r.locals["w"] for r in lm.requests] == ["'apple'", "'chair'", "'pear'"]
    by_lm = [s for s in trace["steps"] if s.get("by") == "lm"]
    assert [(s["line"], s.get("event", "line")) for s in by_lm] == [(4, "line")] * 3
    assert all(s["line"] != 4 for s in _python_steps(trace) if s["func"] == "count_fruits")
    # The model handled the NameError: no exception step is left in count_fruits.
    assert not [s for s in trace["steps"] if s.get("event") == "exception"]
    counts = [s["locals"]["count"] for s in trace["steps"] if "count" in s.get("locals", {})]
    assert counts == ["0", "1", "2"]
    assert [s["i"] for s in trace["steps"]] == list(range(len(trace["steps"])))
    assert trace["stats"]["steps"] == len(trace["steps"])
    # Plain mode fails on the same program.
    assert sandbox.run(COUNT_FRUITS, call="count_fruits(['apple'])")["status"] == "exception"


def test_a_statement_at_module_level_and_in_a_function() -> None:
    lm = Recorder(lambda r: "{'answer': True}")
    source = "s = 'Oh great, another Monday'\nanswer = is_sarcastic(s)\nprint(answer)\n"
    trace = sandbox.run(source, lmulator=lm)
    assert trace["status"] == "ok", trace["error"]
    assert trace["stdout"] == "True\n"
    (request,) = lm.requests
    assert (request.kind, request.targets, request.code) == (
        "statement",
        ["answer"],
        "answer = is_sarcastic(s)",
    )
    index = next(i for i, s in enumerate(trace["steps"]) if s.get("by") == "lm")
    assert trace["steps"][index]["line"] == 2
    assert trace["steps"][index + 1]["locals"] == {"answer": "True"}
    assert trace["steps"][index + 1]["line"] == 3

    source = "def f(x):\n    label = classify(x)\n    return label\n"
    lm = Recorder(lambda r: repr({"label": "positive", "x": r.locals["x"] + "!"}))
    trace = sandbox.run(source, call="f('I love it')", lmulator=lm)
    assert trace["status"] == "ok", trace["error"]
    assert trace["result"] == "'positive'"
    assert lm.requests[0].targets == ["label"]
    after = trace["steps"][[s.get("by") for s in trace["steps"]].index("lm") + 1]
    assert after["locals"] == {"x": "\"'I love it'!\"", "label": "'positive'"}


def test_statements_on_several_lines_and_values_of_returns() -> None:
    source = (
        "def f(a, b):\n"
        "    merged = combine(\n"
        "        a,\n"
        "        b)\n"
        "    return summarize(merged)\n"
    )
    lm = Recorder(lambda r: "{'merged': [1, 2]}" if r.kind == "statement" else "{'__value__': 3}")
    trace = sandbox.run(source, call="f([1], [2])", lmulator=lm)
    assert trace["status"] == "ok", trace["error"]
    assert trace["result"] == "3"
    assert [r.code for r in lm.requests] == [
        "merged = combine(\n    a,\n    b)",
        "return summarize(merged)",
    ]
    assert [r.kind for r in lm.requests] == ["statement", "expression"]
    assert not any(k.startswith("__coc") for s in trace["steps"] for k in s.get("locals", {}))


def test_the_programs_own_handlers_still_catch_what_they_name() -> None:
    source = (
        "def parse(s):\n"
        "    return int(s)\n"
        "def f(items):\n"
        "    out = []\n"
        "    for s in items:\n"
        "        try:\n"
        "            out.append(parse(s))\n"
        "        except ValueError:\n"
        "            out.append(-1)\n"
        "        try:\n"
        "            out.append(weight(s))\n"
        "        except KeyError:\n"
        "            pass\n"
        "    return out\n"
    )
    lm = Recorder(lambda r: "{}")
    trace = sandbox.run(source, call="f(['1', 'x'])", lmulator=lm)
    assert trace["status"] == "ok", trace["error"]
    # int('x') raised ValueError, which the program catches: Python's semantics, no model call.
    # weight() is undefined (NameError), which `except KeyError` does not catch: the model.
    assert [r.code for r in lm.requests] == ["out.append(weight(s))"] * 2
    assert trace["result"] == "[1, -1]"


def test_a_failure_the_model_cannot_answer_propagates_without_asking_again() -> None:
    source = "def g(x):\n    return undefined(x)\ndef f(x):\n    y = g(x)\n    return y\n"
    lm = Recorder(lambda r: "I think it is 4")
    trace = sandbox.run(source, call="f(2)", lmulator=lm)
    assert trace["status"] == "exception"
    assert len(lm.requests) == 1  # not again for `y = g(x)`, which only passes the error on
    assert trace["error"]["type"] == "NameError"
    assert trace["error"]["line"] == 2
    why = "the model's answer was not a dict literal: 'I think it is 4'"
    assert why in trace["error"]["message"]
    # As in plain mode, the exception steps stay when the model's answer was not used.
    plain = sandbox.run(source, call="f(2)")
    assert trace["steps"] == plain["steps"]


MARK = Path("/tmp") / f"pwned-coc-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("not a dict", "was not a dict literal"),
        ("[1, 2]", "was not a dict literal"),
        ("__import__('os').system('id')", "was not a dict literal"),
        (f"__import__('os').system('touch {MARK}')", "was not a dict literal"),
        ("{'x': open('/etc/passwd').read()}", "was not a dict literal"),
        ("{'answer': " + repr("x" * 1_000_000) + "}", "the limit is 20,000"),
        ("{'not a name': 1}", "key that is not a name"),
        ("{1: 2}", "key that is not a name"),
        ("{'__builtins__': {}}", "reserved name"),
        ("{'answer': 1e999}", "cannot be written back"),
        ("{" + ", ".join(f"'v{i}': {i}" for i in range(51)) + "}", "51 entries"),
    ],
    ids=lambda v: v[:30],
)
def test_an_invalid_reply_ends_the_run_as_in_python(reply: str, why: str) -> None:
    trace = sandbox.run("answer = is_sarcastic('x')\n", lmulator=lambda r: reply)
    assert trace["status"] == "exception"
    assert trace["error"]["type"] == "NameError"
    assert trace["error"]["message"].startswith("name 'is_sarcastic' is not defined (")
    assert why in trace["error"]["message"]
    assert trace["stats"]["lm_calls"] == 1
    assert not [s for s in trace["steps"] if s.get("by") == "lm"]
    assert not MARK.exists()  # the parent never evaluates the reply


def test_an_lmulator_error_is_explained() -> None:
    def unavailable(request: LMRequest) -> str:
        raise LMulatorError("the model server is down")

    trace = sandbox.run("answer = is_sarcastic('x')\n", lmulator=unavailable)
    assert trace["status"] == "exception"
    assert trace["error"]["message"] == (
        "name 'is_sarcastic' is not defined (the model could not answer: the model server is down)"
    )


def test_the_reply_checks_directly() -> None:
    assert parse_reply(" {'a': [1, (2, 3)], 'b': {'k': None}} ", "statement") == {
        "a": [1, (2, 3)],
        "b": {"k": None},
    }
    assert parse_reply("{'__value__': set()}", "expression") == {"__value__": set()}
    with pytest.raises(ReplyInvalid, match="no '__value__'"):
        parse_reply("{'x': 1}", "expression")
    with pytest.raises(ReplyInvalid, match="not text"):
        parse_reply(None, "statement")
    with pytest.raises(ReplyInvalid, match="not a name"):
        parse_reply("{'class': 1}", "statement")
    with pytest.raises(ReplyInvalid, match="limit is 20,000"):
        parse_reply("{'a': '" + "x" * MAX_REPLY_CHARS + "'}", "statement")
    with pytest.raises(ReplyInvalid, match="not a dict literal"):
        parse_reply("[" * 300 + "]" * 300, "statement")


def test_more_failing_lines_than_the_limit() -> None:
    source = "total = 0\nfor i in range(100):\n    total += helper(i)\nprint(total)\n"
    lm = Recorder(lambda r: repr({"total": ast.literal_eval(r.locals["total"]) + 1}))
    trace = sandbox.run(source, lmulator=lm)
    assert len(lm.requests) == MAX_LM_CALLS
    assert trace["stats"]["lm_calls"] == MAX_LM_CALLS
    assert trace["status"] == "exception"
    assert trace["error"]["type"] == "NameError"
    assert f"limit of {MAX_LM_CALLS} model calls" in trace["error"]["message"]
    assert len([s for s in trace["steps"] if s.get("by") == "lm"]) == MAX_LM_CALLS
    totals = [s["locals"]["total"] for s in trace["steps"] if "total" in s.get("locals", {})]
    assert totals[-1] == str(MAX_LM_CALLS)


def test_the_models_time_does_not_count_against_the_wall_clock() -> None:
    def slow(request: LMRequest) -> str:
        time.sleep(1.5)
        return "{'__value__': True}"

    source = "n = 0\nfor w in ['a', 'b', 'c']:\n    if is_fruit(w):\n        n += 1\nprint(n)\n"
    t0 = time.monotonic()
    trace = sandbox.run(source, limits=sandbox.Limits(wall_s=2), lmulator=slow)
    assert trace["status"] == "ok", trace["error"]
    assert trace["stdout"] == "3\n"
    assert trace["stats"]["lm_calls"] == 3
    assert time.monotonic() - t0 >= 4.5
    # ...but the program's own time still does.
    trace = sandbox.run(
        "import time\nx = is_fruit('a')\ntime.sleep(5)\n",
        limits=sandbox.Limits(wall_s=1),
        lmulator=lambda r: "{'x': True}",
    )
    assert trace["status"] == "time_limit"


def test_unsafe_local_mode_runs_coc_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_SANDBOX", "unsafe-local")
    pool.drain()
    lm = Recorder(lambda r: repr({"__value__": ast.literal_eval(r.locals["w"]) in FRUITS}))
    trace = sandbox.run(COUNT_FRUITS, call="count_fruits(['fig', 'sofa'])", lmulator=lm)
    assert trace["status"] == "ok", trace["error"]
    assert trace["result"] == "1"
    assert len(lm.requests) == 2
    pool.drain()


def _never(request: LMRequest) -> str:
    raise AssertionError(f"the model was asked about line {request.line}: {request.error}")


def _fidelity(item: dict[str, Any], plain: dict[str, Any]) -> str | None:
    coc = sandbox.run(item["code"], call=f"f({item['input']})", lmulator=_never)
    for key in ("status", "result", "stdout", "error", "steps"):
        if plain[key] != coc[key]:
            return f"{item['id']}: {key} differs: {plain[key]!r:.300} != {coc[key]!r:.300}"
    if coc["stats"]["lm_calls"] != 0:
        return f"{item['id']}: the model was asked"
    return None


def test_fidelity_a_program_with_no_failing_line_traces_as_in_plain_mode(
    cruxeval_items: list[dict[str, Any]],
    cruxeval_plain_traces: dict[str, dict[str, Any]],
    full: bool,
) -> None:
    """CRUXEval programs: the coc trace is the plain trace (tests/sandbox/conftest.py runs those
    once for this test and test_cruxeval.py), step for step. All 800 under `make test-full`; a
    fixed sample of 200 (every fourth) under `make test`, where a run of all 800 took 50 s."""
    assert len(cruxeval_items) == 800
    items = cruxeval_items if full else cruxeval_items[::4]
    plain = [cruxeval_plain_traces[item["id"]] for item in items]
    with ThreadPoolExecutor(max_workers=2) as workers:
        failures = [f for f in workers.map(_fidelity, items, plain) if f]
    assert failures == []


# --- under a semantic rule (issue 21): the rule's rewrite, then Chain of Code's ----------------


def test_under_a_rule_the_lines_python_runs_follow_it() -> None:
    trace = sandbox.run("def f(n):\n    return n + 1\n", call="f(3)", rule="swap-add-sub",
                        lmulator=_never)  # fmt: skip
    assert trace["status"] == "ok", trace["error"]
    assert trace["result"] == "2"  # 3 - 1
    assert (trace["source"], trace["method"], trace["rule"]) == ("emulated", "coc", "swap-add-sub")
    assert trace["stats"]["lm_calls"] == 0


INDEXED = """def f(xs):
    first = xs[1]
    xs[1] = label(first)
    xs[2] += 1
    return xs, xs[0]
"""


def test_under_a_rule_a_failing_line_is_simulated_and_the_rest_runs_under_it() -> None:
    """index-from-one: Python reads xs[1] as the first item; the helper's line goes to the
    model, which names what the line assigns (xs, through the rule's wrapper); xs[0] raises
    under the rule, so the model gives the returned value too; the rule's helpers never show."""

    def answer(request: LMRequest) -> str:
        if request.line == 3:
            return repr({"xs": ["A", 5]})
        return repr({"__value__": (["A", 6], "none")})

    lm = Recorder(answer)
    trace = sandbox.run(INDEXED, call="f(['a', 5])", rule="index-from-one", lmulator=lm)
    assert trace["status"] == "ok", trace["error"]
    assert trace["result"] == "(['A', 6], 'none')"
    label, zero = lm.requests
    assert (label.line, label.kind, label.targets) == (3, "statement", ["xs"])
    assert label.error == "NameError: name 'label' is not defined"
    assert label.locals == {"xs": "['a', 5]", "first": "'a'"}  # xs[1] is 'a' under the rule
    assert (zero.line, zero.kind) == (5, "expression")
    assert zero.error == "IndexError: index 0 is out of range: indexing starts at 1"
    assert zero.locals == {"xs": "['A', 6]", "first": "'a'"}  # xs[2] += 1 ran under it
    shown = {name for step in trace["steps"] for name in step.get("locals", {})}
    assert not [name for name in shown if name.startswith(("__sem", "__coc"))]


def test_under_a_rule_module_level_lines_and_the_helpers_in_the_namespace() -> None:
    source = "a = 1 + 2\nb = mystery(a) - 1\nc = [b] * 2\nprint(a, b, c[1] + 0)\n"
    lm = Recorder(lambda r: repr({"b": 10}))
    trace = sandbox.run(source, rule="swap-add-sub", lmulator=lm)
    assert trace["status"] == "ok", trace["error"]
    assert trace["stdout"] == "-1 10 10\n"  # 1 - 2; the model's b; c[1] - 0
    [asked] = lm.requests
    assert (asked.line, asked.targets, asked.locals) == (2, ["b"], {"a": "-1"})
    module = [step["locals"] for step in trace["steps"] if step.get("locals")]
    assert not [n for changes in module for n in changes if n.startswith(("__sem", "__coc"))]


def _fidelity_under(job: tuple[dict[str, Any], str]) -> str | None:
    item, rule = job
    call = f"f({item['input']})"
    real = sandbox.run(item["code"], call=call, rule=rule)
    if real["status"] in ("exception", "time_limit"):  # a raise goes to the model in coc mode
        return None
    coc = sandbox.run(item["code"], call=call, rule=rule, lmulator=_never)
    for key in ("status", "result", "stdout", "error", "steps", "rule"):
        if real[key] != coc[key]:
            return f"{item['id']} {rule}: {key} differs: {real[key]!r:.300} != {coc[key]!r:.300}"
    return None


def test_fidelity_under_every_rule_a_program_with_no_failing_line_traces_as_its_real_run(
    cruxeval_items: list[dict[str, Any]], full: bool
) -> None:
    """CRUXEval programs under each rule offered for them: where no line raises under the rule,
    the Chain of Code trace is the real run's under the rule, step for step. All 800 programs
    under `make test-full`; every tenth under `make test` (about 12 s)."""
    items = cruxeval_items if full else cruxeval_items[::10]
    jobs = [(item, rule.name) for item in items for rule in sandbox.offered(item["code"])]
    assert len(jobs) > (1000 if full else 150)
    with ThreadPoolExecutor(max_workers=2) as workers:
        failures = [f for f in workers.map(_fidelity_under, jobs) if f]
    assert failures == []


def test_hostile_forged_requests() -> None:
    lm = Recorder(lambda r: "{'x': 1}")
    garbage = (
        "import json, os\n"
        "request = {'line': 10**9, 'kind': 'statement', 'func': 'x' * 100_000}\n"
        "os.write(3, (json.dumps({'lm': request}) + '\\n').encode())\n"
        "print('after')\n"
    )
    trace = sandbox.run(garbage, lmulator=lm)
    assert trace["status"] == "crash"
    assert trace["error"]["type"] == "TraceInvalid"
    assert lm.requests == []

    wrong_types = (
        'import os\nos.write(3, b\'{"lm": {"line": 1, "kind": "statement", "locals": [1]}}\\n\')\n'
    )
    assert sandbox.run(wrong_types, lmulator=lm)["status"] == "crash"
    assert lm.requests == []

    # A well-formed forgery: the parent asks the model about the program's own first line (which
    # is all a forgery can get), from our copy of the program, and the answer goes unread.
    request = (
        "request = {'line': 1, 'kind': 'statement', 'func': 'f', 'locals': {'a': '1'},"
        " 'error': 'E: e', 'targets': [], 'step': -1}\n"
    )
    one = (
        "import json, os\n"
        + request
        + "os.write(3, (json.dumps({'lm': request}) + '\\n').encode())\n"
        "print('after')\n"
    )
    lm = Recorder(lambda r: "{'x': 1}")
    trace = sandbox.run(one, lmulator=lm)
    assert [r.code for r in lm.requests] == ["import json, os"]
    assert trace["stdout"] == "after\n"

    # A flood stops at the limit. How many are answered before the run is declared invalid
    # depends on how the pipe chunks the lines (all 200 in one read: none), never more than the
    # limit, and it takes no longer than the limit allows.
    flood = (
        "import json, os\n" + request + "for _ in range(200):\n"
        "    os.write(3, (json.dumps({'lm': request}) + '\\n').encode())\n"
        "print('done')\n"
    )
    lm = Recorder(lambda r: "{'x': '" + "y" * 19_000 + "'}")
    t0 = time.monotonic()
    trace = sandbox.run(flood, lmulator=lm)
    assert time.monotonic() - t0 < 10
    assert trace["status"] == "crash"
    assert trace["error"]["type"] == "TraceInvalid"
    assert len(lm.requests) <= MAX_LM_CALLS
    assert {r.code for r in lm.requests} <= {"import json, os"}


def test_hostile_reading_the_reply_pipe() -> None:
    limits = sandbox.Limits(wall_s=1)
    # Descriptor 0 is closed, as in plain mode.
    trace = sandbox.run("import os\nos.read(0, 10)\n", limits=limits, lmulator=_never)
    assert trace["status"] == "exception"
    assert trace["error"]["type"] == "OSError"
    # The reply pipe itself: reading it blocks until the wall clock ends the run.
    reader = (
        "import os, stat\n"
        "for fd in range(3, 20):\n"
        "    try:\n"
        "        if stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
        "            os.read(fd, 10)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    t0 = time.monotonic()
    trace = sandbox.run(reader, limits=limits, lmulator=_never)
    assert trace["status"] == "time_limit"
    assert time.monotonic() - t0 < limits.wall_s + 1
    # Closing it: the next failing line cannot be asked about and fails as in Python.
    closer = (
        "import os, stat\n"
        "for fd in range(4, 20):\n"
        "    try:\n"
        "        if stat.S_ISFIFO(os.fstat(fd).st_mode):\n"
        "            os.close(fd)\n"
        "    except OSError:\n"
        "        pass\n"
        "x = undefined()\n"
    )
    lm = Recorder(lambda r: "{}")
    trace = sandbox.run(closer, limits=limits, lmulator=lm)
    assert trace["status"] == "exception"
    assert "lost its channel to the model" in trace["error"]["message"]
