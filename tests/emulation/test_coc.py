"""Chain of Code as a method: Python runs what it can, the model (the oracle here) simulates the
lines that call a helper nobody defined; one pass, one model call per such line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playground.emulation import coc as method
from playground.emulation.base import Item, Session
from playground.sandbox.inside.semantics import RULES
from tests.llm.fake_server import chunk, fake_server, streaming
from tests.oracle import Oracle, _rule, oracle_server

FRUITS = {"apple", "pear", "plum"}
PROGRAM = """def count_fruits(words):
    count = 0
    for word in words:
        if is_fruit(word):
            count += 1
    return count
"""
CALL = "count_fruits(['apple', 'chair', 'pear', 'lamp', 'plum'])"


def knowledge(line: str, variables: dict[str, Any]) -> dict[str, Any]:
    assert "is_fruit" in line
    return {"__value__": variables["word"] in FRUITS}


def test_helper_lines_go_to_the_model_and_the_rest_to_python() -> None:
    oracle = Oracle(knowledge=knowledge)
    with oracle_server(oracle) as model:
        session = Session(model)
        emulation = method.emulate(Item(kind="program", source=PROGRAM, call=CALL), session)
    trace = emulation.trace
    assert trace is not None
    assert trace["status"] == "ok"
    assert emulation.prediction == "3"
    by_lm = [s for s in trace["steps"] if s.get("by") == "lm"]
    assert [s["line"] for s in by_lm] == [4, 4, 4, 4, 4]  # one per word: the helper's line
    assert all(s.get("by", "python") == "python" for s in trace["steps"] if s["line"] != 4)
    assert all(s.get("by") == "lm" for s in trace["steps"] if s["line"] == 4 and "event" not in s)
    assert oracle.seen["lmulator"] == 5  # one call per simulated line: no re-runs
    assert session.calls == 5
    assert trace["stats"]["lm_calls"] == 5
    assert len(emulation.details["lm_lines"]) == 5


def test_a_reasoning_task_is_written_as_a_program_then_run() -> None:
    question = "I have a plum, a sofa and two pears. How many fruits do I have?"
    oracle = Oracle(targets={question: "3"})
    item = Item(kind="task", task="object_counting", question=question, target="3")
    with oracle_server(oracle) as model:
        emulation = method.emulate(item, Session(model))
    assert emulation.verdict is not None
    assert emulation.verdict["status"] == "correct"
    assert emulation.prediction == "3"
    assert "look_up_answer" in emulation.details["program"]
    assert oracle.seen["write"] == 1


def test_a_program_that_is_not_python_is_a_parse_error() -> None:
    text = "[PROGRAM]\nfor x in:\n    answer = \n[/PROGRAM]"
    script = streaming([chunk(text, finish="stop"), b"data: [DONE]\n\n"])
    item = Item(kind="task", task="t", question="q?", target="1")
    with fake_server(script) as (model, _):
        emulation = method.emulate(item, Session(model))
    assert emulation.trace is not None
    assert emulation.trace["status"] == "parse_error"
    assert emulation.verdict is not None
    assert emulation.verdict["status"] == "unparsable"
    assert "not valid Python" in emulation.verdict["explanation"]


def test_a_reply_without_a_dict_ends_the_run_as_python_would() -> None:
    script = streaming([chunk("I believe it is a fruit.", finish="stop"), b"data: [DONE]\n\n"])
    with fake_server(script) as (model, seen):
        emulation = method.emulate(Item(kind="program", source=PROGRAM, call=CALL), Session(model))
    assert emulation.trace is not None
    assert emulation.trace["status"] == "exception"
    assert emulation.trace["error"]["type"] == "NameError"
    assert seen["requests"] == 1
    assert emulation.prediction is None
    assert emulation.problem


def test_the_dict_in_a_reply_is_found() -> None:
    assert method.dict_literal("Sure! {'count': 2}") == "{'count': 2}"
    assert method.dict_literal("{'a': {'b': 1}} and then") == "{'a': {'b': 1}}"
    assert method.dict_literal("no dict") is None
    assert method.read_program("```python\nx = 1\n```") == "x = 1"
    assert method.read_program("[PROGRAM]\nanswer = 2\n[/PROGRAM]") == "answer = 2"


# Under swap-add-sub: line 4 calls a helper nobody defined, so the model stands in for it, and
# its `+` is the rule's; line 5 Python runs, under the rule (`total - 1` adds).
WEIGHED = """def f(words):
    total = 10
    for word in words:
        total += weight_of(word) + 1
    return total - 1
"""


@dataclass
class _Listening(Oracle):
    """The oracle, keeping every prompt: its LMulator answers under the rule the prompt states
    (and Python's semantics when it states none), as a model that read the prompt would."""

    prompts: list[str] = field(default_factory=list)

    def answer(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return super().answer(prompt)


def _weigh(oracle: _Listening) -> Any:
    def knowledge(line: str, variables: dict[str, Any]) -> dict[str, Any]:
        assert "weight_of" in line
        weight, total = len(variables["word"]), variables["total"]
        if _rule(oracle.prompts[-1]) == "swap-add-sub":  # a + b is a - b: total - (w - 1)
            return {"total": total - (weight - 1)}
        return {"total": total + weight + 1}

    return knowledge


def test_under_a_rule_python_and_the_model_both_follow_it() -> None:
    rule = "swap-add-sub"
    oracle = _Listening()
    oracle.knowledge = _weigh(oracle)
    item = Item(kind="program", source=WEIGHED, call="f(['fig', 'pear'])", rule=rule)
    with oracle_server(oracle) as model:
        session = Session(model)
        emulation = method.emulate(item, session)
    trace = emulation.trace
    assert trace is not None
    assert trace["status"] == "ok", trace["error"]
    assert trace["rule"] == rule
    # 10 - (3 - 1) = 8, 8 - (4 - 1) = 5 by the model; 5 - 1 is 6 by Python under the rule
    # (Python's own semantics: 10 + 4 + 5 = 19, then 18).
    assert emulation.prediction == "6"
    assert [s["line"] for s in trace["steps"] if s.get("by") == "lm"] == [4, 4]
    assert oracle.seen["lmulator"] == session.calls == 2
    for prompt in oracle.prompts:  # each emulated line's prompt states the rule, once, after
        # the (standard Python) example and before the program
        assert prompt.count("[RULE]") == 1
        assert RULES[rule].text in prompt
        assert prompt.index(method.LMULATOR_EXAMPLE) < prompt.index("[RULE]")
        assert prompt.index("[/RULE]") < prompt.index("[PYTHON]")
    # The same program without the rule: no [RULE] block, Python's own sums.
    plain = _Listening()
    plain.knowledge = _weigh(plain)
    with oracle_server(plain) as model:
        standard = method.emulate(Item(kind="program", source=WEIGHED, call="f(['fig', 'pear'])"),
                                  Session(model))  # fmt: skip
    assert standard.prediction == "18"
    assert not any("[RULE]" in prompt for prompt in plain.prompts)
