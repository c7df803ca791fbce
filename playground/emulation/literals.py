"""Reading a model's answer as a Python literal (never anything else) and the verdict's equality
rule, without running anything. Its own file because every reader of an answer shares it: the
method modules, judging, classroom grading and benchmark scoring.

Two equality rules on purpose: ``same_value`` here decides verdicts and scores, exactly as the
benchmarks do (CRUXEval checks ``assert f(x) == prediction`` in Python); ``compare/reprs.py``'s
``same_repr`` lets floats differ by a tolerance and only serves the step-by-step comparison, a
diagnostic. The run page says "close, not equal" where only the second holds."""

from __future__ import annotations

import ast
import math
from typing import Any

_MAX_LITERAL = 20_000


class NotALiteral(ValueError):
    """The text is not a Python literal (we never evaluate anything else)."""


def parse_literal(text: str) -> Any:
    """``ast.literal_eval`` with a size cap; raises NotALiteral with the reason."""
    text = text.strip()
    if not text:
        raise NotALiteral("the answer is empty")
    if len(text) > _MAX_LITERAL:
        raise NotALiteral(f"the answer is longer than {_MAX_LITERAL:,} characters")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise NotALiteral(f"{text[:80]!r} is not a Python literal ({type(exc).__name__})") from None


def same_value(predicted: Any, actual: Any) -> bool:
    """The verdict's rule: equal as Python's == says (1 == 1.0, but [1] != (1,), and
    0.3 != 0.30000000000000004), as CRUXEval's ``assert f(x) == prediction`` scores; no
    tolerance, unlike the comparison's ``compare.same_repr``. No user code is involved: both
    sides come from literal_eval, so only built-in types meet here."""
    try:
        return bool(predicted == actual)
    except RecursionError:
        return False


def repeats_input(prediction_text: str, call: str) -> bool:
    """LiveCodeBench's leakage rule: the prediction only restates an argument of the call."""
    try:
        node = ast.parse(call.strip(), mode="eval").body
    except SyntaxError:
        return False
    if not isinstance(node, ast.Call):
        return False
    prediction = " ".join(prediction_text.split())
    for arg in [*node.args, *(k.value for k in node.keywords)]:
        source = ast.get_source_segment(call.strip(), arg)
        if source and " ".join(source.split()) == prediction:
            return True
        try:
            if parse_literal(prediction) == ast.literal_eval(arg):
                return True
        except (NotALiteral, ValueError, SyntaxError, TypeError):
            continue
    return False


def literal_source(value: Any) -> str:
    """Python source that evaluates back to ``value`` (from ``parse_literal``): its ``repr``,
    except where a repr would not read back (an infinite float, an int past the digit limit)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if value is Ellipsis:
        return "..."
    if isinstance(value, int):
        try:
            return repr(value)
        except ValueError:  # more decimal digits than sys.get_int_max_str_digits() allows
            return hex(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "1e999" if value > 0 else "-1e999"
        return repr(value)
    if isinstance(value, complex):
        if math.isinf(value.real) or math.isinf(value.imag):
            return f"complex({literal_source(value.real)}, {literal_source(value.imag)})"
        return repr(value)
    if isinstance(value, tuple):
        inner = ", ".join(literal_source(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(literal_source(v) for v in value) + "]"
    if isinstance(value, set):
        return "{" + ", ".join(literal_source(v) for v in value) + "}" if value else "set()"
    if isinstance(value, dict):
        items = (f"{literal_source(k)}: {literal_source(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return repr(value)  # str, bytes
