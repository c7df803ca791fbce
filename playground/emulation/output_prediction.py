"""``direct`` and ``cot``: predict the value of the call (CRUXEval-O), compared by value."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from playground.emulation import prompts
from playground.emulation.base import Emulation, Item, Session, block_closed
from playground.emulation.literals import NotALiteral, parse_literal, repeats_input, same_value

_ANSWER = re.compile(r"\[ANSWER\](.*?)(?:\[/ANSWER\]|$)", re.DOTALL)


@dataclass(frozen=True)
class Prediction:
    """What was read from the model's text: the predicted literal, or why there is none."""

    text: str | None
    problem: str | None = None


@dataclass(frozen=True)
class Verdict:
    status: str  # correct | wrong | unparsable | unknown
    explanation: str
    leakage: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "explanation": self.explanation, "leakage": self.leakage}


def messages(method: str, source: str, call: str, rule: str = "") -> list[dict[str, str]]:
    """The chat for ``direct`` or ``cot`` on this program and call (under ``rule``: its note
    just before the question)."""
    if method == "cot":
        instructions, example = prompts.COT_INSTRUCTIONS, prompts.COT_EXAMPLE
    else:
        instructions, example = prompts.DIRECT_INSTRUCTIONS, prompts.DIRECT_EXAMPLE
    question = prompts.question(source, call)
    prompt = f"{instructions}\n\n{example}\n\n{prompts.rule_note(rule)}{question}"
    if method == "cot":
        prompt += "\n[THOUGHT]\n"
    return [{"role": "user", "content": prompt}]


def extract(text: str, call: str) -> Prediction:
    """The predicted output from the model's answer: the right-hand side of ``assert CALL ==`` in
    the last [ANSWER] block (or in the whole text when the model forgot the tags)."""
    blocks = _ANSWER.findall(text)
    candidates = [b for b in blocks if b.strip()] or [text]
    answer = candidates[-1].strip()
    for line in reversed(answer.splitlines()):
        line = line.strip().removesuffix("[/ANSWER]").strip()
        if not line.startswith("assert"):
            continue
        try:
            node = ast.parse(line, mode="exec").body[0]
        except (SyntaxError, IndexError, ValueError):
            continue
        if (
            isinstance(node, ast.Assert)
            and isinstance(node.test, ast.Compare)
            and len(node.test.ops) == 1
            and isinstance(node.test.ops[0], ast.Eq)
        ):
            rhs = ast.get_source_segment(line, node.test.comparators[0])
            if rhs is not None:
                return Prediction(rhs.strip())
    if blocks and "assert" not in answer and answer:
        return Prediction(answer.splitlines()[0].strip())  # a bare literal in the tags
    return Prediction(None, "The answer has no `assert f(...) == value` line to read.")


def judge(prediction: Prediction, real_result: str | None, call: str) -> Verdict:
    """Compare by value (``1 == 1.0`` holds, ``[1] != (1,)``); never evaluates model text."""
    if prediction.text is None:
        return Verdict("unparsable", prediction.problem or "No prediction.")
    try:
        predicted = parse_literal(prediction.text)
    except NotALiteral as exc:
        return Verdict("unparsable", f"The prediction is not a literal: {exc}.")
    leakage = repeats_input(prediction.text, call)
    if real_result is None:
        return Verdict("unknown", "The real run produced no value to compare with.", leakage)
    try:
        actual = parse_literal(real_result)
    except NotALiteral:
        return Verdict(
            "unknown",
            f"The real result {real_result[:80]} cannot be compared as a literal.",
            leakage,
        )
    if same_value(predicted, actual):
        return Verdict(
            "correct", f"Predicted {prediction.text}, and the call returns {real_result}.", leakage
        )
    return Verdict(
        "wrong", f"Predicted {prediction.text}, but the call returns {real_result}.", leakage
    )


def _readable(block: str) -> bool:
    """Whether an [ANSWER] block holds an assertion or a literal (not echoed instructions)."""
    if any(line.strip().startswith("assert") for line in block.splitlines()):
        return True
    try:
        parse_literal(block.strip())
    except NotALiteral:
        return False
    return True


def _emulate(method: str, item: Item, session: Session) -> Emulation:
    # The answer is complete once an [ANSWER] block with something readable in it closes.
    reply = session.chat(
        messages(method, item.source, item.call, item.rule),
        done=block_closed("[ANSWER]", "[/ANSWER]", _readable),
    )
    prediction = extract(reply.text, item.call)
    return Emulation(prediction=prediction.text, problem=prediction.problem)


def emulate_direct(item: Item, session: Session) -> Emulation:
    """Ask for the value of the call at once."""
    return _emulate("direct", item, session)


def emulate_cot(item: Item, session: Session) -> Emulation:
    """Ask the model to reason step by step first (the text streams), then for the value."""
    return _emulate("cot", item, session)
