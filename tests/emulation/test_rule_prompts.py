"""Under a semantic rule every method's prompt states it, after the worked examples (which keep
standard Python) and right before the program; without one nothing is added; the method's digest
changes with the rule; Chain of Code runs under a rule, and its LMulator is told it."""

from __future__ import annotations

import pytest

from playground.emulation import coc, input_prediction, output_prediction, probes, prompts, tae
from playground.emulation import trace as trace_method
from playground.emulation.base import Item, Session
from playground.emulation.coc import emulate as coc_emulate
from playground.emulation.registry import method_digest
from playground.llm.registry import ModelSpec
from playground.sandbox.inside.semantics import RULES, UnknownRule
from playground.sandbox.lmulator import LMRequest

SOURCE = "def f(n):\n    return n + 1\n"
RULE = "swap-add-sub"


def _prompts(rule: str) -> dict[str, str]:
    item = Item(kind="program", source=SOURCE, call="f(2)", rule=rule)
    plan = {"pseudocode": "def f(n):\n    return n + 1"}
    asked = [probes.Probe("output", "What does the call return?", "3", None)]
    line = LMRequest(
        line=2, code="return n + 1", func="f", locals={"n": "2"},
        error="NameError: name 'n' is not defined", kind="expression", targets=[],
    )  # fmt: skip
    chats = {
        "direct": output_prediction.messages("direct", SOURCE, "f(2)", rule),
        "cot": output_prediction.messages("cot", SOURCE, "f(2)", rule),
        "input-direct": input_prediction.messages(False, SOURCE, "f", "3", rule),
        "input-cot": input_prediction.messages(True, SOURCE, "f", "3", rule),
        "trace": trace_method.messages(SOURCE, "f(2)", rule),
        "tae-think": tae.think_messages(item),
        "tae-execute": tae.execute_messages(item, plan),
        "probe": probes.all_at_once(item, asked),
        "probe-chain": probes.one_at_a_time(item, asked, 0),
        "coc-lmulator": coc.lmulator_messages(SOURCE, line, rule),
    }
    return {name: chat[-1]["content"] for name, chat in chats.items()}


@pytest.mark.parametrize("name", list(_prompts("")))
def test_every_prompt_states_the_rule_before_the_program(name: str) -> None:
    stated = _prompts(RULE)[name]
    plain = _prompts("")[name]
    text = RULES[RULE].text
    assert text in stated
    assert stated.count("[RULE]") == 1
    program = "[PSEUDOCODE]" if name == "tae-execute" else "[PYTHON]"
    # After every worked example's program, right before the program asked about.
    at = [i for i in range(len(stated)) if stated.startswith(program, i)]
    assert at[-1] > stated.index(text) > (at[-2] if len(at) > 1 else 0)
    assert "[RULE]" not in plain
    assert text not in plain
    assert stated.replace(prompts.rule_note(RULE), "") == plain


def test_the_digest_of_a_method_changes_with_the_rule() -> None:
    digests = {method_digest("direct", rule) for rule in ("", *RULES)}
    assert len(digests) == len(RULES) + 1
    assert method_digest("direct") == method_digest("direct", "")
    with pytest.raises(UnknownRule):
        method_digest("direct", "nope")


def test_chain_of_code_runs_under_a_rule_without_the_model_when_python_runs_every_line() -> None:
    """Every line runs in Python, under the rule: f(2) is 2 - 1 under swap-add-sub, and the
    model (at an address nobody listens on) is never asked."""
    nowhere = ModelSpec(
        name="nowhere", base_url="http://127.0.0.1:9/v1", model="nowhere", label="nowhere"
    )
    session = Session(nowhere)
    item = Item(kind="program", source=SOURCE, call="f(2)", rule=RULE)
    emulation = coc_emulate(item, session)
    assert emulation.problem is None
    assert emulation.prediction == "1"
    assert emulation.trace is not None
    assert emulation.trace["rule"] == RULE
    assert emulation.trace["stats"]["lm_calls"] == 0
    assert session.calls == 0
