"""Running a program for real: the run page, its JSON, limits, and failures the user can see."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground.runs.models import Run, Trace
from playground.sandbox.warm_pool import pool
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db
SOURCE = "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n"


def _own_program(client: Client, source: str = SOURCE, call: str = "f(4)") -> int:
    response = client.post(reverse("programs:new"), {"source": source, "call": call})
    assert response.status_code == 302
    return int(response["Location"].strip("/").split("/")[-1])


def test_run_stores_the_trace_and_shows_the_viewer(client: Client, run_now: Any) -> None:
    program_id = _own_program(client)
    response = run_now(client, program_id)
    run = Run.objects.get()
    assert response.status_code == 302
    assert response["Location"] == run.get_absolute_url()
    assert run.status == Run.Status.DONE
    trace = Trace.objects.get(run=run, kind=Trace.Kind.REAL)
    assert trace.status == "ok"
    assert trace.data["result"] == "6"

    page = html.unescape(client.get(run.get_absolute_url()).content.decode())
    assert "Finished" in page
    assert "returned 6" in html.unescape(
        page.replace('<code class="result">', "").replace("</code>", "")
    )
    assert 'id="trace-steps"' in page

    body = client.get(reverse("runs:trace_json", args=[run.pk])).json()
    assert body["status"] == "done"
    assert body["trace"]["schema"] == 3
    assert body["trace"]["steps"][0]["event"] == "call"


def test_runs_are_private_to_whoever_started_them(client: Client, run_now: Any) -> None:
    public = ProgramFactory(is_public=True, source=SOURCE, call="f(2)")
    run_now(client, public.pk)
    run = Run.objects.get()
    for url in (run.get_absolute_url(), reverse("runs:status", args=[run.pk]),
                reverse("runs:trace_json", args=[run.pk])):  # fmt: skip
        assert client.get(url).status_code == 200
        assert Client().get(url).status_code == 404
    private = ProgramFactory(is_public=False)
    assert run_now(Client(), private.pk).status_code == 404
    assert Run.objects.count() == 1


def test_anonymous_limits_only_go_down(client: Client, run_now: Any) -> None:
    program_id = _own_program(client, "i = 0\nwhile True:\n    i += 1\n", "")
    run_now(client, program_id, max_steps="50", cpu_s="30")
    run = Run.objects.get()
    assert run.limits == {"max_steps": 50, "cpu_s": 2}
    trace = run.real_trace
    assert trace is not None
    assert trace.status == "step_limit"
    assert trace.step_count == 50
    page = client.get(run.get_absolute_url()).content.decode()
    assert "Stopped: step limit reached" in page


def test_signed_in_users_may_raise_limits_up_to_the_ceiling(client: Client, run_now: Any) -> None:
    client.force_login(UserFactory())
    program_id = _own_program(client)
    run_now(client, program_id, max_steps="20000", cpu_s="500")
    assert Run.objects.get().limits == {"max_steps": 20000, "cpu_s": 10}


def test_missing_sandbox_fails_the_run_with_a_clear_message(
    client: Client, run_now: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool.drain()  # a sandbox started earlier would still work
    monkeypatch.setenv("PATH", "/nonexistent")  # bubblewrap cannot be found
    program_id = _own_program(client)
    run_now(client, program_id)
    run = Run.objects.get()
    assert run.status == Run.Status.FAILED
    assert "bubblewrap is not installed" in run.error
    page = client.get(run.get_absolute_url()).content.decode()
    assert "bubblewrap is not installed" in page


def test_unfinished_run_page_polls_and_loads_the_result_when_done(client: Client) -> None:
    program_id = _own_program(client)
    client.post(reverse("runs:start", args=[program_id]))  # no worker: the run stays queued
    run = Run.objects.get()
    assert run.status == Run.Status.QUEUED
    page = client.get(run.get_absolute_url()).content.decode()
    assert f'ws-connect="/ws/runs/{run.pk}/"' in page  # live events
    assert 'hx-trigger="every 3s"' in page  # and a slow poll where websockets cannot get through
    Run.objects.filter(pk=run.pk).update(status=Run.Status.DONE)
    response = client.get(reverse("runs:status", args=[run.pk]), headers={"HX-Request": "true"})
    # The finished page's content is loaded in place, not by a reload that would cancel a click
    # (a share link, a form) landing at the same moment.
    assert "HX-Refresh" not in response
    body = response.content.decode()
    assert f'hx-get="{run.get_absolute_url()}" hx-trigger="load" hx-select="main"' in body


def test_run_history_lists_only_my_runs(client: Client, run_now: Any) -> None:
    program_id = _own_program(client)
    run_now(client, program_id)
    mine = client.get(reverse("runs:mine")).content.decode()
    assert f"Run #{Run.objects.get().pk}" in mine
    assert "Run #" not in Client().get(reverse("runs:mine")).content.decode()


def test_output_postgres_cannot_store_is_made_visible(client: Client, run_now: Any) -> None:
    """NUL bytes and lone surrogates are refused by jsonb: they become visible replacements."""
    program_id = _own_program(
        client, "def f():\n    print('a\\x00b', chr(0xD800))\n    return 'x\\x00'\n", "f()"
    )
    run_now(client, program_id)
    run = Run.objects.get()
    assert run.status == Run.Status.DONE
    trace = run.real_trace
    assert trace is not None
    assert trace.data["stdout"] == "a\u2400b \ufffd\n"
    assert trace.data["result"] == "'x\\x00'"


@pytest.mark.django_db
def test_an_anonymous_visitors_runs_move_to_the_account_at_login(client: Client) -> None:
    """Security review L12: after logging in, the runs made before are still the visitor's
    (their pages answer, they are listed), not stranded under a session token."""
    from playground.runs.services import start_run

    program = ProgramFactory(is_public=True)
    client.get(reverse("programs:detail", args=[program.pk]))
    session = client.session
    session["anon_owner"] = "the-visitors-token"
    session.save()
    run = start_run(program=program, user=None, anon_token="the-visitors-token", enqueue=False)
    assert client.get(run.get_absolute_url()).status_code == 200
    user = UserFactory()
    response = client.post(
        reverse("login"), {"username": user.username, "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
    run.refresh_from_db()
    assert (run.owner, run.anon_owner) == (user, "")
    assert client.get(run.get_absolute_url()).status_code == 200
    assert f"Run #{run.pk}" in client.get(reverse("runs:mine")).content.decode()
