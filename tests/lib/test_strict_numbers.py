"""L10: numbers read from requests are ASCII decimals of bounded length; anything else is "no
number" (a form error, the default, nothing found), never a 500 and never another number."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.db import connections
from django.test import AsyncClient, Client
from django.urls import reverse

from playground.benchmarks.forms import EvaluationForm
from playground.classroom.forms import AssignmentForm
from playground.lib.params import DecimalNumberField, WholeNumberField
from playground.runs.events import publish
from playground.runs.models import Run
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    LibraryProgramFactory,
    SubmissionFactory,
    logged_in,
    staffed_course,
    student_of,
)
from tests.factories import ProgramFactory, UserFactory

ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + d) for d in range(10)))
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + d) for d in range(10)))

# Each is "no number" here. int() reads the first two as the number and "+n"; str.isdigit()
# accepts the first three; int() raises on "\u00b2" and past 4,300 digits.
ODD = [
    lambda n: str(n).translate(ARABIC_INDIC),
    lambda n: str(n).translate(FULLWIDTH),
    lambda n: "\u00b2",
    lambda n: "9" * 5000,
    lambda n: f"+{n}",
    lambda n: f"-{n}",
    lambda n: f"{n}.0",
    lambda n: f"0x{n}",
    lambda n: "",
]
ODD_NAMES = ["arabic-indic", "fullwidth", "superscript", "5000 digits", "plus", "minus",
             "fraction", "hex", "empty"]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("odd", ODD, ids=ODD_NAMES)
def test_the_item_forms_library_pick_names_nothing_with_an_odd_number(odd: Any) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    program = LibraryProgramFactory()
    url = reverse("classroom:library_search", args=[course.pk, assignment.pk])
    client = logged_in(teacher)
    # On ebbbef9: a 500 for "\u00b2" and 5,000 nines; Arabic-Indic digits named the program.
    response = client.get(url, {"pick": f"program:{odd(program.pk)}"})
    assert response.status_code == 200
    assert program.title not in response.content.decode()
    shown = client.get(url, {"pick": f"program:{program.pk}"})
    assert program.title in shown.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "odd", ["\u0661", "\u0660\u066b\u0665", "1_0", "1e-1", "inf", "nan", "+0.5", "0." + "5" * 30]
)
def test_an_override_credit_is_an_ascii_decimal(odd: str) -> None:
    course, teacher = staffed_course()
    item = ItemFactory(assignment=AssignmentFactory(course=course))
    submission = SubmissionFactory(item=item, student=student_of(course, "sam"), score=0.0)
    url = reverse("classroom:override", args=[course.pk, submission.pk])
    response = logged_in(teacher).post(url, {"credit": odd, "comment": ""})
    assert response.status_code == 200  # the form again, with its error
    submission.refresh_from_db()
    # On ebbbef9: an Arabic-Indic one gave full credit, "1e-1" 0.1.
    assert submission.override_credit is None
    response = logged_in(teacher).post(url, {"credit": "0.25", "comment": ""})
    submission.refresh_from_db()
    assert submission.override_credit == 0.25


def _owned_run() -> tuple[Run, str]:
    user = UserFactory()
    client = Client()
    client.force_login(user)
    program = ProgramFactory(owner=user)
    run = Run.objects.create(program=program, source=program.source, owner=user)
    return run, client.cookies["sessionid"].value


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.parametrize("odd", ODD, ids=ODD_NAMES)
async def test_an_odd_last_event_id_replays_from_the_start(odd: Any) -> None:
    run, session = await sync_to_async(_owned_run)()
    raw = odd(1)
    for text in ("a", "b"):
        await sync_to_async(publish)(run.events_key, "token", text=text)
    await sync_to_async(publish)(run.events_key, "done")
    client = AsyncClient()
    client.cookies.load({"sessionid": session})
    try:
        for response in (
            # A header arrives as bytes: UTF-8 from the client, read as Latin-1 by the server.
            await client.get(
                f"/runs/{run.pk}/events",
                headers={"Last-Event-ID": raw.encode().decode("latin-1")},
            ),
            await client.get(f"/runs/{run.pk}/events", {"after": raw}),
        ):
            assert response.status_code == 200
            body = await asyncio.wait_for(_body(response), 10)
            events = [json.loads(x[6:]) for x in body.splitlines() if x.startswith("data: ")]
            assert [e["seq"] for e in events] == [1, 2, 3]
    finally:
        await sync_to_async(connections.close_all)()


async def _body(response: Any) -> str:
    return b"".join([chunk async for chunk in response.streaming_content]).decode()


@pytest.mark.parametrize(
    "odd", ["\u0665", "\uff15", "\u00b2", "+5", "1_0", "5" * 5000, "1e3", "0x5", "5.0"]
)
def test_form_numbers_are_ascii_decimals(odd: str) -> None:
    # Django's IntegerField reads the first three, "+5" and "1_0" as numbers.
    assert WholeNumberField(required=False).clean(" 5 ") == 5
    with pytest.raises(ValidationError):
        WholeNumberField().clean(odd)


@pytest.mark.parametrize("odd", ["\u0665", "\u0660\u066b\u0665", "1e3", "inf", "nan", "1_0", "+1"])
def test_form_fractions_are_ascii_decimals(odd: str) -> None:
    assert DecimalNumberField().clean("2.5") == 2.5
    with pytest.raises(ValidationError):
        DecimalNumberField().clean(odd)


@pytest.mark.django_db
def test_assignment_and_evaluation_forms_take_only_ascii_numbers() -> None:
    assert "late_credit" in AssignmentForm(data={"late_credit": "\u0665\u0660"}).errors
    assert "samples" in EvaluationForm(data={"samples": "\u0663"}).errors
