"""Traces in the format Meta published for its Code World Model (CWM): export, parse, compare.

The format is CWM's prompting guide, section "Trace Prediction" (repository
facebookresearch/cwm, file PROMPTING_GUIDE.md, commit 7930e0298bf32aae28cc0e35e18a54c772603364).
A prompt is ``<|begin_of_text|><|trace_context_start|>$CONTEXT<|frame_sep|>``, the entry point
marked in ``$CONTEXT`` with a ``<< START_OF_TRACE`` comment; a trace is a series of frames, each
ended by ``<|frame_sep|>``::

    <|call_sep|>$LOCALS<|action_sep|>$SOURCE<|frame_sep|>
    <|line_sep|>$LOCALS<|action_sep|>$SOURCE<|frame_sep|>
    <|return_sep|><|action_sep|>$SOURCE<|arg_sep|>$VALUE<|frame_sep|>
    <|exception_sep|><|action_sep|>$SOURCE<|arg_sep|>$VALUE<|frame_sep|>

and ``<|end_of_text|>`` once the entry point's scope is left. ``$LOCALS`` is a JSON object whose
values are always JSON strings; ``$VALUE`` is a JSON string too. Where the guide is silent, the
same repository's debugger demo (demos/cwmdbg.py, same commit) was followed: the marker is
``"  # << START_OF_TRACE"`` appended to the entry line, and the action is that line without it;
``$SOURCE`` is the whole source line, indentation included (the demo finds it among the
context's lines; trailing spaces are dropped here); locals are written with ``json.dumps``
defaults; and locals are diff-based: a value unchanged since the previous frame of the same
scope is the placeholder ``".."``, which a reader resolves by walking back through the frames,
stopping at a call or return frame (an exception frame has no locals and is walked through).

Where neither says, this module decides, the same way in both directions:

- **Values** are Python reprs, as our traces store them (bounded, made without calling user
  code); the demo shows ``{'c': "'a'"}``, a repr. An exception's value is our trace's text,
  ``"Type: message"``.
- **Which frames.** From the entry point's call until it is left: with a call, the called
  function's frame (its ``call`` step, the first step outside ``<module>``) and every frame it
  calls; without one, the module's frame. The module's definitions before the call are not
  traced. The context is the program with the marker on the entry frame's first line (the
  ``def`` line, or the first decorator's; line 1 for the module), then, when there is a call, a
  blank line and the call expression on its own line, so that the arguments are known.
- **What a frame shows.** A line or call frame lists every local of its frame bound so far, in
  the order first bound; a value is ``".."`` when the frame before it (exception frames aside)
  was a call or line frame of the same scope and the value's repr has not changed since. After a
  callee returns every value is written out (the demo's walk stops at the callee's return). A
  call frame starts its scope: a ``".."`` there stands for nothing.
- **Line numbers** are not in the format: a reader finds each frame's line by its text among
  the program's lines (``Placer``: in the function the frame is in, a loop's back edge, else
  the first at or after the previous frame's line). Two identical lines in one function can be
  told apart only that way: of the 800 CRUXEval programs' traces, one is placed wrong (an
  ``if``/``else`` whose branches share a line); frames are compared by their text anyway.
- **Leaving a frame by an exception** (our ``unwind`` step) is a return frame with value
  ``"None"``, as Python's tracing hook reports it. Reading back, a return of ``"None"`` right
  after an exception frame of the same scope is read as the exception leaving it; a ``finally``
  block between the two cannot be told apart (the format has no way to say it).
- Our traces' other facts have no place in the format and are not written: output printed,
  locals changed at a return or exception step, object identity, the function's name (a reader
  takes it from the ``def`` line). ``<|`` inside a JSON string is written ``\\u003c|`` (the same
  JSON value) so that no value can end a frame; a source line holding a token's text is written
  as it is (the format has no escape there) and reads back as whatever it then spells.

``parse`` reads such text, a model's included: it never raises, never evaluates anything (JSON
only), caps what it keeps, and marks a frame it cannot read ``unreadable`` with why.
``compare_frames`` compares a parsed trace with the real one frame by frame, in the words of
``compare/trace.py`` (``control_flow``, ``exception``, ``value``). Pure: nothing of the project
but ``compare.reprs``.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from playground.compare.reprs import same_repr

BEGIN = "<|begin_of_text|>"
END = "<|end_of_text|>"
CONTEXT_START = "<|trace_context_start|>"
FRAME_SEP = "<|frame_sep|>"
ACTION_SEP = "<|action_sep|>"
ARG_SEP = "<|arg_sep|>"
KIND_TOKENS = {
    "call": "<|call_sep|>",
    "line": "<|line_sep|>",
    "return": "<|return_sep|>",
    "exception": "<|exception_sep|>",
}
TOKEN_KINDS = {token: kind for kind, token in KIND_TOKENS.items()}
MARKER = "  # << START_OF_TRACE"
UNCHANGED = ".."
# Events that leave a frame (schema.FRAME_EXITS; this package imports nothing of the project).
_EXITS = frozenset({"return", "unwind"})

# What a reader keeps of text it did not write: bounds, not validation.
MAX_TEXT = 20_000_000
MAX_FRAMES = 50_000
MAX_FRAME_CHARS = 1_000_000
MAX_LOCALS = 200
MAX_NAME = 100
MAX_VALUE = 1_000
MAX_SOURCE = 10_000
TAIL = 80


@dataclass(frozen=True)
class Frame:
    """One frame: ``kind`` is call, line, return, exception, or ``unreadable`` (``problem`` says
    why). ``locals`` as written, ``".."`` included (call and line frames; None on the others,
    and on a frame whose locals are not a JSON object); ``value`` of a return or exception;
    ``line`` the program's line (None where the source line is not one of the program's)."""

    kind: str
    source: str = ""
    line: int | None = None
    locals: dict[str, str] | None = None
    value: str | None = None
    problem: str = ""

    def key(self) -> tuple[Any, ...]:
        """What the text says of the frame (the line number is inferred, not written)."""
        return (self.kind, self.source, self.locals, self.value)


@dataclass
class Parsed:
    """What ``parse`` read: the frames, whether ``<|end_of_text|>`` closed them, and whether
    the text went on past the last ``<|frame_sep|>`` (an unfinished frame, dropped)."""

    frames: list[Frame] = field(default_factory=list)
    ended: bool = False
    unfinished: str = ""
    cut: bool = False  # more text or frames than the bounds: the rest was not read

    @property
    def unreadable(self) -> int:
        return sum(frame.kind == "unreadable" for frame in self.frames)


# --- export ------------------------------------------------------------------------------------


def entry_line(source: str, call: str = "") -> int | None:
    """The line the marker goes on: the first line of the function the call calls (its ``def``,
    or its first decorator's, as Python reports the call), found by parsing, never running;
    line 1 without a call; None when it cannot be found."""
    if not call.strip():
        return 1 if source.strip() else None
    try:
        called = ast.parse(call.strip(), mode="eval").body
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if not isinstance(called, ast.Call) or not isinstance(called.func, ast.Name):
        return None
    found = None
    for node in tree.body:  # the last definition of the name is the one called
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == called.func.id:
            found = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return found


def context(source: str, call: str = "", *, line: int | None = None) -> str:
    """``$CONTEXT``: the program with the marker on ``line`` (else the entry line found by
    ``entry_line``), then the call on a line of its own."""
    lines = source.rstrip().splitlines()
    marked = entry_line(source, call) if line is None else line
    if marked is not None and 1 <= marked <= len(lines):
        lines[marked - 1] = lines[marked - 1] + MARKER
    text = "\n".join(lines)
    if call.strip():
        text += "\n\n" + " ".join(call.split("\n")).strip()
    return text + "\n"


def prompt(source: str, call: str = "") -> str:
    """The trace-prediction prompt of the guide, for a completion model."""
    return f"{BEGIN}{CONTEXT_START}{context(source, call)}{FRAME_SEP}"


def _json(value: Any) -> str:
    return json.dumps(value).replace("<|", "\\u003c|")


def _entry(steps: list[dict[str, Any]], from_call: bool) -> list[dict[str, Any]]:
    """The steps from the entry frame's call until it is left."""
    start = 0
    if from_call:
        while start < len(steps) and steps[start].get("func") == "<module>":
            start += 1
    depth = 0
    for index in range(start, len(steps)):
        event = steps[index].get("event", "line")
        if event == "call" or (depth == 0 and index == start):
            depth += 1
        elif event in _EXITS:
            depth -= 1
            if depth <= 0:
                return steps[start : index + 1]
    return steps[start:]


def frames_of(trace: dict[str, Any], source: str, *, call: str = "") -> list[Frame]:
    """A trace of ours (schema v3) as CWM frames (see the module docstring for what is kept)."""
    lines = source.splitlines()
    raw = trace.get("steps") if isinstance(trace, dict) else None
    steps = [s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else []
    stack: list[dict[str, str]] = []  # per frame: name -> repr, in the order first bound
    shown: list[dict[str, str]] = []  # per frame: the values its last written frame showed
    previous = ""  # "same" after a call or line frame of the frame now on top, else ""
    frames: list[Frame] = []
    pop = False
    for step in _entry(steps, bool(call.strip())):
        if pop:
            pop = False
            if stack:
                stack.pop()
                shown.pop()
            previous = ""
        event = step.get("event", "line")
        line = step.get("line")
        line = line if type(line) is int else 0
        text = lines[line - 1].rstrip() if 1 <= line <= len(lines) else ""
        raw_locals = step.get("locals")
        changed: dict[str, Any] = raw_locals if isinstance(raw_locals, dict) else {}
        if event == "call" or not stack:
            stack.append({})
            shown.append({})
            previous = ""
        state = stack[-1]
        state.update((str(k), str(v)) for k, v in changed.items() if k != "__return__")
        if event in ("call", "line"):
            written = {
                name: UNCHANGED if previous and shown[-1].get(name) == value else value
                for name, value in state.items()
            }
            shown[-1] = dict(state)
            frames.append(Frame(event, text, line, written))
            previous = "same"
        elif event in _EXITS:
            value = str(changed.get("__return__", "None")) if event == "return" else "None"
            frames.append(Frame("return", text, line, None, value))
            pop = True
        elif event == "exception":
            frames.append(Frame("exception", text, line, None, str(step.get("exception", ""))))
    return frames


def render(frames: list[Frame]) -> str:
    """Frames as the trace text: each ended by ``<|frame_sep|>``, then ``<|end_of_text|>``."""
    parts: list[str] = []
    for frame in frames:
        token = KIND_TOKENS.get(frame.kind)
        if token is None:
            continue
        if frame.kind in ("call", "line"):
            parts.append(f"{token}{_json(frame.locals or {})}{ACTION_SEP}{frame.source}")
        else:
            parts.append(f"{token}{ACTION_SEP}{frame.source}{ARG_SEP}{_json(frame.value or '')}")
        parts.append(FRAME_SEP)
    parts.append(END)
    return "".join(parts)


def export(trace: dict[str, Any], source: str, *, call: str = "") -> str:
    """A real trace of ours in CWM's format: the prompt (context with the entry point marked)
    followed by the trace, as the model would continue it."""
    frames = frames_of(trace, source, call=call)
    line = frames[0].line if frames and entry_line(source, call) is None else None
    head = f"{BEGIN}{CONTEXT_START}{context(source, call, line=line)}{FRAME_SEP}"
    return head + render(frames)


# --- parse -------------------------------------------------------------------------------------


def _string(value: Any, limit: int) -> str:
    """A value as the model gave it: a JSON string, or (off-format) any JSON value, shown as the
    Python repr of that value (``true`` is ``True``)."""
    text = value if isinstance(value, str) else repr(value)
    return text[:limit]


def _loads(text: str) -> tuple[Any, bool]:
    try:
        return json.loads(text), True
    except (ValueError, RecursionError):
        return None, False


_LEADING = re.compile(r"\s*")


def read_frame(chunk: str) -> Frame:
    """One frame's text (between two ``<|frame_sep|>``), read as far as it can be."""
    if len(chunk) > MAX_FRAME_CHARS:
        return Frame("unreadable", problem="The frame is too long to read.")
    body = chunk[_LEADING.match(chunk).end() :]  # type: ignore[union-attr]
    kind = next((k for token, k in TOKEN_KINDS.items() if body.startswith(token)), None)
    if kind is None:
        return Frame("unreadable", problem="The frame does not start with a frame kind.")
    body = body[len(KIND_TOKENS[kind]) :]
    head, sep, action = body.partition(ACTION_SEP)
    if not sep:
        return Frame("unreadable", problem=f"The {kind} frame has no source line.")
    if kind in ("call", "line"):
        source = _source(action)
        raw, ok = _loads(head)
        if not ok or not isinstance(raw, dict):
            return Frame(kind, source, problem="Its locals are not a JSON object.")
        names = list(raw.items())[:MAX_LOCALS]
        return Frame(
            kind,
            source,
            locals={str(k)[:MAX_NAME]: _string(v, MAX_VALUE) for k, v in names},
        )
    source_text, sep, value_text = action.partition(ARG_SEP)
    source = _source(source_text)
    if not sep:
        return Frame(kind, source, problem=f"The {kind} frame has no value.")
    value, ok = _loads(value_text.strip())
    return Frame(kind, source, value=_string(value if ok else value_text.strip(), MAX_VALUE))


def _source(text: str) -> str:
    text = text.rstrip("\r\n")
    if text.rstrip().endswith(MARKER.strip()):
        text = text.rstrip()[: -len(MARKER.strip())]
    return text.rstrip()[:MAX_SOURCE]


def trace_part(text: str) -> str:
    """The text after the prompt, if the prompt is there (a model may echo it, after the worked
    example's: the last one counts), from the first frame on (words before it are dropped)."""
    at = text.rfind(CONTEXT_START)
    if at >= 0:
        end = text.find(FRAME_SEP, at)
        text = "" if end < 0 else text[end + len(FRAME_SEP) :]
    return text[first_frame(text) :]


def first_frame(text: str) -> int:
    """Where the first frame's kind token is (the text's end when there is none)."""
    found = [at for token in TOKEN_KINDS if (at := text.find(token)) >= 0]
    return min(found, default=len(text))


def parse(text: str, source: str = "") -> Parsed:
    """The frames of a CWM-format text (a whole export, or a model's continuation of the
    prompt). Never raises; ``source``, the program, gives each frame its line number."""
    parsed = Parsed()
    if not isinstance(text, str):
        return parsed
    if len(text) > MAX_TEXT:
        text, parsed.cut = text[:MAX_TEXT], True
    body = trace_part(text)
    end = body.find(END)
    if end >= 0:
        body, parsed.ended = body[:end], True
    chunks = body.split(FRAME_SEP)
    parsed.unfinished = chunks.pop().strip()[:TAIL]
    if len(chunks) > MAX_FRAMES:
        chunks, parsed.cut = chunks[:MAX_FRAMES], True
    frames = [read_frame(chunk) for chunk in chunks if chunk.strip()]
    parsed.frames = place(frames, source) if source else frames
    return parsed


# --- line numbers ------------------------------------------------------------------------------


def _shape(source: str) -> tuple[dict[int, tuple[int, int]], dict[int, int]]:
    """Each function's first line (as a call reports it) -> the lines its body spans; each
    loop's first line -> its last. Parsed, never run."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}, {}
    scopes: dict[int, tuple[int, int]] = {}
    loops: dict[int, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            scopes.setdefault(first, (node.lineno, node.end_lineno or node.lineno))
        elif isinstance(node, ast.For | ast.AsyncFor | ast.While):
            loops[node.lineno] = node.end_lineno or node.lineno
    return scopes, loops


def place(frames: list[Frame], source: str) -> list[Frame]:
    """The frames with their line numbers (``Placer``)."""
    placer = Placer(source)
    return [placer.place(frame) for frame in frames]


class Placer:
    """Gives frames, one at a time and in order, their line numbers, found by their source text:
    among the program's lines with that text, those of the function the frame is in; of those,
    the innermost loop holding the previous frame's line (the loop's back edge), else the first
    at or after the previous frame's line, else the first."""

    def __init__(self, source: str) -> None:
        self.where: dict[str, list[int]] = {}
        for at, text in enumerate(source.splitlines(), start=1):
            self.where.setdefault(text.rstrip(), []).append(at)
        self.scopes, self.loops = _shape(source)
        self.stack: list[tuple[int, int] | None] = []
        self.last = 0
        self.pop = False

    def place(self, frame: Frame) -> Frame:
        if frame.kind == "unreadable":
            return frame
        if self.pop:
            self.pop = False
            if self.stack:
                self.stack.pop()
        candidates = self.where.get(frame.source.rstrip(), [])
        number: int | None
        if frame.kind == "call" or not self.stack:
            number = candidates[0] if candidates else None
            if frame.kind == "call":
                number = next((n for n in candidates if n in self.scopes), number)
            self.stack.append(self.scopes.get(number or -1))
        else:
            span = self.stack[-1]
            inside = [n for n in candidates if span is None or span[0] <= n <= span[1]]
            pool = inside or candidates
            last = self.last
            back = [n for n in pool if n < last <= self.loops.get(n, 0)]
            after = (n for n in pool if n >= last)
            number = max(back) if back else next(after, pool[0] if pool else None)
        if frame.kind == "return":
            self.pop = True
        if number is not None:
            self.last = number
        return Frame(frame.kind, frame.source, number, frame.locals, frame.value, frame.problem)


# --- resolving ".." and comparing --------------------------------------------------------------


def resolved(frames: list[Frame]) -> list[dict[str, str | None] | None]:
    """Each call or line frame's locals with ``".."`` replaced as the demo does (walking back to
    the last value given, stopping at a call or return frame); a placeholder with nothing to
    stand for stays None. None for the frames without locals."""
    out: list[dict[str, str | None] | None] = []
    for index, frame in enumerate(frames):
        if frame.locals is None:
            out.append(None)
            continue
        values: dict[str, str | None] = {}
        for name, value in frame.locals.items():
            if value != UNCHANGED:
                values[name] = value
                continue
            values[name] = None
            if frame.kind == "call":
                continue
            back = index - 1
            while back >= 0:
                before, earlier = frames[back], out[back]
                if before.locals is not None and earlier is not None and name in before.locals:
                    values[name] = earlier[name]  # given there, or resolved there already
                    break
                if before.kind in ("call", "return"):
                    break
                back -= 1
        out.append(values)
    return out


def _short(text: str | None) -> str:
    if text is None:
        return "nothing"
    return text if len(text) <= TAIL else text[: TAIL - 1] + "\u2026"


def _words(frame: Frame) -> str:
    at = f" at line {frame.line}" if frame.line is not None else ""
    if frame.kind == "unreadable":
        return "an unreadable frame"
    if frame.kind == "line":
        return (
            f"line {frame.line}" if frame.line is not None else f"the line `{_short(frame.source)}`"
        )
    article = "an" if frame.kind == "exception" else "a"
    return f"{article} {frame.kind}{at}"


def _divergence(
    kind: str,
    index: int,
    message: str,
    line: int | None,
    *,
    variable: str | None = None,
    expected: str | None = None,
    got: str | None = None,
) -> dict[str, Any]:
    return {
        "frame": index,
        "line": line,
        "kind": kind,
        "variable": variable,
        "expected": expected,
        "got": got,
        "message": f"Frame {index + 1}: {message}",
    }


def compare_frames(real: list[Frame], predicted: list[Frame]) -> dict[str, Any]:
    """The predicted frames against the real ones, in order: ``matched`` frames agree before
    the first divergence (None when all agree and neither has more). Kinds as in
    ``compare/trace.py``: ``control_flow`` (another kind of frame or line, a frame skipped or
    added, one unreadable), ``exception`` (an exception missed, invented or named otherwise, a
    return where one leaves), ``value`` (a local, or ``__return__``, differs by meaning)."""
    real_values, predicted_values = resolved(real), resolved(predicted)
    first: dict[str, Any] | None = None
    for index in range(max(len(real), len(predicted))):
        first = _differ(index, real, predicted, real_values, predicted_values)
        if first is not None:
            break
    matched = first["frame"] if first is not None else len(real)
    return {
        "frames": len(real),
        "predicted_frames": len(predicted),
        "matched": matched,
        "first_divergence": first,
        "full_match": first is None,
    }


def _differ(
    index: int,
    real: list[Frame],
    predicted: list[Frame],
    real_values: list[dict[str, str | None] | None],
    predicted_values: list[dict[str, str | None] | None],
) -> dict[str, Any] | None:
    r = real[index] if index < len(real) else None
    p = predicted[index] if index < len(predicted) else None
    if r is None:
        assert p is not None
        return _divergence(
            "control_flow", index, f"the real run has ended; the model adds {_words(p)}.", p.line,
            expected=None, got=_words(p),
        )  # fmt: skip
    if p is None or p.kind == "unreadable" or p.problem:
        why = "the model's trace has ended" if p is None else (p.problem or "it is unreadable")
        kind = "exception" if r.kind == "exception" else "control_flow"
        return _divergence(
            kind, index, f"the real run has {_words(r)}; {why[:1].lower()}{why[1:].rstrip('.')}.",
            r.line, expected=_words(r), got=None if p is None else _words(p),
        )  # fmt: skip
    if r.kind != p.kind:
        raising = "exception" in (r.kind, p.kind)
        return _divergence(
            "exception" if raising else "control_flow", index,
            f"the real run has {_words(r)}, the model {_words(p)}.", r.line,
            expected=_words(r), got=_words(p),
        )  # fmt: skip
    if r.source.rstrip() != p.source.rstrip():
        return _divergence(
            "control_flow", index,
            f"the real run is at `{_short(r.source.strip())}`, the model at "
            f"`{_short(p.source.strip())}`.", r.line,
            expected=r.source.strip(), got=p.source.strip(),
        )  # fmt: skip
    if r.kind == "exception":
        if not same_exception(r.value or "", p.value or ""):
            return _divergence(
                "exception", index,
                f"the exception is {_short(r.value)}; the model says {_short(p.value)}.", r.line,
                expected=r.value, got=p.value,
            )  # fmt: skip
        return None
    if r.kind == "return":
        if not same_repr(r.value, p.value):
            return _divergence(
                "value", index, f"the frame returns {_short(r.value)}; the model says "
                f"{_short(p.value)}.", r.line, variable="__return__", expected=r.value, got=p.value,
            )  # fmt: skip
        return None
    expected, got = real_values[index] or {}, predicted_values[index] or {}
    for name in [*expected, *(n for n in got if n not in expected)]:
        want, have = expected.get(name), got.get(name)
        if same_repr(want, have):
            continue
        if name not in expected:
            words = f"the model shows {name} = {_short(have)}, which the real run lacks."
        elif have is None:
            words = f"{name} is {_short(want)}, the model does not show it."
        else:
            words = f"{name} is {_short(want)}, the model says {_short(have)}."
        return _divergence("value", index, words, r.line, variable=name, expected=want, got=have)
    return None


def same_exception(real: str, predicted: str) -> bool:
    """The same exception: the same type, and the same message unless the model gave none."""
    real_type, _, real_message = real.partition(":")
    predicted_type, _, predicted_message = predicted.partition(":")
    if real_type.strip() != predicted_type.strip():
        return False
    return not predicted_message.strip() or predicted_message.strip() == real_message.strip()
