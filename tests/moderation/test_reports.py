"""Anyone can report a public program: once per reporter and program, not their own, not a
private one, within the ``reports`` rate; every report is in the moderation log."""

from __future__ import annotations

import secrets

import pytest
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.classroom.models import AuditEvent
from playground.lib import ratelimits
from playground.moderation.models import NOTE_MAX_CHARS, Report
from playground.programs.models import Program
from tests.factories import ProgramFactory, UserFactory
from tests.moderation.helpers import client_for, public_program

pytestmark = pytest.mark.django_db


def _report(client, program: Program, reason: str = "spam", note: str = ""):  # type: ignore[no-untyped-def]
    return client.post(
        reverse("moderation:report", args=[program.pk]), {"reason": reason, "note": note}
    )


def test_a_visitor_reports_a_public_program_from_its_page() -> None:
    program = public_program(title="Free crypto")
    visitor = client_for()
    page = visitor.get(program.get_absolute_url()).content.decode()
    assert 'id="report-box"' in page
    assert f'action="{reverse("moderation:report", args=[program.pk])}"' in page

    response = _report(visitor, program, "malicious", "It tries to read /etc/passwd")
    assert response.status_code == 302
    assert response["Location"] == program.get_absolute_url()
    report = Report.objects.get()
    assert (report.program, report.reporter, report.reason) == (program, None, "malicious")
    assert report.note == "It tries to read /etc/passwd"
    assert report.reporter_key.startswith("ip:")
    assert "198.51" not in report.reporter_key  # the address itself is not kept
    assert "Thank you" in visitor.get(program.get_absolute_url()).content.decode()

    event = AuditEvent.objects.get(action=AuditEvent.Action.PROGRAM_REPORTED)
    assert event.course_ref is None
    assert event.subject_ref == program.owner.pk
    assert event.detail == {"program": program.pk, "title": "Free crypto", "reason": "malicious"}


def test_a_second_report_by_the_same_reporter_says_already_reported() -> None:
    program = public_program()
    user = UserFactory()
    client = client_for(user)
    assert _report(client, program).status_code == 302
    again = _report(client, program, "abuse")
    assert again.status_code == 302
    assert "You already reported this program" in client.get(again["Location"]).content.decode()
    assert Report.objects.count() == 1
    # The page shows it too, instead of the form.
    page = client.get(program.get_absolute_url()).content.decode()
    assert "You reported this program" in page

    # The same address, anonymously: one report per address as well.
    visitor = client_for()
    _report(visitor, program)
    _report(visitor, program)
    assert Report.objects.count() == 2
    # Another visitor is another reporter.
    _report(client_for(), program)
    assert Report.objects.count() == 3


def test_nobody_reports_their_own_program() -> None:
    owner = UserFactory()
    program = public_program(owner=owner)
    client = client_for(owner)
    assert 'id="report-box"' not in client.get(program.get_absolute_url()).content.decode()
    response = _report(client, program)
    assert response.status_code == 302
    assert "your own program" in client.get(response["Location"]).content.decode()
    assert not Report.objects.exists()

    # An anonymous owner (through their session's token) neither.
    visitor = client_for()
    visitor.post(reverse("programs:new"), {"title": "Mine", "source": "x = 1\n", "is_public": "on"})
    mine = Program.objects.get(title="Mine")
    assert mine.is_public
    assert mine.owner is None
    _report(visitor, mine)
    assert not Report.objects.exists()


@pytest.mark.parametrize("which", ["private", "built-in", "missing"])
def test_a_private_or_built_in_program_cannot_be_reported(which: str) -> None:
    if which == "private":
        program = ProgramFactory(is_public=False)
    elif which == "built-in":
        program = ProgramFactory(owner=None, dataset="cruxeval", external_id="s1", is_public=True)
    else:
        program = ProgramFactory.build(pk=10**9)
    client = client_for(UserFactory())
    assert client.get(reverse("moderation:report", args=[program.pk])).status_code == 404
    assert _report(client, program).status_code == 404
    assert not Report.objects.exists()


def test_bad_input_gets_a_clear_error_and_keeps_what_was_typed() -> None:
    program = public_program()
    client = client_for()
    response = _report(client, program, "not-a-reason", "my words <b>here</b>")
    assert response.status_code == 400
    text = response.content.decode()
    assert "Select a valid choice" in text
    assert "my words &lt;b&gt;here&lt;/b&gt;" in text
    too_long = _report(client, program, "spam", "x" * (NOTE_MAX_CHARS + 1))
    assert too_long.status_code == 400
    assert f"at most {NOTE_MAX_CHARS} characters" in too_long.content.decode()
    assert _report(client, program, "spam", "a\x00b").status_code == 400
    assert not Report.objects.exists()


def test_reports_are_rate_limited_per_address_and_per_account(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table(
        "public", {"reports.anon": "2/d", "reports.user": "3/d"}
    )
    programs = [public_program() for _ in range(5)]
    visitor = client_for()
    assert [_report(visitor, p).status_code for p in programs[:2]] == [302, 302]
    refused = _report(visitor, programs[2], "spam", "kept")
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 86_400
    text = refused.content.decode()
    assert "Too many reports sent: at most 2 a day" in text
    assert "kept</textarea>" in text  # the form comes back with what was typed
    assert Report.objects.count() == 2
    # Another address is counted apart.
    assert _report(client_for(), programs[2]).status_code == 302

    # An id no earlier run of the suite used: the counters live in Redis for the whole day.
    user = UserFactory(pk=10**6 + secrets.randbelow(10**9))
    signed_in = client_for(user)
    assert [_report(signed_in, p).status_code for p in programs[:4]] == [302, 302, 302, 429]
    # Per account: the same person from another address is still refused.
    elsewhere = client_for(user)
    assert _report(elsewhere, programs[4]).status_code == 429
    assert Report.objects.filter(reporter=user).count() == 3
