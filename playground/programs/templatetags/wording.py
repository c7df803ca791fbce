"""``{{ n|counted:"line" }}``: a number and its noun, singular for one ("1 line", "2 lines")."""

from __future__ import annotations

from typing import Any

from django import template

from playground.lib import wording

register = template.Library()


@register.filter
def counted(n: Any, noun: str) -> str:
    return wording.counted(n, noun)
