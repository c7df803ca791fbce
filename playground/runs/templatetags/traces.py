"""Filters for showing a trace: where its exception was raised, and its error in words."""

from __future__ import annotations

from typing import Any

from django import template

from playground.runs.errors import describe_error
from playground.sandbox.schema import raise_step as _raise_step

register = template.Library()


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
    """A trace's error as one phrase (``playground.runs.errors.describe_error``):
    ``KeyError: 'missing' (line 2)``, ``MemoryError: the program ran out of memory (...)``; the
    sandbox's own errors (a time limit...) by their message alone, so that "Stopped: time limit
    reached" is not followed by "TimeLimit: Stopped..."."""
    return describe_error(error) if isinstance(error, dict) else ""
