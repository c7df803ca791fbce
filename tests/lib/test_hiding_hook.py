"""The hiding hook (playground/lib/hiding.py): the classroom's policy is what the rooms below it
get, and a site where nothing registered one fails closed instead of showing everything."""

from __future__ import annotations

import pytest
from django.test import Client

from playground.classroom.visibility import POLICY
from playground.lib import hiding
from tests.factories import ProgramFactory


def test_the_classroom_registers_its_policy_when_django_starts() -> None:
    assert hiding.policy() is POLICY


def test_without_a_policy_every_question_fails_instead_of_hiding_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hiding, "_registered", [])
    with pytest.raises(hiding.PolicyMissing, match="no hiding policy"):
        hiding.policy()


@pytest.mark.django_db
def test_a_page_below_the_classroom_fails_rather_than_show_a_result_unguarded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    program = ProgramFactory(is_public=True)
    monkeypatch.setattr(hiding, "_registered", [])
    with pytest.raises(hiding.PolicyMissing):
        Client(raise_request_exception=True).get(f"/programs/{program.pk}/")


def test_register_replaces_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hiding, "_registered", [])
    hiding.register(POLICY)
    hiding.register(POLICY)
    assert hiding.policy() is POLICY
