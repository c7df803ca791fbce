"""The README's table of limits is the table in the code, and docs/SECURITY.md lists every route
(pages, the API, the websocket, the admin) with its guard and its limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.urls import URLResolver, get_resolver

from playground.lib import ratelimits
from playground.streaming.routing import websocket_urlpatterns

ROOT = Path(__file__).resolve().parents[2]


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else None]


def test_the_readme_lists_every_limit_with_its_default() -> None:
    section = _section((ROOT / "README.md").read_text(), "### Limits")
    rows = re.findall(r"^\| `([a-z_.]+)` \| `([^`]+)` \| (.+) \|$", section, re.MULTILINE)
    documented = {name: value for name, value, _ in rows}
    written = {name: str(value) for name, value in ratelimits.DEFAULTS.items()}
    assert documented == written
    assert all(len(words) > 10 for _, _, words in rows), "each limit says what it counts"


def _routes(patterns: list[Any], prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def _shape(route: str) -> str:
    """A route with its parameters blanked: ``courses/<int:course_id>/`` -> ``courses/<>``."""
    return re.sub(r"<[^>]*>", "<>", route).strip("/")


def test_every_route_has_a_row_in_the_security_page() -> None:
    section = _section(
        (ROOT / "docs" / "SECURITY.md").read_text(), "## Every endpoint: who may use it"
    )
    rows = [line for line in section.splitlines() if line.startswith("| `/")]
    documented = set()
    for row in rows:
        first, methods, guard, limit = (cell.strip() for cell in row.strip("|").split(" | ", 3))
        assert all((methods, guard, limit)), row
        documented |= {_shape(path) for path in re.findall(r"`(/[^`]*)`", first)}
    routes = {*_routes(get_resolver().url_patterns), *_routes(websocket_urlpatterns)}
    # The admin's own pages are one row (Django's admin and its model permissions), apart from
    # its login, which has the site's login limits.
    shapes = {_shape(r) for r in routes if not r.startswith("admin/") or r == "admin/login/"}
    assert "admin" in documented
    assert shapes - documented == set(), "routes without a row in docs/SECURITY.md"
    assert documented - shapes - {"admin"} == set(), "rows of routes that do not exist"
