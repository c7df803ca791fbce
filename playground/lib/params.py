"""Reading numbers from query strings and form fields that anyone can type or forge.

``str.isdigit()`` is not a test for ``int()``: it accepts "²" and "①", which ``int()``
refuses, and ``int()`` accepts Arabic-Indic and fullwidth digits, " 12 ", "+12", "1_000".
Ids and counts in this product are plain ASCII decimal numbers, so that is all these helpers
accept: anything else is "no number", which the caller turns into its default, a 404 or a
message."""

from __future__ import annotations

# PostgreSQL's bigint holds 19 digits; 18 keep every id and count in range.
MAX_DIGITS = 18


def whole_number(raw: object, *, max_digits: int = MAX_DIGITS) -> int | None:
    """The value of ``raw`` when it is a plain non-negative decimal number (ASCII digits only,
    at most ``max_digits`` of them), else None."""
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def object_id(raw: object) -> int | None:
    """A database id from a query or a form: a whole number from 1 up, else None."""
    value = whole_number(raw)
    return value if value else None
