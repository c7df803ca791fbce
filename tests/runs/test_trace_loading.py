"""M8: pages that only show a run's status never read trace data (a stored trace can be
megabytes), and a trace capped in size says so on the run page."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from playground.runs.models import Run, Trace
from playground.sandbox.schema import make_trace
from playground.sharing.models import ShareLink
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db

# Columns only a run's own page (or its JSON) shows; list and status views must not select them.
HEAVY = ('"runs_trace"."data"', '"runs_run"."comparison"', '"runs_run"."emulated_text"',
         '"runs_run"."details"', '"programs_program"."source"')  # fmt: skip


def _big_trace(steps: int = 2000) -> dict[str, Any]:
    return make_trace(
        status="ok",
        steps=[{"i": i, "line": 1, "func": "f", "locals": {"x": "'y'" * 90}} for i in range(steps)],
    )


def _run(owner: Any, status: str = Run.Status.DONE) -> Run:
    program = ProgramFactory(owner=owner, source="x = 1\n" * 500)
    run = Run.objects.create(
        program=program, source=program.source, owner=owner, status=status, method="direct",
        model="m", emulated_text="model text " * 1000, comparison={"steps": [{"a": 1}] * 1000},
    )  # fmt: skip
    trace = _big_trace()
    Trace.objects.create(run=run, kind=Trace.Kind.REAL, status="ok", step_count=2000, data=trace)
    return run


def _selected(queries: CaptureQueriesContext) -> list[str]:
    return [column for q in queries.captured_queries for column in HEAVY if column in q["sql"]]


def _get(client: Client, url: str, **headers: str) -> tuple[int, CaptureQueriesContext]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers=headers)
    return response.status_code, queries


def test_my_runs_reads_no_trace_data_and_a_fixed_number_of_queries() -> None:
    user = UserFactory()
    client = Client()
    client.force_login(user)
    for _ in range(3):
        _run(user)
    status, few = _get(client, reverse("runs:mine"))
    assert status == 200
    assert _selected(few) == []
    for _ in range(5):
        _run(user)
    status, more = _get(client, reverse("runs:mine"))
    assert len(more.captured_queries) == len(few.captured_queries)  # no query per run
    page = client.get(reverse("runs:mine")).content.decode()
    assert page.count('class="tag status-ok"') == 8  # the trace statuses are still shown


def test_the_status_poll_reads_no_trace(client: Client) -> None:
    user = UserFactory()
    client.force_login(user)
    run = _run(user, status=Run.Status.RUNNING)
    status, queries = _get(client, reverse("runs:status", args=[run.pk]), HX_Request="true")
    assert status == 200
    assert not [q for q in queries.captured_queries if "runs_trace" in q["sql"]]
    assert _selected(queries) == []
    Run.objects.filter(pk=run.pk).update(status=Run.Status.DONE)
    response = client.get(reverse("runs:status", args=[run.pk]), headers={"HX-Request": "true"})
    assert f'hx-get="{run.get_absolute_url()}"' in response.content.decode()
    assert Client().get(reverse("runs:status", args=[run.pk])).status_code == 404


def test_the_shared_status_poll_reads_no_trace() -> None:
    run = _run(UserFactory(), status=Run.Status.RUNNING)
    link = ShareLink.objects.create(run=run)
    status, queries = _get(Client(), reverse("sharing:status", args=[link.token]))
    assert status == 200
    assert not [q for q in queries.captured_queries if "runs_trace" in q["sql"]]
    # Finished: the shared page (not the owner's) is loaded in place.
    Run.objects.filter(pk=run.pk).update(status=Run.Status.DONE)
    response = Client().get(
        reverse("sharing:status", args=[link.token]), headers={"HX-Request": "true"}
    )
    assert "HX-Refresh" not in response
    assert f'hx-get="{link.get_absolute_url()}"' in response.content.decode()


def test_a_capped_trace_says_where_it_was_cut(client: Client) -> None:
    user = UserFactory()
    client.force_login(user)
    program = ProgramFactory(owner=user)
    run = Run.objects.create(program=program, source=program.source, owner=user,
                             status=Run.Status.DONE)  # fmt: skip
    steps = [{"i": i, "line": 1, "func": "<module>"} for i in range(40)]
    data = make_trace(status="ok", steps=steps, total_steps=6003)
    assert data["stats"] == {"steps": 40, "wall_ms": 0.0, "capped": True, "total_steps": 6003}
    Trace.objects.create(run=run, kind=Trace.Kind.REAL, status="ok", step_count=40, data=data)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "Trace truncated after step 40 of 6,003" in page
    assert 'data-total-steps="6003"' in page  # the viewer marks the last step it has
