"""Trace schema v1, and validation of what comes back from the sandbox (untrusted: the user's
program shares a process with the tracer and can print anything on its descriptor).

A step is ``{"i", "line", "func"}`` plus, only when they differ from their default:

- ``event``: ``call``, ``return`` or ``exception`` (default ``line``);
- ``locals``: the variables that changed, name -> bounded repr (default ``{}``);
- ``stdout``: what was printed since the previous step (default ``""``);
- ``by``: ``"lm"`` for a step a model produced (default ``"python"``);
- ``exception``: ``"Type: message"``, on exception events.

Read them with ``step.get(name, default)``. Leaving defaults out keeps a trace at about a
quarter of the size of a Python Tutor style snapshot of every variable at every step.

``stats`` holds ``steps`` (those in the trace) and ``wall_ms``; ``truncated`` when the program
ran on untraced past its step limit; ``capped`` and ``total_steps`` when the trace reached its
size limit (``Limits.max_trace_bytes``): the steps after the first ``steps`` were dropped.
"""

from __future__ import annotations

import re
from typing import Any

STATUSES = frozenset(
    {
        "ok",
        "exception",
        "step_limit",
        "time_limit",
        "memory_limit",
        "output_limit",
        "crash",
        "parse_error",
        "cancelled",
    }
)
EVENTS = frozenset({"call", "line", "return", "exception"})
MAX_NAME = 100
MAX_VALUE = 300
MAX_RESULT = 10_000
MAX_LOCALS = 200
MAX_FUNC = 200


class TraceInvalid(ValueError):
    """The sandbox answered something that is not a trace."""


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Line breaks and other control characters, for text that goes into a log line or a one-line
# message (C0, DEL, C1, and Unicode's line and paragraph separators).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def storable(text: str) -> str:
    """PostgreSQL's jsonb refuses NUL and lone surrogates: show them as visible replacements."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda m: "\u2400" if m.group() == "\x00" else "\ufffd", text)


def one_line(text: str) -> str:
    """``text`` with every run of control characters (newlines included) made one space."""
    return _CONTROL.sub(" ", text).strip()


def stored_size(step: dict[str, Any]) -> int:
    """About the characters a validated step takes in the stored trace's JSON (as json.dumps
    writes it; more where its strings need escapes)."""
    size = 48 + len(step["func"])
    if "event" in step:
        size += 20
    if "locals" in step:
        size += 14 + sum(len(name) + len(value) + 8 for name, value in step["locals"].items())
    for key in ("stdout", "exception", "by"):
        if key in step:
            size += 16 + len(step[key])
    return size


def _text(value: Any, limit: int, what: str) -> str:
    if type(value) is not str:
        raise TraceInvalid(f"{what} is not a string")
    return storable(value[:limit])


def _int(value: Any, what: str, *, low: int = 0, high: int = 10**9) -> int:
    if type(value) is not int or not low <= value <= high:
        raise TraceInvalid(f"{what} is not an integer in range")
    return value


def clean_step(raw: Any, index: int, *, max_stdout: int) -> dict[str, Any]:
    """A validated copy of one step: known keys only, types checked, every string capped."""
    if type(raw) is not dict:
        raise TraceInvalid("a step is not an object")
    if raw.get("i") != index:
        raise TraceInvalid(f"step {index} is out of sequence")
    event = raw.get("event", "line")
    if type(event) is not str or event not in EVENTS:
        raise TraceInvalid(f"step {index} has an unknown event")
    locals_ = raw.get("locals", {})
    if type(locals_) is not dict or len(locals_) > MAX_LOCALS:
        raise TraceInvalid(f"step {index} has bad locals")
    step: dict[str, Any] = {
        "i": index,
        "line": _int(raw.get("line"), "line", high=1_000_000),
        "func": _text(raw.get("func", ""), MAX_FUNC, "func"),
    }
    if event != "line":
        step["event"] = event
    if locals_:
        step["locals"] = {
            _text(k, MAX_NAME, "a variable name"): _text(v, MAX_VALUE, "a value")
            for k, v in locals_.items()
        }
    stdout = _text(raw.get("stdout", ""), max_stdout, "stdout")
    if stdout:
        step["stdout"] = stdout
    if raw.get("by", "python") != "python":
        step["by"] = "lm"
    if "exception" in raw:
        step["exception"] = _text(raw["exception"], 1000, "exception")
    return step


def clean_error(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if type(raw) is not dict:
        raise TraceInvalid("error is not an object")
    line = raw.get("line")
    return {
        "type": _text(raw.get("type", ""), 100, "error type"),
        "message": _text(raw.get("message", ""), 1000, "error message"),
        "line": line if type(line) is int and 0 <= line <= 1_000_000 else None,
    }


def make_trace(
    *,
    status: str,
    steps: list[dict[str, Any]],
    stdout: str = "",
    result: str | None = None,
    error: dict[str, Any] | None = None,
    wall_ms: float = 0.0,
    source: str = "real",
    method: str = "real",
    lm_calls: int | None = None,
    truncated: bool = False,
    total_steps: int | None = None,
) -> dict[str, Any]:
    """A trace in schema v1. ``total_steps``: the steps the program made when more than the
    ``steps`` kept (the trace was capped in size: ``stats.capped``, ``stats.total_steps``)."""
    assert status in STATUSES
    stats: dict[str, Any] = {"steps": len(steps), "wall_ms": round(wall_ms, 2)}
    if lm_calls is not None:
        stats["lm_calls"] = lm_calls
    if truncated:  # the program ran on, untraced, past the recorded steps
        stats["truncated"] = True
    if total_steps is not None and total_steps > len(steps):  # steps past the size cap dropped
        stats["capped"] = True
        stats["total_steps"] = total_steps
    return {
        "schema": 1,
        "source": source,
        "method": method,
        "status": status,
        "steps": steps,
        "stdout": stdout,
        "result": result,
        "error": error,
        "stats": stats,
    }
