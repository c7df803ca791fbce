"""Answer the probes (issue 20): a classroom item whose questions are the probe method's, made
from the answer key's real run; each answer marked, partial credit the share right, incremental
consistency shown; the true answers hidden until the answer may be revealed; the staff's key
preview; and the students-vs-models table per kind of question."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import reverse

from playground.classroom import authoring, grading, keys, stats
from playground.classroom.models import Item, Mode, Submission
from playground.classroom.probing import identity
from playground.emulation import probes
from playground.emulation.probes import Probe
from playground.runs.models import Run
from tests.classroom.student_world import (
    assignment,
    client_for,
    close,
    course_world,
    library_program,
)
from tests.factories import RunFactory

HTMX = {"HX-Request": "true"}
# A loop with a branch: coverage, state, path and output questions all have answers.
SOURCE = (
    "def f(xs):\n"
    "    total = 0\n"
    "    for x in xs:\n"
    "        if x > 2:\n"
    "            total += x * 7\n"
    "    return total\n"
)
CALL = "f([1, 3, 5])"  # 56


def _text(response: Any) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


# -- Grading, by hand ---------------------------------------------------------------------------

CHAIN = [
    Probe("coverage", "Is line 5 executed?", "True", 7, line=5, chain=0),
    Probe(
        "state", "total after line 5, 1st time?", "21", 8, line=5, k=1, variable="total", chain=0
    ),
    Probe("path", "After line 5, 1st time?", "3", 7, line=5, k=1, chain=0),
    Probe("output", "What does f return?", "56", 20),
]


def test_each_probe_is_marked_and_the_score_is_the_share_right() -> None:
    right = {"0": "True", "1": "21", "2": "3", "3": "56"}
    grade = grading.grade_probes(right, CHAIN)
    assert (grade.score, grade.invalid) == (1.0, False)
    assert grade.details["consistency"]["ic"] == 1.0
    assert "4 of 4 questions right" in grade.message
    # The path wrong, the output right again: 3 of 4, and the chain is not incrementally
    # consistent (a right answer after a wrong one), so its IC is 0.
    grade = grading.grade_probes({**right, "2": "4"}, CHAIN)
    assert grade.score == 0.75
    assert [p["right"] for p in grade.details["probes"]] == [True, True, False, True]
    assert grade.details["consistency"] == {"items": 1, "prefix": 0.5, "ic": 0.0}
    assert grade.details["scores"]["path"] == {
        "asked": 1,
        "correct": 0,
        "wrong": 1,
        "unparsable": 0,
    }
    # Only coverage right, then wrong to the end: 1 of 4, consistent, IC 1/2^3.
    grade = grading.grade_probes({"0": "True", "1": "20", "2": "4", "3": "55"}, CHAIN)
    assert grade.score == 0.25
    assert grade.details["consistency"]["ic"] == 0.125
    assert grade.message == "1 of 4 questions right. coverage 1/1, state 0/1, path 0/1, output 0/1."
    # A state's type counts (REval grades type and value); the truth is kept for the reveal.
    grade = grading.grade_probes({**right, "1": "21.0"}, CHAIN)
    assert grade.score == 0.75
    assert grade.details["probes"][1] == {
        "kind": "state", "line": 5, "k": 1, "variable": "total", "chain": 0, "truth": "21",
        "step": 8, "right": False,
    }  # fmt: skip


def test_an_empty_or_unreadable_answer_names_its_question_and_is_no_attempt() -> None:
    right = {"0": "True", "1": "21", "2": "3", "3": "56"}
    grade = grading.grade_probes({**right, "1": "  "}, CHAIN)
    assert grade.invalid
    assert grade.message == "Answer question 2."
    grade = grading.grade_probes({**right, "2": "[1, 2"}, CHAIN)
    assert grade.invalid
    assert grade.message.startswith("Question 3: write a Python literal")
    grade = grading.grade_probes({**right, "0": "maybe"}, CHAIN)
    assert grade.invalid
    assert grade.message.startswith("Question 1: answer True or False")
    assert grading.grade_probes({}, []).invalid


# -- The item, for real ------------------------------------------------------------------------


@pytest.fixture
def probe_item(
    db: None, eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> SimpleNamespace:
    w = course_world()
    w.assignment = assignment(w.course, max_attempts=3)
    program = library_program(source=SOURCE, call=CALL, expected="56")
    w.item = Item.objects.create(
        assignment=w.assignment, mode=Mode.PROBES, program=program, title="Probes"
    )
    with django_capture_on_commit_callbacks(execute=True):
        authoring.prepare_item(w.item, by=w.instructor)
    w.item.refresh_from_db()
    w.questions = keys.questions(w.item)
    w.submit_url = reverse("classroom:submit", args=[w.course.pk, w.assignment.pk, w.item.pk])
    return w


def _answers(questions: list[Probe], wrong: set[int] = frozenset()) -> dict[str, str]:  # type: ignore[assignment]
    """The form's fields: the true answers, except those in ``wrong``."""
    out = {}
    for n, probe in enumerate(questions):
        if n not in wrong:
            out[f"probe_{n}"] = probe.truth
        elif probe.kind == "coverage":
            out[f"probe_{n}"] = "False" if probe.truth == "True" else "True"
        else:
            out[f"probe_{n}"] = "'not it'"
    return out


def test_the_key_is_the_real_run_and_its_questions_are_the_probe_methods(
    probe_item: SimpleNamespace,
) -> None:
    w = probe_item
    run = w.item.key_run
    assert (run.method, run.status) == ("real", Run.Status.DONE)
    assert keys.key_status(w.item).ready
    # probes.DEFAULT with seed 0: what a model's probe run of this program asks.
    assert [p.as_dict() for p in w.questions] == [
        p.as_dict()
        for p in probes.generate(
            run.real_trace.data, SOURCE, call=CALL, seed=0, config=probes.DEFAULT
        )
    ]
    kinds = {p.kind for p in w.questions}
    assert kinds == {"coverage", "state", "path", "output", "sequence"}
    assert next(p for p in w.questions if p.kind == "output").truth == "56"


def test_a_student_answers_each_question_and_sees_each_mark_never_the_truth(
    probe_item: SimpleNamespace,
) -> None:
    w = probe_item
    client = client_for(w.s1)
    page = client.get(w.item.get_absolute_url())
    body = page.content.decode()
    n = len(w.questions)
    for index, probe in enumerate(w.questions):
        assert html.escape(probe.question, quote=True) in body
        assert f'name="probe_{index}"' in body
    assert body.count('value="True"') == sum(p.kind == "coverage" for p in w.questions)
    questions_html = body[body.index('id="probe-questions"') :]
    questions_html = questions_html[: questions_html.index("</ol>")]
    assert "56" not in questions_html  # the output's truth is nowhere before an answer
    assert "probe-truth" not in body
    wrong = {1, n - 1}  # a state and the sequence
    response = client.post(w.submit_url, _answers(w.questions, wrong), headers=HTMX)
    text = _text(response)
    percent = round(100 * (n - 2) / n)
    assert f"Partly right ({percent}%) · attempt 1" in text
    assert f"{n - 2} of {n} questions right" in text
    ic = Submission.objects.get(item=w.item, student=w.s1).feedback["details"]["consistency"]
    assert f"Incremental consistency (REval): {ic['ic']:.2f} over {ic['items']} chains" in text
    submission = Submission.objects.get(item=w.item, student=w.s1)
    assert submission.score == pytest.approx((n - 2) / n)
    marks = re.findall(
        r'class="tag status-(ok|exception) probe-mark">(right|wrong)', response.content.decode()
    )
    assert [m[1] for m in marks] == ["wrong" if i in wrong else "right" for i in range(n)]
    # Attempts are left: which were wrong, never what they were.
    sequence = next(p for p in w.questions if p.kind == "sequence").truth
    assert "it was" not in text
    assert sequence not in text
    assert 'id="trace-steps"' not in response.content.decode()
    # The answers typed stay in their fields.
    assert 'value="&#x27;not it&#x27;"' in response.content.decode()


def test_the_truths_and_the_run_come_once_the_assignment_closes(
    probe_item: SimpleNamespace,
) -> None:
    w = probe_item
    client = client_for(w.s1)
    client.post(w.submit_url, _answers(w.questions, {0}), headers=HTMX)
    sequence = next(p for p in w.questions if p.kind == "sequence").truth
    assert sequence not in _text(client.get(w.item.get_absolute_url()))
    close(w.assignment)
    page = client.get(w.item.get_absolute_url())
    text = _text(page)
    assert "closed" in text
    assert f"it was {sequence}" in text
    assert 'id="trace-steps"' in page.content.decode()  # the real run, stepped through
    assert 'class="probe-step"' in page.content.decode()  # each truth links to its step


def test_an_unanswered_question_uses_no_attempt(probe_item: SimpleNamespace) -> None:
    w = probe_item
    fields = _answers(w.questions)
    fields["probe_2"] = ""
    response = client_for(w.s1).post(w.submit_url, fields, headers=HTMX)
    assert "Answer question 3." in _text(response)
    assert not Submission.objects.filter(item=w.item).exists()


def test_staff_see_every_question_with_its_answer(probe_item: SimpleNamespace) -> None:
    w = probe_item
    url = reverse("classroom:item_edit", args=[w.course.pk, w.assignment.pk, w.item.pk])
    text = _text(client_for(w.instructor).get(url))
    for probe in w.questions:
        assert probe.question in text
    assert "What value does `f([1, 3, 5])` return? Answer with a Python literal. 56" in text


def test_the_item_form_saves_the_seed_and_counts(
    db: None, eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    w = course_world()
    w.assignment = assignment(w.course)
    program = library_program(source=SOURCE, call=CALL, expected="56")
    url = reverse("classroom:item_new", args=[w.course.pk, w.assignment.pk])
    client = client_for(w.instructor)
    fields = {"mode": "probes", "origin": "library", "pick": f"program:{program.pk}", "points": "1"}
    counts = {"probe_coverage": "0", "probe_state": "0", "probe_path": "0", "probe_output": "0",
              "probe_sequence": "0"}  # fmt: skip
    response = client.post(url, {**fields, **counts, "probe_seed": "7"})
    assert "Ask at least one question." in _text(response)
    response = client.post(url, {**fields, **counts, "probe_seed": "x"})
    assert response.status_code == 200
    assert "Enter a whole number." in _text(response)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url, {**fields, **counts, "probe_state": "2", "probe_output": "1", "probe_seed": "7"}
        )
    assert response.status_code == 302
    item = Item.objects.get(assignment=w.assignment)
    assert item.probe_config == {
        "seed": 7, "coverage": 0, "state": 2, "path": 0, "output": 1, "sequence": 0,
    }  # fmt: skip
    assert sorted(p.kind for p in keys.questions(item)) == ["output", "state", "state"]


# -- Students vs models, per kind --------------------------------------------------------------


def _probe_run(item: Item, questions: list[Probe], wrong: set[int], **fields: Any) -> Run:
    """A model's probe run of the item's program as judging stores it: each question's mark."""
    marks = [
        {**p.as_dict(), "status": "wrong" if n in wrong else "correct", "answer": "x"}
        for n, p in enumerate(questions)
    ]
    return RunFactory(
        program=item.program, method="probe", model="tiny", status=Run.Status.DONE,
        verdict={"status": "wrong" if wrong else "correct", "probes": marks,
                 "path": probes.path_verdict(marks)},
        **fields,
    )  # fmt: skip


def test_students_and_models_side_by_side_per_kind(probe_item: SimpleNamespace) -> None:
    w = probe_item
    qs = w.questions
    coverage = [n for n, p in enumerate(qs) if p.kind == "coverage"]
    output = next(n for n, p in enumerate(qs) if p.kind == "output")
    client = client_for(w.s1)
    client.post(w.submit_url, _answers(qs, {coverage[0]}), headers=HTMX)  # first attempt
    client.post(w.submit_url, _answers(qs), headers=HTMX)  # second: not counted
    client_for(w.s2).post(w.submit_url, _answers(qs), headers=HTMX)
    # The model: one run on the same questions with the output wrong; one that got the output
    # right on a path it did not take (a coverage question wrong): right answer, wrong
    # execution; one run of other questions entirely (not compared); one under a rule (not
    # this item's program as the students see it).
    _probe_run(w.item, qs, {output})
    _probe_run(w.item, qs, {coverage[1]})
    other = Probe("coverage", "Is line 99 executed?", "False", None, line=99)
    _probe_run(w.item, [other], set())
    _probe_run(w.item, qs, set(), rule="swap-lt-gt")

    table = stats.item_stats(w.item).probes
    assert table is not None
    students, model = table.columns
    assert (students.runs, model.runs) == (2, 2)
    n_cov = len(coverage)
    assert students.cell("coverage")[:2] == (2 * n_cov - 1, 2 * n_cov)
    assert model.cell("coverage")[:2] == (2 * n_cov - 1, 2 * n_cov)
    assert students.cell("output")[:2] == (2, 2)
    assert model.cell("output")[:2] == (1, 2)
    # IC by hand (three chains coverage -> state -> path, each closed by the output): student 1
    # missed chain 0's coverage, so chain 0 is inconsistent (0) and the others 1: 2/3; student
    # 2: 1. The model's first run missed the output: every chain 1,1,1,0 scores 1/2; its second
    # missed chain 1's coverage: 2/3.
    assert [p.kind for p in qs[:9]] == ["coverage", "state", "path"] * 3
    assert coverage[:2] == [0, 3]
    assert students.mean_ic == pytest.approx((2 / 3 + 1) / 2, abs=1e-3)  # IC kept to 4 places
    assert model.mean_ic == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-3)

    url = reverse("classroom:item_stats", args=[w.course.pk, w.assignment.pk, w.item.pk])
    text = _text(client_for(w.instructor).get(url))
    assert "The questions, by kind: students vs models" in text
    assert "output 2/2 (100%) 1/2 (50%)" in text
    assert "Incremental consistency 0.83 0.58" in text
    # The accuracy table: a probe run's answer is its output (the third run has none: its
    # verdict counts); the second run was right on a diverging path.
    table_text = text[text.index("Right, wrong execution") :]
    assert re.search(r"tiny · Probes of the run[^0-9]+ 2 3 66\.7% 0 1 ", table_text), table_text


def test_a_grader_reads_the_answers_in_question_order(probe_item: SimpleNamespace) -> None:
    w = probe_item
    client_for(w.s1).post(w.submit_url, _answers(w.questions), headers=HTMX)
    submission = Submission.objects.get(item=w.item)
    url = reverse("classroom:override", args=[w.course.pk, submission.pk])
    text = _text(client_for(w.instructor).get(url))
    shown = re.findall(r"question (\d+) = ", text)
    assert shown == [str(n) for n in range(1, len(w.questions) + 1)]
    assert len(shown) >= 10  # past 9: by number, not as text ("10" before "2")


def test_new_counts_ask_other_questions_and_old_marks_stay_off_them(
    probe_item: SimpleNamespace,
) -> None:
    w = probe_item
    client_for(w.s1).post(w.submit_url, _answers(w.questions, {0}), headers=HTMX)
    edit = reverse("classroom:item_edit", args=[w.course.pk, w.assignment.pk, w.item.pk])
    fields = {
        "mode": "probes", "origin": "library", "pick": f"program:{w.item.program_id}",
        "points": "1", "title": "Probes", "probe_seed": "3", "probe_coverage": "0",
        "probe_state": "2", "probe_path": "0", "probe_output": "1", "probe_sequence": "0",
    }  # fmt: skip
    response = client_for(w.instructor).post(edit, fields, follow=True)
    assert "1 submission was graded against the old key and keeps its grade" in _text(response)
    item = Item.objects.get(pk=w.item.pk)
    assert item.key_run_id == w.item.key_run_id  # the same key, other questions
    now = keys.questions(item)
    assert [p.kind for p in now] == ["state", "state", "output"]
    page = client_for(w.s1).get(w.item.get_absolute_url()).content.decode()
    marked = re.findall(r'data-kind="(\w+)" data-status="(\w+)"', page)
    # A mark shows only beside the very question it was given for (same kind, line, time,
    # variable), never beside another one now at its place.
    same = [
        n for n, p in enumerate(now) if identity(p.as_dict()) == identity(w.questions[n].as_dict())
    ]
    assert len(same) < len(now)
    assert marked == [(now[n].kind, "wrong" if n == 0 else "correct") for n in same]


def test_a_programs_strings_stay_text_in_questions_and_truths(
    db: None, eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    w = course_world()
    w.assignment = assignment(w.course, max_attempts=1)
    source = "def f(s):\n    t = s + '<img src=x onerror=alert(1)>'\n    return t\n"
    program = library_program(source=source, call="f('<b>')", expected="")
    item = Item.objects.create(assignment=w.assignment, mode=Mode.PROBES, program=program)
    with django_capture_on_commit_callbacks(execute=True):
        authoring.prepare_item(item, by=w.instructor)
    item.refresh_from_db()
    questions = keys.questions(item)
    assert any("<img" in p.truth for p in questions)
    url = reverse("classroom:submit", args=[w.course.pk, w.assignment.pk, item.pk])
    response = client_for(w.s1).post(url, _answers(questions), headers=HTMX)
    body = response.content.decode()
    assert "Right · attempt 1" in _text(response)
    assert "it was" in _text(response)  # revealed: the truths are shown...
    assert "<img" not in body  # ...as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
