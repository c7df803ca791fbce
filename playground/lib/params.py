"""Reading numbers from query strings and form fields that anyone can type or forge.

``str.isdigit()`` is not a test for ``int()``: it accepts "²" and "①", which ``int()``
refuses, and ``int()`` accepts Arabic-Indic and fullwidth digits, " 12 ", "+12", "1_000".
Ids and counts in this product are plain ASCII decimal numbers, so that is all these helpers
accept: anything else is "no number", which the caller turns into its default, a 404 or a
message."""

from __future__ import annotations

import re
from typing import Any

from django import forms

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


class WholeNumberField(forms.IntegerField):
    """A form's whole number, read as :func:`whole_number` reads one: Django's own field would
    take Arabic-Indic or fullwidth digits, "+5" and "1_0" (and call them numbers)."""

    def to_python(self, value: Any) -> int | None:
        text = value.strip() if isinstance(value, str) else None
        if text and whole_number(text.removeprefix("-")) is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        result: int | None = super().to_python(value)
        return result


_DECIMAL = re.compile(r"-?(?:[0-9]{1,15}(?:\.[0-9]{0,9})?|\.[0-9]{1,9})")


class DecimalNumberField(forms.FloatField):
    """A form's number with an optional fraction, in ASCII decimals only (``float()`` would
    also take other scripts' digits, "1e3", "inf" and "nan")."""

    def to_python(self, value: Any) -> float | None:  # type: ignore[override]
        text = value.strip() if isinstance(value, str) else None
        if text and not _DECIMAL.fullmatch(text):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        result: float | None = super().to_python(value)
        return result
