"""The gradebook (best attempt, overrides, late marks, weighted totals), its CSV export for
spreadsheets (formula injection neutralised), and an item's statistics (wrong answers, students
against the models)."""

from __future__ import annotations

import csv
import html
import io
import re
from typing import Any

import pytest
from django.urls import reverse

from playground.classroom.models import Mode
from playground.classroom.stats import normalise
from playground.lib.spreadsheet import spreadsheet_safe
from playground.runs.models import Run
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    LibraryProgramFactory,
    SubmissionFactory,
    logged_in,
    staffed_course,
    student_of,
)
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


def text_of(markup: str) -> str:
    """What a reader sees: the markup without its tags, spaces collapsed."""
    markup = re.sub(r"</?(a|b|code|em|i|span|strong)\b[^>]*>", "", markup)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def text(response: Any) -> str:
    return text_of(response.content.decode())


@pytest.fixture
def book(db: None) -> dict[str, Any]:
    """Two items (1 and 3 points); ada improves on her second attempt and is late on the second
    item; bob is wrong but graded 80% by hand; cy never submitted."""
    course, teacher = staffed_course(title="Execution 101")
    assignment = AssignmentFactory(course=course, title="Loops")
    first = ItemFactory(assignment=assignment, title="Sum", points=1)
    second = ItemFactory(assignment=assignment, title="Trace it", points=3)
    ada = student_of(course, "ada", email="ada@example.edu")
    bob = student_of(course, "bob")
    student_of(course, "cy")
    SubmissionFactory(item=first, student=ada, attempt=1, score=0.0)
    SubmissionFactory(item=first, student=ada, attempt=2, score=1.0)
    SubmissionFactory(item=first, student=ada, attempt=3, score=0.0)  # the best one counts
    SubmissionFactory(item=second, student=ada, attempt=1, score=1.0, credit=0.5, late=True)
    SubmissionFactory(item=first, student=bob, attempt=1, score=0.0, override_credit=0.8)
    return {"course": course, "teacher": teacher, "assignment": assignment}


def _url(name: str, book: dict[str, Any]) -> str:
    return reverse(name, args=[book["course"].pk, book["assignment"].pk])


def test_the_gradebook_counts_the_best_attempt_with_overrides_and_late_marks(
    book: dict[str, Any],
) -> None:
    page = logged_in(book["teacher"]).get(_url("classroom:gradebook", book))
    rows = [
        " ".join(text_of(row).split())
        for row in re.findall(r'<tr id="student-\d+">(.*?)</tr>', page.content.decode(), re.S)
    ]
    assert rows == [  # every student of the course, even one without a submission
        "ada ada@example.edu 100% 3 attempts 50% late 2.50 62.5%",
        "bob 80% ✎ — 0.80 20.0%",
        "cy — — 0.00 0.0%",
    ]
    shown = text(page)
    assert "3 students, 4 points possible" in shown
    assert "Average 60% 17% 27.5%" in shown  # per item: no submission counts as 0


def test_the_csv_opens_in_a_spreadsheet_and_neutralises_formulas(book: dict[str, Any]) -> None:
    course = book["course"]
    student_of(course, '=HYPERLINK("http://evil.example","click")', email="@evil.example")
    ItemFactory(assignment=book["assignment"], title="+1 bonus", points=0)
    response = logged_in(book["teacher"]).get(_url("classroom:gradebook_csv", book))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        'attachment; filename="execution-101-loops-gradebook.csv"'
    )
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: spreadsheets then read UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["username", "email", "Sum", "Trace it", "'+1 bonus", "total", "percent"]
    by_name = {row[0]: row for row in rows[1:]}
    assert len(rows) == 1 + 4  # one row per student
    assert by_name["ada"] == ["ada", "ada@example.edu", "1", "1.5", "", "2.5", "62.50"]
    assert by_name["bob"] == ["bob", "", "0.8", "", "", "0.8", "20.00"]
    assert by_name["cy"] == ["cy", "", "", "", "", "0", "0.00"]
    evil = next(row for row in rows if "HYPERLINK" in row[0])
    assert evil[0] == '\'=HYPERLINK("http://evil.example","click")'
    assert evil[1] == "'@evil.example"


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("ada", "ada"),
        ("a=b", "a=b"),
        (None, ""),
    ],
)
def test_spreadsheet_safe(cell: Any, safe: str) -> None:
    assert spreadsheet_safe(cell) == safe


def test_the_gradebook_is_for_staff_only(book: dict[str, Any]) -> None:
    ada = book["course"].memberships.get(user__username="ada").user
    for name in ("classroom:gradebook", "classroom:gradebook_csv"):
        assert logged_in(ada).get(_url(name, book)).status_code == 403


def test_wrong_answers_are_normalised_and_counted() -> None:
    assert normalise(" [1,2] ") == normalise("[1, 2]") == "[1, 2]"
    assert normalise("'a'") == normalise('"a"')
    assert normalise("not   a literal") == "not a literal"
    assert normalise("x" * 500).endswith("…")


def test_item_stats_show_wrong_answers_and_students_against_models(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    program = LibraryProgramFactory()
    item = ItemFactory(assignment=assignment, program=program, mode=Mode.OUTPUT, title="Sum")
    students = [student_of(course, f"s{i}") for i in range(4)]
    # s0 right at once; s1 wrong then right; s2 and s3 wrong with the same answer, spelt apart.
    SubmissionFactory(item=item, student=students[0], answer="6", score=1.0)
    SubmissionFactory(item=item, student=students[1], answer="[1,2,3]", score=0.0)
    SubmissionFactory(item=item, student=students[1], attempt=2, answer="6", score=1.0)
    SubmissionFactory(item=item, student=students[2], answer="5", score=0.0)
    SubmissionFactory(item=item, student=students[3], answer=" 5 ", score=0.0)
    SubmissionFactory(item=item, student=students[3], attempt=2, answer="<b>7</b>", score=0.0)

    def run(model: str, method: str, verdict: str, calls: int = 1, path: str = "") -> None:
        RunFactory(
            program=program,
            method=method,
            model=model,
            status=Run.Status.DONE,
            verdict={"status": verdict, **({"path": {"status": path}} if path else {})},
            model_calls=calls,
        )

    for verdict in ("correct", "correct", "correct", "wrong"):
        run("coder-7b", "direct", verdict)
    run("coder-7b", "cot", "wrong")
    run("<img src=x>", "trace", "correct", path="diverges")  # right answer, wrong execution
    run("<img src=x>", "trace", "wrong", path="diverges")  # not counted: a wrong answer
    # Chain of Code that Python finished alone is never the model being right (a verdict
    # stored before no_model existed, and one stored after); one that asked the model is.
    run("coder-7b", "coc", "correct", calls=0)
    run("coder-7b", "coc", "no_model", calls=0)
    run("coder-7b", "coc", "correct", calls=2)
    RunFactory(program=program, method="direct", model="coder-7b", status=Run.Status.FAILED)
    RunFactory(program=program, method="real", status=Run.Status.DONE)
    RunFactory(
        program=LibraryProgramFactory(),
        method="direct",
        model="coder-7b",
        status=Run.Status.DONE,
        verdict={"status": "correct"},
    )

    url = reverse("classroom:item_stats", args=[course.pk, assignment.pk, item.pk])
    response = logged_in(teacher).get(url)
    page = text(response)
    assert "Students who submitted 4 (6 graded submissions)" in page
    assert "Right at the first attempt 1 of 4 (25%)" in page
    assert "Right at their best attempt 2 of 4 (50%)" in page
    # The most common wrong answer first: "5" and " 5 " are one answer, given by two students.
    assert "5 2 2 <b>7</b> 1 1 [1, 2, 3] 1 1" in page  # ties in text order
    table = page[page.index("Who Right Total Accuracy Without the model") :]
    assert "Students, first attempt 1 4 25.0% — —" in table
    assert "Students, best attempt 2 4 50.0% — —" in table
    assert "coder-7b · Direct output prediction (CRUXEval-O) 3 4 75.0% 0 —" in table
    assert "Chain of thought, then the output (CRUXEval-O CoT) 0 1 0.0% 0 —" in table
    assert "<img src=x> · Model-written step trace 1 2 50.0% 0 1" in table
    assert (
        "coder-7b · Chain of Code: Python runs what it can, the model the rest 1 1 100.0% 2 0"
        in (table)
    )
    markup = response.content.decode()
    assert "<svg" in markup
    assert "<img src=x>" not in markup
    assert "<b>7</b>" not in markup
    assert markup.count('class="bar-model"') == 4
    assert markup.count('class="bar-students"') == 2
