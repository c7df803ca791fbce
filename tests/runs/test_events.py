"""A run's live events: the key is made from the run itself (no query, no cache), and what is
published comes back numbered, under that key only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from playground.runs.events import publish, published
from playground.runs.models import Run
from tests.factories import ProgramFactory

pytestmark = pytest.mark.django_db


def _run() -> Run:
    program = ProgramFactory()
    return Run.objects.create(program=program, source=program.source, call=program.call)


def test_the_key_is_made_from_the_row_without_a_query() -> None:
    run = _run()
    with CaptureQueriesContext(connection) as queries:
        key = run.events_key
    assert len(queries) == 0
    assert key.startswith("run-")
    assert f"-{run.pk}-" in key


def test_a_recreated_run_with_the_same_id_gets_another_key() -> None:
    run = _run()
    before = run.events_key
    Run.objects.filter(pk=run.pk).update(created_at=run.created_at + timedelta(seconds=1))
    assert Run.objects.get(pk=run.pk).events_key != before


def test_published_events_are_numbered_and_kept_per_key() -> None:
    run, other = _run(), _run()
    publish(run.events_key, "token", text="a")
    publish(run.events_key, "done", verdict=None)
    publish(other.events_key, "failed", error="boom")
    assert [(e["seq"], e["type"]) for e in published(run.events_key)] == [(1, "token"), (2, "done")]
    assert [e["type"] for e in published(other.events_key, after=0)] == ["failed"]
    assert [e["seq"] for e in published(run.events_key, after=1)] == [2]
