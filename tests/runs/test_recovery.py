"""Runs a dead worker left behind are sent again, and finish."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from playground.runs.models import Run
from playground.runs.services import requeue_stale_runs
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db


def test_a_run_stuck_in_running_is_sent_again_and_finishes(eager: None) -> None:
    program = ProgramFactory(source="def f():\n    return 7\n", call="f()")
    stuck = Run.objects.create(
        program=program, source=program.source, call=program.call, status=Run.Status.RUNNING
    )
    fresh = Run.objects.create(program=program, source=program.source, call=program.call)
    Run.objects.filter(pk=stuck.pk).update(created_at=timezone.now() - timedelta(hours=1))

    assert requeue_stale_runs(older_than_s=900) == [stuck.pk]

    stuck.refresh_from_db()
    fresh.refresh_from_db()
    assert stuck.status == Run.Status.DONE
    assert stuck.real_trace is not None
    assert stuck.real_trace.data["result"] == "7"
    assert fresh.status == Run.Status.QUEUED  # recent: its worker may just be busy
