"""Runs a dead worker left behind are sent again by the reaper, and finish; live work, fresh work
and work sent too often are left alone or failed as they should be; a second copy of a task
never works on a part another holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.utils import timezone

from playground import reaper
from playground.lib import leases, worktimes
from playground.runs import pipeline
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


def test_a_message_no_worker_took_is_sent_again_only_after_the_visibility_timeout(
    eager: None,
) -> None:
    waiting = _run()
    lost = _run()
    old = timezone.now() - timedelta(seconds=worktimes.UNCLAIMED_AFTER_S + 5)
    Run.objects.filter(pk=lost.pk).update(created_at=old)
    recent = timezone.now() - timedelta(seconds=worktimes.VISIBILITY_TIMEOUT_S - 5)
    Run.objects.filter(pk=waiting.pk).update(created_at=recent)

    assert reap_runs() == [(lost.pk, "real", "no worker took it")]
    lost.refresh_from_db()
    assert lost.status == Run.Status.DONE
    assert Run.objects.get(pk=waiting.pk).status == Run.Status.QUEUED


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Real runs sent to the sandbox queue (not run: the message waits for a worker)."""
    ids: list[int] = []
    monkeypatch.setattr(execute_real_run, "delay", ids.append)
    return ids


def test_a_sent_part_is_not_sent_again_while_it_waits_for_a_worker(queued: list[int]) -> None:
    run = _run(status=Run.Status.RUNNING, real_claimed_at=timezone.now())
    sent = reap_runs()
    assert sent == [(run.pk, "real", "its worker stopped")]
    assert reap_runs() == []  # the next pass: sent, not taken yet, not lost
    assert queued == [run.pk]
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


def test_one_sweep_at_a_time(queued: list[int]) -> None:
    lock = f"{leases.prefix()}:reaper"
    leases.redis_client().set(lock, "someone else", ex=30)
    try:
        run = _run(status=Run.Status.RUNNING, real_claimed_at=timezone.now())
        assert reaper.sweep() == {}
        assert Run.objects.get(pk=run.pk).resends == 0
    finally:
        leases.redis_client().delete(lock)
    assert reaper.sweep()["runs"] == [(run.pk, "real", "its worker stopped")]
    assert queued == [run.pk]
