"""A visitor who works anonymously and then signs up keeps everything: the programs they saved
and the runs they made move to the new account (on 3103616 the runs stayed behind: carol's "My
runs" said "No runs yet"). Sign-up logs the new account in, which moves them."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from playground.programs.models import Program
from playground.runs.models import Run
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db
PASSWORD = "a long pass phrase 1"


def test_a_visitors_programs_and_runs_move_to_the_account_made_at_sign_up() -> None:
    visitor = Client()
    # Through the pages, as carol did: save a program, run it, and run a library program.
    saved = visitor.post(reverse("programs:new"), {"title": "Carol's", "source": "x = 1\n"})
    assert saved.status_code == 302
    own = Program.objects.get(title="Carol's")
    library = ProgramFactory(is_public=True, owner=None)
    for program in (own, library):
        assert visitor.post(reverse("runs:start", args=[program.pk])).status_code == 302
    runs = list(Run.objects.filter(owner__isnull=True).order_by("pk"))
    assert len(runs) == 2
    assert all(run.anon_owner for run in runs)
    before = visitor.get(reverse("runs:mine")).content.decode()
    assert all(f"Run #{run.pk}" in before for run in runs)

    data = {"username": "carol", "email": "", "password1": PASSWORD, "password2": PASSWORD}
    assert visitor.post(reverse("signup"), data).status_code == 302

    for run in runs:
        run.refresh_from_db()
        assert (run.owner.get_username(), run.anon_owner) == ("carol", "")
        assert visitor.get(run.get_absolute_url()).status_code == 200
    own.refresh_from_db()
    assert own.owner is not None
    assert own.owner.get_username() == "carol"
    listed = visitor.get(reverse("runs:mine")).content.decode()
    assert sorted(int(n) for n in re.findall(r"Run #(\d+)", listed)) == [r.pk for r in runs]
    assert "Carol&#x27;s" in visitor.get(reverse("programs:mine")).content.decode()
