"""A hostile visitor in a real browser tries to read other people's private programs through
evaluations (security review, finding H1): sign up, list a victim's program id in the start
form, scan ids, post what the form does not offer. Nothing is run, nothing is read, and every
answer is the same form error, whether the program is private or does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.benchmarks.models import Evaluation
from playground.runs.models import Run
from tests.factories import ProgramFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
SECRET = "victim-private-9913"
PASSWORD = "a long enough passphrase 42"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _sign_up(page: Page, base: str, username: str) -> None:
    page.goto(base + "/accounts/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password confirmation").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url(lambda url: "/signup/" not in url)


def _error_text(page: Page) -> str:
    return page.locator("#id_programs-error").all_inner_texts()[0]


def test_a_hostile_user_cannot_evaluate_other_peoples_programs(
    page: Page, live_server: LiveServer
) -> None:
    base = live_server.url
    victim = UserFactory(username="victim")
    private = ProgramFactory(
        owner=victim, title="Victim's exam draft", source=f"def f():\n    return '{SECRET}'\n"
    )
    _sign_up(page, base, "mallory")

    # The program page itself is a 404, as it always was.
    assert page.goto(f"{base}/programs/{private.pk}/").status == 404

    # The start form now offers a list of programs: the attacker lists the victim's id.
    page.goto(base + "/evaluations/")
    page.get_by_label("Data set").select_option("programs")
    page.get_by_label("Program ids").fill(str(private.pk))
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#id_programs-error")).to_be_visible()
    private_error = _error_text(page)
    assert private_error == (
        f"No program with id {private.pk} among your programs and the public ones."
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "h1-evaluation-refused.png"), full_page=True)

    # An id that does not exist gets the same words: the error tells nothing about existence.
    page.get_by_label("Data set").select_option("programs")
    page.get_by_label("Program ids").fill(str(private.pk + 500))
    page.get_by_role("button", name="Start").click()
    missing_error = _error_text(page)
    assert re.sub(r"\d+", "N", missing_error) == re.sub(r"\d+", "N", private_error)

    # Past the form: a scan of ids posted by hand (the old field name too), and junk.
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    for data in (
        {"programs": ",".join(str(i) for i in range(1, private.pk + 20))},
        {"tasks": str(private.pk)},
        {"programs": "1e9"},
        {"programs": "\u0661\u0662"},
        {"programs": "9" * 5000},
    ):
        response = page.request.post(
            base + "/evaluations/start/",
            form={"dataset": "programs", "method": "direct", "model": "smollm2-135m", **data},
            headers={"X-CSRFToken": csrf, "Referer": base + "/evaluations/"},
        )
        assert response.status == 200, data  # the leaderboard again, with the form error
        body = response.text()
        assert SECRET not in body
        assert "Victim" not in body
        assert 'class="error"' in body, data
    assert not Evaluation.objects.exists()
    assert not Run.objects.exists()

    # The attacker's own program can be evaluated: the form itself works.
    mine = ProgramFactory(owner=get_user_model().objects.get(username="mallory"), title="Mine")
    page.goto(base + "/evaluations/")
    page.get_by_label("Data set").select_option("programs")
    page.get_by_label("Program ids").fill(str(mine.pk))
    page.get_by_label("Items at most").fill("1")
    page.get_by_role("button", name="Start").click()
    evaluation = Evaluation.objects.get()
    expect(page).to_have_url(re.compile(rf"/evaluations/{evaluation.pk}/$"))
    assert evaluation.owner is not None
    assert evaluation.owner.username == "mallory"
