"""A student with something of everything the site keeps about a person: programs (private and
public), runs with traces and a share link, an API token, a course with a graded submission, a
step prediction, an exam start and an extension, an invitation by e-mail, audit events and a
moderation report."""

from __future__ import annotations

import secrets
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from django.test import Client
from django.utils import timezone

from playground.accounts.tokens import create_token
from playground.classroom import audit
from playground.classroom.models import (
    AuditEvent,
    ExamStart,
    Extension,
    Invitation,
    Role,
    StepPrediction,
)
from playground.lti.models import LtiContext, LtiUser, Platform, ResourceLink, ScoreLog, ScoreSend
from playground.moderation.models import Report
from playground.runs.models import Run, RunSurprise, Trace
from playground.sharing.models import ShareLink
from tests.classroom.staff_factories import (
    AssignmentFactory,
    ItemFactory,
    MembershipFactory,
    SubmissionFactory,
    staffed_course,
)
from tests.factories import ProgramFactory, RunFactory, UserFactory

PASSWORD = "correct horse battery staple"


def counted_user(username: str, **fields: Any) -> Any:
    """A user whose rate counters start from zero (counters in Redis outlive the test database,
    whose ids start again at 1)."""
    return UserFactory(pk=10**6 + secrets.randbelow(10**9), username=username, **fields)


def student_world() -> SimpleNamespace:
    name = f"zqstudent{secrets.token_hex(3)}"
    email = f"{name}@uni.example"
    course, teacher = staffed_course(title="Execution 101", instructor=f"teach{name[-6:]}")
    student = counted_user(name, email=email, first_name="Zoë", last_name="Quill")
    MembershipFactory(course=course, user=student, role=Role.STUDENT)
    assignment = AssignmentFactory(course=course, title="Loops")
    item = ItemFactory(assignment=assignment, title="Sum a list")
    submission = SubmissionFactory(item=item, student=student, answer="6", score=1.0)
    StepPrediction.objects.create(item=item, student=student, step=1, answer={"line": 2})
    ExamStart.objects.create(assignment=assignment, student=student, started_at=timezone.now())
    Extension.objects.create(
        assignment=assignment, student=student, due_at=timezone.now() + timedelta(days=3)
    )
    audit.record(audit.Action.MEMBER_JOINED, course=course, actor=student, subject=student)
    other_course, _ = staffed_course(title="Other course", instructor=f"other{name[-6:]}")
    Invitation.objects.create(course=other_course, email=email, invited_by=teacher)
    audit.record(
        audit.Action.INVITATION_SENT, course=other_course, actor=teacher, subject_name=email
    )

    private = ProgramFactory(owner=student, title="my secret homework", source="x = 'zq-private'")
    public = ProgramFactory(owner=student, title="my public puzzle", is_public=True)
    run = RunFactory(program=private, owner=student, status=Run.Status.DONE)
    run.emulated_text = "The model thinks: zq-model-text"
    run.save(update_fields=["emulated_text"])
    Trace.objects.create(
        run=run, kind="real", status="ok", step_count=1, data={"status": "ok", "steps": [{}]}
    )
    link = ShareLink.objects.create(run=run, created_by=student)
    RunSurprise.objects.create(run=run, state="done", mean=1.5, requested_at=timezone.now())
    queued = RunFactory(program=private, owner=student)  # still queued: in progress
    others_run = RunFactory(program=public, owner=teacher, status=Run.Status.DONE)
    # A run of an evaluation (nobody's) whose surprise the student asked to score: its
    # allowance key names the student.
    scored = RunFactory(program=public, status=Run.Status.DONE, budget_key=f"user:{student.pk}")
    RunSurprise.objects.create(
        run=scored, budget_key=f"user:{student.pk}", requested_at=timezone.now()
    )
    token, secret = create_token(user=student, name="laptop script", scope="read")
    Report.objects.create(
        program=ProgramFactory(owner=teacher, is_public=True),
        reporter=student,
        reporter_key=f"user:{student.pk}",
        reason="spam",
        note="zq report note",
    )
    lti = lti_world(course, student, teacher)
    client = Client()
    client.force_login(student)
    return SimpleNamespace(
        student=student, email=email, teacher=teacher, course=course, item=item,
        submission=submission, private=private, public=public, run=run, queued=queued,
        link=link, others_run=others_run, token=token, secret=secret, client=client,
        audit_count=AuditEvent.objects.count(), lti=lti,
    )  # fmt: skip


def lti_world(course: Any, student: Any, teacher: Any) -> SimpleNamespace:
    """The course linked from an LMS: the student's LMS identity, a grade sent back for them,
    and the teacher's resend of it in the score log."""
    platform = Platform.objects.create(
        name="Canvas (test)", issuer="https://lms.example", client_id="zq-client",
        auth_login_url="https://lms.example/auth", auth_token_url="https://lms.example/token",
        jwks_url="https://lms.example/jwks",
    )  # fmt: skip
    context = LtiContext.objects.create(platform=platform, context_id="ctx-1", course=course)
    link = ResourceLink.objects.create(context=context, resource_link_id="link-1")
    identity = LtiUser.objects.create(platform=platform, sub="zq-lms-sub-77", user=student)
    send = ScoreSend.objects.create(link=link, student=student, score_given=1.0, score_maximum=1)
    log = ScoreLog.objects.create(send=send, outcome="sent", by=teacher.get_username())
    return SimpleNamespace(identity=identity, send=send, log=log)
