"""A person deletes their account with their password typed again: afterwards no table holds
their id, username or e-mail address, their grades stay in the course under a pseudonym (the
gradebook shows it), their share links say the run is gone, work in progress ends quietly, and
they cannot sign in. The last instructor of a course is refused with the course named."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.classroom.models import AuditEvent, Item, Membership, Role, Submission
from playground.lti.models import ScoreLog
from playground.privacy import deletion
from playground.programs.models import Program
from playground.runs import pipeline
from playground.runs.models import Run
from tests.classroom.staff_factories import text
from tests.factories import RunFactory
from tests.limits import assert_refused, public
from tests.privacy.world import PASSWORD, student_world

pytestmark = pytest.mark.django_db


def _tables_naming(*words: str) -> dict[str, int]:
    """Every table of the database, each row read as text: how many rows hold one of
    ``words`` (case-insensitive)."""
    found = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            quoted = connection.ops.quote_name(table)
            where = " OR ".join(["t::text ILIKE %s"] * len(words))
            cursor.execute(f"SELECT count(*) FROM {quoted} t WHERE {where}",  # noqa: S608
                           [f"%{w}%" for w in words])  # fmt: skip
            count = cursor.fetchone()[0]
            if count:
                found[table] = count
    return found


def _rows_referring_to(user_id: int) -> list[str]:
    """Rows whose user foreign key, audit ref or session account is ``user_id``."""
    from django.apps import apps

    user_model = get_user_model()
    found = []
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if (
                field.is_relation
                and field.concrete
                and field.related_model is user_model
                and model._default_manager.filter(**{field.attname: user_id}).exists()
            ):
                found.append(f"{model.__name__}.{field.name}")
    refs = AuditEvent.objects.filter(actor_ref=user_id) | AuditEvent.objects.filter(
        subject_ref=user_id
    )
    if refs.exists():
        found.append("AuditEvent refs")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM moderation_accountsession WHERE account_id = %s",
                       [user_id])  # fmt: skip
        if cursor.fetchone()[0]:
            found.append("sessions")
    return found


def _delete(client: Client, password: str = PASSWORD, **extra: str) -> Any:
    return client.post(reverse("delete_account"), {"password": password, "confirm": "on", **extra})


def test_nothing_names_the_deleted_student_but_the_grades_stay_under_a_pseudonym() -> None:
    world = student_world()
    student, uid = world.student, world.student.pk
    # A real session, so that its row (with the account's id) exists.
    client = Client()
    assert client.login(username=student.username, password=PASSWORD)
    assert _tables_naming(student.username, world.email)  # the walk does see them before

    response = _delete(client)
    assert response.status_code == 302, text(response)[:500]

    assert _tables_naming(student.username, world.email, f"user:{uid}") == {}
    assert _rows_referring_to(uid) == []
    assert not get_user_model().objects.filter(pk=uid).exists()

    # The grade, the answer and the course membership are the pseudonym's now.
    submission = Submission.objects.get(pk=world.submission.pk)
    alias = submission.student
    assert alias.username == f"deleted account #{alias.pk}"
    assert not alias.is_active
    assert not alias.has_usable_password()
    assert (submission.answer, submission.final_credit) == ("6", 1.0)
    assert Membership.objects.get(course=world.course, user=alias).role == Role.STUDENT
    # The audit log keeps its rows, with the pseudonym in place of the person.
    assert AuditEvent.objects.filter(subject_ref=alias.pk, action="member.joined").exists()
    assert AuditEvent.objects.filter(action="account.deleted", course_ref=world.course.pk).exists()
    assert AuditEvent.objects.filter(
        action="account.deleted", course_ref=None, subject_ref=alias.pk
    ).exists()
    gradebook = world_client(world.teacher).get(
        reverse("classroom:course_gradebook", args=[world.course.pk])
    )
    assert f"deleted account #{alias.pk}" in text(gradebook)

    # Their runs, private program and tokens are gone; the public program stays, ownerless,
    # with the teacher's run of it.
    assert not Run.objects.filter(pk__in=[world.run.pk, world.queued.pk]).exists()
    assert not Program.objects.filter(pk=world.private.pk).exists()
    assert Program.objects.get(pk=world.public.pk).owner is None
    assert Run.objects.filter(pk=world.others_run.pk).exists()
    # The share link says the run is gone (not "not found"), the token no longer works, the
    # session is over, and the password signs nobody in.
    shared = Client().get(world.link.get_absolute_url())
    assert shared.status_code == 404
    assert "expired" in text(shared).lower()
    api = Client().get("/api/account/export", HTTP_AUTHORIZATION=f"Bearer {world.secret}")
    assert api.status_code == 401
    assert client.get(reverse("account")).status_code == 302
    assert not Client().login(username=student.username, password=PASSWORD)


def world_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_task_that_finds_its_run_deleted_ends_quietly() -> None:
    world = student_world()
    run_id = world.queued.pk
    deletion.delete_account(world.student)
    assert pipeline.execute_real(run_id) == "skipped"
    assert pipeline.execute_emulation(run_id) in {"skipped", "cancelled", "failed"}


def test_a_wrong_password_or_no_tick_is_refused_with_a_message() -> None:
    world = student_world()
    response = _delete(world.client, password="not it")
    assert response.status_code == 400
    assert "That is not your password." in text(response)
    assert 'aria-invalid="true"' in response.content.decode()
    response = world.client.post(reverse("delete_account"), {"password": PASSWORD})
    assert response.status_code == 400
    assert "Tick the box" in text(response)
    assert get_user_model().objects.filter(pk=world.student.pk).exists()


def test_the_only_instructor_of_a_course_is_refused_with_the_course_named() -> None:
    world = student_world()
    teacher = world_client(world.teacher)
    page = teacher.get(reverse("delete_account"))
    assert "only instructor of “Execution 101”" in text(page)
    assert 'id="delete-form"' not in page.content.decode()
    response = teacher.post(reverse("delete_account"), {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 409
    assert "only instructor" in text(response)
    # The same answer for a wrong password: a refused page checks none.
    assert teacher.post(reverse("delete_account"), {"password": "x"}).status_code == 409
    assert get_user_model().objects.filter(pk=world.teacher.pk).exists()
    # With a second instructor, the first may go; the course stays.
    Membership.objects.filter(course=world.course, user=world.student).update(role=Role.INSTRUCTOR)
    # The answer key the teacher's saving of the item started is the course's: it stays.
    key = RunFactory(program=world.item.program, owner=world.teacher, status=Run.Status.DONE)
    Item.objects.filter(pk=world.item.pk).update(key_run=key)
    assert _delete(teacher).status_code == 302
    assert not get_user_model().objects.filter(pk=world.teacher.pk).exists()
    assert Item.objects.get(pk=world.item.pk).key_run_id == key.pk
    assert Run.objects.get(pk=key.pk).owner is None
    # Nothing names the teacher any more: audit rows, a regrade's history, the LTI score log's
    # resend (which stays, under the pseudonym).
    assert _tables_naming(world.teacher.username) == {}
    assert _rows_referring_to(world.teacher.pk) == []
    assert ScoreLog.objects.get(pk=world.lti.log.pk).by.startswith("deleted account #")


def test_attempts_are_limited(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = public({"account_deletions.user": "2/h"})
    world = student_world()
    for _ in range(2):
        assert _delete(world.client, password="guess").status_code == 400
    right = assert_refused(_delete(world.client), "attempts to delete the account")
    wrong = assert_refused(_delete(world.client, "guess"), "attempts to delete the account")
    assert right == wrong  # past the limit, the page says nothing of the password
    assert get_user_model().objects.filter(pk=world.student.pk).exists()


def test_the_audit_log_stays_append_only_outside_a_deletion() -> None:
    world = student_world()
    row = AuditEvent.objects.filter(subject_ref=world.student.pk).first()
    assert row is not None
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=row.pk).update(subject_name="someone else")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL playground.audit_erasure = 'on'")
        with pytest.raises(Exception, match="append-only"), transaction.atomic():
            AuditEvent.objects.filter(pk=row.pk).update(action="course.deleted")
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=row.pk).delete()


def test_a_name_in_the_page_is_escaped() -> None:
    world = student_world()
    world.student.username = "<b>zq</b>"
    world.student.save(update_fields=["username"])
    page = world.client.get(reverse("delete_account")).content.decode()
    assert "<b>zq</b>" not in page
    assert "&lt;b&gt;zq&lt;/b&gt;" in page


@pytest.mark.django_db(transaction=True)
def test_a_run_deleted_while_its_task_works_ends_without_an_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The owner deletes their account while the sandbox runs the program: storing the trace
    then finds no run; the task stops with an info line, not an error and its traceback."""
    world = student_world()
    run_id = world.queued.pk

    def run_and_delete(*args: Any, **kwargs: Any) -> dict[str, Any]:
        deletion.delete_account(world.student)
        return {"status": "ok", "steps": [], "result": "2", "stdout": "", "error": None}

    monkeypatch.setattr(pipeline.sandbox, "run", run_and_delete)
    caplog.set_level(logging.INFO)
    assert pipeline.execute_real(run_id) == "gone"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not Run.objects.filter(pk=run_id).exists()


def test_an_operator_exports_and_deletes_from_the_command_line(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    world = student_world()
    call_command("privacy", "export", world.student.username)
    data = json.loads(capsysbinary.readouterr().out)
    assert data["sections"]["account"][0]["email"] == world.email
    with pytest.raises(CommandError, match="only instructor of “Execution 101”"):
        call_command("privacy", "delete", world.teacher.username, "--yes")
    call_command("privacy", "delete", world.student.username, "--yes")
    assert "1 submission(s) kept under 'deleted account #" in capsysbinary.readouterr().out.decode()
    assert not get_user_model().objects.filter(pk=world.student.pk).exists()
    with pytest.raises(CommandError, match="No account"):
        call_command("privacy", "delete", world.student.username, "--yes")
