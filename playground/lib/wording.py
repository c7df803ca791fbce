"""Numbers with their nouns, the way people write them: "1 line", "2 lines", "1,000 steps"."""

from __future__ import annotations

from typing import Any

from django.contrib.humanize.templatetags.humanize import intcomma


def counted(n: Any, noun: str) -> str:
    """``noun`` is "line" (the plural adds s) or "singular,plural" ("entry,entries")."""
    singular, _, plural = noun.partition(",")
    plural = plural or f"{singular}s"
    try:
        value = int(n)
    except (TypeError, ValueError):
        return f"{n} {plural}"
    return f"{intcomma(value)} {singular if value == 1 else plural}"
