"""CSV cells that a spreadsheet shows as text, never runs as a formula."""

from __future__ import annotations

# What spreadsheets read as the start of a formula (and tab/CR, which some strip first).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """A cell a spreadsheet shows as text: one that starts like a formula gets a leading quote
    (usernames, item titles and model predictions are typed by people or models)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text
