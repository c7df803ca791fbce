"""Saving programs (the form, its htmx version, a copy) and creating share links are limited
from the one table: per address for visitors, per account for users; a refusal is a 429 with
Retry-After that saves nothing and keeps the program in the form."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.programs.models import Program
from playground.runs.models import Run
from playground.sharing.models import ShareLink
from tests.factories import ProgramFactory, UserFactory
from tests.limits import assert_refused, fresh_address, public

pytestmark = pytest.mark.django_db
NEW = reverse("programs:new")
HTMX = {"HX-Request": "true", "HX-Target": "program-form"}


def _save(client: Client, source: str, **extra: object) -> object:
    return client.post(NEW, {"source": source, "call": "f(1)", "title": "", "stdin": ""}, **extra)


def test_visitors_save_programs_within_their_addresss_limit(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = public({"programs.anon": "2/d"})
    address = fresh_address()
    client = Client(REMOTE_ADDR=address)
    assert [_save(client, f"def f(x):\n    return {i}\n").status_code for i in range(2)] == [
        302,
        302,
    ]
    refused = _save(client, "def f(x):\n    return 'kept'\n")
    assert_refused(refused, "Too many programs saved: at most 2 a day.")
    assert "return &#x27;kept&#x27;" in refused.content.decode()  # the program stays in the box
    assert Program.objects.filter(source__contains="kept").count() == 0
    # The count is the address's: another browser session from it is refused too, another
    # address is not.
    assert _save(Client(REMOTE_ADDR=address), "def f(x):\n    return 3\n").status_code == 429
    assert (
        _save(Client(REMOTE_ADDR=fresh_address()), "def f(x):\n    return 3\n").status_code == 302
    )


def test_users_are_counted_per_account_and_htmx_gets_the_form_back(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = public({"programs.user": "1/d"})
    user = UserFactory()
    client = Client(REMOTE_ADDR=fresh_address())
    client.force_login(user)
    assert _save(client, "def f(x):\n    return 1\n", headers=HTMX).status_code == 200
    refused = _save(client, "def f(x):\n    return 'mine'\n", headers=HTMX)
    assert_refused(refused, "Too many programs saved: at most 1 a day.")
    body = refused.content.decode()
    assert body.lstrip().startswith('<form id="program-form"')  # the fragment htmx swaps in
    assert "return &#x27;mine&#x27;" in body
    assert Program.objects.filter(owner=user).count() == 1
    # The account's count follows it to another address.
    elsewhere = Client(REMOTE_ADDR=fresh_address())
    elsewhere.force_login(user)
    assert _save(elsewhere, "def f(x):\n    return 2\n").status_code == 429


def test_a_refused_upload_keeps_the_files_program_in_the_box(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = public({"programs.anon": "0/d"})
    upload = SimpleUploadedFile("p.py", b"def f(x):\n    return 'from the file'\n")
    refused = Client(REMOTE_ADDR=fresh_address()).post(
        NEW, {"source": "", "call": "f(1)", "source_file": upload}
    )
    assert_refused(refused, "Too many programs saved")
    assert "return &#x27;from the file&#x27;" in refused.content.decode()


def test_copying_a_program_is_saving_one(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = public({"programs.anon": "1/d"})
    original = ProgramFactory(is_public=True)
    client = Client(REMOTE_ADDR=fresh_address())
    form = client.get(NEW, {"copy": original.pk})
    assert form.status_code == 200  # showing the copy costs nothing
    assert _save(client, original.source).status_code == 302
    assert _save(client, original.source).status_code == 429


def _run_of(owner: object) -> tuple[Run, Client]:
    program = ProgramFactory(owner=owner, is_public=False)
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=owner,
        status=Run.Status.DONE, method="real",
    )  # fmt: skip
    client = Client(REMOTE_ADDR=fresh_address())
    client.force_login(owner)
    return run, client


def test_share_links_are_limited_per_account(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = public({"share_links.user": "2/d"})
    owner = UserFactory()
    run, client = _run_of(owner)
    url = reverse("sharing:create", args=[run.pk])
    assert [client.post(url).status_code for _ in range(2)] == [302, 302]
    assert_refused(client.post(url), "Too many share links made: at most 2 a day.")
    assert ShareLink.objects.filter(run=run).count() == 2
    # Asked by htmx, the 429 page replaces the page's body (htmx-config swaps a 429), rather
    # than being dropped or swapped into whatever element asked.
    from_htmx = client.post(url, headers={"HX-Request": "true"})
    assert_refused(from_htmx, "Too many share links made")
    assert (from_htmx["HX-Retarget"], from_htmx["HX-Reswap"]) == ("body", "innerHTML")
    other_run, other = _run_of(UserFactory())  # another account has its own count
    assert other.post(reverse("sharing:create", args=[other_run.pk])).status_code == 302


def test_share_links_of_visitors_are_limited_per_address(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = public({"share_links.anon": "1/d", "runs.anon": "5/m"})
    address = fresh_address()
    client = Client(REMOTE_ADDR=address)
    program = ProgramFactory(is_public=True)
    client.post(reverse("runs:start", args=[program.pk]))
    run = Run.objects.get(program=program)
    url = reverse("sharing:create", args=[run.pk])
    assert client.post(url).status_code == 302
    assert_refused(client.post(url), "Too many share links made: at most 1 a day.")
    assert ShareLink.objects.filter(run=run).count() == 1
