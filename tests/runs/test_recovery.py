"""Runs a dead worker left behind are sent again by the reaper, and finish; live work, fresh work
and work sent too often are left alone or failed as they should be; a second copy of a task
never works on a part another holds."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from playground import reaper
from playground.celery import app
from playground.lib import broker, leases, worktimes
from playground.runs import events, pipeline
from playground.runs.models import Run
from playground.runs.recovery import reap_runs
from playground.runs.tasks import execute_real_run
from tests.factories import ProgramFactory
from tests.oracle import Oracle, oracle_server

pytestmark = pytest.mark.django_db
SOURCE = "def f():\n    return 7\n"


def _run(**fields: object) -> Run:
    program = ProgramFactory(source=SOURCE, call="f()")
    run = Run.objects.create(program=program, source=program.source, call=program.call)
    Run.objects.filter(pk=run.pk).update(**fields)
    run.refresh_from_db()
    return run


def test_a_run_whose_worker_died_is_sent_again_and_finishes(eager: None) -> None:
    # Its task took the real part (claimed) and holds no lease: it died.
    died = _run(status=Run.Status.RUNNING, real_claimed_at=timezone.now())
    fresh = _run()  # sent a moment ago, waiting for a worker: not lost

    assert reap_runs() == [(died.pk, "real", "its worker stopped")]

    died.refresh_from_db()
    fresh.refresh_from_db()
    assert died.status == Run.Status.DONE
    assert died.real_trace is not None
    assert died.real_trace.data["result"] == "7"
    assert died.resends == 1
    assert fresh.status == Run.Status.QUEUED


def test_a_part_a_live_task_holds_is_left_alone() -> None:
    run = _run(status=Run.Status.RUNNING, real_claimed_at=timezone.now())
    key = pipeline.work_key("run", run.pk, "real")
    with leases.Held([key], [1], worktimes.LEASE_S) as held:
        assert held.taken
        assert reap_runs() == []
        # ...and a second copy of its task (a redelivery) does not touch it.
        assert pipeline.execute_real(run.pk) == "held"
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING
    assert run.real_trace is None
    assert run.resends == 0


def _age(run: Run, seconds: float) -> None:
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


def test_a_part_whose_message_the_broker_lost_is_sent_again_within_a_minute(eager: None) -> None:
    # Sent (the row says so) but in none of the broker's places: written to a primary that
    # died before its replica had it, or never sent by a process that died after its commit.
    lost = _run()
    _age(lost, worktimes.LOST_AFTER_S + 1)
    fresh = _run()  # sent a moment ago: not looked for yet
    _age(fresh, worktimes.LOST_AFTER_S - 5)

    assert reap_runs() == [(lost.pk, "real", "its message is not in the broker")]
    lost.refresh_from_db()
    assert lost.status == Run.Status.DONE
    assert lost.real_trace is not None
    assert lost.resends == 1
    assert Run.objects.get(pk=fresh.pk).status == Run.Status.QUEUED


@pytest.fixture
def own_queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A sandbox queue of this test's own on the real broker (no worker reads it); emptied
    afterwards, with the broker's record of the messages a consumer took."""
    queue = f"test-recovery-{uuid.uuid4().hex[:8]}"
    # Where the reaper looks for the task (not Celery's routes: its router caches them).
    routed, real = broker.queue_of, execute_real_run.name
    monkeypatch.setattr(broker, "queue_of", lambda task: queue if task == real else routed(task))
    yield queue
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(queue)


def _send(run: Run, queue: str) -> str:
    """The run's real part sent the way the site sends it, to ``queue``; its task id."""
    task_id = broker.task_id("run", run.pk, "real", run.resends)
    execute_real_run.apply_async((run.pk,), task_id=task_id, queue=queue)
    return task_id


def test_a_message_waiting_its_turn_is_not_sent_twice_however_long_it_waits(
    own_queue: str,
) -> None:
    # A class of 300 pressed "run" at once: the queue is deep and the last message waits.
    runs = [_run() for _ in range(3)]
    ids = [_send(run, own_queue) for run in runs]
    for run in runs:
        _age(run, worktimes.UNCLAIMED_AFTER_S + 60)
    assert broker.held([*ids, "run-0-real-0"], [own_queue]) == set(ids)

    assert reap_runs() == []
    assert {r.resends for r in Run.objects.filter(pk__in=[r.pk for r in runs])} == {0}


def test_a_message_a_worker_took_and_has_not_acknowledged_is_not_sent_twice(
    own_queue: str,
) -> None:
    run = _run()
    task_id = _send(run, own_queue)
    _age(run, worktimes.LOST_AFTER_S + 1)
    # A consumer takes it (acknowledged late: kept in the broker's unacknowledged hash) and
    # has not started the task yet (it would have claimed the part).
    with app.connection_for_read() as connection:
        taken = connection.SimpleQueue(own_queue).get(timeout=5)
        assert taken.headers["id"] == task_id
        assert broker.held([task_id], [own_queue]) == {task_id}
        assert reap_runs() == []
        taken.ack()
    # Acknowledged and yet the part was never claimed: the task was lost after all.
    assert broker.held([task_id], [own_queue]) == set()


def test_an_evaluations_run_is_looked_for_only_after_the_visibility_timeout(
    eager: None,
) -> None:
    # Its batch task executes it itself (nothing was sent under the run's ids): a part no task
    # took is sent again only when the item's own task had every chance to come back.
    waiting = _run(sent_as_tasks=False)
    _age(waiting, worktimes.VISIBILITY_TIMEOUT_S - 5)
    lost = _run(sent_as_tasks=False)
    _age(lost, worktimes.UNCLAIMED_AFTER_S + 5)

    assert reap_runs() == [(lost.pk, "real", "no worker took it")]
    assert Run.objects.get(pk=lost.pk).status == Run.Status.DONE
    assert Run.objects.get(pk=waiting.pk).status == Run.Status.QUEUED


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Real runs sent to the sandbox queue (not run: the message waits for a worker), with
    the task id each was sent under."""
    sent: list[tuple[int, str]] = []

    def apply_async(args: tuple[int], task_id: str) -> None:
        sent.append((args[0], task_id))

    monkeypatch.setattr(execute_real_run, "apply_async", apply_async)
    return sent


def test_a_sent_part_is_not_sent_again_while_it_waits_for_a_worker(
    queued: list[tuple[int, str]],
) -> None:
    run = _run(status=Run.Status.RUNNING, real_claimed_at=timezone.now())
    sent = reap_runs()
    assert sent == [(run.pk, "real", "its worker stopped")]
    assert reap_runs() == []  # the next pass: sent, not taken yet, not lost
    # Sent under the id of its second attempt, which the next passes look for in the broker.
    assert queued == [(run.pk, f"run-{run.pk}-real-1")]
    run.refresh_from_db()
    assert run.resends == 1
    assert run.real_claimed_at is None


def test_a_run_lost_too_often_fails_with_a_message_instead_of_going_round() -> None:
    run = _run(
        status=Run.Status.RUNNING, real_claimed_at=timezone.now(),
        resends=worktimes.MAX_RESENDS, resent_at=timezone.now(),
    )  # fmt: skip
    assert reap_runs() == [(run.pk, "real", "failed: its worker stopped")]
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert "worker running it stopped 3 times" in run.error
    assert reap_runs() == []  # failed: finished, never sent again


@pytest.fixture
def oracle(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with oracle_server(Oracle()) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        yield


def test_an_emulation_whose_worker_died_is_sent_again_beside_a_finished_real_part(
    eager: None, oracle: None
) -> None:
    run = _run(method="direct", model="oracle", status=Run.Status.RUNNING)
    pipeline.execute_real(run.pk)
    Run.objects.filter(pk=run.pk).update(emulation_claimed_at=timezone.now())

    assert reap_runs() == [(run.pk, "emulation", "its worker stopped")]
    run.refresh_from_db()
    assert run.status == Run.Status.DONE, run.error
    assert run.verdict["status"] == "correct"


def test_an_emulation_whose_worker_died_mid_answer_starts_again_and_says_so(
    eager: None, oracle: None
) -> None:
    run = _run(method="direct", model="oracle", status=Run.Status.RUNNING)
    pipeline.execute_real(run.pk)
    # Its worker streamed half an answer (published, and saved) and died.
    events.publish(run.events_key, "token", text="[ANSWER] half")
    Run.objects.filter(pk=run.pk).update(
        emulation_claimed_at=timezone.now(), emulated_text="[ANSWER] half"
    )

    assert reap_runs() == [(run.pk, "emulation", "its worker stopped")]
    run.refresh_from_db()
    assert run.status == Run.Status.DONE, run.error
    assert "half" not in run.emulated_text  # the new attempt's text alone
    kinds = [e["type"] for e in events.published(run.events_key)]
    assert kinds.index("restarted") == kinds.index("token") + 1  # before the new answer
    assert kinds.count("restarted") == 1
    after = events.since_restart(events.published(run.events_key))
    assert "".join(e.get("text", "") for e in after if e["type"] == "token") == run.emulated_text


def test_a_first_attempt_says_nothing_of_starting_again(eager: None, oracle: None) -> None:
    run = _run(method="direct", model="oracle", status=Run.Status.RUNNING)
    pipeline.execute_real(run.pk)
    pipeline.execute_emulation(run.pk)
    assert "restarted" not in [e["type"] for e in events.published(run.events_key)]


def test_one_sweep_at_a_time(queued: list[tuple[int, str]]) -> None:
    lock = f"{leases.prefix()}:reaper"
    leases.redis_client().set(lock, "someone else", ex=30)
    try:
        run = _run(status=Run.Status.RUNNING, real_claimed_at=timezone.now())
        assert reaper.sweep() == {}
        assert Run.objects.get(pk=run.pk).resends == 0
    finally:
        leases.redis_client().delete(lock)
    assert reaper.sweep()["runs"] == [(run.pk, "real", "its worker stopped")]
    assert [pk for pk, _ in queued] == [run.pk]
