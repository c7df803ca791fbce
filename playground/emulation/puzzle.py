"""``puzzle``: the model proposes an answer to a P3 puzzle; the sandbox runs ``sat(answer)``.

The answer is read as a literal (``ast.literal_eval``), checked against the puzzle's answer type
and written back with ``repr`` into the call, so an answer can never be code and cannot forge the
verdict: only ``sat`` returning exactly ``True`` in the sandbox counts. Up to ``ATTEMPTS`` tries,
each told why the previous one failed. ``check_sat`` is that judge, and the only one: the
classroom's puzzle items grade a student's answer with it, and a P3 evaluation scores from the
verdict of this method's run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playground.emulation.base import Emulation, Item, Session, block_closed
from playground.emulation.literals import NotALiteral, literal_source, parse_literal

ATTEMPTS = 3
PRELUDE = "from typing import List, Dict, Set, Tuple, Optional\n"
_ANSWER = re.compile(r"\[ANSWER\](.*?)(?:\[/ANSWER\]|$)", re.DOTALL)

INSTRUCTIONS = (
    "You are given a Python function sat. Find an input x for which sat(x) returns True. "
    "Reason briefly if you need to, then give x as a Python literal of type {ans_type} (no "
    "expressions, no function calls, no comprehensions) between [ANSWER] and [/ANSWER]."
)
EXAMPLE = (
    "[PYTHON]\ndef sat(s: str):\n    return s.count('a') == 2 and len(s) == 3\n[/PYTHON]\n"
    "Two 'a's and one other character.\n[ANSWER]\n'aab'\n[/ANSWER]"
)


def messages(item: Item) -> list[dict[str, str]]:
    description = f"\n{item.description}" if item.description else ""
    prompt = (
        f"{INSTRUCTIONS.format(ans_type=item.ans_type or 'any')}\n\n{EXAMPLE}\n\n"
        f"[PYTHON]\n{item.source.rstrip()}\n[/PYTHON]{description}\n"
    )
    return [{"role": "user", "content": prompt}]


def extract(text: str) -> str | None:
    """The answer's text: the last non-empty [ANSWER] block, or None."""
    blocks = [b.strip() for b in _ANSWER.findall(text) if b.strip()]
    return blocks[-1] if blocks else None


_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "List": (list,),
    "list": (list,),
    "Dict": (dict,),
    "Set": (set,),
    "Tuple": (tuple,),
}


def type_problem(value: Any, ans_type: str) -> str | None:
    """Why ``value`` is not of the puzzle's answer type (checked one level into containers)."""
    try:
        node = ast.parse(ans_type.strip() or "object", mode="eval").body
    except SyntaxError:
        return None
    return _check(value, node)


def _check(value: Any, node: ast.expr) -> str | None:
    name = (
        node.value.id
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
        else (node.id if isinstance(node, ast.Name) else None)
    )
    allowed = _TYPES.get(name or "")
    if allowed is None:
        return None  # a type we do not check
    if isinstance(value, bool) and bool not in allowed:
        return f"expected {name}, got a bool"
    if not isinstance(value, allowed):
        return f"expected {name}, got {type(value).__name__}"
    if isinstance(node, ast.Subscript) and isinstance(value, list | set):
        for element in list(value)[:1000]:
            problem = _check(element, node.slice)
            if problem:
                return f"an element: {problem}"
    return None


@dataclass(frozen=True)
class SatCheck:
    """What ``check_sat`` found: whether the puzzle is solved, why (one sentence, shown to the
    person or the model that answered), the call it ran and the sandbox's trace of it (both
    empty when the answer was refused before running)."""

    solved: bool
    why: str
    call: str = ""
    trace: dict[str, Any] | None = None


# Runs ``source`` with ``call`` in the sandbox and returns its trace; each caller brings its own
# (the method its session, with the run's limits; the classroom the sandbox with default ones).
SatRunner = Callable[[str, str], dict[str, Any]]


def check_sat(sat: str, value: Any, *, ans_type: str, run: SatRunner) -> SatCheck:
    """Judge an answer to a P3 puzzle: solved only when ``sat(answer)`` returns exactly ``True``
    in the sandbox. ``value`` is the answer already read as a literal (``parse_literal``); it is
    written back into the call with ``literal_source``, so it can never be code. Not solved:

    - an answer not of the puzzle's answer type (``type_problem``), which is not run at all;
    - a result other than ``True``: ``False``, ``None``, and truthy values such as ``1`` or a
      non-empty list alike (P3 asks for ``True``, and the sandbox's result is its repr);
    - an exception raised by ``sat`` (its type and message are the reason);
    - a run that does not finish: the time, memory, step or output limit.
    """
    problem = type_problem(value, ans_type)
    if problem:
        return SatCheck(False, f"The answer has the wrong type: {problem}.")
    call = f"sat({literal_source(value)})"
    trace = run(PRELUDE + sat, call)
    status, result = trace["status"], trace.get("result")
    if status == "ok" and result == "True":
        return SatCheck(True, "sat(answer) returns True.", call, trace)
    if status == "ok":
        why = f"sat(answer) returned {result}, not True."
    elif trace.get("error"):
        err = trace["error"]
        why = f"sat(answer) raised {err['type']}: {err['message'][:200]}"
    else:
        why = f"sat(answer) did not finish ({status})."
    return SatCheck(False, why, call, trace)


def _literal(block: str) -> bool:
    try:
        parse_literal(block.strip())
    except NotALiteral:
        return False
    return True


def emulate(item: Item, session: Session) -> Emulation:
    chat = messages(item)
    attempts: list[dict[str, Any]] = []
    last_trace: dict[str, Any] | None = None
    for attempt in range(1, ATTEMPTS + 1):
        reply = session.chat(
            chat,
            heading=f"Attempt {attempt}",
            done=block_closed("[ANSWER]", "[/ANSWER]", _literal),
        )
        answer = extract(reply.text)
        record: dict[str, Any] = {"attempt": attempt, "answer": answer}
        attempts.append(record)
        why: str
        if answer is None:
            why = "The answer has no [ANSWER] block with a literal in it."
            if reply.finish_reason == "length":
                why += " The model reached its token limit before writing one."
        else:
            try:
                value = parse_literal(answer)
            except NotALiteral as exc:
                why = f"The answer must be a literal, not code or an expression ({exc})."
            else:
                check = check_sat(
                    item.source,
                    value,
                    ans_type=item.ans_type,
                    # The verdict needs sat to finish; its first steps are enough to show.
                    run=lambda source, call: session.run(source, call=call, keep_running=True),
                )
                if check.call:
                    record["call"] = check.call[:200]
                if check.trace is not None:
                    last_trace = check.trace
                if check.solved:
                    record["passed"] = True
                    session.emit("status", text=f"Attempt {attempt}: sat(answer) is True.")
                    return Emulation(
                        prediction=answer,
                        verdict={
                            "status": "correct",
                            "explanation": f"sat(answer) returns True (attempt {attempt}).",
                        },
                        real_trace=last_trace,
                        details={"attempts": attempts, "call": check.call},
                    )
                why = check.why
        record["passed"] = False
        record["why"] = why
        session.emit("status", text=f"Attempt {attempt} failed: {why}")
        chat = [
            *chat,
            {"role": "assistant", "content": reply.text},
            {"role": "user", "content": f"{why} Try again: give a new answer in [ANSWER] tags."},
        ]
    final = attempts[-1]
    return Emulation(
        prediction=final.get("answer"),
        problem=None if final.get("answer") else final.get("why"),
        verdict={
            "status": "wrong" if final.get("answer") else "unparsable",
            "explanation": f"No answer passed in {ATTEMPTS} attempts. Last: {final.get('why')}",
        },
        real_trace=last_trace,
        details={"attempts": attempts},
    )
