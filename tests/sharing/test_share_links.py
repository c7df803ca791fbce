"""Share links: unguessable, read-only, revocable; the embed view is the only framable page."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from django.urls import reverse

from playground.asgi import application
from playground.runs.models import Run, Trace
from playground.sharing.models import ShareLink
from tests.factories import ProgramFactory, UserFactory


def _finished_private_run() -> tuple[Run, Client]:
    owner = UserFactory()
    client = Client()
    client.force_login(owner)
    program = ProgramFactory(owner=owner, is_public=False, title="Secret homework")
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=owner,
        status=Run.Status.DONE, method="direct", emulated_text="assert f(1) == 2",
        verdict={"status": "correct", "leakage": False,
                 "explanation": "Predicted 2, and the call returns 2."},
    )  # fmt: skip
    trace = {"schema": 1, "status": "ok", "steps": [], "stdout": "", "result": "2", "error": None,
             "stats": {"steps": 0, "wall_ms": 1.0}, "source": "real", "method": "real"}  # fmt: skip
    Trace.objects.create(run=run, kind="real", status="ok", data=trace)
    return run, client


@pytest.mark.django_db
def test_a_private_run_is_readable_only_through_an_active_link() -> None:
    run, owner = _finished_private_run()
    stranger = Client()
    assert stranger.get(run.get_absolute_url()).status_code == 404

    assert owner.post(reverse("sharing:create", args=[run.pk])).status_code == 302
    link = ShareLink.objects.get(run=run)
    page = stranger.get(link.get_absolute_url())
    assert page.status_code == 200
    text = page.content.decode()
    assert "Secret homework" in text
    assert "Predicted 2, and the call returns 2." in text
    assert "Create a share link" not in text  # read-only: no sharing or cancel controls
    assert '<meta property="og:title" content="Secret homework: Direct output prediction' in text

    assert owner.post(reverse("sharing:revoke", args=[run.pk, link.pk])).status_code == 302
    assert stranger.get(link.get_absolute_url()).status_code == 404
    assert stranger.get(reverse("sharing:embed", args=[link.token])).status_code == 404


@pytest.mark.django_db
def test_tokens_are_random_and_unrelated_to_the_run() -> None:
    run, owner = _finished_private_run()
    owner.post(reverse("sharing:create", args=[run.pk]))
    owner.post(reverse("sharing:create", args=[run.pk]))
    first, second = ShareLink.objects.filter(run=run).values_list("token", flat=True)
    assert first != second
    assert len(first) >= 32  # 192 bits, URL-safe base64
    assert Client().get(f"/s/{run.pk}/").status_code == 404
    assert Client().get("/s/not-a-token/").status_code == 404


@pytest.mark.django_db
def test_only_the_owner_creates_and_revokes_links() -> None:
    run, owner = _finished_private_run()
    owner.post(reverse("sharing:create", args=[run.pk]))
    link = ShareLink.objects.get()
    stranger = Client()
    stranger.force_login(UserFactory())
    assert stranger.post(reverse("sharing:create", args=[run.pk])).status_code == 404
    assert stranger.post(reverse("sharing:revoke", args=[run.pk, link.pk])).status_code == 404
    assert ShareLink.objects.active().count() == 1


@pytest.mark.django_db
def test_only_the_embed_view_may_be_framed() -> None:
    run, owner = _finished_private_run()
    owner.post(reverse("sharing:create", args=[run.pk]))
    link = ShareLink.objects.get()
    embed = Client().get(reverse("sharing:embed", args=[link.token]))
    assert embed.status_code == 200
    assert "X-Frame-Options" not in embed
    assert "Predicted 2" in embed.content.decode()
    assert Client().get(link.get_absolute_url())["X-Frame-Options"] == "DENY"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_live_view_follows_the_link_and_stops_with_it() -> None:
    run, _ = await sync_to_async(_finished_private_run)()
    link = await sync_to_async(ShareLink.objects.create)(run=run)
    headers = [(b"origin", b"http://127.0.0.1")]
    viewer = WebsocketCommunicator(
        application, f"/ws/runs/{run.pk}/?share={link.token}", headers=headers
    )
    connected, _ = await viewer.connect()
    assert connected
    await viewer.disconnect()
    link.revoked_at = run.created_at
    await sync_to_async(link.save)()
    refused = WebsocketCommunicator(
        application, f"/ws/runs/{run.pk}/?share={link.token}", headers=headers
    )
    connected, code = await refused.connect()
    assert not connected
    assert code == 4403
    other_run = await sync_to_async(lambda: _finished_private_run()[0])()
    wrong = WebsocketCommunicator(
        application, f"/ws/runs/{other_run.pk}/?share={link.token}", headers=headers
    )
    assert (await wrong.connect())[0] is False
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db
def test_run_and_share_pages_answer_get_and_head_only() -> None:
    """Reading pages change nothing, so they refuse other methods (405) instead of answering a
    POST as if it were a GET; HEAD stays (link checkers, monitors)."""
    run, owner = _finished_private_run()
    link = ShareLink.objects.create(run=run)
    pages = [
        run.get_absolute_url(),
        reverse("runs:status", args=[run.pk]),
        reverse("runs:trace_json", args=[run.pk]),
        reverse("runs:mine"),
        link.get_absolute_url(),
        reverse("sharing:status", args=[link.token]),
        reverse("sharing:embed", args=[link.token]),
    ]
    for url in pages:
        assert owner.get(url).status_code == 200, url
        assert owner.head(url).status_code == 200, url
        refused = owner.post(url)
        assert refused.status_code == 405, url
        assert refused["Allow"] == "GET, HEAD", url
