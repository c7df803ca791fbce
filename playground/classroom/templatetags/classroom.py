"""``{{ item|answer_key }}``: where an item's answer key stands (``keys.KeyStatus``: state,
label, ready, problems, warnings), for the staff's item list and item page and the student's
item page. A template filter, not a property of ``Item``: ``keys`` reads the models, so the
models cannot ask ``keys`` without a circle."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import template
from django.utils.html import format_html

from playground.classroom import zones
from playground.classroom.keys import KeyStatus, key_status
from playground.classroom.models import Item

register = template.Library()


@register.filter
def answer_key(item: Item) -> KeyStatus:
    return key_status(item)


@register.simple_tag(takes_context=True)
def your_time(context: Any, when: datetime | None) -> str:
    """`` (your time: 28 Mar 2026, 21:30 EDT)`` after a course date, when the visitor's own zone
    (their browser's, ``zones.viewer_zone``) reads it differently from the course's; else ""."""
    request = context.get("request")
    theirs = zones.also_yours(when, getattr(request, "viewer_zone", None))
    if not theirs:
        return ""
    return format_html(' <span class="muted your-time">(your time: {})</span>', theirs)
