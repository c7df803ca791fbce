"""Anonymous runs expire: the periodic task deletes them (with traces and share links, whose
pages then say "expired"), and the anonymous programs nothing refers to any more; nobody
else's runs or programs are touched, and a second copy of the task changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.celery import app
from playground.lib import paths
from playground.programs.models import Program
from playground.runs.models import Run, Trace
from playground.runs.retention import expire_anonymous_runs
from playground.sharing.models import ExpiredLink, ShareLink
from tests.at_once import twice_at_once
from tests.factories import ProgramFactory, UserFactory

TRACE = {"schema": 1, "status": "ok", "steps": [], "stdout": "", "result": "2", "error": None,
         "stats": {"steps": 0, "wall_ms": 1.0}, "source": "real", "method": "real"}  # fmt: skip


def _run(program: Program, *, days: float, owner: Any = None, token: str = "") -> Run:
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=owner,
        anon_owner=token, status=Run.Status.DONE,
    )  # fmt: skip
    Trace.objects.create(run=run, kind="real", status="ok", data=TRACE)
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(days=days))
    return run


def _aged(program: Program, days: float) -> Program:
    Program.objects.filter(pk=program.pk).update(created_at=timezone.now() - timedelta(days=days))
    return program


@pytest.mark.django_db
def test_old_anonymous_runs_go_with_their_traces_and_links_and_nothing_else(
    settings: Any,
) -> None:
    settings.PLAYGROUND_ANON_RUN_TTL_HOURS = 24 * 7
    user = UserFactory()
    visitor = "t" * 32
    mine = _aged(ProgramFactory(owner=None, anon_owner=visitor, title="Visitor's draft"), 9)
    old = _run(mine, days=8, token=visitor)
    old_link = ShareLink.objects.create(run=old)
    fresh = _run(mine, days=6, token=visitor)
    fresh_link = ShareLink.objects.create(run=fresh)
    owned = _run(ProgramFactory(owner=user), days=400, owner=user)
    # No owner and no token: made by `manage.py bench` or an answer key, not by a visitor.
    system = _run(ProgramFactory(owner=None), days=400)

    result = expire_anonymous_runs()

    assert result["runs"] == 1
    assert set(Run.objects.values_list("pk", flat=True)) == {fresh.pk, owned.pk, system.pk}
    assert not Trace.objects.filter(run_id=old.pk).exists()
    assert not ShareLink.objects.filter(pk=old_link.pk).exists()
    assert Program.objects.filter(pk=mine.pk).exists()  # a fresh run still refers to it

    visitor_client = Client()
    page = visitor_client.get(reverse("sharing:view", args=[old_link.token]))
    assert page.status_code == 404
    assert "This run has expired" in page.content.decode()
    assert "deleted after 7 days" in page.content.decode()
    embed = visitor_client.get(reverse("sharing:embed", args=[old_link.token]))
    assert embed.status_code == 404
    assert "This run has expired" in embed.content.decode()
    assert "X-Frame-Options" not in embed  # it replaces a run inside someone's iframe
    # ... and the embed's own Content-Security-Policy lets the embedding site frame it.
    assert "frame-ancestors *" in embed["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]
    assert visitor_client.get(reverse("sharing:status", args=[old_link.token])).status_code == 404
    assert visitor_client.get(fresh_link.get_absolute_url()).status_code == 200
    unknown = visitor_client.get(reverse("sharing:view", args=["x" * 32]))
    assert unknown.status_code == 404
    assert "expired" not in unknown.content.decode()

    # Idempotent: nothing more to do.
    assert expire_anonymous_runs() == {"runs": 0, "programs": 0, "links": 0}


@pytest.mark.django_db
def test_anonymous_private_programs_go_once_no_run_refers_to_them(settings: Any) -> None:
    settings.PLAYGROUND_ANON_RUN_TTL_HOURS = 24
    visitor = "v" * 32
    abandoned = _aged(ProgramFactory(owner=None, anon_owner=visitor), 3)
    _run(abandoned, days=2, token=visitor)
    never_run = _aged(ProgramFactory(owner=None, anon_owner=visitor), 3)
    published = _aged(ProgramFactory(owner=None, anon_owner=visitor, is_public=True), 3)
    recent = ProgramFactory(owner=None, anon_owner=visitor)
    # Someone signed in ran the visitor's program (public then, private now): their run keeps it.
    user = UserFactory()
    borrowed = _aged(ProgramFactory(owner=None, anon_owner=visitor), 3)
    _run(borrowed, days=2, owner=user)
    owned = _aged(ProgramFactory(), 30)

    result = expire_anonymous_runs()

    assert result == {"runs": 1, "programs": 2, "links": 0}
    left = set(Program.objects.values_list("pk", flat=True))
    assert abandoned.pk not in left
    assert never_run.pk not in left
    assert {published.pk, recent.pk, borrowed.pk, owned.pk} <= left


@pytest.mark.django_db
def test_an_expired_link_is_remembered_for_a_year() -> None:
    recent = ExpiredLink.objects.create(token="r" * 32)
    old = ExpiredLink.objects.create(token="o" * 32)
    ExpiredLink.objects.filter(pk=old.pk).update(expired_at=timezone.now() - timedelta(days=366))
    assert expire_anonymous_runs()["links"] == 1
    assert list(ExpiredLink.objects.values_list("pk", flat=True)) == [recent.pk]
    page = Client().get(reverse("sharing:view", args=[old.token]))
    assert page.status_code == 404
    assert "expired" not in page.content.decode()


@pytest.mark.django_db
def test_a_zero_ttl_keeps_everything(settings: Any) -> None:
    settings.PLAYGROUND_ANON_RUN_TTL_HOURS = 0
    program = _aged(ProgramFactory(owner=None, anon_owner="z" * 32), 900)
    _run(program, days=900, token="z" * 32)
    assert expire_anonymous_runs() == {"runs": 0, "programs": 0, "links": 0}
    assert Run.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_copies_at_once_delete_each_row_once(settings: Any) -> None:
    """Two beats (or a redelivered message) running together: small batches, locked rows skipped;
    between them every expired run is deleted exactly once and neither fails."""
    settings.PLAYGROUND_ANON_RUN_TTL_HOURS = 1
    program = ProgramFactory(is_public=True)
    for i in range(40):
        _run(program, days=1, token=f"visitor-{i}")
    results = twice_at_once(lambda: expire_anonymous_runs(batch_size=3))
    assert sum(r["runs"] for r in results) == 40
    assert Run.objects.count() == 0
    assert Trace.objects.count() == 0


def test_beat_sends_it_every_hour_to_a_queue_a_worker_takes() -> None:
    entry = app.conf.beat_schedule["expire-anonymous-runs"]
    assert entry["task"] == "playground.runs.retention.expire_anonymous_runs"
    assert entry["schedule"] == 3600.0
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    assert app.amqp.router.route({}, entry["task"])["queue"].name == "default"


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_task_by_name() -> None:
    """The worker finds the task (it lives outside tasks.py: CELERY_IMPORTS) and deletes."""
    program = ProgramFactory(is_public=True)
    old = _run(program, days=30, token="w" * 32)
    queue = f"test-default-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DATABASE_URL": paths.database_url(connection.settings_dict)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "playground", "worker", "-Q", queue,
         "--pool", "solo", "--without-mingle", "--without-gossip", "-n", f"{queue}@%h"],
        cwd=paths.REPO_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        task = app.send_task("playground.runs.retention.expire_anonymous_runs", queue=queue)
        result = task.get(timeout=60)
    finally:
        proc.terminate()
        proc.wait(15)
    assert result["runs"] == 1
    assert not Run.objects.filter(pk=old.pk).exists()
