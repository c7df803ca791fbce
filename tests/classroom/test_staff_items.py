"""Items on the staff pages: from the library or new code, each with its answer key; checkpoints
checked against the program; the model modes' model and method; P3 puzzles; the library search;
a new key when the program changes; deleting an item that has submissions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground.classroom.keys import key_status
from playground.classroom.models import Item, Mode, Submission
from playground.emulation.registry import REGISTRY
from playground.programs.models import Program
from playground.runs.models import Run
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    LibraryProgramFactory,
    SubmissionFactory,
    logged_in,
    markup,
    staffed_course,
    text,
)
from tests.factories import ProgramFactory, PuzzleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_commit(
    eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., Any]:
    """POST; the Celery tasks queued on commit (the answer key's run) finish before it returns."""

    def post(client: Client, url: str, data: dict[str, Any]) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data)

    return post


def _item_data(**fields: Any) -> dict[str, Any]:
    return {
        "mode": "output",
        "title": "Sum",
        "prompt": "",
        "points": "2",
        "origin": "library",
        **fields,
    }


def test_an_item_from_the_library_gets_its_answer_key(db: None, on_commit: Any) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    program = LibraryProgramFactory()
    client = logged_in(teacher)
    url = reverse("classroom:item_new", args=[course.pk, assignment.pk])
    response = on_commit(client, url, _item_data(pick=f"program:{program.pk}"))
    assert response.status_code == 302
    item = Item.objects.get()
    assert (item.program, item.mode, item.points) == (program, Mode.OUTPUT, 2.0)
    assert item.key_run is not None
    assert item.key_run.status == Run.Status.DONE
    assert item.key_run.owner == teacher
    assert key_status(item).ready

    page = text(
        client.get(reverse("classroom:item_edit", args=[course.pk, assignment.pk, item.pk]))
    )
    assert "ready" in page
    assert "The call returns 6." in page
    listing = text(
        client.get(reverse("classroom:assignment_edit", args=[course.pk, assignment.pk]))
    )
    assert "Sum" in listing
    assert "ready" in listing


def test_an_item_from_new_code_is_a_private_program_of_the_teacher(
    db: None, on_commit: Any
) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    client = logged_in(teacher)
    url = reverse("classroom:item_new", args=[course.pk, assignment.pk])

    page = text(client.post(url, _item_data(origin="new", source="def f(x):\n  return x +\n")))
    assert "Syntax error on line 2" in page
    page = text(client.post(url, _item_data(origin="new", source="def f(x):\n    return x\n")))
    assert "this program needs one" in page  # predicting the output needs a call
    assert not Item.objects.exists()

    data = _item_data(origin="new", source="def f(x):\r\n    return x * 3\r\n", call="f(4)")
    on_commit(client, url, data)
    item = Item.objects.get()
    assert item.program is not None
    assert (item.program.owner, item.program.is_public) == (teacher, False)
    assert item.program.source == "def f(x):\n    return x * 3\n"
    assert item.key_run is not None
    assert item.key_run.status == Run.Status.DONE
    assert item.key_run.real_trace.data["result"] == "12"  # type: ignore[union-attr]


def test_someone_elses_private_program_cannot_be_picked(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    private = ProgramFactory(is_public=False)
    url = reverse("classroom:item_new", args=[course.pk, assignment.pk])
    page = text(logged_in(teacher).post(url, _item_data(pick=f"program:{private.pk}")))
    assert "Pick a program from the library search" in page
    assert not Item.objects.exists()


TRACE_SOURCE = (
    "def f(xs):\n    total = 0\n\n    for x in xs:\n        total += x\n    return total\n"
)


def test_checkpoints_are_checked_against_the_program(db: None, on_commit: Any) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    program = LibraryProgramFactory(source=TRACE_SOURCE, call="f([4, 5])")
    client = logged_in(teacher)
    url = reverse("classroom:item_new", args=[course.pk, assignment.pk])
    data = _item_data(
        mode="trace",
        pick=f"program:{program.pk}",
        cp_line=["99", "3", "5", "5", ""],
        cp_occurrence=["", "", "2", "", ""],
        cp_variables=["total", "total", "", "total, 2x", ""],
    )
    page = markup(client.post(url, data))
    assert "Checkpoint 1: line 99 is not in the program (it has 6 lines)." in page
    assert "Checkpoint 2: line 3 is blank or a comment" in page
    assert "Checkpoint 3: name at least one variable" in page
    assert "Checkpoint 4: not a variable name: 2x." in page
    assert 'value="99"' in page  # what was typed stays in the editor
    assert not Item.objects.exists()

    page = text(client.post(url, _item_data(mode="trace", pick=f"program:{program.pk}")))
    assert "Add at least one checkpoint" in page

    data.update(cp_line=["5", "6"], cp_occurrence=["2", ""], cp_variables=["total, x", "total"])
    assert on_commit(client, url, data).status_code == 302
    item = Item.objects.get()
    assert item.checkpoints == [
        {"line": 5, "occurrence": 2, "variables": ["total", "x"]},
        {"line": 6, "occurrence": 1, "variables": ["total"]},
    ]
    assert key_status(item).ready
    # The edit page shows what the key holds at each checkpoint, for the teacher to check.
    page = text(
        client.get(reverse("classroom:item_edit", args=[course.pk, assignment.pk, item.pk]))
    )
    assert "total = 4, x = 5" in page
    assert "total = 9" in page


def test_more_checkpoint_rows_keep_what_was_typed(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    url = reverse("classroom:item_new", args=[course.pk, assignment.pk])
    data = _item_data(
        mode="trace", cp_line=["5"], cp_occurrence=["2"], cp_variables=["total"], more_rows="1"
    )
    page = markup(logged_in(teacher).post(url, data))
    assert page.count('name="cp_line"') == 7
    assert 'value="total"' in page
    assert not Item.objects.exists()
    assert 'role="alert"' not in page  # no errors shown for a form not yet saved


def test_model_modes_need_a_model_and_a_fitting_method(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    program = LibraryProgramFactory()
    url = reverse("classroom:item_new", args=[course.pk, assignment.pk])
    client = logged_in(teacher)
    page = text(client.post(url, _item_data(mode="divergence", pick=f"program:{program.pk}")))
    assert "Choose the model the students are compared with." in page
    data = _item_data(
        mode="divergence", pick=f"program:{program.pk}", model="smollm2-135m", method="direct"
    )
    page = text(client.post(url, data))
    # Every method that writes a step trace is named (trace and Chain of Code among them).
    steps = [name for name, method in REGISTRY.items() if method.compares_steps]
    assert {"trace", "coc"} <= set(steps)
    assert f"Spot the divergence needs a method that writes a step trace ({', '.join(steps)})." in (
        page
    )
    assert not Item.objects.exists()


def test_a_puzzle_item_picks_a_p3_puzzle(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    puzzle = PuzzleFactory(sat="def sat(s: str):\n    return s.count('o') == 1000\n")
    client = logged_in(teacher)
    url = reverse("classroom:item_new", args=[course.pk, assignment.pk])
    page = text(client.post(url, _item_data(mode="puzzle")))
    assert "Pick a P3 puzzle from the library search." in page
    response = client.post(url, _item_data(mode="puzzle", pick=f"puzzle:{puzzle.pk}"))
    assert response.status_code == 302
    item = Item.objects.get()
    assert (item.puzzle, item.program, item.key_run) == (puzzle, None, None)
    assert key_status(item).ready


def test_library_search_answers_an_htmx_fragment(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    LibraryProgramFactory(title="CRUXEval sample_7", source="def f(s):\n    return s.upper()\n")
    mine = ProgramFactory(owner=teacher, title="My <b>palindrome</b>", source="# upper\n")
    ProgramFactory(is_public=False, title="Someone's upper", source="def upper(): ...\n")
    PuzzleFactory(name="Upper_3:0", sat="def sat(s: str):\n    return s.isupper()\n")
    client = logged_in(teacher)
    url = reverse("classroom:library_search", args=[course.pk, assignment.pk])
    body = client.get(url, {"q": "upper", "mode": "output"}, headers={"HX-Request": "true"})
    page = body.content.decode()
    assert "<html" not in page
    assert 'id="library-results"' in page
    assert "CRUXEval sample_7" in page
    assert "My &lt;b&gt;palindrome&lt;/b&gt;" in page  # own programs, escaped
    assert "Someone&#x27;s upper" not in page  # private to someone else
    assert "Upper_3:0" not in page

    only_mine = text(client.get(url, {"q": "upper", "library": "mine"}))
    assert "palindrome" in only_mine
    assert "sample_7" not in only_mine
    puzzles = text(client.get(url, {"q": "upper", "mode": "puzzle"}))
    assert "Upper_3:0" in puzzles
    assert "sample_7" not in puzzles
    picked = markup(client.get(url, {"pick": f"program:{mine.pk}"}))
    assert 'id="picked"' in picked
    assert f'value="program:{mine.pk}" checked' in picked


def test_changing_the_program_prepares_a_new_key(db: None, on_commit: Any) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    client = logged_in(teacher)
    first, second = LibraryProgramFactory(), LibraryProgramFactory(call="f([10])")
    on_commit(
        client,
        reverse("classroom:item_new", args=[course.pk, assignment.pk]),
        _item_data(pick=f"program:{first.pk}"),
    )
    item = Item.objects.get()
    old_key = item.key_run_id
    SubmissionFactory(item=item)
    edit = reverse("classroom:item_edit", args=[course.pk, assignment.pk, item.pk])

    # Only the prompt changes: the same key.
    on_commit(client, edit, _item_data(pick=f"program:{first.pk}", prompt="Careful."))
    item.refresh_from_db()
    assert (item.key_run_id, item.prompt) == (old_key, "Careful.")

    response = on_commit(client, edit, _item_data(pick=f"program:{second.pk}"))
    page = text(client.get(response["Location"]))
    item.refresh_from_db()
    assert item.program == second
    assert item.key_run_id != old_key
    assert key_status(item).ready
    assert "1 submission was graded against the old key and keeps its grade" in page


def test_deleting_an_item_with_submissions_asks_first(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    item = ItemFactory(assignment=assignment)
    SubmissionFactory(item=item, attempt=1)
    SubmissionFactory(item=item, attempt=1)
    client = logged_in(teacher)
    url = reverse("classroom:item_delete", args=[course.pk, assignment.pk, item.pk])
    page = text(client.post(url))
    assert "2 students answered this item" in page
    assert "2 submissions" in page
    assert Item.objects.filter(pk=item.pk).exists()

    response = client.post(url, {"confirm": "yes"})
    assert response.status_code == 302
    assert not Item.objects.filter(pk=item.pk).exists()
    assert not Submission.objects.exists()
    assert Program.objects.filter(pk=item.program_id).exists()  # the library keeps its program

    empty = ItemFactory(assignment=assignment)
    client.post(reverse("classroom:item_delete", args=[course.pk, assignment.pk, empty.pk]))
    assert not Item.objects.filter(pk=empty.pk).exists()
