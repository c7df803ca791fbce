"""Chain of Code sends the model a window of the source around the line it stands in for, not
the whole program per call (review M7), with the program's own line numbers; anonymous runs may
call the model fewer times than signed-in ones."""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser

from playground import sandbox
from playground.emulation.coc import WINDOW_LINES, lmulator_messages, source_window
from playground.programs.models import Program
from playground.runs.limits import limits_for_run
from playground.runs.models import Run
from playground.runs.services import start_run
from playground.sandbox.lmulator import ANON_LM_CALLS, MAX_LM_CALLS, LMRequest
from tests.factories import UserFactory
from tests.oracle import Oracle, oracle_server


def _request(line: int, code: str, func: str = "<module>") -> LMRequest:
    return LMRequest(
        line=line,
        code=code,
        func=func,
        locals={"w": "'apple'"},
        error="NameError: name 'is_fruit' is not defined",
        kind="expression",
        targets=[],
    )


def _big_program(helpers: int = 64, size: int = 100_000) -> str:
    """About ``size`` bytes: a long module of plain functions, then one that calls ``helpers``
    undefined helpers (each a line Python cannot run)."""
    filler = []
    i = 0
    while sum(len(line) + 1 for line in filler) < size - 4_000:
        filler.append(f"def plain_{i}(x):\n    return x * {i} + {i % 7}\n")
        i += 1
    calls = "".join(f"    total += helper_{k}(total)\n" for k in range(helpers))
    return "".join(filler) + "def main():\n    total = 0\n" + calls + "    return total\n"


def test_the_window_is_the_enclosing_function_numbered_as_in_the_program() -> None:
    source = (
        "import math\n\n\ndef f(words):\n    n = 0\n    for w in words:\n"
        "        if is_fruit(w):\n            n += 1\n    return n\n\n\nprint(f(['a']))\n"
    )
    window = source_window(source, 7)
    assert window.splitlines() == [
        "(lines 4-9 of 12; the rest of the program is not shown)",
        "4| def f(words):",
        "5|     n = 0",
        "6|     for w in words:",
        "7|         if is_fruit(w):",
        "8|             n += 1",
        "9|     return n",
    ]
    # At module level: the lines around it, up to WINDOW_LINES either side (here all 12).
    module = source_window(source, 12).splitlines()
    assert module[0] == " 1| import math"
    assert module[-1] == "12| print(f(['a']))"


def test_a_long_function_and_a_long_line_are_cut() -> None:
    body = "".join(f"    x{i} = helper({i})\n" for i in range(200))
    source = "def g():\n" + body + "    return 0\n"
    window = source_window(source, 101)
    lines = window.splitlines()
    first, last = 101 - WINDOW_LINES, 101 + WINDOW_LINES
    assert lines[0] == f"(lines {first}-{last} of 202; the rest of the program is not shown)"
    assert len(lines) == 2 * WINDOW_LINES + 2
    assert "101|     x99 = helper(99)" in lines
    one_line = "x = [" + "1, " * 40_000 + "]\ny = helper(x)\n"
    cut = source_window(one_line, 2)
    assert len(cut) < 500
    assert "more characters)" in cut
    assert "2| y = helper(x)" in cut


def test_a_100_kb_program_sends_a_few_kb_per_call() -> None:
    """The prompt per model call for a 100 KB program: the whole program before (about 100 KB,
    64 calls: 6.4 MB), a window of a few KB now."""
    source = _big_program()
    assert len(source.encode()) > 95_000
    lines = source.splitlines()
    line = next(i for i, text in enumerate(lines, 1) if "helper_40(" in text)
    prompt = lmulator_messages(source, _request(line, lines[line - 1].strip(), "main"))[0]
    assert len(prompt["content"]) < 4_000, len(prompt["content"])
    assert f"{line}|     total += helper_40(total)" in prompt["content"]
    assert f"Line {line}: `total += helper_40(total)`" in prompt["content"]


def test_verdicts_stay_right_with_the_window(
    db: None,
    eager: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    """Through the task, against a model that answers from what the prompt shows: a large
    program's helper lines are answered from the window and its locals, the value comes out
    right, and every prompt stays small."""
    source = _big_program(helpers=8, size=30_000)

    def knowledge(line: str, variables: dict[str, Any]) -> dict[str, Any]:
        k = int(line.split("helper_")[1].split("(")[0])
        return {"total": int(variables["total"]) + k + 1}

    oracle = Oracle(knowledge=knowledge)
    user = UserFactory()
    with oracle_server(oracle) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        program = Program.objects.create(title="big", source=source, call="main()", owner=user)
        with django_capture_on_commit_callbacks(execute=True):
            run = start_run(
                program=program, user=user, anon_token=None, method="coc", model="oracle"
            )
    run = Run.objects.get(pk=run.pk)
    assert run.status == Run.Status.DONE, run.error
    assert run.model_calls == 8
    assert run.prediction == str(sum(k + 1 for k in range(8)))
    assert oracle.prompt_chars["lmulator"] / 8 < 4_000


def test_anonymous_runs_may_call_the_model_fewer_times() -> None:
    assert limits_for_run({}).lm_calls == MAX_LM_CALLS == 64
    anonymous = limits_for_run({}, anonymous=True)
    assert (anonymous.lm_calls, anonymous.lm_seconds) == (ANON_LM_CALLS, 150.0) == (16, 150.0)
    source = "total = 0\nfor i in range(100):\n    total += helper(i)\nprint(total)\n"
    asked: list[LMRequest] = []

    def lm(request: LMRequest) -> str:
        asked.append(request)
        return repr({"total": ast.literal_eval(request.locals["total"]) + 1})

    trace = sandbox.run(source, lmulator=lm, limits=anonymous)
    assert len(asked) == ANON_LM_CALLS
    assert trace["stats"]["lm_calls"] == ANON_LM_CALLS
    assert "limit of 16 model calls" in trace["error"]["message"]


def test_an_anonymous_chain_of_code_run_stops_at_16_calls_a_signed_in_one_goes_on(
    db: None,
    eager: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    source = (
        "def f():\n    total = 0\n    for i in range(30):\n        total = bump(total)\n"
        "    return total\n"
    )

    def knowledge(line: str, variables: dict[str, Any]) -> dict[str, Any]:
        return {"total": int(variables["total"]) + 1}

    oracle = Oracle(knowledge=knowledge)
    user = UserFactory()
    with oracle_server(oracle) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        program = Program.objects.create(title="bump", source=source, call="f()", is_public=True)
        runs = {}
        for who, requester in (("anonymous", AnonymousUser()), ("user", user)):
            with django_capture_on_commit_callbacks(execute=True):
                runs[who] = start_run(
                    program=program,
                    user=requester,
                    anon_token="anon-caps",
                    method="coc",
                    model="oracle",
                )
    anonymous, signed_in = (Run.objects.get(pk=runs[w].pk) for w in ("anonymous", "user"))
    assert anonymous.model_calls == 16
    assert "limit of 16 model calls" in anonymous.emulated_trace.data["error"]["message"]
    assert signed_in.model_calls == 30
    assert signed_in.prediction == "30"
