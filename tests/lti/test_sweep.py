"""Score messages the broker lost are sent again by the reaper's sweep
(``tasks.resend_stale_scores``): a score still queued or failed past the bound is sent again,
a fresh one, one being retried and one sent are left alone, a score sent again
``MAX_RESENDS`` times is left failed with a message the staff read, and a grade change starts
the count again. (Two sweeps at once, and the tasks it sends reaching a real worker:
tests/lti/test_worker.py.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from playground import reaper
from playground.lib import worktimes
from playground.lti import passback, tasks
from playground.lti.models import LtiContext, LtiUser, Platform, ResourceLink, ScoreSend
from tests.classroom.staff_factories import AssignmentFactory, staffed_course, student_of

pytestmark = pytest.mark.django_db

SCORE = "https://purl.imsglobal.org/spec/lti-ags/scope/score"


def _sends(n: int) -> tuple[int, list[ScoreSend]]:
    course, _ = staffed_course(title="LMS course")
    homework = AssignmentFactory(course=course)
    platform = Platform.objects.create(
        name="LMS", issuer="https://lms.example", client_id="tool", deployment_ids=["1"],
        auth_login_url="https://lms.example/auth", auth_token_url="https://lms.example/token",
        jwks_url="https://lms.example/jwks",
    )  # fmt: skip
    context = LtiContext.objects.create(platform=platform, context_id="c", course=course)
    link = ResourceLink.objects.create(
        context=context, resource_link_id="l", assignment=homework,
        lineitem_url="https://lms.example/lineitems/1", ags_scopes=[SCORE],
    )  # fmt: skip
    rows = []
    for i in range(n):
        student = student_of(course, f"s{i}")
        LtiUser.objects.create(platform=platform, sub=f"sub-{i}", user=student)
        rows.append(ScoreSend.objects.create(link=link, student=student))
    return homework.pk, rows


def _age(row: ScoreSend, seconds: float, **fields: Any) -> None:
    ScoreSend.objects.filter(pk=row.pk).update(
        queued_at=timezone.now() - timedelta(seconds=seconds), **fields
    )


def test_lost_scores_are_sent_again_once_past_the_bound_then_given_up(
    django_capture_on_commit_callbacks: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[int, str]] = []
    monkeypatch.setattr(tasks.send_score, "delay", lambda pk, by="": sent.append((pk, by)))
    homework, (lost, fresh, done, failed, retrying) = _sends(5)
    bound = tasks.STALE_AFTER_S
    assert bound > worktimes.VISIBILITY_TIMEOUT_S  # a dead worker's message comes back first
    assert bound > tasks._backoff(tasks.MAX_RETRIES - 1) + 90  # a retry's wait and a try
    _age(lost, bound + 5)  # queued, its message gone
    _age(fresh, bound - 60)  # queued a while ago, still within the bound
    _age(done, bound * 3, status=ScoreSend.Status.SENT)
    _age(failed, bound + 5, status=ScoreSend.Status.FAILED, error="the LMS answered 503")
    with django_capture_on_commit_callbacks(execute=True):
        again = tasks.resend_stale_scores()
    assert sorted(again) == sorted([lost.pk, failed.pk])
    assert sorted(sent) == sorted([(lost.pk, tasks.SWEEP_BY), (failed.pk, tasks.SWEEP_BY)])
    assert ScoreSend.objects.get(pk=failed.pk).status == ScoreSend.Status.QUEUED
    # Sent again just now: not again at the next sweep.
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.resend_stale_scores() == []
    # A retry scheduled by the task moves its time on: the sweep leaves it to the retry.
    _age(retrying, bound + 5)
    tasks._record(retrying, passback.Score(1.0, 1.0, "FullyGraded", "Completed"), 503,
                  "the LMS answered 503", "", failed=False)  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        assert retrying.pk not in tasks.resend_stale_scores()

    # Lost every time: sent again MAX_RESENDS times, then left failed, saying so.
    for _ in range(worktimes.MAX_RESENDS - 1):
        _age(lost, bound + 5)
        with django_capture_on_commit_callbacks(execute=True):
            assert lost.pk in tasks.resend_stale_scores()
    assert ScoreSend.objects.get(pk=lost.pk).resends == worktimes.MAX_RESENDS
    _age(lost, bound + 5)
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert lost.pk not in tasks.resend_stale_scores()
    assert lost.pk not in [pk for pk, _ in sent]
    row = ScoreSend.objects.get(pk=lost.pk)
    assert row.status == ScoreSend.Status.FAILED
    assert row.error == "Sent again 2 times with no answer: use Send again."
    with django_capture_on_commit_callbacks(execute=True):
        assert lost.pk not in tasks.resend_stale_scores()  # and never again by itself
    # A grade change (or "Send again") queues it afresh, and the count starts over.
    passback.queue(assignment_id=homework, student_id=lost.student_id)
    row = ScoreSend.objects.get(pk=lost.pk)
    assert (row.status, row.resends, row.error) == (ScoreSend.Status.QUEUED, 0, "")


def test_the_reapers_sweep_sends_lost_scores_again(
    django_capture_on_commit_callbacks: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(tasks.send_score, "delay", lambda pk, by="": sent.append(pk))
    _, (lost,) = _sends(1)
    _age(lost, tasks.STALE_AFTER_S + 5)
    with django_capture_on_commit_callbacks(execute=True):
        found = reaper.sweep()
    assert found["lti_scores"] == [lost.pk]
    assert sent == [lost.pk]
