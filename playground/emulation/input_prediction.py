"""``input`` and ``input-cot``: given the code and the output, predict an input (CRUXEval-I).

The model sees the program and ``assert f(??) == <output>`` (the benchmark's own prompts,
``prompts.INPUT_*``) and answers with an assertion whose left side is its call. The call is read,
never evaluated here: it must be a call of the program's function (``f`` in CRUXEval) and is then
run for real in the sandbox, traced, like any program; that run is the method's trace. The
verdict (``judging.judge_input``) compares the value the model's call returns with the real
output, by the same ``==`` rule as output prediction.

The output comes from the item when the library knows it (a CRUXEval program run with its own
call: the data set's output), else from a run of the item's call in the sandbox.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from playground.emulation import prompts
from playground.emulation.base import Emulation, Item, Session, block_closed

_ANSWER = re.compile(r"\[ANSWER\](.*?)(?:\[/ANSWER\]|$)", re.DOTALL)
MAX_CALL = 10_000  # characters of the model's call that are run at all


@dataclass(frozen=True)
class Call:
    """The model's call read from its answer, or why there is none."""

    text: str | None
    problem: str | None = None


def function_of(call: str) -> str | None:
    """The name of the function ``call`` calls (``f`` for ``f([1, 2])``), or None when the call
    is not a call of a function by its name."""
    try:
        node = ast.parse(call.strip(), mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id
    return None


def messages(
    cot: bool, source: str, function: str, output: str, rule: str = ""
) -> list[dict[str, str]]:
    """The chat for CRUXEval-I, direct or with its chain of thought (under ``rule``: its note
    just before the question)."""
    question = prompts.rule_note(rule) + prompts.input_question(source, function, output)
    if cot:
        prompt = (
            f"{prompts.INPUT_COT_INSTRUCTIONS}\n\n{prompts.INPUT_COT_EXAMPLE}\n\n{question}\n"
            "[THOUGHT]\n"
        )
    else:
        prompt = (
            f"{prompts.INPUT_DIRECT_INSTRUCTIONS}\n\n{prompts.INPUT_DIRECT_EXAMPLES}\n\n"
            f"{question}\n[ANSWER]\n"
        )
    return [{"role": "user", "content": prompt}]


def extract(text: str, function: str) -> Call:
    """The model's call: the left side of the last ``assert <function>(...) == ...`` in the last
    [ANSWER] block with one (or in the whole text when the tags are missing), or a bare call of
    ``function`` in the block."""
    blocks = [b for b in _ANSWER.findall(text) if b.strip()] or [text]
    for block in reversed(blocks):
        for line in reversed(block.strip().splitlines()):
            line = line.strip().removesuffix("[/ANSWER]").strip()
            at = line.rfind("assert ")  # "So: assert f(1) == 2" reads from the assertion
            call = _call_in(line, function) or (_call_in(line[at:], function) if at > 0 else None)
            if call is not None:
                if len(call) > MAX_CALL:
                    return Call(None, f"The call is longer than {MAX_CALL:,} characters.")
                return Call(call)
    return Call(
        None, f"The answer has no `assert {function}(...) == output` line with a call to read."
    )


def _call_in(line: str, function: str) -> str | None:
    """The call of ``function`` in an assertion (its left side) or alone on the line."""
    try:
        tree = ast.parse(line, mode="exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    if len(tree.body) != 1:
        return None
    node = tree.body[0]
    expr: ast.expr | None = None
    if isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare):
        if len(node.test.ops) == 1 and isinstance(node.test.ops[0], ast.Eq):
            expr = node.test.left
    elif isinstance(node, ast.Expr):
        expr = node.value
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id == function:
        return ast.get_source_segment(line, expr)
    return None


def _readable(function: str) -> Any:
    def accept(block: str) -> bool:
        return any(_call_in(line.strip(), function) for line in block.splitlines())

    return accept


def output_of(item: Item, session: Session) -> tuple[str | None, str]:
    """The output to predict an input for, and where it came from; None (and why) when the
    call has no value to give."""
    if item.output:
        return item.output, "data set"
    real = session.run(
        item.source, call=item.call, stdin=item.stdin, keep_running=True, rule=item.rule
    )
    if real["status"] == "ok" and real.get("result") is not None:
        return str(real["result"]), "sandbox"
    error = real.get("error") or {}
    if real["status"] == "exception":
        why = f"the call raises {error.get('type', 'an exception')}"
    else:
        why = f"the call does not finish ({real['status']})"
    return None, f"There is no output to predict an input for: {why}."


def _emulate(cot: bool, item: Item, session: Session) -> Emulation:
    function = function_of(item.call)
    if function is None:
        return Emulation(
            problem="Input prediction needs a call of a function by its name, such as f(1, 2)."
        )
    output, source = output_of(item, session)
    if output is None:
        return Emulation(problem=source)
    # The direct prompt ends inside an open [ANSWER] block (as CRUXEval's does): the answer is
    # read, and known complete, with that opening tag in front of it.
    opened = "" if cot else "[ANSWER]\n"
    closed = block_closed("[ANSWER]", "[/ANSWER]", _readable(function))
    reply = session.chat(
        messages(cot, item.source, function, output, item.rule),
        done=lambda text: closed(opened + text),
    )
    call = extract(opened + reply.text, function)
    details: dict[str, Any] = {"output": output, "output_from": source}
    if call.text is None:
        return Emulation(problem=call.problem, details=details)
    session.emit("status", text=f"Running the model's call {call.text[:200]} in the sandbox…")
    # The verdict needs the call's value; its first steps are what the page shows.
    trace = session.run(
        item.source, call=call.text, stdin=item.stdin, keep_running=True, rule=item.rule
    )
    return Emulation(trace=trace, prediction=call.text, details=details)


def emulate_direct(item: Item, session: Session) -> Emulation:
    """Ask for an input at once (CRUXEval-I)."""
    return _emulate(False, item, session)


def emulate_cot(item: Item, session: Session) -> Emulation:
    """Think step by step, then give an input (CRUXEval-I CoT)."""
    return _emulate(True, item, session)
