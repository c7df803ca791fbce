"""Time zones of a course: its dates are typed and shown in the course's zone (a zoneinfo name,
or the site's when none is set), and a student's own zone, sent by the page (the browser's,
``static/js/local-zone.js``), is shown beside them where it reads differently. Pages of a course
render inside ``timezone.override(course zone)``, so forms (``forms.LocalDateTimeField``),
messages (``visibility.site_time``) and templates' ``|date`` all use it; a daylight-saving change
is zoneinfo's: a time that does not exist or is ambiguous that day is refused, never guessed."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.utils import dateformat, timezone

COOKIE = "pg_tz"  # the browser's zone, as local-zone.js writes it
MAX_NAME = 64


@functools.cache
def names() -> frozenset[str]:
    """Every zone name zoneinfo knows (read once)."""
    return frozenset(available_timezones())


def zone_for(name: str | None) -> tzinfo:
    """The zone of this name, or the site's for a blank or unknown one."""
    if name and len(name) <= MAX_NAME and name in names():
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return timezone.get_default_timezone()


def viewer_zone(request: Any) -> tzinfo | None:
    """The zone the visitor's browser said it is in (a cookie), if it is a real zone name."""
    name = request.COOKIES.get(COOKIE, "")
    if not name or len(name) > MAX_NAME or name not in names():
        return None
    return ZoneInfo(name)


SHAPE = "j M Y, H:i T"


def local(when: datetime, zone: tzinfo) -> str:
    return dateformat.format(timezone.localtime(when, zone), SHAPE)


def also_yours(when: datetime | None, viewer: tzinfo | None) -> str:
    """``when`` in the viewer's own zone, or "" when it reads the same as in the active zone."""
    if when is None or viewer is None:
        return ""
    theirs = local(when, viewer)
    return "" if theirs == local(when, timezone.get_current_timezone()) else theirs


def in_course_zone(view: Callable[..., Any]) -> Callable[..., Any]:
    """Run a course page's view (its URL has ``course_id``) in the course's time zone, with the
    visitor's own zone on ``request.viewer_zone``."""

    @functools.wraps(view)
    def wrapped(request: Any, *args: Any, **kwargs: Any) -> Any:
        from playground.classroom.models import Course

        name = (
            Course.objects.filter(pk=kwargs.get("course_id") or 0)
            .values_list("time_zone", flat=True)
            .first()
        )
        request.viewer_zone = viewer_zone(request)
        with timezone.override(zone_for(name)):
            return view(request, *args, **kwargs)

    return wrapped
