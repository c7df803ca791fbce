"""The retention periods of signed-in people's data (playground/privacy/retention.py): each rule
deletes what its period has passed for and nothing else, 0 keeps everything, two beats at once
delete each row once and a second run deletes nothing, and a real Celery worker runs the task
by the name beat sends."""

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
from django.utils import timezone
from pytest_django.fixtures import Settings

from playground.celery import app
from playground.classroom.models import Invitation, StepPrediction, Submission
from playground.lib import paths
from playground.lti.models import ScoreLog
from playground.privacy.retention import RULES, apply_retention
from playground.runs.models import Run
from playground.sharing.models import ShareLink
from tests.at_once import twice_at_once
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    SubmissionFactory,
    staffed_course,
    student_of,
)
from tests.factories import ProgramFactory, RunFactory, UserFactory
from tests.privacy.world import lti_world


def _ago(days: float) -> Any:
    return timezone.now() - timedelta(days=days)


def _old_run(owner: Any, days: float) -> Run:
    run = RunFactory(program=ProgramFactory(owner=owner), owner=owner, status=Run.Status.DONE)
    Run.objects.filter(pk=run.pk).update(created_at=_ago(days))
    return run


def _periods(settings: Settings, days: int) -> None:
    for name in {rule.setting for rule in RULES}:
        setattr(settings, name, days)


@pytest.mark.django_db
def test_each_period_deletes_what_it_has_passed_and_nothing_else(settings: Settings) -> None:
    _periods(settings, 30)
    # A course whose last assignment closed 40 days ago, and one still going.
    ended, teacher = staffed_course(title="Last year", instructor="t-old")
    going, _ = staffed_course(title="This term", instructor="t-new")
    student = student_of(ended, "s-old")
    old_item = ItemFactory(
        assignment=AssignmentFactory(course=ended, opens_at=_ago(60), due_at=_ago(40))
    )
    old_sub = SubmissionFactory(item=old_item, student=student)
    StepPrediction.objects.create(item=old_item, student=student, step=1, answer={})
    # A course with an old assignment but another one due later is not over.
    AssignmentFactory(course=going, opens_at=_ago(90), due_at=_ago(80))
    current = SubmissionFactory(
        item=ItemFactory(assignment=AssignmentFactory(course=going)), student=student
    )
    old_run, new_run = _old_run(student, 31), _old_run(student, 29)
    link = ShareLink.objects.create(run=old_run)
    key_run = _old_run(teacher, 100)
    old_item.key_run = key_run
    old_item.save(update_fields=["key_run"])
    anonymous = RunFactory(anon_owner="v" * 32)
    Run.objects.filter(pk=anonymous.pk).update(created_at=_ago(100))
    answered = Invitation.objects.create(course=going, email="a@uni.example", status="declined")
    expired = Invitation.objects.create(course=going, email="b@uni.example")
    pending = Invitation.objects.create(course=going, email="c@uni.example")
    Invitation.objects.filter(pk__in=[answered.pk, expired.pk]).update(created_at=_ago(31))
    Invitation.objects.filter(pk=pending.pk).update(created_at=_ago(1))

    lti = lti_world(ended, student, teacher)
    fresh_log = ScoreLog.objects.create(send=lti.send, outcome="sent again")
    ScoreLog.objects.filter(pk=lti.log.pk).update(at=_ago(31))

    counts = apply_retention()

    assert counts["submissions"] == 1
    assert counts["step_predictions"] == 1
    assert counts["runs"] == 1  # not the answer key, not the anonymous one (runs/retention.py)
    assert not Submission.objects.filter(pk=old_sub.pk).exists()
    assert Submission.objects.filter(pk=current.pk).exists()
    assert not Run.objects.filter(pk=old_run.pk).exists()
    assert Run.objects.filter(pk__in=[new_run.pk, key_run.pk, anonymous.pk]).count() == 3
    # The share link of a deleted run says "expired".
    assert "expired" in Client().get(link.get_absolute_url()).content.decode().lower()
    assert list(Invitation.objects.values_list("email", flat=True)) == ["c@uni.example"]
    # The LMS passback's old tries go; the grade sent stays (ScoreSend), and the recent try.
    assert counts["lti_score_log"] == 1
    assert list(ScoreLog.objects.values_list("pk", flat=True)) == [fresh_log.pk]
    # Applied again: nothing more to delete.
    assert sum(apply_retention().values()) == 0


@pytest.mark.django_db
def test_zero_keeps_everything(settings: Settings) -> None:
    _periods(settings, 0)
    user = UserFactory()
    _old_run(user, 5000)
    assert apply_retention() == {}
    assert Run.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_beats_at_once_delete_each_row_once(settings: Settings) -> None:
    _periods(settings, 1)
    user = UserFactory()
    for _ in range(30):
        _old_run(user, 2)
    results = twice_at_once(lambda: apply_retention(batch_size=3))
    assert sum(r.get("runs", 0) for r in results) == 30
    assert Run.objects.count() == 0


def test_beat_sends_it_daily_to_a_queue_a_worker_takes() -> None:
    entry = app.conf.beat_schedule["apply-retention"]
    assert entry["task"] == "playground.privacy.retention.apply_retention"
    assert entry["schedule"] == 86400.0
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
    assert app.amqp.router.route({}, entry["task"])["queue"].name == "default"


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_applies_the_periods_by_the_task_name() -> None:
    user = UserFactory()
    old = _old_run(user, 400)
    queue = f"test-default-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": paths.database_url(connection.settings_dict),
        "PLAYGROUND_RETAIN_RUNS_DAYS": "365",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "playground", "worker", "-Q", queue,
         "--pool", "solo", "--without-mingle", "--without-gossip", "-n", f"{queue}@%h"],
        cwd=paths.REPO_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        task = app.send_task("playground.privacy.retention.apply_retention", queue=queue)
        result = task.get(timeout=60)
    finally:
        proc.terminate()
        proc.wait(15)
    assert result == {"runs": 1}
    assert not Run.objects.filter(pk=old.pk).exists()
