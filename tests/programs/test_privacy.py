"""Private programs are visible only to their owner (account or anonymous session): 404 else."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from playground.programs.models import Program
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db


def _submit(client: Client, title: str = "My secret program") -> Program:
    response = client.post(
        reverse("programs:new"),
        {"source": "def f():\n    return 42\n", "call": "f()", "title": title},
    )
    assert response.status_code == 302
    return Program.objects.latest("id")


def test_private_program_is_404_for_other_users_and_anonymous(user_client: Client) -> None:
    program = _submit(user_client)
    url = program.get_absolute_url()

    assert user_client.get(url).status_code == 200
    other = Client()
    other.force_login(UserFactory())
    assert other.get(url).status_code == 404
    assert Client().get(url).status_code == 404
    assert Client().get(reverse("programs:new") + f"?copy={program.pk}").status_code == 404


def test_anonymous_program_belongs_to_its_session_only(client: Client) -> None:
    program = _submit(client)
    assert client.get(program.get_absolute_url()).status_code == 200
    assert Client().get(program.get_absolute_url()).status_code == 404
    assert program.title not in Client().get(reverse("programs:mine")).content.decode()


def test_public_program_is_visible_to_everyone_and_listed() -> None:
    program = ProgramFactory(is_public=True, title="Shared fizzbuzz")
    ProgramFactory(is_public=False, title="Secret homework")
    assert Client().get(program.get_absolute_url()).status_code == 200
    listing = Client().get(reverse("programs:library") + "?dataset=user").content.decode()
    assert "Shared fizzbuzz" in listing
    assert "Secret homework" not in listing


def test_only_the_owner_can_change_visibility_or_delete(user_client: Client) -> None:
    program = _submit(user_client)
    stranger = Client()
    stranger.force_login(UserFactory())
    visibility = reverse("programs:visibility", args=[program.pk])
    delete = reverse("programs:delete", args=[program.pk])

    assert stranger.post(visibility, {"is_public": "1"}).status_code == 404
    assert stranger.post(delete).status_code == 404
    program.refresh_from_db()
    assert not program.is_public

    assert user_client.post(visibility, {"is_public": "1"}).status_code == 302
    assert stranger.get(program.get_absolute_url()).status_code == 200
    # Public does not mean editable by others.
    assert stranger.post(delete).status_code == 404
    assert user_client.post(delete).status_code == 302
    assert not Program.objects.filter(pk=program.pk).exists()


def test_anonymous_programs_move_to_the_account_at_login(client: Client) -> None:
    program = _submit(client)
    user = UserFactory()
    response = client.post(
        reverse("login"), {"username": user.username, "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
    program.refresh_from_db()
    assert program.owner == user
    assert client.get(program.get_absolute_url()).status_code == 200
    assert program.display_title in client.get(reverse("programs:mine")).content.decode()


def test_signup_logs_in_and_claims_session_programs(client: Client) -> None:
    program = _submit(client)
    response = client.post(
        reverse("signup"),
        {
            "username": "newcomer",
            "password1": "a-long-unusual-pass-42",
            "password2": "a-long-unusual-pass-42",
        },
    )
    assert response.status_code == 302
    program.refresh_from_db()
    assert program.owner is not None
    assert program.owner.username == "newcomer"
