"""Staff read open reports, dismiss them, or unpublish the program: it becomes private, its
owner sees why and cannot publish it again, its runs' share links stop, until staff allow it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from playground.classroom.models import AuditEvent
from playground.moderation.models import ProgramLock, Report
from playground.runs.models import Run
from playground.sharing.models import ShareLink
from tests.factories import UserFactory
from tests.moderation.helpers import client_for, public_program, staff

pytestmark = pytest.mark.django_db
Action = AuditEvent.Action


def _report(program, reason: str = "spam", note: str = "", user=None) -> Report:  # type: ignore[no-untyped-def]
    client = client_for(user)
    client.post(reverse("moderation:report", args=[program.pk]), {"reason": reason, "note": note})
    return Report.objects.latest("id")


def test_the_moderation_page_groups_open_reports_by_program_newest_first() -> None:
    owner = UserFactory(username="spammer")
    older = public_program(owner=owner, title="Older <i>one</i>")
    newer = public_program(title="Newer")
    for reason in ("spam", "spam", "abuse"):
        _report(older, reason, note="<script>alert(1)</script>")
    _report(newer, "malicious", note="reads files")
    moderator = client_for(staff())
    page = moderator.get(reverse("moderation:reports")).content.decode()
    table = page[page.index('id="open-reports"') :]
    assert table.index("Newer") < table.index("Older &lt;i&gt;one&lt;/i&gt;")
    assert "Spam (2), Abuse or harassment (1)" in table
    assert "Malicious code (1)" in table
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in table
    assert "<script>alert" not in page
    assert reverse("moderation:account", args=[owner.pk]) in table
    assert reverse("moderation:program", args=[older.pk]) in table


def test_the_list_is_paginated() -> None:
    programs = [public_program(title=f"P{i:02d}") for i in range(27)]
    for program in programs:
        Report.objects.create(program=program, reporter_key=f"ip:{program.pk}", reason="spam")
    moderator = client_for(staff())
    first = moderator.get(reverse("moderation:reports")).content.decode()
    second = moderator.get(reverse("moderation:reports") + "?page=2").content.decode()
    assert first.count('<form method="post" action="/moderation/programs/') == 25
    assert second.count('<form method="post" action="/moderation/programs/') == 2
    assert "Page 1 of 2" in first


def test_dismissing_closes_the_programs_open_reports_and_is_logged() -> None:
    program = public_program()
    _report(program)
    _report(program, "abuse")
    moderator = staff(username="mod")
    client = client_for(moderator)
    client.post(reverse("moderation:dismiss", args=[program.pk]))
    assert not Report.objects.open().exists()
    assert set(Report.objects.values_list("resolution", flat=True)) == {"dismissed"}
    program.refresh_from_db()
    assert program.is_public
    event = AuditEvent.objects.get(action=Action.REPORTS_DISMISSED)
    assert (event.actor_name, event.detail["reports"]) == ("mod", 2)
    assert "No open reports." in client.get(reverse("moderation:reports")).content.decode()


def test_unpublishing_makes_the_program_private_with_a_notice_and_a_lock() -> None:
    owner = UserFactory()
    program = public_program(owner=owner, title="Leaky")
    _report(program, "private_data", note="has my phone number")
    moderator = client_for(staff(username="mod"))
    review = moderator.get(reverse("moderation:program", args=[program.pk])).content.decode()
    assert "has my phone number" in review
    response = moderator.post(
        reverse("moderation:unpublish", args=[program.pk]),
        {"reason": "private_data", "message": "It shows someone's <b>phone</b> number."},
    )
    assert response.status_code == 302
    program.refresh_from_db()
    assert not program.is_public
    assert Report.objects.get().resolution == "unpublished"
    event = AuditEvent.objects.get(action=Action.PROGRAM_UNPUBLISHED)
    assert event.subject_ref == owner.pk
    assert event.detail["was_public"] is True

    # Everyone else: it is gone (404), and out of the library.
    assert client_for().get(program.get_absolute_url()).status_code == 404
    library = client_for().get(reverse("programs:library") + "?dataset=user").content.decode()
    assert "Leaky" not in library

    # The owner still sees it, with the reason and the message, escaped; no "Make public".
    owner_client = client_for(owner)
    page = owner_client.get(program.get_absolute_url()).content.decode()
    assert 'id="moderation-notice"' in page
    assert "Staff unpublished this program" in page
    assert "leaks someone&#x27;s data" in page
    assert "It shows someone&#x27;s &lt;b&gt;phone&lt;/b&gt; number." in page
    assert "Make public" not in page

    # A POST made by hand does not publish it either.
    refused = owner_client.post(
        reverse("programs:visibility", args=[program.pk]), {"is_public": "1"}
    )
    assert refused.status_code == 302
    program.refresh_from_db()
    assert not program.is_public
    assert (
        "cannot be made public until they allow it"
        in owner_client.get(program.get_absolute_url()).content.decode()
    )

    # Staff allow it again: still private, but the owner may publish it.
    moderator.post(reverse("moderation:allow", args=[program.pk]))
    assert not ProgramLock.objects.exists()
    assert AuditEvent.objects.filter(action=Action.PUBLISHING_ALLOWED).count() == 1
    program.refresh_from_db()
    assert not program.is_public
    page = owner_client.get(program.get_absolute_url()).content.decode()
    assert "Make public" in page
    assert "Staff unpublished" not in page
    owner_client.post(reverse("programs:visibility", args=[program.pk]), {"is_public": "1"})
    program.refresh_from_db()
    assert program.is_public


def test_share_links_of_its_runs_stop_while_it_is_unpublished() -> None:
    owner = UserFactory()
    program = public_program(owner=owner)
    # The owner's run, and a run of the public program by someone else, each with a link.
    links = []
    for runner in (owner, UserFactory()):
        run = Run.objects.create(
            program=program, source=program.source, call=program.call, owner=runner,
            status=Run.Status.DONE, finished_at=timezone.now(),
        )  # fmt: skip
        links.append(ShareLink.objects.create(run=run, created_by=runner))
    visitor = client_for()
    assert all(visitor.get(link.get_absolute_url()).status_code == 200 for link in links)
    moderator = client_for(staff())
    moderator.post(reverse("moderation:unpublish", args=[program.pk]), {"reason": "malicious"})
    for link in links:
        assert visitor.get(link.get_absolute_url()).status_code == 404
        assert visitor.get(reverse("sharing:embed", args=[link.token])).status_code == 404
    # The runs stay their owners'; a new link is refused with the reason, not made to 404.
    owner_client = client_for(owner)
    assert owner_client.get(links[0].run.get_absolute_url()).status_code == 200
    made = owner_client.post(reverse("sharing:create", args=[links[0].run.pk]), follow=True)
    assert "cannot be shared until they allow it again" in made.content.decode()
    assert ShareLink.objects.filter(run=links[0].run).count() == 1
    moderator.post(reverse("moderation:allow", args=[program.pk]))
    assert all(visitor.get(link.get_absolute_url()).status_code == 200 for link in links)


def test_a_private_program_can_be_locked_before_its_owner_publishes_it_again() -> None:
    """An owner who hides a reported program for a while cannot dodge the review."""
    owner = UserFactory()
    program = public_program(owner=owner)
    _report(program)
    client_for(owner).post(reverse("programs:visibility", args=[program.pk]), {"is_public": "0"})
    moderator = client_for(staff())
    assert moderator.get(reverse("moderation:program", args=[program.pk])).status_code == 200
    moderator.post(reverse("moderation:unpublish", args=[program.pk]), {"reason": "spam"})
    client_for(owner).post(reverse("programs:visibility", args=[program.pk]), {"is_public": "1"})
    program.refresh_from_db()
    assert not program.is_public
    event = AuditEvent.objects.get(action=Action.PROGRAM_UNPUBLISHED)
    assert event.detail["was_public"] is False


def test_staff_see_no_private_program_that_nobody_reported() -> None:
    from tests.factories import ProgramFactory

    private = ProgramFactory(is_public=False)
    moderator = client_for(staff())
    assert moderator.get(reverse("moderation:program", args=[private.pk])).status_code == 404
    moderator.post(reverse("moderation:unpublish", args=[private.pk]), {"reason": "spam"})
    assert not ProgramLock.objects.exists()


def test_a_bad_unpublish_form_says_why_and_changes_nothing() -> None:
    program = public_program()
    moderator = client_for(staff())
    response = moderator.post(
        reverse("moderation:unpublish", args=[program.pk]), {"reason": "x", "message": "kept"}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert "kept</textarea>" in response.content.decode()
    program.refresh_from_db()
    assert program.is_public


def test_the_moderation_page_does_the_same_work_for_3_programs_or_25() -> None:
    moderator = client_for(staff())
    counts = []
    for n in (3, 25):
        Report.objects.all().delete()
        for i in range(n):
            program = public_program(owner=UserFactory())
            for j in range(3):
                Report.objects.create(
                    program=program, reporter_key=f"ip:{i}-{j}", reason="spam", note=f"n{j}"
                )
        with CaptureQueriesContext(connection) as queries:
            page = moderator.get(reverse("moderation:reports"))
        assert page.status_code == 200
        assert page.content.decode().count('class="report-notes"') == n
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    print(f"moderation page: {counts[1]} queries for 25 reported programs")
