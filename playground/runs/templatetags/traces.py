"""Filters for showing a trace: where its exception was raised, and its error in words."""

from __future__ import annotations

from typing import Any

from django import template

from playground.sandbox.schema import raise_step as _raise_step

register = template.Library()

# Errors the sandbox reports in its own words: the type is a label, not a Python exception.
_OWN_ERRORS = frozenset({"TimeLimit", "OutputLimit", "LimitError", "Crash", "TraceInvalid"})


@register.filter
def raise_step(trace: Any) -> int | str:
    """The index of the step where the exception that ended the run was raised ("" when the
    run did not end with one), for the viewer's "jump to the exception"."""
    if not isinstance(trace, dict) or trace.get("status") not in ("exception", "memory_limit"):
        return ""
    steps = trace.get("steps")
    at = _raise_step(steps) if isinstance(steps, list) else None
    return "" if at is None else at


@register.filter
def error_words(error: Any) -> str:
    """A trace's error as one phrase: ``KeyError: 'missing' (line 2)``; ``MemoryError (line 1)``
    without an empty message; the sandbox's own errors (a time limit...) by their message
    alone, so that "Stopped: time limit reached" is not followed by "TimeLimit: Stopped..."."""
    if not isinstance(error, dict):
        return ""
    kind, message, line = error.get("type") or "", error.get("message") or "", error.get("line")
    if kind in _OWN_ERRORS:
        text = str(message)
        if type(line) is int:
            text = f"{text.rstrip('.')}; it was at line {line}."
        return text
    text = f"{kind}: {message}" if message else str(kind)
    if type(line) is int:
        text += f" (line {line})"
    return text
