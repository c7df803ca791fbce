"""Chain of Code (arXiv 2312.04474) on the parent's side: the "LMulator" protocol.

``sandbox.run(source, call=..., lmulator=f)`` runs the program once, traced, in the sandbox. A
line Python cannot run (an undefined helper such as ``is_fruit(w)``, a semantic operation) pauses
it; ``f(LMRequest)`` is called here, in the worker (the sandbox never has network), and returns the
model's reply: the text of a Python dict literal, the variables that line changes (for a statement)
or ``{"__value__": v}`` (for a condition, an iterable or a returned value). The reply is read with
``ast.literal_eval`` only, never ``eval``, checked, and its ``repr`` goes back to the sandbox, which
applies it and goes on with the next statement. Steps the model produced carry ``"by": "lm"``.

No database and no Django here: the lmulator is any callable (the model client lives in
``playground.emulation``).
"""

from __future__ import annotations

import ast
import keyword
import logging
import re
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playground.sandbox.schema import (
    MAX_FUNC,
    MAX_LOCALS,
    MAX_NAME,
    MAX_VALUE,
    TraceInvalid,
    _int,
    _text,
)

log = logging.getLogger(__name__)

MAX_LM_CALLS = 64  # model calls per run (signed-in users; Limits.lm_calls)
MAX_LM_SECONDS = 600.0  # model time per run (each call's own timeout is the lmulator's business)
ANON_LM_CALLS = 16  # the same for runs of anonymous visitors
ANON_LM_SECONDS = 150.0
MAX_REPLY_CHARS = 20_000
MAX_REPLY_ENTRIES = 50
MAX_CODE_CHARS = 5_000
_MAX_ANSWER_REPR = 100_000  # what goes back into the sandbox (a repr can outgrow its literal)
_MAX_TARGETS = 50
_MAX_STATEMENT_LINES = 200
_KINDS = frozenset({"statement", "expression"})
_REQUEST_KEYS = frozenset({"line", "end", "func", "locals", "error", "kind", "targets", "step"})
_NEWLINES = re.compile(r"\r\n|\r|\n")  # the line breaks Python's tokenizer counts


@dataclass(frozen=True)
class LMRequest:
    """A line of the program that Python could not run, for the model to simulate."""

    line: int  # the program line (the first one of a statement on several lines)
    code: str  # its source text, stripped (from our own copy of the program, never the sandbox's)
    func: str  # the function it is in ("<module>" at top level)
    locals: dict[str, str]  # the frame's variables, bounded reprs
    error: str  # "NameError: name 'is_fruit' is not defined"
    kind: str  # "statement": reply with the variables the line changes;
    # "expression": a condition/iterable/return value could not be computed: reply {"__value__": v}
    targets: list[str]  # names the statement assigns (may be empty), a hint for the prompt


class LMulatorError(Exception):
    """Raised by an lmulator that cannot answer; its message is shown in the trace's error."""


class LMulatorStop(Exception):
    """Raised by an lmulator when the run must ask the model nothing more (its token budget is
    spent, a prompt cannot fit): the program stops there, with the message as its error."""


Lmulator = Callable[[LMRequest], str]


class ReplyInvalid(ValueError):
    """The model's reply cannot be used; the message says why (it ends up in the trace)."""


def parse_reply(text: Any, kind: str) -> dict[str, Any]:
    """The model's reply as a dict of variables, or ReplyInvalid. Literals only
    (``ast.literal_eval``), at most MAX_REPLY_CHARS characters and MAX_REPLY_ENTRIES names, each
    an identifier; a reply for an expression must hold ``__value__``."""
    if type(text) is not str:
        raise ReplyInvalid(f"the model's answer was not text but {type(text).__name__}")
    if len(text) > MAX_REPLY_CHARS:
        raise ReplyInvalid(
            f"the model's answer is {len(text):,} characters long; the limit is {MAX_REPLY_CHARS:,}"
        )
    stripped = text.strip()
    try:
        value = ast.literal_eval(stripped)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        value = None
    if type(value) is not dict:
        raise ReplyInvalid(f"the model's answer was not a dict literal: {stripped[:80]!r}")
    if len(value) > MAX_REPLY_ENTRIES:
        raise ReplyInvalid(
            f"the model's answer has {len(value)} entries; the limit is {MAX_REPLY_ENTRIES}"
        )
    for key in value:
        if type(key) is not str or not key.isidentifier() or keyword.iskeyword(key):
            raise ReplyInvalid(f"the model's answer has a key that is not a name: {key!r:.60}")
        if key.startswith("__") and key != "__value__":
            raise ReplyInvalid(f"the model's answer sets a reserved name: {key:.60}")
    if kind == "expression" and "__value__" not in value:
        raise ReplyInvalid("the model's answer has no '__value__' for the expression")
    try:
        back = repr(value)
        if len(back) > _MAX_ANSWER_REPR:
            raise ValueError("too long")
        ast.literal_eval(back)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ReplyInvalid(
            "the model's answer has a value that cannot be written back as a literal "
            "(inf, nan, a huge number...)"
        ) from None
    return value


class LMSession:
    """One coc run's dealings with the model: validates the sandbox's requests (untrusted: the
    program shares the runner's process and may forge them), calls the lmulator, counts calls
    and time. A forged request only makes us ask the model about the user's own program, at most
    ``max_calls`` times (MAX_LM_CALLS; ANON_LM_CALLS for anonymous runs) and ``max_seconds``
    long."""

    def __init__(
        self,
        lmulator: Lmulator,
        source: str,
        *,
        max_calls: int = MAX_LM_CALLS,
        max_seconds: float = MAX_LM_SECONDS,
    ) -> None:
        self.lmulator = lmulator
        self.max_calls = max_calls
        self.max_seconds = max_seconds
        self.lines = _NEWLINES.split(source)
        self.calls = 0
        self.seconds = 0.0
        self.requests = 0

    def request(
        self, raw: Any, steps: list[dict[str, Any]], count: int | None = None
    ) -> tuple[LMRequest, int]:
        """The validated request and the index of the step it pauses on (-1: none); TraceInvalid
        for anything malformed. ``steps``: those kept of the ``count`` received (the trace's size
        cap drops the rest)."""
        count = len(steps) if count is None else count
        self.requests += 1
        if self.requests > self.max_calls + 1:  # the runner stops asking after a "stop" reply
            raise TraceInvalid("more model requests than the limit")
        if type(raw) is not dict or not set(raw) <= _REQUEST_KEYS:
            raise TraceInvalid("a model request is not an object with the known keys")
        line = _int(raw.get("line"), "line", low=1, high=len(self.lines))
        end = _int(
            raw.get("end", line),
            "end",
            low=line,
            high=min(len(self.lines), line + _MAX_STATEMENT_LINES),
        )
        kind = raw.get("kind")
        if type(kind) is not str or kind not in _KINDS:
            raise TraceInvalid("a model request has an unknown kind")
        locals_ = raw.get("locals", {})
        if type(locals_) is not dict or len(locals_) > MAX_LOCALS:
            raise TraceInvalid("a model request has bad locals")
        targets = raw.get("targets", [])
        if type(targets) is not list or len(targets) > _MAX_TARGETS:
            raise TraceInvalid("a model request has bad targets")
        for target in targets:
            if type(target) is not str or len(target) > MAX_NAME or not target.isidentifier():
                raise TraceInvalid("a model request has a bad target")
        step = _int(raw.get("step", -1), "step", low=-1, high=count - 1)
        if 0 <= step < len(steps) and steps[step].get("event", "line") != "line":
            raise TraceInvalid("a model request points at a step that is not a line")
        code = textwrap.dedent("\n".join(self.lines[line - 1 : end])).strip()
        request = LMRequest(
            line=line,
            code=code[:MAX_CODE_CHARS],
            func=_text(raw.get("func", ""), MAX_FUNC, "func"),
            locals={
                _text(k, MAX_NAME, "a variable name"): _text(v, MAX_VALUE, "a value")
                for k, v in locals_.items()
            },
            error=_text(raw.get("error", ""), 1000, "error"),
            kind=kind,
            targets=list(targets),
        )
        return request, step

    def answer(self, request: LMRequest) -> tuple[str, str]:
        """``("ok", repr of the validated dict)``, ``("error", why)`` or ``("stop", why)``."""
        if self.calls >= self.max_calls:
            return "stop", f"the run reached its limit of {self.max_calls} model calls"
        if self.seconds >= self.max_seconds:
            return "stop", f"the run used up its {self.max_seconds:g} s of model time"
        self.calls += 1
        t0 = time.monotonic()
        try:
            reply = self.lmulator(request)
        except LMulatorError as exc:
            return "error", f"the model could not answer: {str(exc)[:300]}"
        except LMulatorStop as exc:
            return "stop", str(exc)[:500]
        except Exception as exc:
            log.exception("the lmulator failed")
            return "error", f"the model call failed: {type(exc).__name__}: {str(exc)[:200]}"
        finally:
            self.seconds += time.monotonic() - t0
        try:
            value = parse_reply(reply, request.kind)
        except ReplyInvalid as exc:
            return "error", str(exc)
        return "ok", repr(value)

    def meta(self) -> dict[str, Any]:
        """What a coc trace says about itself (make_trace's keywords)."""
        return {"source": "emulated", "method": "coc", "lm_calls": self.calls}


def encode_reply(status: str, text: str) -> bytes:
    """A reply for the runner: two length-prefixed fields."""
    out = bytearray()
    for field in (status, text):
        data = field.encode("utf-8", "surrogatepass")
        out += f"{len(data)}:".encode() + data
    return bytes(out)
