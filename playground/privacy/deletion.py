"""Deleting an account (the account page, after the password is typed again).

What goes: the account, its API tokens and sessions, its programs (but see below), its runs
with their traces and share links (each link's token is remembered, so the link says the run is
gone rather than "not found"), its evaluations, its memberships and invitations, its moderation
reports, its step predictions and submissions' link to the person.

What stays, and why (docs/PRIVACY.md):
- **Grades.** A course's grade record must outlive a student's account. The person's
  submissions, step predictions, exam starts and extensions move to a *pseudonym*: a new
  account that cannot sign in, named ``deleted account #<n>`` (``n`` is its own id, not the
  deleted one's), which takes the person's student memberships so the gradebook shows
  ``deleted account #n`` with the same grades. The answers stay beside the grades because
  regrading after a key change reads them.
- **The audit log** keeps its rows (it is append-only), but every name, id and e-mail address
  of the person in them is replaced by the pseudonym's (a trigger allows exactly this change,
  inside this transaction: classroom migration 0017).
- **Programs others depend on**: a public program, one a course item uses or one another
  person ran stays, with no owner (it is the site's library now; deleting it would delete other
  people's runs, and a course's items). Private programs nobody else used are deleted.
- **A course's runs**: an item's answer key or a variant's run, which a staff member's saving
  of the item started, stays with the course, with no owner (grading reads it).

An instructor who is the last instructor of a course is refused with the courses named: the
course would be left without anyone able to manage it (give it another instructor first).

Runs still in progress are cancelled first (their tasks see the cancellation or find the run
gone and stop), then deleted.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, TextField
from django.db.models.functions import Cast

from playground.classroom.models import (
    AuditEvent,
    Course,
    ExamStart,
    Extension,
    Invitation,
    Item,
    Membership,
    Role,
    StepPrediction,
    Submission,
    Variant,
)
from playground.moderation.models import Report
from playground.moderation.sessions import end_sessions_of
from playground.programs.models import Program
from playground.runs.events import publish
from playground.runs.models import Run, RunSurprise
from playground.sharing.models import ExpiredLink, ShareLink

log = logging.getLogger(__name__)

BATCH = 200
PSEUDONYM = "deleted account #{n}"


# Text columns of other apps that copy a person's username (who did something), rewritten to the
# pseudonym's: "app_label.Model.field". A model not installed is skipped (by label, so that this
# module does not depend on the app).
NAME_COLUMNS = ["lti.ScoreLog.by"]


class DeletionRefused(Exception):
    """The account cannot be deleted now; the message says why and what to do."""


@dataclass
class Deleted:
    """What a deletion did (for the log and the tests)."""

    pseudonym: str = ""
    runs: int = 0
    programs_deleted: int = 0
    programs_kept: int = 0
    submissions_kept: int = 0
    audit_rewritten: int = 0
    courses: list[int] = field(default_factory=list)


def sole_instructor_of(user: Any) -> list[Course]:
    """The courses whose only instructor is ``user``."""
    others = Membership.objects.filter(course=OuterRef("course"), role=Role.INSTRUCTOR).exclude(
        user=user
    )
    mine = Membership.objects.filter(user=user, role=Role.INSTRUCTOR).exclude(Exists(others))
    return list(Course.objects.filter(pk__in=mine.values("course")).order_by("title"))


def refusal(user: Any) -> str:
    """Why ``user``'s account cannot be deleted now ("" when it can)."""
    courses = sole_instructor_of(user)
    if not courses:
        return ""
    names = ", ".join(f"“{c.title}”" for c in courses[:5])
    more = f" and {len(courses) - 5} more" if len(courses) > 5 else ""
    return (
        f"You are the only instructor of {names}{more}. Make someone else an instructor "
        "there (or delete the course) first: a course needs someone who can manage it."
    )


def _replace(value: Any, words: dict[str, str]) -> Any:
    """``value`` (JSON) with every string equal to one of ``words`` (case-insensitive) replaced."""
    if isinstance(value, str):
        return words.get(value.lower(), value)
    if isinstance(value, list):
        return [_replace(v, words) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, words) for k, v in value.items()}
    return value


class _Pseudonym:
    """The account that takes over what must stay, made on first need."""

    def __init__(self) -> None:
        self.user: Any = None

    def get(self) -> Any:
        if self.user is None:
            users = get_user_model()
            self.user = users.objects.create(
                username=f"deleted-{secrets.token_hex(8)}", is_active=False
            )
            self.user.username = PSEUDONYM.format(n=self.user.pk)
            self.user.set_unusable_password()
            self.user.save(update_fields=["username", "password"])
        return self.user


def _mentions(user: Any) -> Q:
    name = user.get_username()
    about = Q(actor_ref=user.pk) | Q(subject_ref=user.pk)
    about |= Q(actor_name__iexact=name) | Q(subject_name__iexact=name)
    if user.email:
        about |= Q(subject_name__iexact=user.email)
    return about | Q(detail_text__icontains=name)


def _rewrite_audit(user: Any, pseudonym: _Pseudonym) -> int:
    """Every audit row that names ``user``: the pseudonym's id and name instead."""
    rows = list(
        AuditEvent.objects.annotate(detail_text=Cast("detail", TextField())).filter(_mentions(user))
    )
    if not rows:
        return 0
    alias = pseudonym.get()
    name = alias.get_username()
    words = {user.get_username().lower(): name}
    if user.email:
        words[user.email.lower()] = name
    with connection.cursor() as cursor:
        # The trigger refuses every UPDATE unless this is set, and then lets only the names,
        # refs and detail change (classroom migration 0017).
        cursor.execute("SET LOCAL playground.audit_erasure = 'on'")
    rewritten = 0
    for row in rows:
        changes = {
            "actor_ref": alias.pk if row.actor_ref == user.pk else row.actor_ref,
            "actor_name": (
                name
                if row.actor_ref == user.pk or row.actor_name.lower() in words
                else row.actor_name
            ),
            "subject_ref": alias.pk if row.subject_ref == user.pk else row.subject_ref,
            "subject_name": (
                name
                if row.subject_ref == user.pk or row.subject_name.lower() in words
                else row.subject_name
            ),
            "detail": _replace(row.detail, words),
        }
        if all(getattr(row, k) == v for k, v in changes.items()):
            continue  # the username only inside a longer text: nothing to replace
        # QuerySet.update: AuditEvent.save refuses changes (the model's own guard).
        AuditEvent.objects.filter(pk=row.pk).update(**changes)
        rewritten += 1
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL playground.audit_erasure = 'off'")
    return rewritten


def _rewrite_name_columns(user: Any, pseudonym: _Pseudonym) -> None:
    name = user.get_username()
    for column in NAME_COLUMNS:
        label, field_name = column.rsplit(".", 1)
        try:
            model = apps.get_model(label)
        except LookupError:
            continue
        rows = model._default_manager.filter(**{field_name: name})
        if rows.exists():
            rows.update(**{field_name: pseudonym.get().get_username()})


def _keep_grades(user: Any, pseudonym: _Pseudonym, done: Deleted) -> None:
    """Submissions, step predictions, exam starts and extensions move to the pseudonym, with
    the person's student memberships of the courses they are in."""
    subs = Submission.objects.filter(student=user)
    predictions = StepPrediction.objects.filter(student=user)
    if not subs.exists() and not predictions.exists():
        return
    alias = pseudonym.get()
    done.submissions_kept = subs.update(student=alias)
    predictions.update(student=alias)
    ExamStart.objects.filter(student=user).update(student=alias)
    Extension.objects.filter(student=user).update(student=alias)
    graded = Item.objects.filter(
        Q(submissions__student=alias) | Q(step_predictions__student=alias)
    ).values("assignment__course")
    Membership.objects.filter(user=user, course__in=graded).update(
        user=alias, role=Role.STUDENT, pending_role=""
    )
    # A regrade's history names who regraded; the person may have been staff elsewhere.
    name = user.get_username()
    for sub in Submission.objects.filter(history__contains=[{"by": name}]):
        history = [{**h, "by": alias.get_username()} if h.get("by") == name else h
                   for h in sub.history]  # fmt: skip
        Submission.objects.filter(pk=sub.pk).update(history=history)


def _programs(user: Any, done: Deleted) -> None:
    """Keep (without an owner) the programs others depend on; the rest go with the account."""
    depended_on = Program.objects.filter(owner=user).filter(
        Q(is_public=True)
        | Exists(Item.objects.filter(program=OuterRef("pk")))
        | Exists(Run.objects.filter(program=OuterRef("pk")).exclude(owner=user))
    )
    done.programs_kept = depended_on.update(owner=None, anon_owner="")


def _keep_course_runs(user: Any) -> None:
    """A course item's answer key and a variant's run are the course's (grading reads them),
    though the staff member who saved the item started them: they stay, without an owner."""
    course_runs = Run.objects.filter(owner=user).filter(
        Exists(Item.objects.filter(key_run=OuterRef("pk")))
        | Exists(Variant.objects.filter(run=OuterRef("pk")))
    )
    course_runs.update(owner=None, anon_owner="", budget_key="")
    # Whose token allowance a run or a surprise scoring counted against (an evaluation's runs
    # that the person asked to score): a counter's name, not needed once the account is gone.
    key = f"user:{user.pk}"
    Run.objects.filter(budget_key=key).exclude(owner=user).update(budget_key="")
    RunSurprise.objects.filter(budget_key=key).update(budget_key="")


def _cancel_and_delete_runs(user: Any, done: Deleted) -> None:
    unfinished = Run.objects.filter(owner=user).exclude(status__in=Run.FINISHED)
    keys = [run.events_key for run in unfinished.only("pk", "created_at")]
    unfinished.update(status=Run.Status.CANCELLED)
    tokens = ShareLink.objects.filter(run__owner=user).values_list("token", flat=True)
    ExpiredLink.objects.bulk_create([ExpiredLink(token=t) for t in tokens], ignore_conflicts=True)
    while ids := list(Run.objects.filter(owner=user).values_list("pk", flat=True)[:BATCH]):
        Run.objects.filter(pk__in=ids).only("pk").delete()
        done.runs += len(ids)

    def tell_viewers() -> None:
        for key in keys:
            try:
                publish(key, "cancelled")
            except Exception:  # viewers are a convenience (runs/pipeline.announce)
                log.warning("could not announce the cancellation of %s", key, exc_info=True)

    transaction.on_commit(tell_viewers)


def delete_account(user: Any) -> Deleted:
    """Delete ``user`` as described above, in one transaction; raises ``DeletionRefused``."""
    users = get_user_model()
    done = Deleted()
    with transaction.atomic():
        user = users.objects.select_for_update().get(pk=user.pk)
        why = refusal(user)
        if why:
            raise DeletionRefused(why)
        done.courses = list(
            Membership.objects.filter(user=user).values_list("course_id", flat=True)
        )
        pseudonym = _Pseudonym()
        _keep_grades(user, pseudonym, done)
        done.audit_rewritten = _rewrite_audit(user, pseudonym)
        _rewrite_name_columns(user, pseudonym)
        _programs(user, done)
        _keep_course_runs(user)
        _cancel_and_delete_runs(user, done)
        if user.email:
            Invitation.objects.filter(email__iexact=user.email).delete()
        Report.objects.filter(reporter=user).delete()
        done.programs_deleted, _ = Program.objects.filter(owner=user).delete()
        end_sessions_of(user.pk)
        user_id = user.pk
        user.delete()  # tokens, memberships, invitations to them, evaluations: CASCADE
        done.pseudonym = pseudonym.user.get_username() if pseudonym.user is not None else ""
        _record(pseudonym.user, done.courses)
    log.info(
        "account %s deleted: %d run(s), %d program(s) kept without owner, %d submission(s) "
        "kept under %s",
        user_id, done.runs, done.programs_kept, done.submissions_kept, done.pseudonym or "-",
    )  # fmt: skip
    return done


def _record(alias: Any, course_ids: list[int]) -> None:
    """One audit event in each course the person was in, and one for the site; about the
    pseudonym when something was kept, else about nobody by name."""
    who = {"subject_ref": alias.pk, "subject_name": alias.get_username()} if alias else {}
    events = [
        AuditEvent(
            course_ref=course.pk,
            course_title=course.title[:200],
            action=AuditEvent.Action.ACCOUNT_DELETED,
            **who,
        )
        for course in Course.objects.filter(pk__in=course_ids)
    ]
    events.append(AuditEvent(action=AuditEvent.Action.ACCOUNT_DELETED, **who))
    AuditEvent.objects.bulk_create(events)
