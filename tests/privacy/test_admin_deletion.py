"""Django's admin cannot delete an account: its cascade would delete the person's grades with
them and leave their name in the grade audit. The page answers 403 and the list offers no
delete action; docs/PRIVACY.md sends operators to ``manage.py privacy delete``."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_admin_cannot_delete_an_account() -> None:
    admin = UserFactory(is_staff=True, is_superuser=True)
    student = UserFactory()
    client = Client()
    client.force_login(admin)
    assert client.get(f"/admin/auth/user/{student.pk}/delete/").status_code == 403
    assert client.post(f"/admin/auth/user/{student.pk}/delete/", {"post": "yes"}).status_code == 403
    listing = client.get("/admin/auth/user/")
    assert listing.status_code == 200
    assert b'value="delete_selected"' not in listing.content
    bulk = client.post(
        "/admin/auth/user/",
        {"action": "delete_selected", "_selected_action": [student.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 302)
    assert get_user_model().objects.filter(pk=student.pk).exists()
    # The account page's change form still works for operators.
    assert client.get(f"/admin/auth/user/{student.pk}/change/").status_code == 200
