"""A signed-in person downloads everything the site holds about them as one JSON file (the
account page, and the API with a token): never the password hash or a token's secret, capped
in size, limited in rate; and every user foreign key of every model is exported or listed as
deliberately left out, so a new model cannot be forgotten."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connections
from django.test import AsyncClient, Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.privacy import export
from playground.runs.models import Trace
from tests.limits import assert_refused, public
from tests.privacy.world import student_world

pytestmark = pytest.mark.django_db


def _user_keys() -> set[str]:
    """Every foreign key (and many-to-many) from a model to the user model, as
    ``app_label.Model.field``."""
    user_model = get_user_model()
    keys = set()
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if field.is_relation and field.concrete and field.related_model is user_model:
                keys.add(f"{model._meta.app_label}.{model.__name__}.{field.name}")
    return keys


def test_every_user_foreign_key_is_exported_or_excluded_with_a_reason() -> None:
    installed = [s for s in export.SECTIONS if not s.app or apps.is_installed(s.app)]
    covered = {key for section in installed for key in section.covers}
    excluded = set(export.EXCLUDED)
    assert not covered & excluded
    forgotten = _user_keys() - covered - excluded
    assert not forgotten, f"add these to a section or to EXCLUDED with why: {sorted(forgotten)}"
    assert all(len(why) > 20 for why in export.EXCLUDED.values())
    # No stale entries: each named key still exists.
    assert (covered | excluded) <= _user_keys()


def _download(client: Client) -> dict[str, Any]:
    response = client.post(reverse("export_data"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Cache-Control"] == "no-store"
    return json.loads(b"".join(response.streaming_content))


def test_the_download_holds_everything_about_the_student_and_no_secret() -> None:
    world = student_world()
    data = _download(world.client)
    raw = json.dumps(data)
    sections = data["sections"]
    assert data["truncated"] == []
    (account,) = sections["account"]
    assert account["username"] == world.student.username
    assert account["email"] == world.email
    assert account["first_name"] == "Zoë"
    # Never the hash, nor the token's secret or digest.
    assert world.student.password not in raw
    assert "pbkdf2" not in raw
    assert "argon2" not in raw
    assert world.secret not in raw
    assert world.token.digest not in raw
    assert sections["api_tokens"][0]["name"] == "laptop script"
    assert sections["api_tokens"][0]["prefix"] == world.token.prefix
    titles = {p["title"] for p in sections["programs"]}
    assert titles == {"my secret homework", "my public puzzle"}
    run = next(r for r in sections["runs"] if r["id"] == world.run.pk)
    assert run["emulated_text"] == "The model thinks: zq-model-text"
    assert run["traces"][0]["kind"] == "real"
    assert run["surprise"]["mean"] == 1.5
    assert {r["id"] for r in sections["runs"]} == {world.run.pk, world.queued.pk}
    assert sections["share_links"][0]["url"] == world.link.get_absolute_url()
    assert sections["courses"] == [
        {**sections["courses"][0], "course": "Execution 101", "role": "student"}
    ]
    (sub,) = sections["submissions"]
    assert (sub["answer"], sub["final_credit"], sub["assignment"]) == ("6", 1.0, "Loops")
    assert sections["step_predictions"][0]["answer"] == {"line": 2}
    assert len(sections["exam_starts"]) == len(sections["extensions"]) == 1
    assert sections["invitations"][0]["course"] == "Other course"
    actions = {e["action"] for e in sections["audit_events"]}
    assert {"member.joined", "invitation.sent"} <= actions
    assert sections["moderation_reports"][0]["note"] == "zq report note"
    lms = {r["kind"]: r for r in sections["lti"]}
    assert lms["lms_identity"]["sub"] == "zq-lms-sub-77"
    assert lms["score_sent"]["score_given"] == 1.0
    # Nobody else's things: the teacher's run of the student's public program is not in it.
    assert world.others_run.pk not in {r["id"] for r in sections["runs"]}


def test_past_the_size_cap_the_file_stays_json_and_says_what_was_cut(settings: Settings) -> None:
    world = student_world()
    data = json.loads(export.build(world.student, max_bytes=1500))
    assert data["truncated"], data
    assert data["sections"]["account"][0]["username"] == world.student.username
    assert "runs" in data["truncated"] or not data["sections"]["runs"]


def test_signed_out_visitors_and_get_requests_get_nothing() -> None:
    response = Client().post(reverse("export_data"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
    world = student_world()
    assert world.client.get(reverse("export_data")).status_code == 405


def test_exports_are_limited_per_account(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = public({"exports.user": "2/h"})
    world = student_world()
    for _ in range(2):
        _download(world.client)
    assert_refused(world.client.post(reverse("export_data")), "data exports made")


def test_a_token_exports_through_the_api_and_anonymous_gets_401() -> None:
    world = student_world()
    response = Client().get("/api/account/export", HTTP_AUTHORIZATION=f"Bearer {world.secret}")
    assert response.status_code == 200
    data = json.loads(b"".join(response.streaming_content))
    assert data["sections"]["account"][0]["username"] == world.student.username
    assert Client().get("/api/account/export").status_code == 401
    # The session cookie alone is not enough: a GET another site can make must not spend the
    # person's exports (exports.user).
    cookie = world.client.get("/api/account/export")
    assert cookie.status_code == 401
    assert "account page" in cookie.json()["detail"]


def test_the_account_page_offers_the_download_and_the_deletion() -> None:
    world = student_world()
    page = world.client.get(reverse("account")).content.decode()
    assert reverse("export_data") in page
    assert reverse("delete_account") in page
    assert "csrfmiddlewaretoken" in page


@pytest_asyncio.fixture
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("_close_thread_connections")
async def test_under_asgi_the_file_streams_in_parts() -> None:
    """The web server is ASGI: the file comes in parts made one after another (never the whole
    file in memory), and they join into the same JSON."""
    world = await sync_to_async(student_world)()
    big = {"status": "ok", "steps": [{"line": 1, "locals": {"x": "y" * 1000}}] * 200}
    await sync_to_async(Trace.objects.create)(
        run=world.queued, kind="real", status="ok", step_count=200, data=big
    )
    client = AsyncClient()
    await client.aforce_login(world.student)
    response = await client.post(reverse("export_data"))
    assert response.status_code == 200
    assert response.is_async
    parts = [part async for part in response.streaming_content]
    assert len(parts) >= 2  # parts of about 64 KiB, one record never split
    data = json.loads(b"".join(parts))
    run = next(r for r in data["sections"]["runs"] if r["id"] == world.queued.pk)
    assert run["traces"][0]["data"] == big
    assert data["sections"]["submissions"][0]["final_credit"] == 1.0
