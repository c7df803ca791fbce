"""How a program's exception reads on a page and in the terminal (pure, no Django)."""

from __future__ import annotations

from typing import Any

# What a built-in exception raised without a message means, in words: "MemoryError:" alone
# (CPython raises it bare when an allocation fails) tells a learner nothing.
WITHOUT_MESSAGE = {
    "MemoryError": "the program ran out of memory (the sandbox limits how much it may use)",
    "AssertionError": "an assert statement was false",
    "StopIteration": "next() was called on an iterator that had nothing left",
    "KeyboardInterrupt": "the program was interrupted",
}

# Errors the sandbox reports in its own words: the type is a label, not a Python exception.
SANDBOX_ERRORS = frozenset({"TimeLimit", "OutputLimit", "LimitError", "Crash", "TraceInvalid"})


def describe_error(error: Any) -> str:
    """``KeyError: 'missing' (line 2)``; an exception without a message reads
    ``MemoryError: the program ran out of memory (...) (line 1)`` or just ``ValueError (line 3)``,
    never a dangling colon. Anything malformed reads as an unknown error."""
    if not isinstance(error, dict):
        return "an unknown error"
    if error.get("type") in SANDBOX_ERRORS:
        # The sandbox's own words ("Stopped: time limit reached..."): the type is a label.
        text = str(error.get("message") or "").strip() or "the sandbox stopped the program"
        if type(error.get("line")) is int:
            text = f"{text.rstrip('.')}; it was at line {error['line']}."
        return text
    kind = str(error.get("type") or "Exception")
    message = str(error.get("message") or "").strip()
    line = error.get("line")
    text = f"{kind}: {message or WITHOUT_MESSAGE.get(kind, '')}".rstrip(": ")
    return f"{text} (line {line})" if type(line) is int else text
