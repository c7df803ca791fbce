"""``cwm-trace``: the model writes the call's trace in the format Meta published for CWM.

The prompt is CWM's trace-prediction prompt (``compare/cwm.py``, which cites the guide): the
program with the entry point marked ``# << START_OF_TRACE``, the call on its own line, and
``<|frame_sep|>``; a CWM model served by vLLM continues it with frames. A chat model gets the
same text in a user message that asks it to continue it, after a short description of the
frames and one worked example made by our own tracer (a test keeps it equal to what the sandbox
records). The answer is read frame by frame while it streams, and the frames become steps of our
schema, so that the verdict (the call's value), the path verdict and the step comparison are the
``trace`` method's: a perfect answer reproduces the real trace from the call on, except what the
format cannot say (output printed, locals changed at a return or exception step).
"""

from __future__ import annotations

import re
from typing import Any

from playground.compare import cwm
from playground.emulation import prompts
from playground.emulation.base import Emulation, Item, Session
from playground.emulation.trace import raised_by, result_of
from playground.sandbox.schema import (
    MAX_FUNC,
    MAX_NAME,
    MAX_VALUE,
    make_trace,
    raise_step,
    storable,
)

MAX_FRAMES = 2000

INSTRUCTIONS = """\
You are CWM, a code world model: you predict how Python executes, frame by frame. Continue the \
execution trace below in CWM's trace format, starting at the function marked \
# << START_OF_TRACE, called as the last line shows. Each frame ends with <|frame_sep|>:
<|call_sep|>LOCALS<|action_sep|>SOURCE LINE<|frame_sep|> when the function is entered;
<|line_sep|>LOCALS<|action_sep|>SOURCE LINE<|frame_sep|> before each line runs;
<|return_sep|><|action_sep|>SOURCE LINE<|arg_sep|>"VALUE"<|frame_sep|> when a function returns;
<|exception_sep|><|action_sep|>SOURCE LINE<|arg_sep|>"Type: message"<|frame_sep|> when a line \
raises (an exception leaving a function is a return of "None" after it).
LOCALS is a JSON object of every local variable, each value a Python repr in a JSON string, \
".." for a value unchanged since the previous frame of the same function. Called functions are \
traced too. Write <|end_of_text|> when the marked function returns."""

EXAMPLE_SOURCE = """\
def f(text):
    count = 0
    for ch in text:
        if ch == 'a':
            count += 1
    return count * 2"""
EXAMPLE_CALL = "f('ab')"
# What the sandbox records for the example, from the call on (tests/emulation/test_cwm_trace.py
# checks that it still does); the example's text is made from it.
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
    {"i": 12, "line": 6, "func": "f", "event": "return", "locals": {"__return__": "2"}},
]


def messages(source: str, call: str, rule: str = "") -> list[dict[str, str]]:
    """The chat: the instructions, the worked example, then the program's prompt (under
    ``rule``: its note just before it)."""
    example = cwm.export({"steps": EXAMPLE_STEPS}, EXAMPLE_SOURCE, call=EXAMPLE_CALL)
    question = cwm.prompt(source.rstrip(), call.strip())
    content = (
        f"{INSTRUCTIONS}\n\nExample:\n{example}\n\n{prompts.rule_note(rule)}"
        f"Now continue this one:\n{question}"
    )
    return [{"role": "user", "content": content}]


_OPENING = INSTRUCTIONS[:60]  # an answer that starts so echoes the prompt
_DEF = re.compile(r"\s*(?:async\s+)?def\s+([A-Za-z_]\w*)|\s*@")


class FrameReader:
    """Reads CWM frames out of streaming text and turns each into a step of our schema as soon
    as its ``<|frame_sep|>`` arrives (steps of a frame nobody can read are skipped and counted).
    ``complete`` once ``<|end_of_text|>`` arrives or the entry frame is left."""

    def __init__(self, source: str, call: str = "", max_frames: int = MAX_FRAMES) -> None:
        self.source = source
        # The prompt's own context: an answer that echoes the prompt (the worked example's
        # context first) begins after it.
        self.head = cwm.CONTEXT_START + cwm.context(source.rstrip(), call.strip())
        self.text = ""
        self.frames: list[cwm.Frame] = []
        self.steps: list[dict[str, Any]] = []
        self.unreadable: list[str] = []
        self.ended = False
        self.returned = False
        self.max_frames = max_frames
        self._start: int | None = None  # where the frames begin in the text
        self._done_to = 0  # the text read up to here
        self._depth = 0
        self._stack: list[tuple[str, dict[str, str]]] = []  # per frame: func, its locals so far
        self._pop = False
        self._placer = cwm.Placer(source)

    @property
    def complete(self) -> bool:
        return self.ended or self.returned or len(self.frames) >= self.max_frames

    def feed(self, delta: str) -> list[dict[str, Any]]:
        """Take more text; return the steps it completed."""
        self.text += delta
        if len(self.text) > cwm.MAX_TEXT:
            self.ended = True
        if self._start is None:
            self._start = self._begin()
            if self._start is None:
                return []
            self._done_to = self._start
        new: list[dict[str, Any]] = []
        while not self.complete:
            end_at = self.text.find(cwm.END, self._done_to)
            sep_at = self.text.find(cwm.FRAME_SEP, self._done_to)
            if end_at >= 0 and (sep_at < 0 or end_at < sep_at):
                self.ended = True
                break
            if sep_at < 0:
                break
            chunk = self.text[self._done_to : sep_at]
            self._done_to = sep_at + len(cwm.FRAME_SEP)
            if not chunk.strip():
                continue
            frame = self._placer.place(cwm.read_frame(chunk))
            self.frames.append(frame)
            step = self._step(frame)
            if step is not None:
                new.append(step)
        return new

    def _begin(self) -> int | None:
        """Where the frames begin: after the prompt's context when the answer echoes it, else at
        the first frame's token; None while that cannot be told yet."""
        at = self.text.find(self.head)
        if at >= 0:
            sep = self.text.find(cwm.FRAME_SEP, at + len(self.head))
            return None if sep < 0 else sep + len(cwm.FRAME_SEP)
        said = self.text.lstrip()
        if cwm.CONTEXT_START in said or said.startswith(_OPENING) or _OPENING.startswith(said):
            return None  # an echo of the prompt, not yet at this program's context
        first = cwm.first_frame(self.text)
        return first if first < len(self.text) else None

    def _step(self, frame: cwm.Frame) -> dict[str, Any] | None:
        if frame.kind == "unreadable" or frame.problem:
            self.unreadable.append(frame.problem)
            return None
        if self._pop:
            self._pop = False
            if self._stack:
                self._stack.pop()
        step: dict[str, Any] = {"i": len(self.steps), "line": frame.line or 0, "func": ""}
        if frame.kind == "call" or not self._stack:
            self._stack.append((_func(frame.source), {}))
        func, state = self._stack[-1]
        step["func"] = storable(func[:MAX_FUNC])
        step["by"] = "lm"
        if frame.kind != "line":
            step["event"] = frame.kind
        if frame.locals is not None:
            changed = {
                storable(name[:MAX_NAME]): storable(value[:MAX_VALUE])
                for name, value in frame.locals.items()
                if value != cwm.UNCHANGED and state.get(name) != value
            }
            state.update(changed)
            if changed:
                step["locals"] = changed
        value = storable((frame.value or "")[:MAX_VALUE])
        previous = self.steps[-1] if self.steps else None
        if frame.kind == "exception":
            step["exception"] = storable((frame.value or "")[:1000])
        elif frame.kind == "return" and _unwinds(previous, func, value):
            assert previous is not None
            step["event"] = "unwind"
            step["exception"] = previous.get("exception", "")
        elif frame.kind == "return":
            step["locals"] = {"__return__": value}
        if frame.kind == "call":
            self._depth += 1
        elif frame.kind == "return":
            self._pop = True
            self._depth -= 1
            if self._depth <= 0:
                self.returned = True
        self.steps.append(step)
        return step

    def problem(self, finish_reason: str | None = None) -> str | None:
        """Why the answer is not a whole trace, or None."""
        if not self.steps:
            if finish_reason == "length":
                return "The model reached its token limit before it wrote a frame in CWM's format."
            return "The answer contains no frame in CWM's trace format."
        if self.unreadable:
            count = len(self.unreadable)
            first = self.unreadable[0].rstrip(".")
            return f"{count} frame{'s' if count > 1 else ''} could not be read ({first})."
        if not self.returned and finish_reason == "length":
            return "The model reached its token limit before the call returned."
        return None


def _func(source: str) -> str:
    found = _DEF.match(source)
    return (found.group(1) or "") if found else ""


def _unwinds(previous: dict[str, Any] | None, func: str, value: str) -> bool:
    """A return of None right after an exception frame of the same function: the exception
    leaves the frame (see compare/cwm.py)."""
    return (
        value == "None"
        and previous is not None
        and previous.get("event") == "exception"
        and previous.get("func") == storable(func[:MAX_FUNC])
    )


def emulate(item: Item, session: Session) -> Emulation:
    """Ask for the trace in CWM's format, publishing each step as soon as its frame is whole."""
    reader = FrameReader(item.source, item.call)

    def on_delta(delta: str) -> None:
        for step in reader.feed(delta):
            session.emit("step", step=step)

    reply = session.chat(
        messages(item.source, item.call, item.rule),
        on_delta=on_delta,
        done=lambda _text: reader.complete,
    )
    problem = reader.problem(reply.finish_reason)
    result = result_of(reader.steps)
    raised = raised_by(reader.steps)
    trace = make_trace(
        status="parse_error" if problem else "exception" if raised else "ok",
        steps=reader.steps,
        result=storable(result[:10_000]) if result is not None else None,
        error=(
            {"type": "ParseError", "message": problem, "line": None}
            if problem
            else _error(raised, reader.steps)
            if raised
            else None
        ),
        source="emulated",
        method="cwm-trace",
    )
    if result is None and not problem:
        problem = (
            f"The model says the call raises {raised[:200]}, so it predicts no value."
            if raised is not None
            else "The trace has no return frame for the call."
        )
    return Emulation(
        trace=trace,
        prediction=result,
        problem=None if result is not None else problem,
        details={"frames_parsed": len(reader.frames), "frames_unreadable": len(reader.unreadable)},
    )


def _error(raised: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The trace's error when the model says the call raises: like a real run's."""
    kind, _, message = raised.partition(":")
    at = raise_step(steps)
    return {
        "type": kind.strip()[:100],
        "message": message.strip()[:1000],
        "line": steps[at]["line"] if at is not None else None,
    }
