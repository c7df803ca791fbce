"""Answers whose grading task died are graded again by the reaper's sweep: one a task took and
holds no lease for is sent again and graded; one a live task holds, or one just submitted, is
left alone; one lost again and again is marked as not graded (the instructor grades it by hand),
never left "being graded" for ever."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from playground.celery import app
from playground.classroom import recovery
from playground.classroom.models import Item, Mode, Submission
from playground.classroom.tasks import grade_puzzle_submission
from playground.lib import broker, leases, worktimes
from playground.runs.pipeline import work_key
from tests.classroom.student_world import assignment, course_world, puzzle

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending() -> Iterator[Submission]:
    w = course_world()
    item = Item.objects.create(assignment=assignment(w.course), mode=Mode.PUZZLE, puzzle=puzzle())
    submission = Submission.objects.create(
        item=item, student=w.s1, attempt=1, answer="'ababab'", feedback={"late_factor": 1.0}
    )
    key = work_key("submission", submission.pk)
    yield submission
    leases.redis_client().delete(f"{key}:taken", f"{key}:sent", f"{key}:resends")


def _took_and_died(submission: Submission) -> None:
    key = work_key("submission", submission.pk)
    leases.redis_client().set(f"{key}:taken", "1", ex=60)


def test_an_answer_whose_grading_worker_died_is_graded_again(
    eager: None, pending: Submission
) -> None:
    assert recovery.reap_submissions() == []  # just submitted: its task may be queued
    _took_and_died(pending)
    assert recovery.reap_submissions() == [(pending.pk, "its worker stopped")]
    pending.refresh_from_db()
    assert (pending.status, pending.score) == (Submission.Status.GRADED, 1.0)


def test_an_answer_a_live_task_grades_is_left_alone(pending: Submission) -> None:
    _took_and_died(pending)
    key = work_key("submission", pending.pk)
    with leases.Held([key], [1], worktimes.LEASE_S):
        assert recovery.reap_submissions() == []
        assert grade_puzzle_submission.run(pending.pk) == "held"  # a redelivered copy
    assert Submission.objects.get(pk=pending.pk).status == Submission.Status.PENDING


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Grading tasks sent (not run: the message would wait for a sandbox worker)."""
    ids: list[int] = []
    monkeypatch.setattr(recovery, "send_grading", lambda pk, attempt: ids.append(pk))
    return ids


def test_a_message_the_broker_lost_is_sent_again_within_a_minute(
    pending: Submission, sent: list[int]
) -> None:
    # Submitted, and its message in none of the broker's places (a failover took it).
    old = timezone.now() - timedelta(seconds=worktimes.LOST_AFTER_S + 1)
    Submission.objects.filter(pk=pending.pk).update(submitted_at=old)
    assert recovery.reap_submissions() == [(pending.pk, "its message is not in the broker")]
    assert recovery.reap_submissions() == []  # sent: not looked for again at once
    assert sent == [pending.pk]
    assert Submission.objects.get(pk=pending.pk).submitted_at == old  # the student's time stays


def test_a_message_waiting_in_its_queue_is_not_sent_twice(
    pending: Submission, monkeypatch: pytest.MonkeyPatch, sent: list[int]
) -> None:
    # A class submitted at once: the answer's message waits behind others, however long.
    queue = f"test-grading-{uuid.uuid4().hex[:8]}"
    # Where the reaper looks for the task (not Celery's routes: its router caches them).
    routed = broker.queue_of
    monkeypatch.setattr(
        broker,
        "queue_of",
        lambda name: queue if name == grade_puzzle_submission.name else routed(name),
    )
    task_id = broker.task_id("submission", pending.pk, "grade", 0)
    grade_puzzle_submission.apply_async((pending.pk,), task_id=task_id, queue=queue)
    try:
        old = timezone.now() - timedelta(seconds=worktimes.UNCLAIMED_AFTER_S + 60)
        Submission.objects.filter(pk=pending.pk).update(submitted_at=old)
        assert recovery.reap_submissions() == []
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)
    # Gone from the broker (a failover took it): sent again.
    assert recovery.reap_submissions() == [(pending.pk, "its message is not in the broker")]
    assert sent == [pending.pk]


def test_an_answer_lost_too_often_is_marked_not_graded(
    pending: Submission, sent: list[int]
) -> None:
    for _ in range(worktimes.MAX_RESENDS):
        _took_and_died(pending)
        assert recovery.reap_submissions() == [(pending.pk, "its worker stopped")]
    _took_and_died(pending)
    assert recovery.reap_submissions() == [(pending.pk, "given up: its worker stopped")]
    assert sent == [pending.pk] * worktimes.MAX_RESENDS
    pending.refresh_from_db()
    assert pending.status == Submission.Status.GRADED
    assert pending.feedback["message"].startswith("This answer could not be checked")
    assert pending.feedback["late_factor"] == 1.0
