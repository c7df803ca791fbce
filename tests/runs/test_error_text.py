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
