"""The reaper's sweep of evaluations: one whose worker died is sent again with the items that
worker had taken back in the queue (each with one more failure; one that keeps killing its
worker is scored an error, not left to go round); one a live worker holds, or one just sent, is
left alone; a second copy of its task never works on it at once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from playground.benchmarks import execution, services
from playground.benchmarks.models import Evaluation, Result
from playground.lib import leases, worktimes
from playground.runs.pipeline import work_key

pytestmark = pytest.mark.django_db


def _evaluation(**fields: Any) -> Evaluation:
    evaluation = Evaluation.objects.create(
        dataset="cruxeval", method="direct", model="oracle", total=3, **fields
    )
    for index in range(3):
        Result.objects.create(evaluation=evaluation, index=index, item_key=f"sample_{index}")
    return evaluation


def test_an_evaluation_whose_worker_died_is_sent_again_with_its_items_back_in_the_queue(
    django_capture_on_commit_callbacks: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(services, "send", lambda pk, origin: sent.append(pk))
    now = timezone.now()
    died = _evaluation(status=Evaluation.Status.RUNNING, started_at=now, claimed_at=now)
    first, second, third = Result.objects.filter(evaluation=died).order_by("index")
    Result.objects.filter(pk=first.pk).update(status="done", passed=True, score_status="pass")
    Result.objects.filter(pk=second.pk).update(status="running", claimed_at=now)
    Result.objects.filter(pk=third.pk).update(
        status="running", claimed_at=now, failures=execution.MAX_FAILURES - 1
    )
    waiting = _evaluation()  # queued a moment ago: its worker may just be busy

    with django_capture_on_commit_callbacks(execute=True):
        assert services.reap_evaluations() == [(died.pk, "its worker stopped")]

    assert sent == [died.pk]
    died.refresh_from_db()
    assert (died.claimed_at, died.status) == (None, Evaluation.Status.RUNNING)
    assert died.resent_at is not None
    first.refresh_from_db()
    second.refresh_from_db()
    third.refresh_from_db()
    assert (first.status, first.score_status) == ("done", "pass")  # scored: kept as it was
    assert (second.status, second.failures) == ("pending", 1)
    # Taken by a worker that died MAX_FAILURES times: an error, never a "wrong".
    assert (third.status, third.score_status, third.passed) == ("done", "error", False)
    assert "stopped 3 times" in third.reason
    assert Evaluation.objects.get(pk=waiting.pk).resent_at is None
    # Sent, not taken yet: the next sweep leaves it alone.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reap_evaluations() == []
    assert sent == [died.pk]


def test_an_evaluation_a_live_worker_holds_is_left_alone_and_not_worked_twice() -> None:
    now = timezone.now()
    live = _evaluation(status=Evaluation.Status.RUNNING, started_at=now, claimed_at=now)
    Result.objects.filter(evaluation=live, index=0).update(status="running", claimed_at=now)
    with leases.Held([work_key("evaluation", live.pk)], [1], worktimes.LEASE_S) as held:
        assert held.taken
        assert services.reap_evaluations() == []
        assert services.held_elsewhere(live)
        assert execution.execute(live.pk) == "held"  # a redelivered copy of its task
    assert Result.objects.get(evaluation=live, index=0).status == "running"
    assert not services.held_elsewhere(live)


def test_an_evaluation_no_worker_took_is_sent_again_after_the_visibility_timeout(
    django_capture_on_commit_callbacks: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(services, "send", lambda pk, origin: sent.append(pk))
    lost = _evaluation()
    old = timezone.now() - timedelta(seconds=worktimes.UNCLAIMED_AFTER_S + 1)
    Evaluation.objects.filter(pk=lost.pk).update(created_at=old)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reap_evaluations() == [(lost.pk, "no worker took it")]
    assert sent == [lost.pk]
