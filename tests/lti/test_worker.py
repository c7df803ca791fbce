"""Grades reach the LMS through a real Celery worker process (its own queue, the test database,
the shared Redis), not in the test's process: the score after grading, a retry after the LMS
answers 500 once, and a worker killed (SIGKILL, the whole process group) while the LMS holds
its score post unanswered. The killed worker's message is not handed out again before the
broker's visibility timeout (20 minutes), so the reaper's sweep sends it again once it is past
its bound (here: called with a clock moved past the bound; two sweeps at once send it once),
and a second worker delivers it.

What is asserted for the kill: nothing lost (the LMS ends with the student's final grade and
the tool's row says sent, with that score); nothing doubled that matters (one line item, one
score sent by the sweep, one successful send in the tool's log for the resend, and nothing
after it). The LMS did get the held score twice, the same score both times: AGS scores are
idempotent (the latest timestamp wins), so that is asserted equal, not absent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from celery.app.routes import MapRoute
from django.db import close_old_connections, connection
from django.utils import timezone
from pytest_django.live_server_helper import LiveServer

from playground.celery import app
from playground.classroom.models import Submission
from playground.classroom.submissions import override, submit
from playground.lib import paths
from playground.lti import tasks
from playground.lti.models import Platform, ScoreLog, ScoreSend
from tests.classroom.student_world import SECRET
from tests.lti.simulator import Simulator
from tests.lti.test_passback import STUDENT, _world

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _until(condition: Callable[[], bool], seconds: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def queue() -> Iterator[str]:
    """The score tasks of this test go to a queue of its own (only its workers take them)."""
    name = f"lti-test-{uuid.uuid4().hex[:8]}"
    route = MapRoute({tasks.send_score.name: {"queue": name}})
    routes = app.amqp.router.routes
    routes.insert(0, route)
    yield name
    routes.remove(route)


def _worker(queue: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": paths.database_url(connection.settings_dict),
        "PLAYGROUND_LTI_RETRY_S": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "playground", "worker", "-Q", queue,
         "--pool", "prefork", "--concurrency", "1", "--without-mingle", "--without-gossip",
         "--without-heartbeat", "-n", f"{queue}-{uuid.uuid4().hex[:4]}@%h", "--loglevel", "INFO"],
        cwd=paths.REPO_DIR, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _kill(worker: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _sweep_twice_at_once(now: object) -> list[list[int]]:
    found: list[list[int]] = []
    start = threading.Barrier(2)

    def beat() -> None:
        try:
            start.wait()
            found.append(tasks.resend_stale_scores(now))  # type: ignore[arg-type]
        finally:
            close_old_connections()
            connection.close()

    beats = [threading.Thread(target=beat) for _ in range(2)]
    for b in beats:
        b.start()
    for b in beats:
        b.join(30)
    return found


def test_a_real_worker_sends_retries_and_a_killed_one_loses_and_doubles_nothing(
    sim: Simulator, platform: Platform, live_server: LiveServer, queue: str, tmp_path: Path
) -> None:
    first, second, student = _world(sim, live_server.url)
    workers = [_worker(queue, tmp_path / "first.log")]
    try:
        # Graded: the worker sends the score.
        submit(item=first, student=student, answer=f"'{SECRET}'")
        _until(lambda: len(sim.scores) == 1, what="the first score")
        assert (sim.scores[0]["userId"], sim.scores[0]["scoreGiven"]) == (STUDENT.sub, 1.0)
        row = ScoreSend.objects.get(student=student)
        _until(lambda: ScoreSend.objects.get(pk=row.pk).status == ScoreSend.Status.SENT)

        # The LMS answers 500 once: the worker retries (its first wait shortened to 1 s).
        sim.fail_scores = 1
        wrong, _ = submit(item=second, student=student, answer="'nope'")
        assert wrong is not None
        _until(lambda: sim.fail_scores == 0 and len(sim.scores) == 2, what="the retried score")
        assert (sim.scores[1]["scoreGiven"], sim.scores[1]["activityProgress"]) == (
            1.0, "Completed",
        )  # fmt: skip
        _until(lambda: ScoreLog.objects.filter(send=row, outcome="sent").count() == 2)
        tries = list(
            ScoreLog.objects.filter(send=row)
            .order_by("at", "id")
            .values_list("http_status", flat=True)
        )
        assert tries == [200, 500, 200]

        # The LMS takes the next score and does not answer; the worker is killed meanwhile.
        sim.hold_scores = 1
        override(Submission.objects.get(pk=wrong.pk), credit=0.5, comment="close", by=None)
        assert sim.held.wait(60), "the worker never posted the score"
        workers.append(_worker(queue, tmp_path / "second.log"))  # starting while it is killed
        _kill(workers[0])
        sim.release.set()
        held = sim.scores[-1]
        assert held["scoreGiven"] == 1.5
        row.refresh_from_db()
        assert row.status == ScoreSend.Status.QUEUED  # the tool never heard the answer
        assert ScoreLog.objects.filter(send=row).count() == 3  # the killed try wrote nothing
        # Its message is gone with the worker (back only after the visibility timeout): the
        # sweep does not touch it within the bound, then sends it again, once for two sweeps.
        assert tasks.resend_stale_scores() == []
        later = timezone.now() + timedelta(seconds=tasks.STALE_AFTER_S + 1)
        found = _sweep_twice_at_once(later)
        assert sorted(found, key=len) == [[], [row.pk]]
        _until(lambda: len(sim.scores) == 4, what="the score sent again")
        _until(lambda: ScoreSend.objects.get(pk=row.pk).status == ScoreSend.Status.SENT)
        time.sleep(1)  # nothing else comes
    finally:
        for worker in workers:
            _kill(worker, signal.SIGTERM)
    resent = sim.scores[-1]
    assert len(sim.scores) == 4
    assert {k: v for k, v in resent.items() if k != "timestamp"} == {
        k: v for k, v in held.items() if k != "timestamp"
    }  # the same score twice: harmless
    assert resent["timestamp"] > held["timestamp"]
    row.refresh_from_db()
    assert (row.status, row.score_given, row.score_maximum) == (ScoreSend.Status.SENT, 1.5, 2.0)
    assert (row.resends, row.error) == (1, "")
    sweep_tries = ScoreLog.objects.filter(send=row, by=tasks.SWEEP_BY)
    assert list(sweep_tries.values_list("outcome", "score_given")) == [("sent", 1.5)]
    assert len(sim.line_items) == 1
    assert [r["ok"] for r in sim.token_requests] == [True]  # one token, cached in Redis
