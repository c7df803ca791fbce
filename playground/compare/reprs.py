"""Comparing two value reprs by meaning, never by evaluating anything but literals: the rule of
the step-by-step comparison of a model's trace with the real one (variables, results). Its own
file because the comparison and judging share it.

It is not the verdict's rule, on purpose. The comparison is a diagnostic: it shows where a written
trace departs from the real run, and a float written with fewer digits (``0.3`` for
``0.30000000000000004``) is not where a trace goes wrong. Verdicts and scores use
``emulation/literals.same_value``, exact ``==`` as the benchmarks define it (CRUXEval's
``assert f(x) == prediction``); where only this rule holds, the run page says the result is
"close, not equal" and the verdict stays wrong.

Both sides are read with ``ast.literal_eval`` (capped at 20,000 characters). Two literals are
equal as Python compares them (``1 == 1.0``, set and dict order ignored, ``[1] != (1,)``), except
that floats, also inside lists, tuples and dict values, are equal within a relative 1e-6 or an
absolute 1e-9. A side that is not a literal (``abc`` written for ``'abc'``, ``<function f>``) is
compared as stripped text: against the other side's string value when that one reads as a str,
else against the other side's stripped text.
"""

from __future__ import annotations

import ast
import math
from typing import Any

MAX_LITERAL = 20_000
REL_TOL = 1e-6
ABS_TOL = 1e-9

_NOT_LITERAL = object()
_NUMBER = (int, float, complex)


def _parse(text: str) -> Any:
    """The literal ``text`` stands for, or ``_NOT_LITERAL``."""
    if len(text) > MAX_LITERAL or not text:
        return _NOT_LITERAL
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NOT_LITERAL


def _close(a: Any, b: Any) -> bool:
    """Numbers equal as Python says, or within the float tolerance when a float is involved."""
    if a == b:
        return True
    if isinstance(a, int) and isinstance(b, int):
        return False
    try:
        if isinstance(a, complex) or isinstance(b, complex):
            return abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    except (OverflowError, TypeError, ValueError):
        return False


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, _NUMBER) and isinstance(b, _NUMBER):
        return _close(a, b)
    both_lists = isinstance(a, list) and isinstance(b, list)
    if both_lists or (isinstance(a, tuple) and isinstance(b, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return len(a) == len(b) and all(key in b and _equal(v, b[key]) for key, v in a.items())
    return bool(a == b)


def same_repr(expected: str | None, got: str | None) -> bool:
    """Whether two reprs mean the same value for the comparison (literals compared as Python
    would, floats within a tolerance; text compared when one side is not a literal). None only
    equals None. Never a verdict: see the module's docstring."""
    if expected is None or got is None:
        return expected is None and got is None
    if not isinstance(expected, str):
        expected = str(expected)
    if not isinstance(got, str):
        got = str(got)
    left, right = expected.strip(), got.strip()
    if left == right:
        return True
    a, b = _parse(left), _parse(right)
    try:
        if a is not _NOT_LITERAL and b is not _NOT_LITERAL:
            return _equal(a, b)
    except RecursionError:
        return False
    if isinstance(a, str):
        return right == a
    if isinstance(b, str):
        return left == b
    return False
