"""Everything the site holds about one account, as one JSON document (the account page's
"Download my data" and ``GET /api/account/export``).

The document is built from a registry of sections, ``SECTIONS``: each one a name, a function
``(user) -> iterable of JSON-able records`` and the user foreign keys it covers
("app_label.Model.field"). ``tests/privacy/test_export.py`` walks Django's model registry: every
foreign key to the user model is either covered by a section or listed in ``EXCLUDED`` with the
reason, so a new model cannot be forgotten. Another app adds its data with one entry here whose
function lives in its own module (named by a dotted path, imported on first use); an app that is
not installed is skipped.

Never in it: the password hash, API token secrets (only their digests are kept, and those are
left out too), other people's names beyond what the person saw on the site's pages.

The document is streamed, read from the database a chunk at a time, up to
``PLAYGROUND_EXPORT_MAX_MB``; past the cap, the remaining records are left out and ``truncated``
lists the sections that were cut (the JSON stays valid).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.apps import apps
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone
from django.utils.module_loading import import_string

from playground.accounts.models import ApiToken
from playground.benchmarks.models import Evaluation
from playground.classroom.models import (
    AuditEvent,
    Course,
    ExamStart,
    Extension,
    Invitation,
    Membership,
    StepPrediction,
    Submission,
)
from playground.moderation.models import Report
from playground.programs.models import Program
from playground.runs.models import Run
from playground.sharing.models import ShareLink

FORMAT = "playground-export-1"
CHUNK = 200

Records = Iterable[dict[str, Any]]


@dataclass(frozen=True)
class Section:
    name: str
    # A function, or "module.path:function" / "module.path.function" imported on first use.
    build: Callable[[Any], Records] | str
    # The user foreign keys whose rows this section lists ("app_label.Model.field").
    covers: tuple[str, ...] = ()
    # The app the section's data lives in: without it installed, the section is skipped.
    app: str = ""

    def records(self, user: Any) -> Records:
        build = self.build
        if isinstance(build, str):
            build = import_string(build.replace(":", "."))
        return build(user)


def _values(obj: Any, *names: str) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


def account(user: Any) -> Records:
    yield {
        **_values(
            user,
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "date_joined",
            "last_login",
            "is_active",
            "is_staff",
        ),
        "has_password": user.has_usable_password(),
        "groups": list(user.groups.values_list("name", flat=True)),
    }


def api_tokens(user: Any) -> Records:
    # Name, scope, prefix and dates; never the digest (the secret itself is not kept).
    for token in ApiToken.objects.filter(user=user).order_by("id"):
        yield _values(
            token, "id", "name", "scope", "prefix", "created_at", "expires_at", "last_used_at",
            "revoked_at",
        )  # fmt: skip


def programs(user: Any) -> Records:
    for program in Program.objects.filter(owner=user).order_by("id").iterator(CHUNK):
        yield _values(
            program, "id", "title", "source", "call", "stdin", "expected_output", "is_public",
            "created_at", "updated_at",
        )  # fmt: skip


def runs(user: Any) -> Records:
    queryset = (
        Run.objects.filter(owner=user)
        .order_by("id")
        .select_related("surprise")
        .prefetch_related("traces")
    )
    for run in queryset.iterator(CHUNK):
        surprise = getattr(run, "surprise", None)
        yield {
            **_values(
                run,
                "id",
                "program_id",
                "puzzle_id",
                "task_example_id",
                "method",
                "model",
                "rule",
                "temperature",
                "seed",
                "max_tokens",
                "status",
                "source",
                "call",
                "stdin",
                "emulated_text",
                "prediction",
                "verdict",
                "comparison",
                "details",
                "error",
                "prompt_tokens",
                "completion_tokens",
                "model_calls",
                "created_at",
                "started_at",
                "finished_at",
            ),
            "traces": [
                _values(t, "kind", "status", "step_count", "data") for t in run.traces.all()
            ],
            # The model's surprise along the real trace, where it was scored (runs/surprise.py).
            "surprise": None
            if surprise is None
            else _values(surprise, "state", "model", "engine", "mean", "max_step", "data"),
        }


def share_links(user: Any) -> Records:
    links = ShareLink.objects.filter(Q(created_by=user) | Q(run__owner=user)).order_by("id")
    for link in links.iterator(CHUNK):
        yield {
            **_values(link, "id", "run_id", "created_at", "revoked_at"),
            "url": link.get_absolute_url(),
        }


def evaluations(user: Any) -> Records:
    for evaluation in Evaluation.objects.filter(owner=user).order_by("id").iterator(CHUNK):
        yield {
            field.name: getattr(evaluation, field.attname)
            for field in Evaluation._meta.concrete_fields
        }


def courses(user: Any) -> Records:
    memberships = Membership.objects.filter(user=user).select_related("course").order_by("id")
    for member in memberships:
        yield {
            "course_id": member.course_id,
            "course": member.course.title,
            "role": member.role,
            "pending_role": member.pending_role,
            "joined_at": member.joined_at,
        }


def courses_created(user: Any) -> Records:
    for course in Course.objects.filter(created_by=user).order_by("id"):
        yield _values(course, "id", "title", "description", "created_at")


def invitations(user: Any) -> Records:
    mine = Q(invitee=user)
    if user.email:
        mine |= Q(email__iexact=user.email)
    for invitation in Invitation.objects.filter(mine).select_related("course").order_by("id"):
        yield {
            **_values(
                invitation,
                "id",
                "course_id",
                "email",
                "role",
                "status",
                "created_at",
                "sent_at",
                "answered_at",
            ),
            "course": invitation.course.title,
            "to_you_by": "username" if invitation.invitee_id else "e-mail",
        }


def submissions(user: Any) -> Records:
    queryset = (
        Submission.objects.filter(student=user)
        .select_related("item__assignment__course")
        .order_by("id")
    )
    for sub in queryset.iterator(CHUNK):
        assignment = sub.item.assignment
        yield {
            **_values(
                sub,
                "id",
                "item_id",
                "attempt",
                "answer",
                "submitted_at",
                "status",
                "score",
                "credit",
                "late",
                "feedback",
                "history",
                "override_credit",
                "override_comment",
                "overridden_at",
            ),
            "final_credit": sub.final_credit,
            "assignment": assignment.title,
            "course": assignment.course.title,
        }


def step_predictions(user: Any) -> Records:
    for prediction in StepPrediction.objects.filter(student=user).order_by("id").iterator(CHUNK):
        yield _values(prediction, "id", "item_id", "step", "answer", "mark", "answered_at")


def exam_starts(user: Any) -> Records:
    for start in ExamStart.objects.filter(student=user).order_by("id"):
        yield _values(start, "id", "assignment_id", "started_at", "finished_at")


def extensions(user: Any) -> Records:
    for extension in Extension.objects.filter(student=user).order_by("id"):
        yield _values(extension, "id", "assignment_id", "due_at", "late_until", "extra_minutes")


def audit_events(user: Any) -> Records:
    about = Q(actor_ref=user.pk) | Q(subject_ref=user.pk)
    if user.email:
        about |= Q(subject_name__iexact=user.email)
    for entry in AuditEvent.objects.filter(about).order_by("id").iterator(CHUNK):
        yield _values(
            entry, "id", "at", "course_ref", "course_title", "actor_name", "subject_name",
            "action", "detail",
        )  # fmt: skip


def reports(user: Any) -> Records:
    for report in Report.objects.filter(reporter=user).order_by("id"):
        yield _values(
            report, "id", "program_id", "reason", "note", "created_at", "resolved_at",
            "resolution",
        )  # fmt: skip


def lti(user: Any) -> Records:
    """What the LTI app (playground/lti) keeps about the person: the LMS identities linked to
    the account and the scores sent back to the LMS. By model label, so that this module does
    not depend on the app being there."""
    for identity in apps.get_model("lti", "LtiUser").objects.filter(user=user).order_by("id"):
        yield {
            "kind": "lms_identity",
            "platform": str(identity.platform),
            "sub": identity.sub,
            "created_at": identity.created_at,
        }
    for send in apps.get_model("lti", "ScoreSend").objects.filter(student=user).order_by("id"):
        yield {
            "kind": "score_sent",
            **_values(
                send,
                "id",
                "link_id",
                "status",
                "score_given",
                "score_maximum",
                "grading_progress",
                "activity_progress",
                "queued_at",
                "sent_at",
            ),
        }


SECTIONS: list[Section] = [
    Section("account", account),
    Section("api_tokens", api_tokens, ("accounts.ApiToken.user",)),
    Section("programs", programs, ("programs.Program.owner",)),
    Section("runs", runs, ("runs.Run.owner",)),
    Section("share_links", share_links, ("sharing.ShareLink.created_by",)),
    Section("evaluations", evaluations, ("benchmarks.Evaluation.owner",)),
    Section("courses", courses, ("classroom.Membership.user",)),
    Section("courses_created", courses_created, ("classroom.Course.created_by",)),
    Section("invitations", invitations, ("classroom.Invitation.invitee",)),
    Section("submissions", submissions, ("classroom.Submission.student",)),
    Section("step_predictions", step_predictions, ("classroom.StepPrediction.student",)),
    Section("exam_starts", exam_starts, ("classroom.ExamStart.student",)),
    Section("extensions", extensions, ("classroom.Extension.student",)),
    Section("audit_events", audit_events),
    Section("moderation_reports", reports, ("moderation.Report.reporter",)),
    Section("lti", lti, ("lti.LtiUser.user", "lti.ScoreSend.student"), app="playground.lti"),
]

# User foreign keys deliberately not exported, with the reason (docs/PRIVACY.md says the same).
EXCLUDED: dict[str, str] = {
    "admin.LogEntry.user": "a staff member's own changes in Django's admin: the site's records, "
    "not data about the person",
    "classroom.Invitation.invited_by": "an invitation the person sent: it is about the invitee "
    "(the course's audit events list it)",
    "classroom.Invitation.answered_by": "the person who answered is the invitee (exported) or "
    "staff revoking it (audit events)",
    "classroom.Submission.overridden_by": "another student's grade changed by staff: the audit "
    "events list the person's action, not the other student's work",
    "moderation.Report.resolved_by": "staff deciding on someone else's report (audit events)",
    "moderation.ProgramLock.locked_by": "staff unpublishing a program (audit events)",
}


def _installed(section: Section) -> bool:
    return not section.app or apps.is_installed(section.app)


def build(user: Any, *, max_bytes: int | None = None) -> bytes:
    """The export of ``user`` as UTF-8 JSON, at most about ``max_bytes`` long."""
    limit = max_bytes if max_bytes is not None else settings.PLAYGROUND_EXPORT_MAX_MB * 2**20
    return b"".join(_chunks(user, limit))


def _chunks(user: Any, limit: int) -> Iterator[bytes]:
    def dump(value: Any) -> bytes:
        return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False).encode()

    head = {"format": FORMAT, "user_id": user.pk, "made_at": timezone.now()}
    written = 0
    truncated: list[str] = []
    out = dump(head)[:-1] + b', "sections": {'
    yield out
    written += len(out)
    for n, section in enumerate(s for s in SECTIONS if _installed(s)):
        part = (b", " if n else b"") + dump(section.name) + b": ["
        yield part
        written += len(part)
        for i, record in enumerate(section.records(user)):
            data = (b", " if i else b"") + dump(record)
            if written + len(data) > limit:
                truncated.append(section.name)
                break
            yield data
            written += len(data)
        yield b"]"
    yield b"}, " + dump("truncated") + b": " + dump(truncated) + b"}"


PART_BYTES = 64 * 1024


def _parts(user: Any, limit: int) -> Iterator[bytes]:
    """The export's chunks joined into parts of about ``PART_BYTES`` (fewer sends)."""
    buffer: list[bytes] = []
    size = 0
    for chunk in _chunks(user, limit):
        buffer.append(chunk)
        size += len(chunk)
        if size >= PART_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


async def _async_parts(parts: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The same parts for an ASGI server, each made in the thread that holds the database
    connection (Django would otherwise read a sync iterator to its end before sending: the
    whole file in memory). As benchmarks/views/exports.py streams an evaluation."""
    while (part := await sync_to_async(_next)(parts)) is not None:
        yield part


def _next(parts: Iterator[bytes]) -> bytes | None:
    return next(parts, None)


def export_response(request: HttpRequest, user: Any) -> StreamingHttpResponse:
    """The export as a download, streamed, never cached (the page and the API answer the
    same); at most ``PLAYGROUND_EXPORT_MAX_MB``."""
    parts = _parts(user, settings.PLAYGROUND_EXPORT_MAX_MB * 2**20)
    content = _async_parts(parts) if isinstance(request, ASGIRequest) else parts
    response = StreamingHttpResponse(content, content_type="application/json; charset=utf-8")
    day = timezone.now().strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="playground-data-{day}.json"'
    response["Cache-Control"] = "no-store"
    return response
