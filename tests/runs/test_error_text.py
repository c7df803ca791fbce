"""An exception as the run page, the classroom and ``manage.py trace`` print it: never a
dangling colon (review 2026-12, bug 15: "MemoryError: (line 1)")."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from playground.runs.errors import describe_error


@pytest.mark.parametrize(
    ("error", "text"),
    [
        ({"type": "KeyError", "message": "'missing'", "line": 2}, "KeyError: 'missing' (line 2)"),
        (
            {"type": "MemoryError", "message": "", "line": 1},
            "MemoryError: the program ran out of memory (the sandbox limits how much it may "
            "use) (line 1)",
        ),
        ({"type": "ValueError", "message": "", "line": 3}, "ValueError (line 3)"),
        (
            {"type": "AssertionError", "message": "", "line": None},
            "AssertionError: an assert statement was false",
        ),
        ({"type": "RuntimeError", "message": "  ", "line": "7"}, "RuntimeError"),
        (None, "an unknown error"),
        ("garbage", "an unknown error"),
    ],
)
def test_an_exception_reads_as_one_clear_line(error: object, text: str) -> None:
    assert describe_error(error) == text


def test_the_template_filter_escapes_what_the_program_chose() -> None:
    page = Template("{% load runs %}{{ error|error_text }}").render(
        Context({"error": {"type": "ValueError", "message": "<b>x</b>", "line": 1}})
    )
    assert page == "ValueError: &lt;b&gt;x&lt;/b&gt; (line 1)"


@pytest.mark.django_db
def test_the_run_page_says_what_an_empty_memory_error_means() -> None:
    from django.test import Client

    from playground.runs.models import Run, Trace
    from tests.factories import ProgramFactory, UserFactory

    user = UserFactory()
    program = ProgramFactory(owner=user, source="x = [0] * 10**12\n", call="")
    run = Run.objects.create(program=program, source=program.source, owner=user, status="done")
    error = {"type": "MemoryError", "message": "", "line": 1}
    Trace.objects.create(run=run, kind=Trace.Kind.REAL, status="exception", data={
        "schema": 1, "status": "exception", "result": None, "error": error, "steps": [],
        "stats": {"steps": 0, "wall_ms": 3},
    })  # fmt: skip
    client = Client()
    client.force_login(user)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "MemoryError: the program ran out of memory" in page
    assert "MemoryError: (line 1)" not in page
    assert "MemoryError:  (line 1)" not in page
