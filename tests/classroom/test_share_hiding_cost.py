"""L4's cost: whether a share link is hidden is one indexed query on the program key cached on
each item, whatever number of open assignments exists; the key is filled for existing items by
a migration and kept up to date; the policy (opened, not closed, has students) is unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from playground.classroom.models import Extension, Item, Membership, Mode, Role, source_key
from playground.classroom.visibility import in_open_assignment
from playground.programs.models import Program
from playground.runs.models import Run
from tests.classroom.student_world import assignment, course_world, library_program
from tests.migrations import apps_at, migrate

BEFORE = [("classroom", "0004_site_moderation_actions")]
AFTER = [("classroom", "0005_item_source_key")]


def _run_of(program: Program, source: str | None = None) -> Run:
    return Run.objects.create(program=program, source=source or program.source, call="f(1)")


@pytest.mark.django_db
def test_the_check_is_one_query_that_loads_no_program_text() -> None:
    world = course_world()
    for i in range(30):
        item_program = Program.objects.create(source=f"def f(x):\n    return {i}\n", call="f(1)")
        Item.objects.create(
            assignment=assignment(world.course, title=f"A{i}"),
            mode=Mode.OUTPUT,
            program=item_program,
        )
    free = _run_of(Program.objects.create(source="def g():\n    pass\n", call="g()"))
    hidden = _run_of(item_program, source=item_program.source + "   \n\n")  # a copy counts
    for run, expected in ((free, False), (hidden, True)):
        with CaptureQueriesContext(connection) as queries:
            assert in_open_assignment(run) is expected
        # On ebbbef9: every open assignment, its extensions and its items' programs, hashed.
        assert len(queries) == 1
        assert "programs_program" not in queries[0]["sql"]


def _world_with(**fields: Any) -> tuple[Run, Any]:
    world = course_world()
    program = library_program()
    opened = assignment(world.course, **fields)
    Item.objects.create(assignment=opened, mode=Mode.OUTPUT, program=program)
    return _run_of(program), (world, opened)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("state", "hidden"),
    [
        ("open", True),
        ("late period", True),
        ("only an extension is still open", True),
        ("only an extension's late period is still open", True),
        ("closed", False),
        ("not open yet", False),
        ("no students", False),
    ],
)
def test_which_assignments_hide_a_share_link(state: str, hidden: bool) -> None:
    now = timezone.now()
    past, future = now - timedelta(hours=2), now + timedelta(hours=2)
    fields: dict[str, Any] = {"opens_at": now - timedelta(days=1), "due_at": future}
    if state in ("late period",):
        fields.update(due_at=past, late_until=future)
    if state.startswith("only an extension") or state == "closed":
        fields.update(due_at=past, late_until=past)
    if state == "not open yet":
        fields.update(opens_at=future, due_at=future + timedelta(days=1))
    run, (world, opened) = _world_with(**fields)
    if state == "only an extension is still open":
        Extension.objects.create(assignment=opened, student=world.s1, due_at=future)
    if state == "only an extension's late period is still open":
        Extension.objects.create(
            assignment=opened, student=world.s1, due_at=past, late_until=future
        )
    if state == "no students":
        Membership.objects.filter(course=world.course, role=Role.STUDENT).delete()
    assert in_open_assignment(run) is hidden


@pytest.mark.django_db
def test_the_key_follows_the_item_and_its_program() -> None:
    world = course_world()
    first = Program.objects.create(source="def f():\n    return 1\n", call="f()")
    second = Program.objects.create(source="def f():\n    return 2\n", call="f()")
    item = Item.objects.create(assignment=assignment(world.course), mode=Mode.OUTPUT, program=first)
    assert item.source_key == source_key(first.source)

    item.program = second
    item.save(update_fields=["program"])
    item.refresh_from_db()
    assert item.source_key == source_key(second.source)

    second.source = "def f():\n    return 3\n"  # the admin, or a library re-import
    second.save()
    item.refresh_from_db()
    assert item.source_key == source_key(second.source)
    assert in_open_assignment(_run_of(second))


@pytest.fixture
def old_apps(transactional_db: None) -> Iterator[Any]:
    yield from apps_at(BEFORE)


def test_the_migration_fills_the_key_of_existing_items(old_apps: Any) -> None:
    User = old_apps.get_model("auth", "User")
    Course = old_apps.get_model("classroom", "Course")
    Assignment = old_apps.get_model("classroom", "Assignment")
    Item = old_apps.get_model("classroom", "Item")
    Program = old_apps.get_model("programs", "Program")
    Puzzle = old_apps.get_model("programs", "Puzzle")
    teacher = User.objects.create(username="teacher")
    course = Course.objects.create(title="Execution 101", created_by=teacher)
    now = timezone.now()
    made = Assignment.objects.create(course=course, title="A", opens_at=now, due_at=now)
    source = "def f(x):\r\n    return x   \r\n\r\n"
    program = Program.objects.create(source=source, call="f(1)")
    puzzle = Puzzle.objects.create(name="P:0", family="P", source_index=0, sat="def sat(): ...")
    with_program = Item.objects.create(assignment=made, mode="output", program=program)
    with_puzzle = Item.objects.create(assignment=made, mode="puzzle", puzzle=puzzle)

    new_apps = migrate(AFTER)
    NewItem = new_apps.get_model("classroom", "Item")
    assert NewItem.objects.get(pk=with_program.pk).source_key == source_key(source)
    assert NewItem.objects.get(pk=with_puzzle.pk).source_key == ""
