"""Think-and-Execute: one Think per task and model, reused; the printed lines are the trace;
the final answer is judged as BIG-Bench Hard does."""

from __future__ import annotations

from playground.emulation import tae as method
from playground.emulation.base import Item, MemoryPlans, Session
from tests.llm.fake_server import chunk, fake_server, streaming
from tests.oracle import Oracle, oracle_server

QUESTIONS = {
    "not ( True ) and ( True ) is": "False",
    "True and not not ( not False ) is": "True",
    "not True or False or ( False ) is": "False",
}


def _instance(question: str) -> Item:
    others = tuple((q, t) for q, t in QUESTIONS.items() if q != question)
    return Item(
        kind="task",
        task="boolean_expressions",
        question=question,
        target=QUESTIONS[question],
        examples=others,
    )


def test_the_second_instance_reuses_the_plan_one_think_in_total() -> None:
    oracle = Oracle(targets=dict(QUESTIONS))
    plans = MemoryPlans()
    with oracle_server(oracle) as model:
        results = [method.emulate(_instance(q), Session(model, plans=plans)) for q in QUESTIONS]
    assert oracle.seen["think"] == 1
    assert oracle.seen["execute"] == 3
    assert [r.details["plan_reused"] for r in results] == [False, True, True]
    assert all(r.verdict and r.verdict["status"] == "correct" for r in results)
    assert results[1].details["plan"] == results[0].details["plan"]


def test_a_program_is_a_task_whose_instances_are_calls() -> None:
    source = (
        "def f(xs):\n    out = []\n    for x in xs:\n        print(x * 2)\n"
        "        out.append(x)\n    return out"
    )
    oracle = Oracle()
    plans = MemoryPlans()
    with oracle_server(oracle) as model:
        first = method.emulate(
            Item(kind="program", source=source, call="f([1, 2])"), Session(model, plans=plans)
        )
        second = method.emulate(
            Item(kind="program", source=source, call="f([3])"), Session(model, plans=plans)
        )
    assert oracle.seen["think"] == 1
    assert first.prediction == "[1, 2]"
    assert second.prediction == "[3]"
    assert first.trace is not None
    assert [s["stdout"] for s in first.trace["steps"]] == ["2\n", "4\n", "Final answer: [1, 2]\n"]
    assert second.details["plan_reused"]


def test_printed_lines_stream_as_steps_and_a_missing_answer_is_a_parse_error() -> None:
    think = "[ANALYSIS]a[/ANALYSIS][PSEUDOCODE]def solve(x):\n    print(x)[/PSEUDOCODE]"
    answers = iter([think, "step one\nstep two\nno answer here"])

    def script(handler) -> None:  # type: ignore[no-untyped-def]
        streaming([chunk(next(answers), finish="stop"), b"data: [DONE]\n\n"])(handler)

    events: list[tuple[str, dict]] = []
    with fake_server(script) as (model, _):
        session = Session(model, emit=lambda kind, **data: events.append((kind, data)))
        emulation = method.emulate(_instance("not ( True ) and ( True ) is"), session)
    assert emulation.trace is not None
    assert emulation.trace["status"] == "parse_error"
    assert [s["stdout"] for s in emulation.trace["steps"]] == [
        "step one\n",
        "step two\n",
        "no answer here\n",
    ]
    assert [d["step"]["stdout"] for k, d in events if k == "step"][:2] == [
        "step one\n",
        "step two\n",
    ]
    assert emulation.verdict == {
        "status": "unparsable",
        "explanation": "No line starting with 'Final answer:'.",
    }
    assert "── Think ──" in session.transcript
    assert "── Execute ──" in session.transcript


def test_answers_are_normalised_as_the_task_format_allows() -> None:
    assert method.judge_task("(A)", "(A)")["status"] == "correct"
    assert method.judge_task("A", "(A)")["status"] == "correct"
    assert method.judge_task("B.", "(B)")["status"] == "correct"
    assert method.judge_task("true", "True")["status"] == "correct"
    assert method.judge_task("Valid", "valid")["status"] == "correct"
    assert method.judge_task("(B)", "(A)")["status"] == "wrong"
    assert method.judge_task("12", "13")["status"] == "wrong"
    assert method.judge_task(None, "13")["status"] == "unparsable"


SOURCE = (
    "def f(xs):\n    out = []\n    for x in xs:\n        print(x * 2)\n"
    "        out.append(x)\n    return out"
)


def test_a_programs_plan_is_run_for_real_and_its_prints_give_the_path() -> None:
    """The oracle simulates its plan exactly: the path agrees. The plan's pseudocode ran in the
    sandbox on the call (its prints, 2 and 4, are the real ones)."""
    with oracle_server(Oracle()) as model:
        done = method.emulate(Item(kind="program", source=SOURCE, call="f([1, 2])"), Session(model))
    assert done.details["plan_path"]["status"] == "agrees"
    assert done.details["plan_path"]["lines"] == 2


def _scripted(think: str, execute: str):  # type: ignore[no-untyped-def]
    answers = iter([think, execute])

    def script(handler) -> None:  # type: ignore[no-untyped-def]
        streaming([chunk(next(answers), finish="stop"), b"data: [DONE]\n\n"])(handler)

    return fake_server(script)


def test_right_answer_with_wrong_prints_diverges_and_an_uncallable_plan_cannot_tell() -> None:
    plan = f"[ANALYSIS]a[/ANALYSIS][PSEUDOCODE]\n{SOURCE}\n[/PSEUDOCODE]"
    with _scripted(plan, "2\n6\nFinal answer: [1, 2]") as (model, _):
        done = method.emulate(Item(kind="program", source=SOURCE, call="f([1, 2])"), Session(model))
    assert done.prediction == "[1, 2]"  # the right value ...
    found = done.details["plan_path"]
    assert (found["status"], found["at"]) == ("diverges", 1)  # ... printed 6 where it prints 4
    other = "[PSEUDOCODE]\ndef solve(xs):\n    print(len(xs))\n[/PSEUDOCODE]"
    with _scripted(other, "2\nFinal answer: [1, 2]") as (model, _):
        done = method.emulate(Item(kind="program", source=SOURCE, call="f([1, 2])"), Session(model))
    assert done.details["plan_path"]["status"] == "unknown"
    assert "NameError" in done.details["plan_path"]["explanation"]


def test_a_task_has_no_plan_path() -> None:
    with oracle_server(Oracle(targets=dict(QUESTIONS))) as model:
        done = method.emulate(_instance("not ( True ) and ( True ) is"), Session(model))
    assert "plan_path" not in done.details
