"""While an assignment is open, its answers reach none of its students: every page, API, stream
and share link that could show the result of the item's program is checked for a distinctive
value ('zq-7731'). Staff and people outside the course still see it; after the assignment has
closed, so do the students. Exam mode stops the students' runs for the window."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django.fixtures import Settings

from playground.asgi import application
from playground.classroom import authoring
from playground.classroom.models import Assignment, Item, Membership, Mode, Role
from playground.classroom.visibility import HIDDEN_MESSAGE, SHARED_HIDDEN_MESSAGE, site_time
from playground.programs.models import Program
from playground.runs.models import Run
from playground.runs.services import start_run
from playground.sharing.models import ShareLink
from tests.classroom.student_world import (
    CALL,
    SECRET,
    SOURCE,
    assignment,
    client_for,
    close,
    course_world,
    library_program,
    puzzle,
)
from tests.factories import ProgramFactory, RunFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(eager: None, django_capture_on_commit_callbacks: Callable[..., Any]) -> SimpleNamespace:
    """The course, a library program, a run of it by student 1 from before the assignment, then
    an open assignment with an output item on it, its key run done, and the instructor's share
    link of the key run."""
    w = course_world()
    w.program = library_program()
    with django_capture_on_commit_callbacks(execute=True):
        w.earlier = start_run(program=w.program, user=w.s1, anon_token=None)
    w.assignment = assignment(w.course)
    w.item = Item.objects.create(assignment=w.assignment, mode=Mode.OUTPUT, program=w.program)
    with django_capture_on_commit_callbacks(execute=True):
        w.key = authoring.prepare_item(w.item, by=w.instructor)
    for run in (w.earlier, w.key):
        run.refresh_from_db()
        assert run.status == Run.Status.DONE
        assert run.real_trace is not None
        assert SECRET in run.real_trace.data["result"]
    w.share = ShareLink.objects.create(run=w.key, created_by=w.instructor)
    return w


def _body(response: Any) -> str:
    if not getattr(response, "streaming", False):
        return str(response.content.decode())
    content = response.streaming_content  # an event stream (it ends with the finished run)

    async def read() -> bytes:
        return b"".join([chunk async for chunk in content])

    return async_to_sync(read)().decode() if hasattr(content, "__aiter__") else ""


def _pages(w: SimpleNamespace) -> dict[str, str]:
    """Every GET that could show the item's result, by name."""
    token = w.share.token
    return {
        "library program page": reverse("programs:detail", args=[w.program.pk]),
        "item page": w.item.get_absolute_url(),
        "assignment page": w.assignment.get_absolute_url(),
        "course page": w.course.get_absolute_url(),
        "key run page": reverse("runs:detail", args=[w.key.pk]),
        "earlier run page": reverse("runs:detail", args=[w.earlier.pk]),
        "earlier run status": reverse("runs:status", args=[w.earlier.pk]),
        "earlier trace.json": reverse("runs:trace_json", args=[w.earlier.pk]),
        "key trace.json": reverse("runs:trace_json", args=[w.key.pk]),
        "api earlier run": f"/api/runs/{w.earlier.pk}",
        "api key run": f"/api/runs/{w.key.pk}",
        "my runs": reverse("runs:mine"),
        "share link": reverse("sharing:view", args=[token]),
        "share embed": reverse("sharing:embed", args=[token]),
        "share status": reverse("sharing:status", args=[token]),
        "earlier events": reverse("runs:events", args=[w.earlier.pk]),
    }


def test_nothing_shows_the_result_to_a_student_while_the_assignment_is_open(
    world: SimpleNamespace,
) -> None:
    w = world
    client = client_for(w.s1)
    leaks = {}
    statuses = {}
    for name, url in _pages(w).items():
        response = client.get(url)
        statuses[name] = response.status_code
        if SECRET in _body(response):
            leaks[name] = url
    assert leaks == {}
    assert statuses == {
        "library program page": 200,
        "item page": 200,
        "assignment page": 200,
        "course page": 200,
        "key run page": 404,  # not theirs anyway
        "earlier run page": 403,
        "earlier run status": 403,
        "earlier trace.json": 403,
        "key trace.json": 404,
        "api earlier run": 403,
        "api key run": 404,
        "my runs": 200,
        "share link": 404,
        "share embed": 404,
        "share status": 404,
        "earlier events": 403,
    }
    page = client.get(reverse("programs:detail", args=[w.program.pk])).content.decode()
    assert "Expected result" not in page
    assert reverse("runs:start", args=[w.program.pk]) not in page  # no run form
    assert 'id="hidden-message"' in page
    assert "still open" in page
    assert "still open" in client.get(reverse("runs:detail", args=[w.earlier.pk])).content.decode()
    api = client.get(f"/api/runs/{w.earlier.pk}").json()
    assert api == {"detail": HIDDEN_MESSAGE}
    mine = client.get(reverse("runs:mine")).content.decode()
    assert f"Run #{w.earlier.pk}" in mine
    assert "hidden while an assignment is open" in mine
    assert "status-ok" not in mine


def test_a_share_link_shows_nothing_to_anyone_while_the_assignment_is_open(
    world: SimpleNamespace,
) -> None:
    w = world
    for who in (None, w.s2, w.instructor, w.outsider):
        for name in ("sharing:view", "sharing:embed", "sharing:status"):
            response = client_for(who).get(reverse(name, args=[w.share.token]))
            assert response.status_code == 404, (who, name)
            body = response.content.decode()
            assert SECRET not in body
            assert "hidden while an assignment" in body
    assert "hidden while an assignment" in SHARED_HIDDEN_MESSAGE


def test_a_student_cannot_start_a_run_of_the_same_code(world: SimpleNamespace) -> None:
    w = world
    client = client_for(w.s1)
    runs, programs = Run.objects.count(), Program.objects.count()

    response = client.post(reverse("runs:start", args=[w.program.pk]), {"method": "real"})
    assert response.status_code == 403
    assert "still open" in response.content.decode()

    for data in (
        {"program_id": w.program.pk},
        {"source": SOURCE, "call": CALL},
        # The same text with trailing spaces and blank edge lines is the same program.
        {"source": "\n" + SOURCE.replace("\n", "   \n") + "\n\n", "call": "f('abc')"},
    ):
        response = client.post("/api/runs", data, content_type="application/json")
        assert response.status_code == 403, data
        assert response.json() == {"detail": HIDDEN_MESSAGE}

    # Their own copy of the program is the same text: its page hides the run form too.
    copy = ProgramFactory(owner=w.s1, source=SOURCE, call=CALL)
    assert client.post(reverse("runs:start", args=[copy.pk])).status_code == 403
    assert Run.objects.count() == runs
    assert Program.objects.count() == programs + 1  # the copy made above, nothing else

    # Other code still runs.
    other = client.post("/api/runs", {"source": "x = 1\n"}, content_type="application/json")
    assert other.status_code == 201


def test_staff_and_people_outside_the_course_see_everything(world: SimpleNamespace) -> None:
    w = world
    teacher = client_for(w.instructor)
    for url in (
        reverse("programs:detail", args=[w.program.pk]),
        reverse("runs:detail", args=[w.key.pk]),
        reverse("runs:trace_json", args=[w.key.pk]),
        f"/api/runs/{w.key.pk}",
        w.item.get_absolute_url(),  # the answer key's real run, for staff
    ):
        response = teacher.get(url)
        assert response.status_code == 200, url
        assert SECRET in response.content.decode(), url
    outsider = client_for(w.outsider)
    page = outsider.get(reverse("programs:detail", args=[w.program.pk])).content.decode()
    assert SECRET in page
    assert reverse("runs:start", args=[w.program.pk]) in page
    response = outsider.post("/api/runs", {"source": SOURCE, "call": CALL}, "application/json")
    assert response.status_code == 201


def test_after_the_assignment_closes_the_student_sees_it(world: SimpleNamespace) -> None:
    w = world
    close(w.assignment)
    client = client_for(w.s1)
    for url in (
        reverse("programs:detail", args=[w.program.pk]),
        reverse("runs:detail", args=[w.earlier.pk]),
        reverse("runs:trace_json", args=[w.earlier.pk]),
        f"/api/runs/{w.earlier.pk}",
        reverse("sharing:view", args=[w.share.token]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert SECRET in response.content.decode(), url
    assert SECRET in Client().get(reverse("sharing:view", args=[w.share.token])).content.decode()
    response = client.post(reverse("runs:start", args=[w.program.pk]), {"method": "real"})
    assert response.status_code == 302


def test_an_extension_keeps_the_answers_hidden_from_everyone_until_it_ends(
    world: SimpleNamespace,
) -> None:
    w = world
    now = timezone.now()
    Assignment.objects.filter(pk=w.assignment.pk).update(due_at=now - timedelta(hours=1))
    w.assignment.extensions.create(student=w.s2, due_at=now + timedelta(hours=1))
    # Student 1's window has ended, but student 2 is still answering.
    page = client_for(w.s1).get(reverse("programs:detail", args=[w.program.pk]))
    assert SECRET not in page.content.decode()
    assert Client().get(reverse("sharing:view", args=[w.share.token])).status_code == 404


def test_a_puzzle_in_an_open_assignment_hides_its_solutions_and_runs() -> None:
    w = course_world()
    p = puzzle()
    Item.objects.create(assignment=assignment(w.course), mode=Mode.PUZZLE, puzzle=p)
    client = client_for(w.s1)
    page = client.get(p.get_absolute_url()).content.decode()
    assert "the-reference-solution" not in page
    assert "still open" in page
    assert reverse("runs:start_puzzle", args=[p.name]) not in page
    assert client.post(reverse("runs:start_puzzle", args=[p.name])).status_code == 403
    api = client.post("/api/runs", {"puzzle": p.name, "method": "direct"}, "application/json")
    assert api.status_code in (403, 422)  # refused (422 only when no model is configured)
    assert not Run.objects.exists()
    teacher = client_for(w.instructor).get(p.get_absolute_url()).content.decode()
    assert "the-reference-solution" in teacher


def test_a_student_in_another_course_is_not_affected(world: SimpleNamespace) -> None:
    w = world
    other = UserFactory()
    course = type(w.course).objects.create(title="Another course")
    Membership.objects.create(course=course, user=other, role=Role.STUDENT)
    page = client_for(other).get(reverse("programs:detail", args=[w.program.pk]))
    assert SECRET in page.content.decode()


# -- Exam mode ---------------------------------------------------------------------------------


def test_exam_mode_stops_every_run_of_the_students_during_the_window(
    world: SimpleNamespace, settings: Settings
) -> None:
    settings.TIME_ZONE = "America/Los_Angeles"
    w = world
    Assignment.objects.filter(pk=w.assignment.pk).update(exam_mode=True)
    w.assignment.refresh_from_db()
    client = client_for(w.s1)
    own = ProgramFactory(owner=w.s1, source="print('hello')\n", call="")
    runs = Run.objects.count()

    response = client.post(reverse("runs:start", args=[own.pk]), {"method": "real"})
    assert response.status_code == 403
    body = response.content.decode()
    end = site_time(w.assignment.window(w.s1)[1])
    assert "Exam mode" in body
    assert end in body
    assert end.endswith(("PST", "PDT"))  # the site's time zone
    response = client.post("/api/runs", {"source": "x = 2\n"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["detail"].startswith("Exam mode")
    page = client.get(reverse("programs:detail", args=[own.pk])).content.decode()
    assert "Exam mode" in page
    assert reverse("runs:start", args=[own.pk]) not in page
    assert Run.objects.count() == runs

    # Staff and the other course's people run as before.
    assert client_for(w.instructor).post(reverse("runs:start", args=[own.pk])).status_code in (
        302,
        404,  # the program is private to the student
    )
    theirs = ProgramFactory(owner=w.outsider, source="x = 3\n", call="")
    assert client_for(w.outsider).post(reverse("runs:start", args=[theirs.pk])).status_code == 302

    close(w.assignment)
    response = client.post(reverse("runs:start", args=[own.pk]), {"method": "real"})
    assert response.status_code == 302


# -- Live streams ------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


def _stream_world() -> dict[str, Any]:
    w = course_world()
    program = library_program()
    run = RunFactory(program=program, source=SOURCE, call=CALL, owner=w.s1)
    key = RunFactory(program=program, source=SOURCE, call=CALL, owner=w.instructor)
    a = assignment(w.course)
    Item.objects.create(assignment=a, mode=Mode.OUTPUT, program=program, key_run=key)
    share = ShareLink.objects.create(run=key, created_by=w.instructor)
    cookies = {}
    for name in ("s1", "instructor"):
        client = client_for(getattr(w, name))
        cookies[name] = client.cookies["sessionid"].value
    return {"run": run, "key": key, "share": share, "cookies": cookies, "assignment": a}


async def _ws(path: str, session: str | None) -> tuple[bool, Any]:
    headers = [(b"origin", b"http://127.0.0.1")]
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect()
    await communicator.disconnect()
    return connected, code


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("_close_thread_connections")
async def test_the_websocket_and_the_event_stream_refuse_a_hidden_run() -> None:
    s = await sync_to_async(_stream_world)()
    run, key, share = s["run"], s["key"], s["share"]
    connected, code = await _ws(f"/ws/runs/{run.pk}/", s["cookies"]["s1"])
    assert (connected, code) == (False, 4403)
    connected, _ = await _ws(f"/ws/runs/{key.pk}/?share={share.token}", None)
    assert not connected
    connected, _ = await _ws(f"/ws/runs/{key.pk}/", s["cookies"]["instructor"])
    assert connected  # staff follow their own key run

    from django.test import AsyncClient

    client = AsyncClient()
    client.cookies["sessionid"] = s["cookies"]["s1"]
    response = await client.get(f"/runs/{run.pk}/events")
    assert response.status_code == 403
    assert response.json() == {"detail": HIDDEN_MESSAGE}

    await sync_to_async(close)(s["assignment"])
    connected, _ = await _ws(f"/ws/runs/{run.pk}/", s["cookies"]["s1"])
    assert connected
    connected, _ = await _ws(f"/ws/runs/{key.pk}/?share={share.token}", None)
    assert connected


# -- Review findings M1, M2 (security review 2026-12) -----------------------------------------


def test_an_assignment_that_has_not_opened_yet_hides_nothing(world: SimpleNamespace) -> None:
    """Before it opens, nothing may tell which library items it holds (M2): the student's
    pages, runs and share links behave as for anyone."""
    w = world
    now = timezone.now()
    Assignment.objects.filter(pk=w.assignment.pk).update(
        opens_at=now + timedelta(hours=1), due_at=now + timedelta(days=1)
    )
    client = client_for(w.s1)
    page = client.get(reverse("programs:detail", args=[w.program.pk])).content.decode()
    assert SECRET in page
    assert "still open" not in page
    assert reverse("runs:start", args=[w.program.pk]) in page
    for url in (reverse("runs:detail", args=[w.earlier.pk]), f"/api/runs/{w.earlier.pk}"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert SECRET in response.content.decode(), url
    assert client.post(reverse("runs:start", args=[w.program.pk])).status_code == 302
    assert SECRET in Client().get(reverse("sharing:view", args=[w.share.token])).content.decode()


def _public_evaluation(w: SimpleNamespace) -> Any:
    from playground.benchmarks.models import Evaluation, Result

    evaluation = Evaluation.objects.create(
        dataset="cruxeval", method="direct", model="tiny", status="done", total=2
    )
    other = library_program(source="def g():\n    return '2424-cilbup'[::-1]\n", call="g()",
                            expected="'public-4242'", external_id="sample_9002")  # fmt: skip
    for index, (program, prediction) in enumerate(((w.program, SECRET), (other, "public-4242"))):
        Result.objects.create(
            evaluation=evaluation, index=index, item_key=program.external_id,
            item_ref={"program": program.pk}, status="done", passed=True,
            prediction=f"'{prediction}'", run=w.earlier if index == 0 else None,
        )  # fmt: skip
    return evaluation


def test_evaluation_rows_of_a_hidden_item_show_nothing_to_a_student(
    world: SimpleNamespace,
) -> None:
    """M1: the public evaluation pages and exports hold the model's passing prediction, which is
    the item's answer: a student of the open assignment sees the row's key only."""
    w = world
    evaluation = _public_evaluation(w)
    twin = type(evaluation).objects.get(pk=evaluation.pk)
    twin.pk = None
    twin.save()
    for result in evaluation.results.all():
        result.pk, result.evaluation = None, twin
        result.save()
    urls = [
        evaluation.get_absolute_url(),
        reverse("benchmarks:export_json", args=[evaluation.pk]),
        reverse("benchmarks:export_csv", args=[evaluation.pk]),
        reverse("benchmarks:compare") + f"?a={evaluation.pk}&b={twin.pk}",
    ]
    student = client_for(w.s1)
    for url in urls:
        body = _body(student.get(url))
        assert SECRET not in body, url
        assert "public-4242" in body or "compare" in url, url
    rows = json.loads(_body(student.get(urls[1])))["results"]
    assert rows[0]["status"] == "hidden"
    assert (rows[0]["prediction"], rows[0]["passed"], rows[0]["run"]) == ("", None, None)
    assert rows[1]["prediction"] == "'public-4242'"
    for who in (None, w.outsider, w.instructor):
        assert SECRET in client_for(who).get(urls[0]).content.decode()
    # The CRUXEval-format export cannot blank a row: it is refused to the student whole.
    generations = reverse("benchmarks:export_generations", args=[evaluation.pk])
    refused = student.get(generations)
    assert refused.status_code == 409
    assert SECRET not in refused.content.decode()
    shown = json.loads(_body(client_for(w.outsider).get(generations)))
    assert shown == {w.program.external_id: [f"'{SECRET}'"], "sample_9002": ["'public-4242'"]}


def _body(response: Any) -> str:
    """A page's text, or a streamed export's, whole."""
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return str(response.content.decode())


def test_exam_mode_refuses_evaluations_courses_items_and_previews(
    world: SimpleNamespace,
) -> None:
    """M1: during an exam a student starts no evaluation, creates no course or item and sees no
    answer-key preview, even in a course of their own."""
    from playground.benchmarks.models import Evaluation
    from playground.classroom.models import Course

    w = world
    own = Course.objects.create(title="My own course", created_by=w.s1)
    Membership.objects.create(course=own, user=w.s1, role=Role.INSTRUCTOR)
    own_assignment = assignment(own)
    other = library_program(
        source="def h():\n    return '1515-detalernu'[::-1]\n",
        call="h()",
        expected="",
        external_id="sample_9003",
    )
    own_item = Item.objects.create(assignment=own_assignment, mode=Mode.OUTPUT, program=other)
    from tests.classroom.student_world import hand_made_key, real_trace

    hand_made_key(own_item, real=real_trace("'unrelated-5151'"), owner=w.s1)
    Assignment.objects.filter(pk=w.assignment.pk).update(exam_mode=True)
    client = client_for(w.s1)
    courses, items, evaluations = Course.objects.count(), Item.objects.count(), 0

    response = client.post(reverse("classroom:course_new"), {"title": "Escape"})
    assert response.status_code == 403
    assert "Exam mode" in response.content.decode()
    response = client.post(
        reverse("benchmarks:start"),
        {"dataset": "cruxeval", "method": "direct", "model": "smollm2-135m", "limit": "1"},
        follow=True,
    )
    assert "Exam mode" in response.content.decode()
    assert Evaluation.objects.count() == evaluations
    # Nor an import of outputs, from the page or the API.
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = {"dataset": "cruxeval", "task": "output", "model": "m"}
    line = b'{"id": "sample_9003", "predictions": ["1"]}\n'
    response = client.post(
        reverse("benchmarks:import"),
        {**upload, "file": SimpleUploadedFile("o.jsonl", line)},
        follow=True,
    )
    assert "Exam mode" in response.content.decode()
    response = client.post(
        "/api/evaluations/import", {**upload, "file": SimpleUploadedFile("o.jsonl", line)}
    )
    assert response.status_code == 403
    assert "Exam mode" in response.json()["detail"]
    assert Evaluation.objects.count() == evaluations
    edit = reverse("classroom:item_edit", args=[own.pk, own_assignment.pk, own_item.pk])
    page = client.get(edit).content.decode()
    assert "unrelated-5151" not in page
    assert "Exam mode" in page
    response = client.post(
        reverse("classroom:item_new", args=[own.pk, own_assignment.pk]),
        {"mode": "output", "origin": "library", "pick": f"program:{other.pk}", "points": "1"},
    )
    assert response.status_code == 200
    assert "Exam mode" in response.content.decode()
    assert client.post(edit, {"prepare": "1"}).status_code == 403
    assert (Course.objects.count(), Item.objects.count()) == (courses, items)

    close(w.assignment)
    assert client.post(reverse("classroom:course_new"), {"title": "Now"}).status_code == 302
    assert "unrelated-5151" in client.get(edit).content.decode()


def test_a_student_sees_no_preview_of_the_item_in_a_course_of_their_own(
    world: SimpleNamespace,
) -> None:
    """M1: a student who creates a course and an item with the open assignment's program does
    not get its real result from the answer-key preview (nor may they start that key run)."""
    from playground.classroom.models import Course

    w = world
    own = Course.objects.create(title="My own course", created_by=w.s1)
    Membership.objects.create(course=own, user=w.s1, role=Role.INSTRUCTOR)
    own_assignment = assignment(own)
    client = client_for(w.s1)
    response = client.post(
        reverse("classroom:item_new", args=[own.pk, own_assignment.pk]),
        {"mode": "output", "origin": "new", "source": SOURCE, "call": CALL, "points": "1"},
    )
    assert response.status_code == 200
    assert "still open" in response.content.decode()
    assert not Item.objects.filter(assignment=own_assignment).exists()
    # An item made before the assignment opened: its preview is hidden now.
    item = Item.objects.create(assignment=own_assignment, mode=Mode.OUTPUT, program=w.program)
    from tests.classroom.student_world import hand_made_key, real_trace

    hand_made_key(item, real=real_trace(f"'{SECRET}'"), owner=w.s1)
    edit = reverse("classroom:item_edit", args=[own.pk, own_assignment.pk, item.pk])
    page = client.get(edit).content.decode()
    assert SECRET not in page
    assert "still open" in page
    close(w.assignment)
    assert SECRET in client.get(edit).content.decode()


def test_a_site_can_require_sign_in_to_run(world: SimpleNamespace, settings: Settings) -> None:
    """For exam rooms: hiding is per account, so anonymous runs can be closed site-wide."""
    settings.PLAYGROUND_RUN_REQUIRES_LOGIN = True
    w = world
    other = library_program(source="print('x')\n", call="", expected="", external_id="s_1")
    anonymous = Client()
    runs = Run.objects.count()
    response = anonymous.post(reverse("runs:start", args=[other.pk]))
    assert response.status_code == 403
    assert "Sign in to run" in response.content.decode()
    response = anonymous.post("/api/runs", {"source": "x = 1\n"}, content_type="application/json")
    assert (response.status_code, response.json()) == (
        403,
        {"detail": "Sign in to run programs on this site."},
    )
    page = anonymous.get(reverse("programs:detail", args=[other.pk])).content.decode()
    assert "Sign in to run" in page
    assert reverse("runs:start", args=[other.pk]) not in page
    assert Run.objects.count() == runs
    assert client_for(w.outsider).post(reverse("runs:start", args=[other.pk])).status_code == 302
