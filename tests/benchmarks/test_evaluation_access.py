"""Who may evaluate which programs, and who may read an evaluation of a list of programs (review
finding H1): nobody runs, reads or evaluates a program they cannot see; unknown, foreign and
malformed ids get the same clear form error, never a 500 and never an existence oracle."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground.benchmarks import execution, services
from playground.benchmarks.models import Evaluation, Result
from playground.runs.models import Run
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db

VICTIM_SOURCE = "def f():\n    return 'victim-private-7731'\n"


def _start(client: Client, programs: str, **extra: str) -> Any:
    data = {"dataset": "programs", "programs": programs, "method": "direct",
            "model": "smollm2-135m", **extra}  # fmt: skip
    return client.post(reverse("benchmarks:start"), data, follow=True)


def _errors(html: str) -> str:
    errors = re.findall(r'<p class="error" role="alert" id="id_programs-error">(.*?)</p>', html)
    assert errors, html[-3000:]
    return " ".join(errors)


@pytest.fixture
def attacker() -> Client:
    client = Client()
    client.force_login(UserFactory(username="attacker"))
    return client


def test_a_private_program_of_someone_else_cannot_be_evaluated(attacker: Client) -> None:
    victim = ProgramFactory(source=VICTIM_SOURCE, call="f()", title="victim's secret program")
    missing = victim.pk + 1000
    responses = {pk: _start(attacker, str(pk)) for pk in (victim.pk, missing)}
    for pk, response in responses.items():
        assert response.status_code == 200
        body = response.content.decode()
        assert f"No program with id {pk} among your programs and the public ones." in body
        assert "victim" not in body
    # The same words for a private program and for no program at all: no existence oracle.
    errors = {pk: _errors(r.content.decode()).replace(str(pk), "N") for pk, r in responses.items()}
    assert errors[victim.pk] == errors[missing]
    assert not Evaluation.objects.exists()
    assert not Run.objects.exists()


def test_malformed_ids_get_a_form_error_not_a_500(attacker: Client) -> None:
    for text in ("abc", "12; DROP", "\uff11\uff12", "\u0663", "9" * 5000, "-3", ",,", " "):
        response = _start(attacker, text)
        assert response.status_code == 200, text
        body = response.content.decode()
        assert "is not a program id" in body or "List the ids" in body, text
    assert not Evaluation.objects.exists()


def test_own_and_public_programs_can_be_listed(attacker: Client) -> None:
    user = attacker.session["_auth_user_id"]
    mine = ProgramFactory(owner_id=user)
    public = ProgramFactory(is_public=True)
    response = _start(attacker, f"{mine.pk}, {public.pk} {mine.pk}")
    evaluation = Evaluation.objects.get()
    assert response.redirect_chain[-1][0] == evaluation.get_absolute_url()
    assert evaluation.total == 2  # the repeated id counts once
    refs = sorted(Result.objects.values_list("item_ref", flat=True), key=lambda r: r["program"])
    assert refs == [{"program": mine.pk}, {"program": public.pk}]


def test_a_program_made_private_after_listing_is_not_run(attacker: Client) -> None:
    public = ProgramFactory(is_public=True, source=VICTIM_SOURCE, call="f()")
    _start(attacker, str(public.pk))
    result = Result.objects.get()
    type(public).objects.filter(pk=public.pk).update(is_public=False)
    Result.objects.filter(pk=result.pk).update(status=Result.Status.RUNNING)
    execution.process(result.pk)
    result.refresh_from_db()
    assert (result.status, result.passed, result.score_status) == ("done", False, "error")
    assert "no longer public" in result.reason
    assert not Run.objects.exists()


def test_an_evaluation_of_a_list_of_programs_is_not_public() -> None:
    """Made from the command line it has no owner; made on the site it is its owner's: either
    way its titles and predictions stay off the leaderboard and its pages."""
    owner = UserFactory()
    private = ProgramFactory(owner=owner, title="Teacher's exam question", source=VICTIM_SOURCE)
    for who in (None, owner):
        evaluation = services.create_evaluation(
            dataset="programs", method="direct", model="tiny", subset=[private.pk],
            owner=who, start=False,
        )  # fmt: skip
        Evaluation.objects.filter(pk=evaluation.pk).update(status=Evaluation.Status.DONE)
        Result.objects.filter(evaluation=evaluation).update(
            status=Result.Status.DONE, prediction="'victim-private-7731'", passed=True
        )
        for url in (
            evaluation.get_absolute_url(),
            reverse("benchmarks:export_json", args=[evaluation.pk]),
            reverse("benchmarks:export_csv", args=[evaluation.pk]),
        ):
            assert Client().get(url).status_code == 404, url
        board = Client().get(reverse("benchmarks:leaderboard")).content.decode()
        assert "Teacher" not in board
        assert evaluation.get_absolute_url() not in board
    client = Client()
    client.force_login(owner)
    mine = Evaluation.objects.get(owner=owner)
    assert "victim-private-7731" in client.get(mine.get_absolute_url()).content.decode()
