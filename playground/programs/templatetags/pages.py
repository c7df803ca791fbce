"""``{% for n in page|page_numbers %}``: the page numbers a pager shows (the first, the last and
two either side of the current one; "…" where pages are left out)."""

from __future__ import annotations

from collections.abc import Iterator

from django import template
from django.core.paginator import Page

register = template.Library()


@register.filter
def page_numbers(page: Page) -> Iterator[int | str]:
    return page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1)
