"""Pager links keep the page's other parameters and carry one "?": on 3103616 they read
"??dataset=user&page=2" (Django's querystring tag already starts with "?"), so the next page of
a library tab, or of a filtered submissions list, lost its tab or its filter. The pager now also
offers the first, the last and nearby page numbers."""

from __future__ import annotations

import html
import re

import pytest
from django.conf import settings
from django.test import Client

from playground.classroom.models import Item, Mode, Submission
from playground.programs.models import Dataset, Program
from tests.classroom.student_world import assignment, client_for, course_world, library_program

pytestmark = pytest.mark.django_db


def _links(page: str) -> list[str]:
    nav = page[page.index('aria-label="Pages"') :]
    nav = nav[: nav.index("</nav>")]
    return [html.unescape(href) for href in re.findall(r'href="([^"]*)"', nav)]


def test_library_pager_keeps_the_tab_and_offers_page_numbers(client: Client) -> None:
    size = settings.PLAYGROUND_PAGE_SIZE
    Program.objects.bulk_create(
        Program(title=f"P{n}", source="x = 1\n", dataset=Dataset.USER, is_public=True)
        for n in range(6 * size)
    )
    page = client.get("/library/?dataset=user&page=3").content.decode()
    links = _links(page)
    assert links == [
        "?dataset=user&page=1",  # « First
        "?dataset=user&page=2",  # ← Previous
        "?dataset=user&page=1",
        "?dataset=user&page=2",
        "?dataset=user&page=4",
        "?dataset=user&page=5",
        "?dataset=user&page=6",
        "?dataset=user&page=4",  # Next →
        "?dataset=user&page=6",  # Last »
    ]
    assert '<span class="current" aria-current="page">3</span>' in page
    assert "Page 3 of 6 · 150 items" in page
    # The library loads pages in place; the same links go there without JavaScript.
    assert 'hx-get="?dataset=user&amp;page=4"' in page
    second = client.get("/library/?dataset=user&page=2").content.decode()
    assert "« First" in second
    assert "Last »" in second


def test_submissions_pager_keeps_the_student_filter() -> None:
    w = course_world()
    item = Item.objects.create(assignment=assignment(w.course), mode=Mode.OUTPUT,
                               program=library_program())  # fmt: skip
    Submission.objects.bulk_create(
        Submission(item=item, student=w.s1, attempt=n + 1, answer="'x'") for n in range(101)
    )
    url = f"/courses/{w.course.pk}/assignments/{item.assignment_id}/submissions/"
    page = client_for(w.instructor).get(f"{url}?student={w.s1.pk}").content.decode()
    assert _links(page) == [f"?student={w.s1.pk}&page=2"]
