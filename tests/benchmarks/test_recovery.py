"""Evaluations fanned out over the batch workers: the window of items in flight is exact, and the
reaper's sweep puts back the items of a worker that died (each with one more failure; one that
keeps killing its worker is scored an error, never a "wrong"), leaves alone what a live worker
or the command line holds, sends again what no worker ever took (its message lost), leaves a
message waiting in its queue to come, and finishes an evaluation
whose last item's worker died after scoring it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from playground.benchmarks import execution, services, tasks
from playground.benchmarks.models import Evaluation, Result
from playground.celery import app
from playground.lib import broker, leases, worktimes
from playground.runs.pipeline import work_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The results sent to the batch queue (not run: the message waits for a worker)."""
    ids: list[int] = []

    def apply_async(args: tuple[int], queue: str, task_id: str) -> None:
        failures = Result.objects.get(pk=args[0]).failures
        assert task_id == f"result-{args[0]}-item-{failures}"  # what the reaper looks for
        ids.append(args[0])

    monkeypatch.setattr(tasks.evaluate_item, "apply_async", apply_async)
    return ids


def _evaluation(items: int = 3, **fields: Any) -> Evaluation:
    evaluation = Evaluation.objects.create(
        dataset="cruxeval", method="direct", model="oracle", total=items, **fields
    )
    for index in range(items):
        Result.objects.create(evaluation=evaluation, index=index, item_key=f"sample_{index}")
    return evaluation


def _results(evaluation: Evaluation) -> list[Result]:
    return list(Result.objects.filter(evaluation=evaluation).order_by("index"))


def test_the_window_of_items_in_flight_is_the_evaluations_concurrency(
    sent: list[int], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    evaluation = _evaluation(items=5, concurrency=2)
    with django_capture_on_commit_callbacks(execute=True):
        assert execution.dispatch(evaluation.pk) == "sent 2"
        assert execution.dispatch(evaluation.pk) == "sent 0"  # full: nothing more
    first, second, *rest = _results(evaluation)
    assert sent == [first.pk, second.pk]
    assert Evaluation.objects.get(pk=evaluation.pk).status == "running"
    # One scored: the next goes out, in the data set's order.
    Result.objects.filter(pk=first.pk).update(status="done", passed=True, score_status="pass")
    with django_capture_on_commit_callbacks(execute=True):
        assert execution.dispatch(evaluation.pk) == "sent 1"
    assert sent[-1] == rest[0].pk


def test_the_items_of_a_worker_that_died_are_put_back_and_sent_again(
    sent: list[int], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    now = timezone.now()
    evaluation = _evaluation(status="running", started_at=now, concurrency=4)
    first, second, third = _results(evaluation)
    Result.objects.filter(pk=first.pk).update(status="done", passed=True, score_status="pass")
    # Taken by a worker that holds no lease any more: it died.
    Result.objects.filter(pk=second.pk).update(status="running", claimed_at=now, taken_at=now)
    Result.objects.filter(pk=third.pk).update(
        status="running", claimed_at=now, taken_at=now, failures=execution.MAX_FAILURES - 1
    )
    waiting = _evaluation(status="running", started_at=now)
    Result.objects.filter(evaluation=waiting).update(status="running", claimed_at=now)

    with django_capture_on_commit_callbacks(execute=True):
        found = services.reap_evaluations()

    assert found == [(evaluation.pk, "2 item(s) put back")]
    first.refresh_from_db()
    second.refresh_from_db()
    third.refresh_from_db()
    assert (first.status, first.score_status) == ("done", "pass")  # kept as it was
    # Put back with one more failure, then sent again at once (the window had room).
    assert (second.status, second.failures, second.taken_at) == ("running", 1, None)
    assert second.pk in sent
    # Its worker died under it MAX_FAILURES times: an error, never a "wrong".
    assert (third.status, third.score_status, third.passed) == ("done", "error", False)
    assert "stopped 3 times" in third.reason
    # Sent a moment ago and not taken yet (the messages wait for a worker): not lost.
    assert all(r.status == "running" and r.failures == 0 for r in _results(waiting))


def test_what_a_live_worker_or_the_command_line_holds_is_left_alone(sent: list[int]) -> None:
    now = timezone.now()
    evaluation = _evaluation(status="running", started_at=now, concurrency=1)
    first = _results(evaluation)[0]
    Result.objects.filter(pk=first.pk).update(status="running", claimed_at=now, taken_at=now)
    with leases.Held([work_key("result", first.pk)], [1], worktimes.LEASE_S) as held:
        assert held.taken
        assert services.reap_evaluations() == []
        assert execution.work_on(first.pk) == "held"  # a redelivered copy of its task
    assert Result.objects.get(pk=first.pk).failures == 0
    # The command line drives this one in its own threads: no worker is sent its items.
    cli = _evaluation(status="running", started_at=now)
    with leases.Held([work_key("evaluation", cli.pk)], [1], worktimes.LEASE_S):
        assert services.held_elsewhere(cli)
        services.reap_evaluations()
    assert not any(r.status == "running" for r in _results(cli))
    assert {r.pk for r in _results(cli)}.isdisjoint(sent)


def test_an_item_whose_message_the_broker_lost_is_sent_again_within_a_minute(
    sent: list[int], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    # Sent, never taken, and in none of the broker's places (a failover took it).
    ago = timezone.now() - timedelta(seconds=worktimes.LOST_AFTER_S + 1)
    evaluation = _evaluation(items=1, status="running", started_at=ago)
    result = _results(evaluation)[0]
    Result.objects.filter(pk=result.pk).update(status="running", claimed_at=ago)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reap_evaluations() == [(evaluation.pk, "1 item(s) put back")]
    assert sent == [result.pk]  # under its second attempt's id (checked by the fixture)
    assert Result.objects.get(pk=result.pk).failures == 1


def test_an_item_waiting_in_its_queue_is_not_sent_twice_however_long_it_waits(
    sent: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"test-batch-{uuid.uuid4().hex[:8]}"
    # Where the reaper looks for the task (not Celery's routes: its router caches them).
    routed = broker.queue_of
    monkeypatch.setattr(
        broker, "queue_of", lambda name: queue if name == tasks.evaluate_item.name else routed(name)
    )
    long_ago = timezone.now() - timedelta(seconds=worktimes.UNCLAIMED_AFTER_S + 60)
    evaluation = _evaluation(items=1, status="running", started_at=long_ago, concurrency=1)
    result = _results(evaluation)[0]
    Result.objects.filter(pk=result.pk).update(status="running", claimed_at=long_ago)
    task_id = broker.task_id("result", result.pk, "item", 0)
    # The real send (the fixture replaced the task's own), to a queue no worker reads.
    app.send_task(tasks.evaluate_item.name, (result.pk,), task_id=task_id, queue=queue)
    try:
        assert services.reap_evaluations() == []
        assert Result.objects.get(pk=result.pk).failures == 0
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)
    assert sent == []


def test_an_evaluation_whose_last_worker_died_after_scoring_is_finished_by_the_sweep() -> None:
    evaluation = _evaluation(items=2, status="running", started_at=timezone.now())
    Result.objects.filter(evaluation=evaluation).update(
        status="done", passed=True, score_status="pass"
    )
    services.reap_evaluations()
    evaluation.refresh_from_db()
    assert evaluation.status == "done"
    assert evaluation.figures is not None


def test_an_item_whose_worker_dies_as_it_takes_it_is_put_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A task marks its result taken before it takes the lease: killed between the two (or
    after), the result is taken with no live lease, which the sweep puts back at once, not a
    result that looks sent and waiting (put back only after 25 minutes)."""
    now = timezone.now()
    evaluation = _evaluation(items=1, status="running", started_at=now, concurrency=1)
    result = _results(evaluation)[0]
    Result.objects.filter(pk=result.pk).update(status="running", claimed_at=now)

    class Killed(BaseException):
        pass

    def dies(*args: Any, **kwargs: Any) -> None:
        raise Killed

    monkeypatch.setattr(execution.leases, "Held", dies)
    with pytest.raises(Killed):
        execution.work_on(result.pk)
    assert execution.release_lost(evaluation.pk, timezone.now()) == 1
    result.refresh_from_db()
    assert (result.status, result.failures) == ("pending", 1)
