"""The staff pages as a teacher uses them: creating a course, the join code, rosters, roles,
assignments and their times, items from the library or new code with their answer keys,
checkpoints, extensions, the live submissions and overrides."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from playground.classroom.errors import ClassroomError
from playground.classroom.joining import join_course
from playground.classroom.models import (
    Assignment,
    Course,
    Extension,
    Invitation,
    Item,
    Membership,
    Mode,
    Role,
    Submission,
)
from playground.programs.models import Program
from playground.runs.models import Run
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    LibraryProgramFactory,
    MembershipFactory,
    SubmissionFactory,
    logged_in,
    staffed_course,
    student_of,
)
from tests.factories import ProgramFactory, PuzzleFactory, UserFactory

pytestmark = pytest.mark.django_db


def markup(response: Any) -> str:
    """The page's HTML with its entities decoded."""
    return html.unescape(response.content.decode())


def text(response: Any) -> str:
    """What a reader sees: the page without its tags, spaces collapsed."""
    page = re.sub(r"</?(a|b|code|em|i|span|strong)\b[^>]*>", "", response.content.decode())
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def manage_url(course: Course) -> str:
    return reverse("classroom:course_manage", args=[course.pk])


# Courses, codes, rosters, roles ---------------------------------------------------------------


def test_creating_a_course_makes_you_its_instructor(user_client: Client) -> None:
    response = user_client.post(
        reverse("classroom:course_new"), {"title": "  Execution 101 ", "description": "Fall"}
    )
    course = Course.objects.get()
    assert response.status_code == 302
    assert response["Location"] == manage_url(course)
    assert course.title == "Execution 101"
    member = Membership.objects.get(course=course)
    assert (member.user, member.role) == (user_client.user, Role.INSTRUCTOR)  # type: ignore[attr-defined]
    page = text(user_client.get(manage_url(course)))
    assert course.join_code in page
    assert "New assignment" in page


def test_a_course_needs_a_title_and_a_login(user_client: Client) -> None:
    page = text(user_client.post(reverse("classroom:course_new"), {"title": "   "}))
    assert "Give the course a title." in page
    assert not Course.objects.exists()
    anonymous = Client().get(reverse("classroom:course_new"))
    assert anonymous.status_code == 302
    assert "/accounts/login" in anonymous["Location"]


def test_rotating_and_closing_the_join_code(db: None) -> None:
    course, teacher = staffed_course()
    client = logged_in(teacher)
    old = course.join_code
    url = reverse("classroom:course_code", args=[course.pk])
    page = text(client.post(url, {"action": "rotate"}, follow=True))
    course.refresh_from_db()
    assert course.join_code != old
    assert f"New join code: {course.join_code}" in page
    newcomer = UserFactory()
    with pytest.raises(ClassroomError):
        join_course(user=newcomer, code=old)

    page = text(client.post(url, {"action": "disable"}, follow=True))
    course.refresh_from_db()
    assert not course.join_enabled
    assert "Joining is closed." in page
    assert "Open joining" in page
    with pytest.raises(ClassroomError):
        join_course(user=newcomer, code=course.join_code)

    client.post(url, {"action": "enable"})
    course.refresh_from_db()
    assert course.join_enabled
    assert join_course(user=newcomer, code=course.join_code).role == Role.STUDENT


def _roster(client: Client, course: Course, content: bytes) -> str:
    upload = SimpleUploadedFile("roster.csv", content, content_type="text/csv")
    url = reverse("classroom:course_roster", args=[course.pk])
    return text(client.post(url, {"file": upload}, follow=True))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("élève@example.edu\n".encode("latin-1"), "The file is not UTF-8 text (byte 0)."),
        (b"ada\x00@example.edu\n", "The file contains NUL bytes"),
        (b'"' + b"a" * 200_000 + b'"\n', "The file is not a readable CSV file"),
        (b"", "The roster file is empty."),
    ],
    ids=["latin-1", "nul", "huge-field", "empty"],
)
def test_a_bad_roster_file_gets_a_clear_error(db: None, content: bytes, message: str) -> None:
    course, teacher = staffed_course()
    page = _roster(logged_in(teacher), course, content)
    assert message in page
    assert not Invitation.objects.exists()


def test_an_assistant_invites_students_but_not_assistants(db: None) -> None:
    course, _ = staffed_course()
    assistant = UserFactory(username="ta")
    MembershipFactory(course=course, user=assistant, role=Role.ASSISTANT)
    UserFactory(username="mallory")
    page = _roster(logged_in(assistant), course, b"mallory,assistant\nbob@example.edu\n")
    assert "Row 1: only an instructor may invite assistants." in page
    assert list(Invitation.objects.values_list("email", "role")) == [
        ("bob@example.edu", Role.STUDENT)
    ]
    assert not Membership.objects.filter(user__username="mallory").exists()


def test_instructors_change_roles_assistants_cannot(db: None) -> None:
    course, teacher = staffed_course()
    student = student_of(course, "sam")
    member = Membership.objects.get(user=student)
    url = reverse("classroom:member_role", args=[course.pk, member.pk])

    page = text(logged_in(teacher).post(url, {"role": "assistant"}, follow=True))
    member.refresh_from_db()
    assert member.role == Role.ASSISTANT
    assert "sam is now assistant." in page

    # Now an assistant: may see the staff page, but neither change roles nor delete the course.
    assistant = logged_in(student)
    assert assistant.get(manage_url(course)).status_code == 200
    teacher_member = Membership.objects.get(user=teacher)
    demote = reverse("classroom:member_role", args=[course.pk, teacher_member.pk])
    assert assistant.post(demote, {"role": "student"}).status_code == 403
    delete = reverse("classroom:course_delete", args=[course.pk])
    assert assistant.post(delete, {"confirm": course.title}).status_code == 403
    assert Membership.objects.get(user=teacher).role == Role.INSTRUCTOR
    assert Course.objects.filter(pk=course.pk).exists()


def test_the_last_instructor_cannot_be_demoted_or_removed(db: None) -> None:
    course, teacher = staffed_course()
    client = logged_in(teacher)
    me = Membership.objects.get(user=teacher)
    url = reverse("classroom:member_role", args=[course.pk, me.pk])
    for role in ("student", "remove"):
        page = text(client.post(url, {"role": role}, follow=True))
        assert "make someone else an instructor first" in page or "cannot be removed" in page
        me.refresh_from_db()
        assert me.role == Role.INSTRUCTOR

    # With a second instructor, stepping down works and leads to the course's own page.
    other = UserFactory(username="co-teacher")
    MembershipFactory(course=course, user=other, role=Role.INSTRUCTOR)
    response = client.post(url, {"role": "student"})
    assert response["Location"] == reverse("classroom:course", args=[course.pk])
    me.refresh_from_db()
    assert me.role == Role.STUDENT


def test_deleting_a_course_needs_its_title_typed(db: None) -> None:
    course, teacher = staffed_course(title="Execution 101")
    client = logged_in(teacher)
    url = reverse("classroom:course_delete", args=[course.pk])
    page = text(client.post(url, {"confirm": "execution"}, follow=True))
    assert "does not match: nothing was deleted" in page
    assert Course.objects.filter(pk=course.pk).exists()
    assert client.get(url).status_code == 405  # changes are POST only
    response = client.post(url, {"confirm": "Execution 101"})
    assert response["Location"] == reverse("classroom:courses")
    assert not Course.objects.filter(pk=course.pk).exists()


def test_names_from_users_are_escaped(db: None) -> None:
    course, teacher = staffed_course(title="<b>Course</b>")
    student_of(course, "<script>alert(1)</script>")
    assignment = AssignmentFactory(course=course, title="<i>Loops</i>")
    page = logged_in(teacher).get(manage_url(course)).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>Course</b>" not in page
    assert "<i>Loops</i>" not in page
    gradebook = reverse("classroom:gradebook", args=[course.pk, assignment.pk])
    assert "<script>alert" not in logged_in(teacher).get(gradebook).content.decode()


# Assignments ----------------------------------------------------------------------------------


def _assignment_data(**fields: str) -> dict[str, str]:
    return {
        "title": "Loops",
        "instructions": "Trace carefully.",
        "opens_at": "2026-03-02T09:00",
        "due_at": "2026-03-09T23:59",
        "late_until": "",
        "late_credit": "50",
        "max_attempts": "3",
        "feedback": "attempt",
        **fields,
    }


def test_assignment_times_must_be_in_order(db: None) -> None:
    course, teacher = staffed_course()
    client = logged_in(teacher)
    url = reverse("classroom:assignment_new", args=[course.pk])
    page = text(client.post(url, _assignment_data(due_at="2026-03-01T09:00")))
    assert "The due time is before the opening time." in page
    page = text(client.post(url, _assignment_data(late_until="2026-03-09T12:00")))
    assert "The end of the late period is before the due time." in page
    page = text(client.post(url, _assignment_data(late_credit="150")))
    assert "less than or equal to 100" in page
    page = text(client.post(url, _assignment_data(opens_at="next monday")))
    assert "Enter a valid date/time." in page
    assert not Assignment.objects.exists()


def test_assignment_times_are_read_in_the_site_time_zone(db: None, settings: Settings) -> None:
    settings.TIME_ZONE = "America/New_York"
    course, teacher = staffed_course()
    client = logged_in(teacher)
    response = client.post(
        reverse("classroom:assignment_new", args=[course.pk]),
        _assignment_data(late_until="2026-03-10T12:00", exam_mode="on"),
    )
    assignment = Assignment.objects.get()
    assert response["Location"] == reverse(
        "classroom:assignment_edit", args=[course.pk, assignment.pk]
    )
    assert assignment.opens_at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # EST is UTC-5
    assert assignment.late_until == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)  # EDT is UTC-4
    assert assignment.exam_mode
    assert assignment.max_attempts == 3
    page = markup(client.get(response["Location"]))
    assert "America/New_York" in page
    assert 'value="2026-03-02T09:00"' in page  # shown back as typed
    assert "No items yet" in page


def test_editing_an_assignment_and_reordering_its_items(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    first, second = ItemFactory(assignment=assignment), ItemFactory(assignment=assignment)
    client = logged_in(teacher)
    url = reverse("classroom:assignment_edit", args=[course.pk, assignment.pk])
    client.post(url, {"action": "move", "item": second.pk, "direction": "up"})
    assert list(assignment.items.order_by("position")) == [second, first]
    page = text(client.get(url))
    assert page.index(str(second)) < page.index(str(first))
    assert "missing No answer key yet: prepare it." in page  # made without a key

    response = client.post(url, _assignment_data(title="Loops, again"))
    assert response.status_code == 302
    assignment.refresh_from_db()
    assert assignment.title == "Loops, again"


def test_deleting_an_assignment_is_for_instructors_who_type_its_title(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course, title="Loops")
    SubmissionFactory(item=ItemFactory(assignment=assignment))
    assistant = UserFactory(username="ta")
    MembershipFactory(course=course, user=assistant, role=Role.ASSISTANT)
    url = reverse("classroom:assignment_edit", args=[course.pk, assignment.pk])
    data = {"action": "delete", "confirm": "Loops"}
    assert logged_in(assistant).post(url, data).status_code == 403
    page = text(logged_in(teacher).post(url, {"action": "delete", "confirm": "loops"}))
    assert "does not match: nothing was deleted" in page
    assert Assignment.objects.filter(pk=assignment.pk).exists()
    response = logged_in(teacher).post(url, data)
    assert response["Location"] == manage_url(course)
    assert not Assignment.objects.exists()
    assert not Submission.objects.exists()


# Items ----------------------------------------------------------------------------------------


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
    assert item.key_ready

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
    assert item.key_ready
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
    assert "Spot the divergence needs a method that writes a step trace (trace, coc)." in page
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
    assert item.key_ready


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
    assert item.key_ready
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


# Extensions, submissions, overrides -----------------------------------------------------------


def test_extensions_give_one_student_more_time(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    sam = student_of(course, "sam")
    student_of(course, "kim")
    client = logged_in(teacher)
    url = reverse("classroom:extensions", args=[course.pk, assignment.pk])
    member = Membership.objects.get(user=sam)
    local = timezone.localtime(assignment.due_at)
    early = (local - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    page = text(client.post(url, {"student": member.pk, "due_at": early}))
    assert "this is before the assignment's due time" in page

    later = (local + timedelta(days=3)).replace(second=0, microsecond=0)
    data = {
        "student": member.pk,
        "due_at": later.strftime("%Y-%m-%dT%H:%M"),
        "late_until": (later + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    }
    page = text(client.post(url, data, follow=True))
    extension = Extension.objects.get()
    assert (extension.student, extension.due_at) == (sam, later)
    assert assignment.window(sam) == (later, later + timedelta(days=1))
    assert "Extension for sam saved." in page
    assert "kim" in page  # the others are in the choice of students

    client.post(url, {"action": "remove", "extension": extension.pk})
    assert not Extension.objects.exists()
    teacher_member = Membership.objects.get(user=teacher)
    page = text(client.post(url, {"student": teacher_member.pk, "due_at": data["due_at"]}))
    assert "Select a valid choice." in page  # only students get extensions


def test_the_submissions_list_refreshes_itself_and_filters(db: None) -> None:
    course, teacher = staffed_course()
    assignment = AssignmentFactory(course=course)
    item = ItemFactory(assignment=assignment, title="Sum")
    sam, kim = student_of(course, "sam"), student_of(course, "kim")
    SubmissionFactory(item=item, student=sam, answer="5", score=0.0, late=True)
    SubmissionFactory(item=item, student=kim, status=Submission.Status.PENDING, score=None)
    client = logged_in(teacher)
    url = reverse("classroom:submissions", args=[course.pk, assignment.pk])
    page = markup(client.get(url))
    assert 'hx-trigger="every 2s"' in page
    assert page.index("kim") < page.index("late")  # newest first
    assert "being graded" in page
    assert "wrong" in page

    htmx = {"HX-Request": "true", "HX-Target": "submission-rows"}
    fragment = client.get(url, {"student": sam.pk}, headers=htmx)
    body = markup(fragment)
    assert "<html" not in body
    assert 'hx-trigger="every 2s"' in body
    assert "1 submission;" in body
    assert "sam" in body
    assert "being graded" not in body


def test_override_sets_the_credit_with_a_comment(db: None) -> None:
    course, _teacher = staffed_course()
    assistant = UserFactory(username="ta")
    MembershipFactory(course=course, user=assistant, role=Role.ASSISTANT)
    item = ItemFactory(assignment=AssignmentFactory(course=course))
    submission = SubmissionFactory(item=item, student=student_of(course, "sam"), score=0.0)
    client = logged_in(assistant)
    url = reverse("classroom:override", args=[course.pk, submission.pk])
    assert "Grade by hand" in text(client.get(url))

    for bad in ("1.5", "50", "half", "-0.1"):
        page = text(client.post(url, {"credit": bad, "comment": ""}))
        assert "0 to 1" in page, bad
    submission.refresh_from_db()
    assert submission.override_credit is None

    page = text(client.post(url, {"credit": "75%", "comment": "Right idea."}, follow=True))
    submission.refresh_from_db()
    assert (submission.override_credit, submission.override_comment) == (0.75, "Right idea.")
    assert submission.overridden_by == assistant
    assert submission.final_credit == 0.75
    assert "set to 75%" in page

    client.post(url, {"action": "clear"})
    submission.refresh_from_db()
    assert submission.override_credit is None
    assert submission.final_credit == 0.0


def test_override_of_another_course_is_not_found(db: None) -> None:
    course, teacher = staffed_course()
    other_course, _ = staffed_course(instructor="other")
    elsewhere = SubmissionFactory(
        item=ItemFactory(assignment=AssignmentFactory(course=other_course))
    )
    url = reverse("classroom:override", args=[course.pk, elsewhere.pk])
    assert logged_in(teacher).post(url, {"credit": "1"}).status_code == 404
    elsewhere.refresh_from_db()
    assert elsewhere.override_credit is None
