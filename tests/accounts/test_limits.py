"""Sign-up, login (the site's and the admin's) and password-reset requests are limited from the
one table: at the boundary, per address and per account name, a 429 with Retry-After that
keeps what was typed, creates nothing and tells nobody whether an account exists."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from tests.factories import UserFactory
from tests.limits import assert_refused, fresh_address, public, text

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"  # the factories' password
User = get_user_model()


def _signup(client: Client, username: str, next_url: str = "") -> object:
    secret = "S3cret-enough!"
    data = {"username": username, "email": "", "password1": secret, "password2": secret}
    return client.post("/accounts/signup/", {**data, "next": next_url} if next_url else data)


def test_sign_ups_are_limited_per_address_and_the_form_keeps_the_name(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = public({"signups.ip": "2/h"})
    address = fresh_address()
    assert [_signup(Client(REMOTE_ADDR=address), f"new{i}").status_code for i in range(2)] == [
        302,
        302,
    ]
    refused = _signup(Client(REMOTE_ADDR=address), "third-one")
    shown = assert_refused(refused, "Too many accounts made from this address: at most 2 an hour.")
    assert 'value="third-one"' in refused.content.decode()  # kept in the form
    assert "Create account" in shown
    assert not User.objects.filter(username="third-one").exists()
    # An invalid form is not counted (nothing would be made): it gets its own errors.
    bad = Client(REMOTE_ADDR=address).post("/accounts/signup/", {"username": "x"})
    assert bad.status_code == 200
    # Another address is counted apart.
    assert _signup(Client(REMOTE_ADDR=fresh_address()), "third-one").status_code == 302


def test_a_class_invited_by_e_mail_signs_up_together_from_one_school_address(
    settings: Settings,
) -> None:
    """Sign-ups through a pending invitation's link are counted per invitation, not against
    the address the whole class shares; a link that does not work counts as any sign-up."""
    from playground.classroom.invitations import make_token
    from playground.classroom.models import Course, Invitation

    settings.PLAYGROUND_LIMITS = public({"signups.ip": "2/h"})
    school = fresh_address()
    course = Course.objects.create(title="Python 101")
    links = [
        reverse("classroom:invitation", args=[make_token(
            Invitation.objects.create(course=course, email=f"s{i}@school.example")
        )])
        for i in range(4)
    ]  # fmt: skip
    for i, link in enumerate(links):  # four students, one address, over its rate of 2
        response = _signup(Client(REMOTE_ADDR=school), f"student{i}", next_url=link)
        assert response.status_code == 302, i
        assert response["Location"] == link
    # One link is not a way around the limit: it allows the rate, per invitation.
    _signup(Client(REMOTE_ADDR=fresh_address()), "again1", next_url=links[0])
    refused = _signup(Client(REMOTE_ADDR=fresh_address()), "again2", next_url=links[0])
    assert refused.status_code == 429
    # Without a working link (none, or a forged one), sign-ups from the school count against
    # its address as any other.
    forged = links[1][:-3] + "xyz/"
    walk_ins = [_signup(Client(REMOTE_ADDR=school), f"walk-in{i}", next_url=url)
                for i, url in enumerate(["", forged, forged])]  # fmt: skip
    assert [r.status_code for r in walk_ins] == [302, 302, 429]


def _login(client: Client, username: str, password: str, url: str = "/accounts/login/") -> object:
    return client.post(url, {"username": username, "password": password})


def test_failed_logins_are_limited_per_account_name_whether_or_not_it_exists(
    settings: Settings,
) -> None:
    settings.PLAYGROUND_LIMITS = public({"logins.account": "3/10m"})
    alice = UserFactory(username="alice")
    for i in range(3):  # three wrong guesses, each from another address
        response = _login(Client(REMOTE_ADDR=fresh_address()), "alice", f"guess{i}")
        assert response.status_code == 200
        assert "Please enter a correct username and password" in text(response)
    # Now even the right password is refused (or the refusal would confirm a guess), from any
    # address, under any spelling of the name.
    client = Client(REMOTE_ADDR=fresh_address())
    refused = _login(client, "ALICE", PASSWORD)
    shown = assert_refused(refused, "Too many failed login attempts: at most 3 in 10 minutes.")
    assert 'value="ALICE"' in refused.content.decode()
    assert "_auth_user_id" not in client.session
    # A name without an account reads the same: the refusal says nothing of who exists.
    for i in range(3):
        _login(Client(REMOTE_ADDR=fresh_address()), "nobody-here", f"guess{i}")
    ghost = _login(Client(REMOTE_ADDR=fresh_address()), "nobody-here", "guess")
    assert_refused(ghost, "Too many failed login attempts: at most 3 in 10 minutes.")

    def same(page: str) -> str:  # each counter's window starts at its own time
        return re.sub(r"Try again in \d+ \w+", "Try again in N", page)

    assert same(text(ghost).replace("nobody-here", "ALICE")) == same(shown)
    # Other accounts are not affected.
    bob = UserFactory(username="bob")
    assert _login(Client(REMOTE_ADDR=fresh_address()), "bob", PASSWORD).status_code == 302
    assert alice.pk != bob.pk


def test_failed_logins_are_limited_per_address_and_successes_are_not_counted(
    settings: Settings,
) -> None:
    settings.PLAYGROUND_LIMITS = public({"logins.ip": "3/10m"})
    address = fresh_address()
    users = UserFactory.create_batch(5)
    # A class behind one address signs in: successful logins do not count.
    for user in users:
        assert _login(Client(REMOTE_ADDR=address), user.username, PASSWORD).status_code == 302
    for i in range(3):  # three failures, on three different names
        assert _login(Client(REMOTE_ADDR=address), f"someone{i}", "wrong").status_code == 200
    refused = _login(Client(REMOTE_ADDR=address), users[0].username, PASSWORD)
    assert_refused(refused, "Too many failed login attempts: at most 3 in 10 minutes.")
    assert (
        _login(Client(REMOTE_ADDR=fresh_address()), users[0].username, PASSWORD).status_code == 302
    )


def test_the_admin_login_has_the_same_limits(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = public({"logins.account": "2/10m"})
    UserFactory(username="root", is_staff=True, is_superuser=True)
    for _ in range(2):
        response = _login(Client(REMOTE_ADDR=fresh_address()), "root", "wrong", "/admin/login/")
        assert response.status_code == 200
    client = Client(REMOTE_ADDR=fresh_address())
    refused = _login(client, "root", PASSWORD, "/admin/login/")
    assert_refused(refused, "Too many failed login attempts: at most 2 in 10 minutes.")
    assert client.get("/admin/").status_code == 302  # not signed in
    # The site's login counts the same attempts.
    assert _login(Client(REMOTE_ADDR=fresh_address()), "root", PASSWORD).status_code == 429


def test_password_reset_requests_are_limited_per_address_and_per_mailbox(
    settings: Settings,
) -> None:
    settings.PLAYGROUND_LIMITS = public(
        {"password_resets.ip": "3/h", "password_resets.account": "2/h"}
    )
    UserFactory(username="carol", email="carol@example.org")
    url = "/accounts/password/reset/"
    # Per mailbox, from anywhere: a victim's inbox cannot be flooded from many addresses.
    for _ in range(2):
        sent = Client(REMOTE_ADDR=fresh_address()).post(url, {"email": "carol@example.org"})
        assert sent.status_code == 302
    assert len(mail.outbox) == 2
    refused = Client(REMOTE_ADDR=fresh_address()).post(url, {"email": "Carol@Example.org"})
    assert_refused(refused, "Too many password-reset e-mails asked for: at most 2 an hour.")
    assert 'value="Carol@Example.org"' in refused.content.decode()
    assert len(mail.outbox) == 2
    # Per address, whatever mailbox is asked for (with an account or not: the same answers).
    address = fresh_address()
    for i in range(3):
        sent = Client(REMOTE_ADDR=address).post(url, {"email": f"who{i}@example.org"})
        assert sent.status_code == 302
    refused = Client(REMOTE_ADDR=address).post(url, {"email": "who9@example.org"})
    assert_refused(refused, "at most 3 an hour")
