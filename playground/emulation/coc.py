"""``coc``, Chain of Code (Li et al., 2023, arXiv 2312.04474).

The program runs once, traced, in the sandbox. A line Python cannot run (an undefined helper such
as ``is_fruit(w)``, a semantic operation) pauses the sandboxed program; the worker asks the model,
the "LMulator", for the variables that line changes, as a Python dict literal; the sandbox layer
reads the reply with ``ast.literal_eval`` only, and the program continues with the next line.
Steps carry ``by: lm`` where the model stood in for Python.

For a reasoning task (BIG-Bench Hard) the model first writes the program; the answer is then the
program's variable ``answer``.

Under a semantic rule (issue 21; a program only) the sandbox rewrites the program under the rule
first, then for Chain of Code (sandbox/inside/coc_runtime.py), with the rule's helpers in its
globals: the lines Python runs run under the rule, and a line that raises under it is simulated.
Each LMulator prompt states the rule in a ``[RULE]`` block (``prompts.rule_note``) after the worked
example, which keeps standard Python, so the model simulates its line under the rule too.
"""

from __future__ import annotations

import ast
import functools
import re
from typing import Any

from playground.emulation import prompts
from playground.emulation.base import Emulation, Item, Session
from playground.emulation.literals import NotALiteral, parse_literal
from playground.emulation.tae import judge_task
from playground.sandbox.schema import FRAME_EXITS, make_trace

LM_TOKENS = 256
PROGRAM_TOKENS = 768
# The LMulator sees the source around the line it stands in for, not the whole program: the
# enclosing function (or the module), at most this many lines either side of the line...
WINDOW_LINES = 20
# ... each cut to this many characters (a program can be one 100 KB line).
WINDOW_LINE_CHARS = 300
_NEWLINES = re.compile(r"\r\n|\r|\n")  # as the sandbox numbers lines
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.DOTALL)
_PROGRAM = re.compile(r"\[PROGRAM\](.*?)(?:\[/PROGRAM\]|$)", re.DOTALL)

LMULATOR_INSTRUCTIONS = """\
You are helping a Python interpreter run the program below (its lines are numbered). Python \
could not run one of its lines (it calls a helper that does not exist, or needs knowledge or \
judgement). Work out what that line would do, and reply with a Python dict literal and nothing \
else."""

LMULATOR_EXAMPLE = """\
Example. Line 4: `if is_fruit(w):` (NameError: name 'is_fruit' is not defined)
Variables: {'words': "['apple', 'chair']", 'count': '0', 'w': "'apple'"}
Reply with the value of the expression on the line as {'__value__': ...}.
{'__value__': True}"""

WRITE_INSTRUCTIONS = """\
Write a Python program that answers the question. Use ordinary Python where you can. Where a \
step needs understanding or knowledge (is this word a fruit? is this sentence sarcastic?), call \
a helper function with a descriptive name that you do NOT define: it will be answered for you. \
Put the final answer, written exactly as the answers below are written, in a variable named \
`answer`. Write only the program, between [PROGRAM] and [/PROGRAM]."""

WRITE_EXAMPLE = """\
Question: I have an apple, a chair, two pears and a table. How many fruits do I have?
[PROGRAM]
items = [('apple', 1), ('chair', 1), ('pear', 2), ('table', 1)]
answer = 0
for name, number in items:
    if is_fruit(name):
        answer += number
[/PROGRAM]"""


@functools.lru_cache(maxsize=8)
def _scopes(source: str) -> tuple[tuple[int, int], ...]:
    """The (first, last) lines of every function and class of the program, decorators
    included; none when it does not parse here."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return ()
    return tuple(
        (
            min([node.lineno, *(d.lineno for d in node.decorator_list)]),
            node.end_lineno or node.lineno,
        )
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    )


def source_window(source: str, line: int, end: int | None = None) -> str:
    """The lines of ``source`` around ``line`` (to ``end``, a statement's last line), numbered
    as in the program: the innermost function or class that holds it, else the module, at most
    WINDOW_LINES either side; a note says which lines are left out."""
    lines = _NEWLINES.split(source.rstrip())
    end = max(line, end or line)
    first, last = 1, len(lines)
    holding = [(a, b) for a, b in _scopes(source) if a <= line and end <= b]
    if holding:
        first, last = max(holding)  # the innermost starts last
    first = max(first, line - WINDOW_LINES)
    last = min(last, end + WINDOW_LINES, len(lines))
    width = len(str(last))
    shown = []
    for number in range(first, last + 1):
        text = lines[number - 1]
        if len(text) > WINDOW_LINE_CHARS:
            text = (
                text[:WINDOW_LINE_CHARS]
                + f" ... ({len(text) - WINDOW_LINE_CHARS:,} more characters)"
            )
        shown.append(f"{number:>{width}}| {text}")
    if first > 1 or last < len(lines):
        note = f"(lines {first}-{last} of {len(lines)}; the rest of the program is not shown)"
        shown.insert(0, note)
    return "\n".join(shown)


def lmulator_messages(source: str, request: Any, rule: str = "") -> list[dict[str, str]]:
    """The LMulator's prompt for one line Python could not run; under ``rule`` it states the
    rule after the example (which is standard Python), right before the program."""
    variables = dict(list(request.locals.items())[:50])
    if request.kind == "expression":
        want = "Reply with the value of the expression on the line as {'__value__': ...}."
    else:
        targets = ", ".join(request.targets) if request.targets else "the variables it changes"
        want = f"Reply with the variables this line sets or changes ({targets}), e.g. {{'x': 3}}."
    end = request.line + request.code.count("\n")
    prompt = (
        f"{LMULATOR_INSTRUCTIONS}\n\n{LMULATOR_EXAMPLE}\n\n{prompts.rule_note(rule)}"
        f"[PYTHON]\n{source_window(source, request.line, end)}\n"
        f"[/PYTHON]\nLine {request.line}: `{request.code}` ({request.error})\n"
        f"Variables: {variables!r}\n{want}\n"
    )
    return [{"role": "user", "content": prompt}]


def dict_literal(text: str) -> str | None:
    """The last balanced ``{...}`` in the reply (the sandbox layer checks it is a literal)."""
    end = text.rfind("}")
    while end != -1:
        depth = 0
        for start in range(end, -1, -1):
            if text[start] == "}":
                depth += 1
            elif text[start] == "{":
                depth -= 1
                if depth == 0:
                    return text[start : end + 1]
        end = text.rfind("}", 0, end)
    return None


def dict_answered(text: str) -> bool:
    """A ``done`` test for the LMulator's reply, which should be a dict literal and nothing else:
    complete once the dict it starts with has closed (braces inside quoted strings do not
    count). A reply that starts with anything else runs on, and its last dict is read."""
    body = text.lstrip()
    if body.startswith("```"):
        body = body.partition("\n")[2].lstrip()
    if not body.startswith("{"):
        return False
    depth, quote, escaped = 0, "", False
    for ch in body:
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if not depth:
                return True
    return False


def write_messages(item: Item) -> list[dict[str, str]]:
    shots = "\n\n".join(f"Question: {q}\nAnswer: {a}" for q, a in item.examples)
    examples = f"Questions of this task and their answers:\n\n{shots}\n\n" if shots else ""
    prompt = (
        f"{WRITE_INSTRUCTIONS}\n\n{WRITE_EXAMPLE}\n\n{examples}Question: {item.question}\n"
        "[PROGRAM]\n"
    )
    return [{"role": "user", "content": prompt}]


def read_program(text: str) -> str:
    """The program from the model's answer: tags, a code fence, or the whole text."""
    tagged = _PROGRAM.search(text)
    body = tagged.group(1) if tagged else text
    fence = _FENCE.search(body)
    if fence:
        body = fence.group(1)
    return body.replace("[/PROGRAM]", "").strip("\n")


def module_variables(steps: list[dict[str, Any]]) -> dict[str, str]:
    """The top-level variables at the end of the run, rebuilt from the trace's changes."""
    variables: dict[str, str] = {}
    depth = 0
    for step in steps:
        event = step.get("event", "line")
        if event == "call":
            depth += 1
        if depth == 1:
            variables.update(step.get("locals", {}))
        if event in FRAME_EXITS:
            depth -= 1
    variables.pop("__return__", None)
    return variables


def emulate(item: Item, session: Session) -> Emulation:
    from playground.llm.client import Refused
    from playground.sandbox.lmulator import LMulatorError, LMulatorStop

    details: dict[str, Any] = {"lm_lines": []}
    call: str | None
    if item.kind == "task":
        reply = session.chat(
            write_messages(item),
            heading="Write the program",
            max_tokens=PROGRAM_TOKENS,
            # The prompt opens the block: the program is complete when a line closes it.
            done=lambda text: "\n[/PROGRAM]" in text and bool(read_program(text).strip()),
        )
        source = read_program(reply.text)
        details["program"] = source
        try:
            ast.parse(source)
        except (SyntaxError, ValueError) as exc:
            invalid = f"The program the model wrote is not valid Python: {exc}"
            trace = make_trace(
                status="parse_error",
                steps=[],
                error={"type": "SyntaxError", "message": invalid[:1000], "line": None},
                source="emulated",
                method="coc",
            )
            return Emulation(
                trace=trace,
                problem=invalid,
                verdict={"status": "unparsable", "explanation": invalid[:500]},
                details=details,
            )
        session.emit("program", source=source)
        call = None
    else:
        source, call = item.source, (item.call or None)

    def lmulator(request: Any) -> str:
        try:
            reply = session.chat(
                lmulator_messages(source, request, item.rule),
                heading=f"Line {request.line}: {request.code[:80]}",
                max_tokens=LM_TOKENS,
                done=dict_answered,
            )
        except Refused as exc:  # nothing more may be asked: the program stops here
            raise LMulatorStop(str(exc)) from None
        found = dict_literal(reply.text)
        details["lm_lines"].append({"line": request.line, "reply": (found or reply.text)[:500]})
        if found is None:
            raise LMulatorError("the model's answer has no dict literal")
        session.emit("status", text=f"Line {request.line} simulated by the model: {found[:200]}")
        return found

    # Under a rule (a program's; a task has none) Python runs its lines under it in the sandbox.
    trace = session.run(source, call=call, stdin=item.stdin, lmulator=lmulator, rule=item.rule)
    if session.refused is not None:  # the run fails with the reason, as any other method's
        raise session.refused
    trace["source"], trace["method"] = "emulated", "coc"
    if not details["lm_lines"]:
        session.append(
            ("\n\n" if session.transcript else "")
            + "Python ran every line itself: the model was not needed."
        )
    if item.kind == "task":
        value = module_variables(trace["steps"]).get("answer")
        answer: str | None = None
        if value is not None:
            try:
                answer = str(parse_literal(value))
            except NotALiteral:
                answer = value
        trace["result"] = value
        verdict = judge_task(answer, item.target)
        if answer is None:
            verdict["explanation"] = (
                f"The program ended ({trace['status']}) without setting the variable answer."
            )
        return Emulation(trace=trace, prediction=answer, verdict=verdict, details=details)
    result = trace.get("result")
    problem: str | None = None
    if result is None:
        error = trace.get("error") or {}
        problem = f"The run ended with {trace['status']}: {error.get('message', '')}".strip()
    return Emulation(trace=trace, prediction=result, problem=problem, details=details)
