"""``{% lti_linked course as linked %}``: whether the course is linked to an LMS course, for the
classroom's manage page to offer the page of grades sent back (one indexed query)."""

from __future__ import annotations

from typing import Any

from django import template

from playground.lti.models import LtiContext

register = template.Library()


@register.simple_tag
def lti_linked(course: Any) -> bool:
    pk = getattr(course, "pk", None)
    return pk is not None and LtiContext.objects.filter(course_id=pk).exists()
