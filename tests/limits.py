"""Helpers for the tests of one limit: the public table with that limit lowered, a client
address no other test counts under, and the checks every refusal must pass."""

from __future__ import annotations

import html
import itertools
import re
from typing import Any

from playground.lib import ratelimits

_ADDRESSES = itertools.count(1)


def public(limits: dict[str, str]) -> dict[str, str | int]:
    """The public table (what a fresh site runs under) with ``limits`` lowered."""
    return ratelimits.table("public", limits)


def fresh_address() -> str:
    """An address of TEST-NET-2 (198.51.100.0/24 and beyond) used by one test only."""
    n = next(_ADDRESSES)
    return f"198.{18 + n // 62500}.{n // 250 % 250}.{n % 250 + 1}"


def text(response: Any) -> str:
    """The page's text, tags removed and entities decoded, spaces collapsed."""
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


def assert_refused(response: Any, words: str) -> str:
    """A 429 with a usable ``Retry-After`` whose page says ``words``; returns the page text."""
    assert response.status_code == 429, (response.status_code, text(response)[:500])
    assert 1 <= int(response["Retry-After"]) <= 86_400
    shown = text(response)
    assert words in shown, shown[:1000]
    return shown
