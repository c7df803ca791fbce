"""``trace``: the model writes the execution trace itself, one step per line.

Each step is a small JSON object: ``{"line": 3, "changed": {"count": "0"}}``, with ``"event":
"call"|"return"|"exception"|"unwind"``, ``"func"`` on calls, ``"exception"`` on exception and
unwind steps, ``"printed"`` for output. The prompt teaches the format with two worked examples
made by our own tracer, one that returns and one whose exception unwinds two frames (a test
keeps both equal to what the sandbox records), so a perfect model reproduces the real trace
exactly, exceptions included. Steps are parsed while the answer
streams; where the server supports JSON-schema constrained output the answer is one object
``{"steps": [...]}``, which the same parser reads.

One file of a little over 400 lines because it is one method: its prompt, the worked examples it
teaches with and the streaming parser of the format that prompt defines change together.
"""

from __future__ import annotations

import json
from typing import Any

from playground.emulation import prompts
from playground.emulation.base import Emulation, Item, Session
from playground.sandbox.schema import (
    EVENTS,
    FRAME_EXITS,
    MAX_FUNC,
    MAX_NAME,
    MAX_VALUE,
    make_trace,
    raise_step,
    storable,
)

MAX_STEPS = 2000
_MAX_OBJECT = 20_000  # characters of one step object

INSTRUCTIONS = """\
You are a Python interpreter. Trace the execution of the program below, then of the call after \
it, step by step, exactly as Python runs them. Write one JSON object per line, one per step:
- {"line": N, "event": "call", "func": NAME, "changed": {...}} when a function is entered \
(changed: its arguments);
- {"line": N, "changed": {...}} each time line N is about to run (changed: the variables the \
PREVIOUS line changed, as Python reprs in strings; leave "changed" out when nothing changed);
- {"line": N, "event": "return", "changed": {"__return__": VALUE}} when the function returns;
- {"line": N, "event": "exception", "exception": "Type: message"} when line N raises an \
exception, or one arrives there from a function it called;
- {"line": N, "event": "unwind", "exception": "Type: message"} when that exception leaves the \
function (it does not return: no __return__);
- add "printed": TEXT to the step after a line that printed TEXT.
Trace only the call (not the definitions), and write [/TRACE] after the last step."""

EXAMPLE_SOURCE = """\
def f(text):
    count = 0
    for ch in text:
        if ch == 'a':
            count += 1
    print(count)
    return count * 2"""
EXAMPLE_CALL = "f('ab')"
# What the sandbox records for the example, from the call on (tests/emulation/test_trace.py
# checks that it still does).
EXAMPLE_STEPS: list[dict[str, Any]] = [
    {"i": 3, "line": 1, "func": "f", "event": "call", "locals": {"text": "'ab'"}},
    {"i": 4, "line": 2, "func": "f"},
    {"i": 5, "line": 3, "func": "f", "locals": {"count": "0"}},
    {"i": 6, "line": 4, "func": "f", "locals": {"ch": "'a'"}},
    {"i": 7, "line": 5, "func": "f"},
    {"i": 8, "line": 3, "func": "f", "locals": {"count": "1"}},
    {"i": 9, "line": 4, "func": "f", "locals": {"ch": "'b'"}},
    {"i": 10, "line": 3, "func": "f"},
    {"i": 11, "line": 6, "func": "f"},
    {"i": 12, "line": 7, "func": "f", "stdout": "1\n"},
    {"i": 13, "line": 7, "func": "f", "event": "return", "locals": {"__return__": "2"}},
]
# An exception raised in g unwinds g, arrives in f, unwinds f: the call has no value.
RAISING_SOURCE = """\
def g(d):
    return d['missing']

def f():
    return g({'a': 1})"""
RAISING_CALL = "f()"
RAISING_STEPS: list[dict[str, Any]] = [
    {"i": 4, "line": 4, "func": "f", "event": "call"},
    {"i": 5, "line": 5, "func": "f"},
    {"i": 6, "line": 1, "func": "g", "event": "call", "locals": {"d": "{'a': 1}"}},
    {"i": 7, "line": 2, "func": "g"},
    {"i": 8, "line": 2, "func": "g", "event": "exception", "exception": "KeyError: 'missing'"},
    {"i": 9, "line": 2, "func": "g", "event": "unwind", "exception": "KeyError: 'missing'",
     "to": "f", "to_line": 5},
    {"i": 10, "line": 5, "func": "f", "event": "exception", "exception": "KeyError: 'missing'"},
    {"i": 11, "line": 5, "func": "f", "event": "unwind", "exception": "KeyError: 'missing'"},
]  # fmt: skip

STEP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "line": {"type": "integer"},
        "event": {
            "type": "string",
            "enum": ["call", "line", "return", "exception", "unwind"],
        },
        "func": {"type": "string"},
        "exception": {"type": "string"},
        "changed": {"type": "object", "additionalProperties": {"type": "string"}},
        "printed": {"type": "string"},
    },
    "required": ["line"],
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    # No maxItems: llama.cpp's grammar compiler refuses large repetition counts; the parser caps.
    "properties": {"steps": {"type": "array", "items": STEP_SCHEMA}},
    "required": ["steps"],
}


def call_steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps from the call on: the module's definitions come first and are not traced."""
    for index, step in enumerate(steps):
        if step.get("func") != "<module>":
            return steps[index:]
    return []


def render_step(step: dict[str, Any]) -> str:
    """One step in the format the prompt teaches."""
    out: dict[str, Any] = {"line": step["line"]}
    event = step.get("event", "line")
    if event != "line":
        out["event"] = event
    if event == "call":
        out["func"] = step.get("func", "")
    if step.get("locals"):
        out["changed"] = step["locals"]
    if event in ("exception", "unwind"):
        out["exception"] = step.get("exception", "")
    if step.get("stdout"):
        out["printed"] = step["stdout"]
    return json.dumps(out, ensure_ascii=False)


def render(steps: list[dict[str, Any]]) -> str:
    return "\n".join(render_step(s) for s in steps)


def _example(source: str, call: str, steps: list[dict[str, Any]]) -> str:
    return (
        f"[PYTHON]\n{source}\n[/PYTHON]\n[CALL]\n{call}\n[/CALL]\n"
        f"[TRACE]\n{render(steps)}\n[/TRACE]"
    )


def messages(source: str, call: str, rule: str = "") -> list[dict[str, str]]:
    """The chat: the instructions, two worked examples, then the program and the call (under
    ``rule``: its note just before them)."""
    examples = "\n\n".join(
        (
            _example(EXAMPLE_SOURCE, EXAMPLE_CALL, EXAMPLE_STEPS),
            _example(RAISING_SOURCE, RAISING_CALL, RAISING_STEPS),
        )
    )
    question = (
        f"{prompts.rule_note(rule)}"
        f"[PYTHON]\n{source.rstrip()}\n[/PYTHON]\n[CALL]\n{call.strip()}\n[/CALL]\n[TRACE]\n"
    )
    return [{"role": "user", "content": f"{INSTRUCTIONS}\n\n{examples}\n\n{question}"}]


def _value(value: Any) -> str:
    """A variable's value as the model gave it: a repr in a string, or (off-format) any JSON
    value, shown as the Python repr of that value."""
    if isinstance(value, str):
        return value
    return repr(value)


def clean(raw: dict[str, Any], index: int) -> dict[str, Any] | None:
    """A schema-v1 step from one object the model wrote, or None if it is not a step."""
    line = raw.get("line")
    if isinstance(line, str) and line.strip().isdigit():
        line = int(line)
    if type(line) is not int or not 0 <= line <= 1_000_000:
        return None
    event = raw.get("event", "line")
    step: dict[str, Any] = {"i": index, "line": line, "func": "", "by": "lm"}
    if event in EVENTS and event != "line":
        step["event"] = event
    func = raw.get("func")
    if isinstance(func, str):
        step["func"] = storable(func[:MAX_FUNC])
    exception = raw.get("exception")
    if event in ("exception", "unwind") and isinstance(exception, str):
        step["exception"] = storable(exception[:1000])
    changed = raw.get("changed", raw.get("locals", {}))
    if isinstance(changed, list):  # [{"name": ..., "value": ...}] is also understood
        changed = {
            c.get("name"): c.get("value")
            for c in changed
            if isinstance(c, dict) and isinstance(c.get("name"), str)
        }
    if isinstance(changed, dict) and changed:
        step["locals"] = {
            storable(str(k)[:MAX_NAME]): storable(_value(v)[:MAX_VALUE])
            for k, v in list(changed.items())[:200]
        }
    printed = raw.get("printed", raw.get("stdout"))
    if isinstance(printed, str) and printed:
        step["stdout"] = storable(printed[:10_000])
    return step


class StepParser:
    """Reads step objects out of streaming text: one JSON object per line, or objects inside
    any array (``{"steps": [...]}``), tolerant of chatter between them. Strings are tracked only
    inside objects, so an apostrophe in prose does not derail it."""

    def __init__(self, max_steps: int = MAX_STEPS) -> None:
        self.text = ""
        self.pos = 0
        self.stack: list[tuple[str, int]] = []  # (bracket, start offset)
        self.in_string = False
        self.escaped = False
        self.steps: list[dict[str, Any]] = []
        self.invalid = 0
        self.max_steps = max_steps
        # Where the answer is over; anything after it is ignored. [/TRACE] after a step:
        self.ended = False
        # The JSON value that holds the steps ({"steps": [...]}) has closed:
        self.closed = False
        # A step returned from the call's frame (as ``result_of`` reads it): the call is over.
        self.returned = False
        # A string ran into a line break, which JSON forbids: the step it was in, and nothing
        # after it, can be read.
        self.broken_at: int | None = None
        self._frames = 0
        self._steps_before = 0  # steps parsed before the current top-level value opened

    @property
    def complete(self) -> bool:
        """Whether the trace is over: the model may stop writing."""
        return self.ended or self.closed or self.returned or self.broken_at is not None

    def feed(self, delta: str) -> list[dict[str, Any]]:
        """Take more text; return the steps completed by it."""
        self.text += delta
        new: list[dict[str, Any]] = []
        text = self.text
        while self.pos < len(text) and not self.ended and self.broken_at is None:
            ch = text[self.pos]
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif ch == "\\":
                    self.escaped = True
                elif ch == '"':
                    self.in_string = False
                elif ch == "\n":
                    self.broken_at = len(self.steps)
                    break
            elif ch == '"' and self.stack:
                self.in_string = True
            elif ch in "{[":
                if not self.stack:
                    self._steps_before = len(self.steps)
                self.stack.append((ch, self.pos))
            elif ch in "}]" and self.stack:
                opener, start = self.stack.pop()
                if not self.stack and len(self.steps) > self._steps_before:
                    self.closed = True  # it held steps: the wrapper, not a step of its own
                if ch == "}" and opener == "{":
                    parent = self.stack[-1][0] if self.stack else None
                    if parent in (None, "["):
                        step = self._object(text[start : self.pos + 1])
                        if step is not None:
                            new.append(step)
                elif (opener == "{") != (ch == "}"):  # mismatched brackets: start afresh
                    self.stack.clear()
            if (
                self.steps
                and not self.stack
                and not self.in_string
                and text.startswith("[/TRACE]", self.pos)
            ):
                self.ended = True  # (before any step it is the instructions echoed)
            if self.stack and self.pos - self.stack[0][1] > _MAX_OBJECT * 50:
                self.stack.clear()  # an object that never closes: give up on it
                self.in_string = False
            self.pos += 1
        return new

    def _object(self, text: str) -> dict[str, Any] | None:
        if len(text) > _MAX_OBJECT or len(self.steps) >= self.max_steps:
            return None
        try:
            raw = json.loads(text)
        except ValueError:
            self.invalid += 1
            return None
        if not isinstance(raw, dict) or "line" not in raw:
            return None  # e.g. the wrapper object, or a "changed" dict
        step = clean(raw, len(self.steps))
        if step is None:
            self.invalid += 1
            return None
        self.steps.append(step)
        event = step.get("event", "line")
        if event == "call":
            self._frames += 1
        elif event in FRAME_EXITS:  # a return, or an exception leaving the frame
            self._frames -= 1
            if self._frames <= 0:
                self.returned = True
        return step

    def problem(self, finish_reason: str | None = None) -> str | None:
        """Why the text is not a complete trace, or None. The token limit is named only when it
        ended the answer (``finish_reason == "length"``) before the trace was over."""
        if self.broken_at is not None:
            return (
                f"Step {self.broken_at + 1} is not valid JSON: a string in it runs past the end "
                "of its line, so the trace cannot be read from there on."
            )
        if not self.steps:
            if finish_reason == "length":
                return "The model reached its token limit before it wrote a step in the format."
            return "The answer contains no step in the trace format."
        if self.stack and not self.complete:
            if finish_reason == "length":
                return "The model reached its token limit in the middle of a step."
            return "The answer stops in the middle of a step."
        if self.invalid:
            return f"{self.invalid} step{'s' if self.invalid > 1 else ''} could not be read."
        return None


def result_of(steps: list[dict[str, Any]]) -> str | None:
    """The call's value: ``__return__`` of the return that leaves the first frame (None when
    an exception unwinds it: see ``raised_by``)."""
    end = _first_frame_exit(steps)
    if end is None or end.get("event") != "return":
        return None
    value = end.get("locals", {}).get("__return__")
    return str(value) if value is not None else None


def raised_by(steps: list[dict[str, Any]]) -> str | None:
    """The exception the model says the call raises: the one unwinding the first frame."""
    end = _first_frame_exit(steps)
    if end is None or end.get("event") != "unwind":
        return None
    return str(end.get("exception") or "an exception")


def _first_frame_exit(steps: list[dict[str, Any]]) -> dict[str, Any] | None:
    depth = 0
    for step in steps:
        event = step.get("event", "line")
        if event == "call":
            depth += 1
        elif event in FRAME_EXITS:
            depth -= 1
            if depth <= 0:
                return step
    return None


def emulate(item: Item, session: Session) -> Emulation:
    """Ask for the trace, publishing each step as soon as it is complete."""
    parser = StepParser()

    def on_delta(delta: str) -> None:
        for step in parser.feed(delta):
            session.emit("step", step=step)

    reply = session.chat(
        messages(item.source, item.call, item.rule),
        json_schema=SCHEMA,
        on_delta=on_delta,
        done=lambda _text: parser.complete,
    )
    problem = parser.problem(reply.finish_reason)
    result = result_of(parser.steps)
    raised = raised_by(parser.steps)
    stdout = "".join(s.get("stdout", "") for s in parser.steps)
    trace = make_trace(
        status="parse_error" if problem else "exception" if raised else "ok",
        steps=parser.steps,
        stdout=stdout,
        result=storable(result[:10_000]) if result is not None else None,
        error=(
            {"type": "ParseError", "message": problem, "line": None}
            if problem
            else _error(raised, parser.steps)
            if raised
            else None
        ),
        source="emulated",
        method="trace",
    )
    return Emulation(
        trace=trace,
        prediction=result,
        problem=None if result is not None else (problem or _no_value(raised)),
        details={"steps_parsed": len(parser.steps)},
    )


def _error(raised: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The trace's error when the model says the call raises: like a real run's."""
    kind, _, message = raised.partition(":")
    end = _first_frame_exit(steps)
    upto = next((n for n, step in enumerate(steps) if step is end), len(steps) - 1)
    at = raise_step(steps[: upto + 1])
    return {
        "type": kind.strip()[:100],
        "message": message.strip()[:1000],
        "line": steps[at]["line"] if at is not None else None,
    }


def _no_value(raised: str | None) -> str:
    if raised is not None:
        return f"The model says the call raises {raised[:200]}, so it predicts no value."
    return "The trace has no return step."
