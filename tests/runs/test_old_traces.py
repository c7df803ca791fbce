"""Traces saved before schema v2 (by 3103616's tracer) are read in the current schema wherever a
stored trace is read: the run page, trace.json and the API, share links and embeds, the
comparison, classroom grading. And the run page shows an exception as an exception."""

from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground.classroom import grading
from playground.compare import compare_traces
from playground.runs.models import Run, Trace
from playground.sharing.models import ShareLink
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db
FIXTURE = Path(__file__).parents[1] / "sandbox" / "fixtures" / "traces_v1_3103616.json"


def _saved(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text())[name]
    return data


def _old_run(name: str, **fields: Any) -> tuple[Run, Client]:
    """A finished run as 3103616 stored it: its real trace in schema 1."""
    saved = _saved(name)
    owner = UserFactory()
    client = Client()
    client.force_login(owner)
    program = ProgramFactory(owner=owner, source=saved["source"], call=saved["call"] or "")
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=owner,
        status=Run.Status.DONE, **fields,
    )  # fmt: skip
    trace = saved["trace"]
    Trace.objects.create(
        run=run, kind="real", status=trace["status"], step_count=len(trace["steps"]), data=trace
    )
    return run, client


def _viewer_steps(page: str) -> list[dict[str, Any]]:
    found = re.search(r'<script id="trace-steps" type="application/json">(.*?)</script>', page)
    assert found is not None
    steps: list[dict[str, Any]] = json.loads(html.unescape(found.group(1)))
    return steps


def test_the_stored_row_stays_v1_and_every_read_is_v2() -> None:
    run, _ = _old_run("uncaught_keyerror")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT data FROM runs_trace WHERE run_id = %s", [run.pk])
        stored = cursor.fetchone()[0]
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert stored["schema"] == 1  # nothing was rewritten in place
    for trace in (run.real_trace, Trace.objects.get(run=run), Trace.objects.defer("data").get()):
        assert trace is not None
        assert trace.data["schema"] == 3
        assert trace.data["steps"][9]["event"] == "unwind"


def _banner(page: str) -> str:
    found = re.search(r'<div id="trace-status".*?</div>', page, re.DOTALL)
    assert found is not None
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group())).split())


def test_an_old_exception_run_renders_as_an_unwind_and_opens_at_the_raise() -> None:
    run, client = _old_run("uncaught_keyerror")
    page = client.get(run.get_absolute_url()).content.decode()
    steps = _viewer_steps(page)
    assert [s.get("event") for s in steps[8:]] == ["exception", "unwind", "exception", "unwind"]
    assert (steps[9]["to"], steps[9]["to_line"]) == ("f", 2)
    assert "__return__" not in json.dumps(steps[4:])
    assert 'data-exception-step="8"' in page  # where KeyError was raised: g, line 1
    assert "Jump to the exception" in page
    assert _banner(page).startswith("Raised an exception · KeyError: 'missing' (line 1) ·")


def test_trace_json_and_the_api_give_the_current_schema() -> None:
    run, client = _old_run("uncaught_keyerror")
    for url in (reverse("runs:trace_json", args=[run.pk]), f"/api/runs/{run.pk}"):
        body = client.get(url).json()
        assert body["trace"]["schema"] == 3
        assert body["trace"]["upgraded_from"] == 1
        assert body["trace"]["steps"][9] == {
            "i": 9, "line": 1, "func": "g", "event": "unwind",
            "exception": "KeyError: 'missing'", "to": "f", "to_line": 2,
        }  # fmt: skip


def test_share_links_and_embeds_of_old_runs_show_the_unwind() -> None:
    run, owner = _old_run("uncaught_keyerror")
    owner.post(reverse("sharing:create", args=[run.pk]))
    link = ShareLink.objects.get(run=run)
    page = Client().get(link.get_absolute_url())
    assert page.status_code == 200
    assert _viewer_steps(page.content.decode())[9]["event"] == "unwind"
    embed = Client().get(reverse("sharing:embed", args=[link.token]))
    assert embed.status_code == 200
    assert "Raised an exception" in embed.content.decode()


def test_an_old_time_limit_run_says_it_once() -> None:
    run, client = _old_run("sleeps_past_wall_clock")
    page = client.get(run.get_absolute_url()).content.decode()
    text = _banner(page)
    assert text.startswith(
        "Stopped: time limit reached · The program ran for 2 s of wall-clock time."
    )
    assert text.count("Stopped") == 1
    assert "TimeLimit" not in text


def test_a_stored_comparison_made_against_a_v1_trace_is_made_again() -> None:
    # A trace-method run of 3103616: the model wrote "return None" where g unwound, and the v1
    # comparison called that a match. Read today, it is the exception divergence it is.
    saved = _saved("uncaught_keyerror")
    written = copy.deepcopy(saved["trace"])
    written.update(source="emulated", method="trace")
    old_comparison = compare_traces(saved["trace"], written).as_dict()  # v1 against v1
    assert old_comparison["full_match"]
    run, client = _old_run(
        "uncaught_keyerror", method="trace", model="m", emulation_done=True,
        comparison=old_comparison, verdict={"status": "unknown", "explanation": "x"},
    )  # fmt: skip
    Trace.objects.create(run=run, kind="emulated", status="ok", data=written)
    body = client.get(f"/api/runs/{run.pk}").json()
    comparison = body["emulation"]["comparison"]
    assert comparison["full_match"] is False
    assert comparison["first_divergence"]["kind"] == "exception"
    assert comparison["first_divergence"]["real_step"] == 9
    assert body["emulation"]["trace"]["steps"][9]["event"] == "return"  # as the model wrote it
    page = client.get(run.get_absolute_url()).content.decode()
    assert "leaves g() here; the model says g() returns None." in html.unescape(page)
    Run.objects.filter(pk=run.pk).update(comparison={"result_match": True})  # not step by step
    assert client.get(f"/api/runs/{run.pk}").json()["emulation"]["comparison"] == {
        "result_match": True
    }


def test_classroom_grading_reads_an_old_key_trace_in_the_current_schema() -> None:
    # total() catches parse()'s ValueError: after the unwind, line 10 runs in total's frame.
    run, _ = _old_run("caught_in_caller")
    trace = Trace.objects.get(run=run)
    checkpoint = {"line": 10, "occurrence": 1, "variables": ["n", "s", "items"]}
    values = grading.checkpoint_values(trace.data["steps"], [checkpoint])[0]["values"]
    assert values == {"n": "1", "s": "'x'", "items": "['1', 'x', '3']"}
    grade = grading.grade_trace(
        {"0.n": "1", "0.s": "'x'", "0.items": "['1', 'x', '3']"}, trace.data["steps"], [checkpoint]
    )
    assert grade.score == 1.0


def _fresh_run(source: str, **limits: Any) -> tuple[Run, Client]:
    """A run whose trace the sandbox records today."""
    from playground import sandbox
    from playground.sandbox.limits import Limits

    owner = UserFactory()
    client = Client()
    client.force_login(owner)
    program = ProgramFactory(owner=owner, source=source, call="")
    run = Run.objects.create(program=program, source=source, owner=owner, status=Run.Status.DONE)
    trace = sandbox.run(source, limits=Limits(**limits))
    Trace.objects.create(
        run=run, kind="real", status=trace["status"], step_count=len(trace["steps"]), data=trace
    )
    return run, client


def test_a_time_limit_banner_says_it_once_and_where_the_program_was() -> None:
    run, client = _fresh_run(
        "import time\nn = 0\nwhile True:\n    n += 1\n    time.sleep(0.2)\n", wall_s=1
    )
    page = client.get(run.get_absolute_url()).content.decode()
    assert _banner(page).startswith(
        "Stopped: time limit reached · The program ran for 1 s of wall-clock time; "
        "it was at line 5."
    )
    assert len(_viewer_steps(page)) >= 5  # 3103616: "No steps were recorded."


def test_a_memory_error_banner_says_what_happened() -> None:
    run, client = _fresh_run("x = bytearray(10**10)\n")
    page = client.get(run.get_absolute_url()).content.decode()
    assert _banner(page).startswith(
        "Stopped: memory limit reached · MemoryError: out of memory; a run may use 256 MB "
        "(line 1) ·"
    )


def test_the_emulated_step_list_says_raises_and_leaves_never_return_none() -> None:
    # Chain of Code on a task: the model's program runs at module level; here its helper is
    # unknown and the model's answer unreadable, so the NameError ends the program.
    from playground import sandbox

    source = "x = 1\nanswer = is_true(x)\n"
    emulated = sandbox.run(source, lmulator=lambda request: "unreadable")
    assert emulated["status"] == "exception"
    run, client = _fresh_run("x = 1\n")
    Run.objects.filter(pk=run.pk).update(
        method="coc", model="m", emulation_done=True, comparison={"result_match": None}
    )
    Trace.objects.create(run=run, kind="emulated", status="exception", data=emulated)
    page = html.unescape(client.get(run.get_absolute_url()).content.decode())
    listed = re.search(r'<ol class="live-steps" id="emulated-trace".*?</ol>', page, re.DOTALL)
    assert listed is not None
    text = " ".join(re.sub(r"<[^>]+>", " ", listed.group()).split())
    assert "raises NameError: name 'is_true' is not defined" in text
    assert "NameError: name 'is_true' is not defined leaves the program" in text
    assert "__return__" not in text
