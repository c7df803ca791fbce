"""Moving through an assignment as a student: item k of n, the previous and next items, how
many are answered and right (updated by an answer); and a new assignment opens now by
default, so a teacher can try it out at once."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from playground.classroom.models import Item, Mode
from tests.classroom.staff_factories import logged_in, staffed_course
from tests.classroom.student_world import (
    SECRET,
    assignment,
    client_for,
    course_world,
    hand_made_key,
    library_program,
    real_trace,
)

pytestmark = pytest.mark.django_db
HTMX = {"HX-Request": "true"}


def _nav(markup: str) -> str:
    found = re.search(r'<nav class="item-nav".*?</nav>', markup, re.S)
    assert found, "no item navigation"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(0))).split())


def test_item_k_of_n_with_previous_next_and_progress() -> None:
    w = course_world()
    a = assignment(w.course)
    program = library_program()
    items = []
    for n, title in enumerate(["Reverse", "Again", "Last one"]):
        item = Item.objects.create(
            assignment=a, mode=Mode.OUTPUT, program=program, title=title, position=n
        )
        hand_made_key(item, real=real_trace(f"'{SECRET}'"))
        items.append(item)
    client = client_for(w.s1)
    first, second, last = items

    page = client.get(second.get_absolute_url()).content.decode()
    assert "item 2 of 3" in page
    nav = _nav(page)
    assert nav == "← Previous: Reverse Item 2 of 3 · 0 of 3 answered · 0 right Next: Last one →"
    assert f'href="{first.get_absolute_url()}" rel="prev"' in page
    assert f'href="{last.get_absolute_url()}" rel="next"' in page

    # Answering updates the counts in the answer area htmx swaps in.
    url = reverse("classroom:submit", args=[w.course.pk, a.pk, second.pk])
    response = client.post(url, {"answer": f"'{SECRET}'"}, headers=HTMX)
    assert "1 of 3 answered · 1 right" in _nav(response.content.decode())
    url = reverse("classroom:submit", args=[w.course.pk, a.pk, last.pk])
    response = client.post(url, {"answer": "'wrong'"}, headers=HTMX)
    nav = _nav(response.content.decode())
    assert "Item 3 of 3 · 2 of 3 answered · 1 right" in nav
    assert nav.endswith("Back to the assignment →")
    assert _nav(client.get(first.get_absolute_url()).content.decode()).startswith("← All items")

    # Staff see where the item is, not a student's progress.
    staff = _nav(client_for(w.instructor).get(second.get_absolute_url()).content.decode())
    assert "Item 2 of 3" in staff
    assert "answered" not in staff


def test_a_new_assignment_opens_now_by_default(db: None) -> None:
    course, teacher = staffed_course()
    page = logged_in(teacher).get(reverse("classroom:assignment_new", args=[course.pk]))
    found = re.search(r'name="opens_at" value="([^"]+)"', page.content.decode())
    assert found, "no opening time in the form"
    zone = ZoneInfo(str(settings.TIME_ZONE))
    opens = datetime.fromisoformat(found.group(1)).replace(tzinfo=zone)
    assert abs(opens - timezone.now()) < timedelta(minutes=1)
    due = re.search(r'name="due_at" value="([^"]+)"', page.content.decode())
    assert due is not None
    assert datetime.fromisoformat(due.group(1)).replace(tzinfo=zone) - opens == timedelta(days=7)
