"""Invitations, as the staff send them and the invited answer them: a roster row with an e-mail
address mails a signed link (it works, expires, works once, belongs to its invitation, and a
changed link gets a clear page); a row with a username waits on that person's "My courses"
page; staff revoke and send again; an assistant role waits for an instructor. Mails go to
Django's in-memory outbox, sent by the real Celery task run eagerly."""

from __future__ import annotations

import html
import re
import smtplib
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from django.core import mail, signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.mail.backends.locmem import EmailBackend
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.classroom import mailing
from playground.classroom.models import AuditEvent, Invitation, Membership, Role
from tests.classroom.staff_factories import MembershipFactory, logged_in, staffed_course
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
LINK = re.compile(r"http://testserver(/courses/invitation/[^\s/]+/)")


def text(response: Any) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def flashed(response: Any) -> str:
    """The messages at the top of the page, as text."""
    found = re.search(r'<ul class="messages">(.*?)</ul>', response.content.decode(), re.DOTALL)
    return text_of(found.group(1)) if found else ""


def text_of(markup: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


@pytest.fixture
def world(
    eager: None, mailoutbox: list[Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> SimpleNamespace:
    """A course with its instructor; ``w.upload`` posts a roster and runs the mail task."""
    course, teacher = staffed_course(title="Execution 101")
    client = logged_in(teacher)

    def upload(content: bytes, by: Client = client) -> str:
        """What the upload says (the messages on the page it leads to)."""
        roster = SimpleUploadedFile("roster.csv", content, content_type="text/csv")
        with django_capture_on_commit_callbacks(execute=True):
            response = by.post(
                reverse("classroom:course_roster", args=[course.pk]), {"file": roster}, follow=True
            )
        return flashed(response)

    def post(client: Client, url: str, data: dict[str, str] | None = None, **kw: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data or {}, **kw)

    return SimpleNamespace(
        course=course, teacher=teacher, client=client, upload=upload, post=post, outbox=mailoutbox
    )


def link_in(message: Any) -> str:
    found = LINK.search(message.body)
    assert found is not None, message.body
    return found.group(1)


def test_an_email_row_mails_a_link_that_works_once(world: SimpleNamespace) -> None:
    page = world.upload(b"email,role\nAda@Example.edu\n")
    assert "Roster read: 1 invitation e-mailed, 0 people invited" in page
    assert "Nobody joins before accepting." in page
    assert [m.to for m in world.outbox] == [["ada@example.edu"]]
    message = world.outbox[0]
    assert message.subject == "Invitation to the course “Execution 101”"
    assert "teacher invited you to join the course “Execution 101” as student" in message.body
    url = link_in(message)

    # Opening the link changes nothing (mail scanners open links); it names the course.
    ada = logged_in(UserFactory(username="ada"))
    page = text(ada.get(url))
    assert "teacher invited you to join Execution 101 as student." in page
    assert not Membership.objects.filter(user__username="ada").exists()

    response = world.post(ada, url, {"action": "accept"})
    assert response["Location"] == world.course.get_absolute_url()
    assert Membership.objects.get(user__username="ada").role == Role.STUDENT
    assert Invitation.objects.get().status == Invitation.Status.ACCEPTED

    # Single use: the same link, by the same person or anyone else, does nothing more.
    other = logged_in(UserFactory(username="eve"))
    again = world.post(other, url, {"action": "accept"})
    assert again.status_code == 410
    assert "already accepted: a link works once" in text(again)
    assert other.get(url).status_code == 410
    assert not Membership.objects.filter(user__username="eve").exists()


def test_an_anonymous_visitor_signs_up_and_comes_back_to_accept(world: SimpleNamespace) -> None:
    world.upload(b"new@example.edu\n")
    url = link_in(world.outbox[0])
    visitor = Client()
    page = visitor.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "Accept as" not in body  # accepting needs an account
    signup = re.search(r'href="(/accounts/signup/\?next=[^"]+)"', body)
    assert signup is not None
    response = visitor.post(
        html.unescape(signup.group(1)),
        {"username": "newbie", "password1": "a long pass phrase 1",
         "password2": "a long pass phrase 1"},
    )  # fmt: skip
    assert response["Location"] == url  # back to the invitation, still unanswered
    assert not Membership.objects.filter(user__username="newbie").exists()
    world.post(visitor, url, {"action": "accept"})
    assert Membership.objects.filter(user__username="newbie", course=world.course).exists()
    # Accepting without an account only leads to the login page.
    world.upload(b"second@example.edu\n")
    response = Client().post(link_in(world.outbox[1]), {"action": "accept"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_link_can_be_declined_without_an_account(world: SimpleNamespace) -> None:
    world.upload(b"nope@example.edu\n")
    url = link_in(world.outbox[0])
    page = text(Client().post(url, {"action": "decline"}))
    assert "You declined the invitation to “Execution 101”. Nobody was added" in page
    assert Invitation.objects.get().status == Invitation.Status.DECLINED
    assert Client().get(url).status_code == 410


def test_an_expired_link_is_refused_with_a_clear_page(
    world: SimpleNamespace, settings: Settings
) -> None:
    settings.PLAYGROUND_INVITATION_DAYS = 14
    fifteen_days_ago = signing.b62_encode(int(time.time()) - 15 * 86400)
    with mock.patch.object(signing.TimestampSigner, "timestamp", return_value=fifteen_days_ago):
        world.upload(b"late@example.edu\n")
    url = link_in(world.outbox[0])
    user = logged_in(UserFactory())
    for response in (user.get(url), world.post(user, url, {"action": "accept"})):
        assert response.status_code == 410
        assert "This invitation link has expired (links work for 14 days)" in text(response)
    assert Membership.objects.filter(course=world.course).count() == 1  # the teacher


def test_a_changed_link_is_refused_never_an_error_page(world: SimpleNamespace) -> None:
    world.upload(b"a@example.edu\nb@example.edu\n")
    url_a, url_b = (link_in(m) for m in world.outbox)
    token_a = url_a.split("/")[-2]
    token_b = url_b.split("/")[-2]
    # A's payload with B's signature, a flipped character, a cut link, another signer's
    # token, garbage, a huge string: each gets the same clear 400 page.
    payload_a, _, _ = token_a.partition(":")
    _, _, signature_b = token_b.partition(":")
    other_salt = signing.dumps([Invitation.objects.first().pk, "x"], salt="something else")  # type: ignore[union-attr]
    flipped = token_a[:-1] + ("A" if token_a[-1] != "A" else "B")
    tokens = [
        f"{payload_a}:{signature_b}",
        flipped,
        token_a[: len(token_a) // 2],
        other_salt,
        "not-a-token",
        "x" * 5000,
    ]
    user = logged_in(UserFactory())
    for token in tokens:
        url = reverse("classroom:invitation", args=[token])
        for response in (user.get(url), world.post(user, url, {"action": "accept"})):
            assert response.status_code == 400, token[:40]
            assert "This invitation link is not valid" in text(response)
    assert Membership.objects.filter(course=world.course).count() == 1


def test_a_link_is_bound_to_its_invitation_and_to_its_latest_sending(
    world: SimpleNamespace,
) -> None:
    world.upload(b"ada@example.edu\n")
    old = link_in(world.outbox[0])
    invitation = Invitation.objects.get()
    resend = reverse("classroom:invitation_resend", args=[world.course.pk, invitation.pk])
    page = text(world.post(world.client, resend, follow=True))
    assert "A new link is on its way to ada@example.edu; the old one no longer works." in page
    new = link_in(world.outbox[1])
    assert new != old
    ada = logged_in(UserFactory(username="ada"))
    stale = world.post(ada, old, {"action": "accept"})
    assert stale.status_code == 410
    assert "the invitation was sent again with a new link" in text(stale)
    assert world.post(ada, new, {"action": "accept"}).status_code == 302
    assert Membership.objects.filter(course=world.course, user__username="ada").exists()


def test_a_revoked_invitation_no_longer_works(world: SimpleNamespace) -> None:
    bob = UserFactory(username="bob")
    world.upload(b"ada@example.edu\nbob\n")
    mailed, on_site = Invitation.objects.order_by("email")[1], Invitation.objects.get(invitee=bob)
    for invitation in (mailed, on_site):
        url = reverse("classroom:invitation_revoke", args=[world.course.pk, invitation.pk])
        world.post(world.client, url)
    assert set(Invitation.objects.values_list("status", flat=True)) == {"revoked"}
    response = logged_in(UserFactory()).get(link_in(world.outbox[0]))
    assert response.status_code == 410
    assert "withdrawn" in text(response)
    bob_client = logged_in(bob)
    assert "Invitations" not in text(bob_client.get(reverse("classroom:courses")))
    answer = reverse("classroom:invitation_answer", args=[on_site.pk])
    assert bob_client.post(answer, {"action": "accept"}).status_code == 404
    assert not Membership.objects.filter(user=bob).exists()


def test_a_username_row_waits_on_my_courses(world: SimpleNamespace) -> None:
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    page = world.upload(b"ada\nbob\nAda\nnobody\n")
    assert "0 invitations e-mailed, 2 people invited on their “My courses” page" in page
    assert "Row 3: no account is named 'Ada' (usernames must match exactly" in page
    assert "Row 4: no account is named 'nobody'" in page
    assert world.outbox == []  # usernames get no mail
    ada_client = logged_in(ada)
    courses = text(ada_client.get(reverse("classroom:courses")))
    assert "Invitations You are not in these courses unless you accept." in courses
    assert "Execution 101 Student Invited by teacher" in courses
    mine = Invitation.objects.get(invitee=ada)
    theirs = Invitation.objects.get(invitee=bob)
    # Bob cannot answer Ada's invitation (nor learn that it exists).
    bob_client = logged_in(bob)
    answer = reverse("classroom:invitation_answer", args=[mine.pk])
    assert bob_client.post(answer, {"action": "accept"}).status_code == 404
    response = ada_client.post(answer, {"action": "accept"}, follow=True)
    assert "You joined “Execution 101” as student." in text(response)
    decline = reverse("classroom:invitation_answer", args=[theirs.pk])
    bob_client.post(decline, {"action": "decline"})
    assert not Membership.objects.filter(user=bob).exists()
    assert Invitation.objects.get(invitee=bob).status == Invitation.Status.DECLINED
    # A second upload does not ask them again: one is in, the other said no.
    page = world.upload(b"ada\nbob\n")
    assert (
        "0 people invited on their “My courses” page, 1 already in the course, 1 declined" in page
    )
    assert Invitation.objects.filter(invitee=bob).count() == 1


def test_the_report_never_tells_whether_an_address_has_an_account(
    world: SimpleNamespace,
) -> None:
    UserFactory(username="known", email="known@example.edu")
    with_account = world.upload(b"known@example.edu\n")
    without = world.upload(b"unknown@example.edu\n")
    assert with_account == without.replace("unknown@", "known@")
    assert [m.to for m in world.outbox] == [["known@example.edu"], ["unknown@example.edu"]]
    assert not Membership.objects.filter(user__username="known").exists()


def test_joining_with_the_code_accepts_my_invitation_as_a_student(world: SimpleNamespace) -> None:
    ta = UserFactory(username="ta")
    world.upload(b"ta,assistant\n")
    client = logged_in(ta)
    page = text(
        client.post(reverse("classroom:join"), {"code": world.course.join_code}, follow=True)
    )
    assert "You joined “Execution 101” as student. The role of assistant it offers waits" in page
    member = Membership.objects.get(user=ta)
    assert (member.role, member.pending_role) == (Role.STUDENT, Role.ASSISTANT)
    assert Invitation.objects.get().status == Invitation.Status.ACCEPTED


def test_an_assistant_role_waits_for_an_instructor(world: SimpleNamespace) -> None:
    ta = UserFactory(username="ta")
    world.upload(b"ta,assistant\n")
    client = logged_in(ta)
    answer = reverse("classroom:invitation_answer", args=[Invitation.objects.get().pk])
    client.post(answer, {"action": "accept"})
    member = Membership.objects.get(user=ta)
    manage = reverse("classroom:course_manage", args=[world.course.pk])
    assert client.get(manage).status_code == 403
    page = text(world.client.get(manage))
    assert "Waiting for an instructor's confirmation" in page
    assert "ta asks to be Assistant" in page

    confirm = reverse("classroom:member_confirm", args=[world.course.pk, member.pk])
    # An assistant of the course may not confirm anyone (nor themselves).
    other_ta = UserFactory(username="other-ta")
    MembershipFactory(course=world.course, user=other_ta, role=Role.ASSISTANT)
    assert logged_in(other_ta).post(confirm, {"action": "confirm"}).status_code == 403
    assert client.post(confirm, {"action": "confirm"}).status_code == 403
    member.refresh_from_db()
    assert member.role == Role.STUDENT

    page = text(world.client.post(confirm, {"action": "confirm"}, follow=True))
    assert "ta is now assistant." in page
    member.refresh_from_db()
    assert (member.role, member.pending_role) == (Role.ASSISTANT, "")
    assert client.get(manage).status_code == 200


def test_an_instructor_may_refuse_the_staff_role(world: SimpleNamespace) -> None:
    ta = UserFactory(username="ta")
    world.upload(b"ta,assistant\n")
    logged_in(ta).post(
        reverse("classroom:invitation_answer", args=[Invitation.objects.get().pk]),
        {"action": "accept"},
    )
    member = Membership.objects.get(user=ta)
    confirm = reverse("classroom:member_confirm", args=[world.course.pk, member.pk])
    page = text(world.client.post(confirm, {"action": "refuse"}, follow=True))
    assert "ta stays a student (not assistant)." in page
    member.refresh_from_db()
    assert (member.role, member.pending_role) == (Role.STUDENT, "")
    page = text(world.client.post(confirm, {"action": "confirm"}, follow=True))
    assert "No role is waiting for confirmation" in page


def test_assistants_handle_student_invitations_only(world: SimpleNamespace) -> None:
    assistant = UserFactory(username="helper")
    MembershipFactory(course=world.course, user=assistant, role=Role.ASSISTANT)
    UserFactory(username="ta")
    world.upload(b"ta,assistant\nstudent@example.edu\n")
    staff_one = Invitation.objects.get(role=Role.ASSISTANT)
    student_one = Invitation.objects.get(role=Role.STUDENT)
    client = logged_in(assistant)
    for name in ("invitation_revoke", "invitation_resend"):
        url = reverse(f"classroom:{name}", args=[world.course.pk, staff_one.pk])
        assert client.post(url).status_code == 403
    url = reverse("classroom:invitation_revoke", args=[world.course.pk, student_one.pk])
    assert client.post(url).status_code == 302
    assert Invitation.objects.get(pk=student_one.pk).status == Invitation.Status.REVOKED
    assert Invitation.objects.get(pk=staff_one.pk).status == Invitation.Status.PENDING


def test_invitation_mails_are_capped_per_day(world: SimpleNamespace, settings: Settings) -> None:
    settings.PLAYGROUND_INVITATION_MAILS_PER_DAY = 2
    page = world.upload(b"a@example.edu\nb@example.edu\nc@example.edu\n")
    assert "Row 3: not sent: the limit of 2 invitation e-mails a day is reached" in page
    assert len(world.outbox) == 2
    invitation = Invitation.objects.first()
    assert invitation is not None
    resend = reverse("classroom:invitation_resend", args=[world.course.pk, invitation.pk])
    page = text(world.post(world.client, resend, follow=True))
    assert "the limit of 2 invitation e-mails a day is reached" in page
    assert len(world.outbox) == 2


class _Refusing(EmailBackend):
    """A mail server that refuses every message (the error path a real one cannot produce on
    demand)."""

    def send_messages(self, messages: Any) -> int:
        raise smtplib.SMTPRecipientsRefused({"x@example.edu": (550, b"no such user")})


def test_a_mail_that_cannot_be_sent_is_marked_not_an_error_page(
    world: SimpleNamespace, settings: Settings
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}._Refusing"
    page = world.upload(b"x@example.edu\n")
    assert "Roster read: 1 invitation e-mailed" in page
    invitation = Invitation.objects.get()
    assert invitation.mail_failed
    assert invitation.sent_at is None
    manage = text(world.client.get(reverse("classroom:course_manage", args=[world.course.pk])))
    assert "x@example.edu Student teacher the e-mail could not be sent Send again" in manage
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    resend = reverse("classroom:invitation_resend", args=[world.course.pk, invitation.pk])
    world.post(world.client, resend)
    invitation.refresh_from_db()
    assert (invitation.mail_failed, invitation.sent_at is not None) == (False, True)
    assert len(mail.outbox) == 1


def test_a_course_title_cannot_break_the_mail_headers(world: SimpleNamespace) -> None:
    type(world.course).objects.filter(pk=world.course.pk).update(
        title="Evil\r\nBcc: everyone@example.org <b>x</b>"
    )
    world.upload(b"ada@example.edu\n")
    message = world.outbox[0]
    assert message.subject == "Invitation to the course “Evil Bcc: everyone@example.org <b>x</b>”"
    assert message.bcc == []
    assert message.to == ["ada@example.edu"]
    assert "<b>x</b>" in message.body  # plain text: shown as typed, never markup
    assert message.content_subtype == "plain"


def test_every_step_is_in_the_audit_log(world: SimpleNamespace) -> None:
    UserFactory(username="bob")
    world.upload(b"ada@example.edu\nbob\n")
    ada = logged_in(UserFactory(username="ada"))
    world.post(ada, link_in(world.outbox[0]), {"action": "accept"})
    bob_invitation = Invitation.objects.get(invitee__username="bob")
    world.post(
        world.client,
        reverse("classroom:invitation_revoke", args=[world.course.pk, bob_invitation.pk]),
    )
    rows = list(
        AuditEvent.objects.filter(course_ref=world.course.pk)
        .order_by("id")
        .values_list("action", "actor_name", "subject_name")
    )
    assert rows == [
        ("invitation.sent", "teacher", "ada@example.edu"),
        ("invitation.sent", "teacher", "bob"),
        ("roster.imported", "teacher", ""),
        ("invitation.accepted", "ada", "ada@example.edu"),
        ("invitation.revoked", "teacher", "bob"),
    ]
    assert mailing.mails_left_today(world.teacher) == 499


def test_a_broker_that_is_down_marks_the_mails_unsent(world: SimpleNamespace) -> None:
    from kombu.exceptions import OperationalError

    from playground.classroom.tasks import send_invitation_mails

    down = OperationalError("Error 111 connecting to redis. Connection refused.")
    with mock.patch.object(send_invitation_mails, "apply_async", side_effect=down):
        page = world.upload(b"x@example.edu\n")
    assert "Roster read: 1 invitation e-mailed" in page
    assert Invitation.objects.get().mail_failed
    assert world.outbox == []
