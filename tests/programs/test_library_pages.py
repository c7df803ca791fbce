"""The library's lists: a page number nobody would mean never silently shows the last page
(review 2026-12: ?page=0 and -1 jumped to page 24 of 24), the BIG-Bench Hard task list is one
page (it was 25 + 2), an empty "Shared by users" tab says what it is (it said "No programs
match."), and the live search form cannot pile its fields up in the address (bug 13)."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.programs.models import Dataset, Program, Task
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db
LIBRARY = reverse("programs:library")


@pytest.fixture
def sixty(settings: Settings) -> None:
    settings.PLAYGROUND_PAGE_SIZE = 25
    Program.objects.bulk_create(
        Program(title=f"Sample {i:02}", source="x = 1\n", dataset=Dataset.CRUXEVAL,
                external_id=f"sample_{i}", is_public=True)
        for i in range(60)
    )  # fmt: skip


def _page(client: Client, query: str) -> tuple[int, str]:
    response = client.get(f"{LIBRARY}?dataset=cruxeval&{query}")
    assert response.status_code == 200
    html = response.content.decode()
    number = re.search(r"Page (\d+) of 3", html)
    assert number, html
    return int(number.group(1)), html


@pytest.mark.parametrize(
    ("query", "shown", "notice"),
    [
        ("page=2", 2, None),
        ("page=0", 1, "There is no page “0”: this is page 1."),
        ("page=-1", 1, "There is no page “-1”: this is page 1."),
        ("page=1.5", 1, "There is no page “1.5”: this is page 1."),
        ("page=abc", 1, "There is no page “abc”: this is page 1."),
        ("page=%C2%B2", 1, "There is no page “²”: this is page 1."),
        ("page=4", 3, "There is no page “4”: the last is page 3, shown here."),
        ("page=99999999999999999999", 3, "the last is page 3, shown here."),
        ("page=" + "9" * 5000, 3, "the last is page 3, shown here."),
    ],
)
def test_a_page_number_out_of_range_says_so(
    client: Client, sixty: None, query: str, shown: int, notice: str | None
) -> None:
    number, html = _page(client, query)
    assert number == shown
    if notice is None:
        assert 'class="notice"' not in html
    else:
        assert notice in html


def test_the_bbh_task_list_is_one_page(client: Client) -> None:
    Task.objects.bulk_create(Task(name=f"task_{i:02}") for i in range(27))
    html = client.get(f"{LIBRARY}?dataset=bbh").content.decode()
    assert html.count('href="/library/tasks/task_') == 27
    assert 'aria-label="Pages"' not in html


def test_the_empty_shared_tab_says_that_no_one_has_shared_a_program(client: Client) -> None:
    html = client.get(f"{LIBRARY}?dataset=user").content.decode()
    assert "No one has shared a program yet" in html
    assert "No programs match" not in html
    ProgramFactory(is_public=True, title="Shared one")
    searched = client.get(f"{LIBRARY}?dataset=user&q=nothing-like-it").content.decode()
    assert "No programs match “nothing-like-it”." in searched


def test_the_live_search_sends_its_fields_to_the_bare_address(client: Client) -> None:
    # hx-get="" made htmx append the fields to the current address, query and all:
    # ?dataset=p3&dataset=p3&q=queen&module=&dataset=p3&q=queens&module=...
    html = client.get(f"{LIBRARY}?dataset=p3&q=queen&module=").content.decode()
    form = re.search(r'<form class="search"[^>]*>', html)
    assert form, html
    assert f'hx-get="{LIBRARY}"' in form.group(0)
    assert 'hx-get=""' not in html
    assert "data-query-form" in form.group(0)
