"""``{{ item|answer_key }}``: where an item's answer key stands (``keys.KeyStatus``: state,
label, ready, problems, warnings), for the staff's item list and item page and the student's
item page. A template filter, not a property of ``Item``: ``keys`` reads the models, so the
models cannot ask ``keys`` without a circle."""

from __future__ import annotations

from django import template

from playground.classroom.keys import KeyStatus, key_status
from playground.classroom.models import Item

register = template.Library()


@register.filter
def answer_key(item: Item) -> KeyStatus:
    return key_status(item)
