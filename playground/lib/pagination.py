"""One way to read ``?page=`` on every list: a page number nobody would mean (zero, negative, past
the end, not a number) never silently shows the last page."""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

from playground.lib.params import MAX_DIGITS


def page_of(request: HttpRequest, items: Any, per_page: int) -> Page:
    """The page of ``items`` that ``?page=`` asks for: the first page for a missing, zero,
    negative or malformed number; the last page, with a ``notice`` saying so, for a number past
    the end (``page.notice`` is "" otherwise)."""
    paginator = Paginator(items, per_page)
    text = request.GET.get("page", "").strip()
    number, notice = 1, ""
    if text.isascii() and text.isdigit():
        last = paginator.num_pages
        if len(text) > MAX_DIGITS or int(text) > last:
            number = last
            notice = f"There is no page {_shown(text)}: the last is page {last:,}, shown here."
        elif int(text) >= 1:
            number = int(text)
        else:
            notice = f"There is no page {_shown(text)}: this is page 1."
    elif text:
        notice = f"There is no page {_shown(text)}: this is page 1."
    page = paginator.page(number)
    page.notice = notice  # type: ignore[attr-defined]
    return page


def _shown(raw: str) -> str:
    """The page number as typed, short enough to quote (the template escapes it)."""
    text = " ".join(raw.split())
    return f"“{text[:20]}…”" if len(text) > 20 else f"“{text}”"
