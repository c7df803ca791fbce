"""A small but complete site for the no-500 harness: one of everything a URL can name (programs,
a puzzle, a task and its examples, runs with traces, a share link, an evaluation, a course with
an assignment, items of every mode, a submission, an invitation, an extension), and the people
who see it differently (anonymous, a signed-in stranger, a student, an assistant, an
instructor, the site's admin)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from playground.benchmarks.models import Dataset as EvalDataset
from playground.benchmarks.models import Evaluation, Result
from playground.classroom import invitations
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
from playground.moderation.models import Report
from playground.programs.models import Dataset, Program, Puzzle, Task, TaskExample
from playground.programs.signals import ANON_TOKEN_KEY
from playground.runs.models import Run, Trace
from playground.sharing.models import ShareLink

ROLES = ("anon", "user", "student", "assistant", "instructor", "admin")

SOURCE = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
CALL = "f([1, 2, 3])"
STEPS = [
    {"i": 0, "event": "call", "line": 1, "func": "f", "locals": {"xs": "[1, 2, 3]"}},
    {"i": 1, "event": "line", "line": 2, "func": "f", "locals": {"xs": "[1, 2, 3]"}},
    {"i": 2, "event": "line", "line": 3, "func": "f", "locals": {"total": "0"}},
    {"i": 3, "event": "return", "line": 5, "func": "f", "locals": {"total": "6"}},
]
REAL = {
    "schema": 1,
    "status": "ok",
    "result": "6",
    "error": None,
    "steps": STEPS,
    "stats": {"steps": len(STEPS), "wall_ms": 1},
}


@dataclass
class World:
    users: dict[str, Any]
    clients: dict[str, Client]
    anon_token: str
    program: Program  # public, the instructor's
    programs: dict[str, Program]  # each role's own (private) program
    runs: dict[str, Run]  # each role's own finished run
    puzzle: Puzzle
    task: Task
    example: TaskExample
    share: ShareLink
    evaluations: dict[str, Evaluation]  # a public finished one, and each user's own
    course: Course
    assignment: Assignment
    items: dict[str, Item]  # by mode
    submission: Submission
    invitation: Invitation  # for "user", on their My courses page
    invitation_token: str
    extension: Extension
    memberships: dict[str, Membership]
    reset: tuple[str, str] = ("", "")  # uidb64, token of a password reset for "user"
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, role: str) -> Client:
        return self.clients[role]


def _run(program: Program, owner: Any, anon: str = "", **fields: Any) -> Run:
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=owner,
        anon_owner=anon, status=Run.Status.DONE, finished_at=timezone.now(), **fields,
    )  # fmt: skip
    Trace.objects.create(run=run, kind=Trace.Kind.REAL, status="ok", data=REAL)
    return run


def build() -> World:
    User = get_user_model()
    users: dict[str, Any] = {"anon": None}
    for role in ROLES[1:]:
        users[role] = User.objects.create_user(
            username=f"fuzz-{role}", email=f"{role}@example.org", password="correct horse 1"
        )
    users["admin"].is_staff = users["admin"].is_superuser = True
    users["admin"].save()

    clients: dict[str, Client] = {}
    for role in ROLES:
        # Exceptions are failures the harness reports, with the request that caused them.
        client = Client(raise_request_exception=True)
        if users[role] is not None:
            client.force_login(users[role])
        clients[role] = client
    # The anonymous visitor has a session that owns a program and a run.
    anon_token = "fuzz-anon-token"
    session = clients["anon"].session
    session[ANON_TOKEN_KEY] = anon_token
    session.save()

    program = Program.objects.create(
        title="Sum", source=SOURCE, call=CALL, expected_output="6", dataset=Dataset.USER,
        owner=users["instructor"], is_public=True,
    )  # fmt: skip
    library = Program.objects.create(
        title="CRUXEval sample_0", source=SOURCE, call=CALL, expected_output="6",
        dataset=Dataset.CRUXEVAL, external_id="sample_0", is_public=True,
    )  # fmt: skip
    programs: dict[str, Program] = {}
    runs: dict[str, Run] = {}
    for role in ROLES:
        owner = users[role]
        programs[role] = Program.objects.create(
            title=f"{role}'s", source=SOURCE, call=CALL, dataset=Dataset.USER, owner=owner,
            anon_owner=anon_token if owner is None else "",
        )  # fmt: skip
        runs[role] = _run(programs[role], owner, anon_token if owner is None else "")
    model_run = _run(
        program, users["user"], method="direct", model="smollm2-135m", prediction="6",
        emulation_done=True, verdict={"status": "correct", "explanation": "right"},
    )  # fmt: skip

    puzzle = Puzzle.objects.create(
        name="Study_1:0", family="Study_1", source_index=0,
        sat="def sat(s: str):\n    return s.count('o') == 1000\n", ans_type="str",
        sol_header="def sol():", sol_docstring='"""Find a string with 1000 o\'s."""',
        sol_bodies=["    return 'o' * 1000"], module="study",
    )  # fmt: skip
    task = Task.objects.create(name="boolean_expressions")
    example = TaskExample.objects.create(
        task=task, index=0, input="True and False is", target="False"
    )
    TaskExample.objects.create(task=task, index=1, input="not True is", target="False")

    share = ShareLink.objects.create(run=runs["user"], created_by=users["user"])

    public_eval = Evaluation.objects.create(
        dataset=EvalDataset.CRUXEVAL, method="direct", model="smollm2-135m", owner=users["user"],
        status=Evaluation.Status.DONE, total=1, finished_at=timezone.now(),
    )  # fmt: skip
    Result.objects.create(
        evaluation=public_eval, index=0, sample=0, item_key="sample_0",
        item_ref={"program": library.pk}, status=Result.Status.DONE, passed=True,
        score_status="pass", prediction="6", run=model_run, lines=5, steps=4,
        scored_at=timezone.now(),
    )  # fmt: skip
    evaluations = {"public": public_eval}
    for role in ("student", "instructor", "admin"):
        evaluations[role] = Evaluation.objects.create(
            dataset=EvalDataset.PROGRAMS, subset=[programs[role].pk], method="direct",
            model="smollm2-135m", owner=users[role], status=Evaluation.Status.QUEUED, total=1,
        )  # fmt: skip
    evaluations["user"] = public_eval

    course = Course.objects.create(title="Tracing 101", created_by=users["instructor"])
    memberships = {
        role: Membership.objects.create(course=course, user=users[role], role=Role[role.upper()])
        for role in ("student", "assistant", "instructor")
    }
    now = timezone.now()
    assignment = Assignment.objects.create(
        course=course, title="Loops", opens_at=now - timedelta(hours=1),
        due_at=now + timedelta(days=1), late_until=now + timedelta(days=2), max_attempts=5,
    )  # fmt: skip
    items: dict[str, Item] = {}
    for position, mode in enumerate(Mode):
        fields: dict[str, Any] = {"program": library}
        if mode == Mode.PUZZLE:
            fields = {"puzzle": puzzle}
        if mode == Mode.TRACE:
            fields["checkpoints"] = [{"line": 3, "occurrence": 1, "variables": ["total"]}]
        if mode in (Mode.DIVERGENCE, Mode.BEAT_MODEL):
            fields.update(model="smollm2-135m", method="trace")
        items[mode] = Item.objects.create(
            assignment=assignment, mode=mode, title=f"{mode.label}", position=position, **fields
        )
        if mode != Mode.PUZZLE:
            key = _run(library, users["instructor"], method=fields.get("method", "direct"),
                       model="smollm2-135m", emulation_done=True, prediction="6")  # fmt: skip
            Trace.objects.create(
                run=key, kind=Trace.Kind.EMULATED, status="ok", data={**REAL, "steps": STEPS[:2]}
            )
            Item.objects.filter(pk=items[mode].pk).update(key_run=key)
    submission = Submission.objects.create(
        item=items[Mode.OUTPUT], student=users["student"], attempt=1, answer="6",
        status=Submission.Status.GRADED, score=1.0, credit=1.0,
        feedback={"message": "Right.", "details": {}},
    )  # fmt: skip
    invitation = Invitation.objects.create(
        course=course, invitee=users["user"], role=Role.STUDENT, invited_by=users["instructor"]
    )
    mailed = Invitation.objects.create(
        course=course, email="someone@example.org", role=Role.STUDENT,
        invited_by=users["instructor"],
    )  # fmt: skip
    extension = Extension.objects.create(
        assignment=assignment, student=users["student"], due_at=now + timedelta(days=3)
    )
    # What moderators act on: an account of its own (disabling it ends nobody's session here)
    # with a reported public program.
    target = User.objects.create_user(username="fuzz-target", password="correct horse 1")
    reported = Program.objects.create(
        title="Reported", source=SOURCE, call=CALL, dataset=Dataset.USER, owner=target,
        is_public=True,
    )  # fmt: skip
    Report.objects.create(program=reported, reporter_key="ip:fuzz", reason="spam", note="<b>")
    reset = (
        urlsafe_base64_encode(force_bytes(users["user"].pk)),
        default_token_generator.make_token(users["user"]),
    )
    return World(
        users=users, clients=clients, anon_token=anon_token, program=program, programs=programs,
        runs=runs, puzzle=puzzle, task=task, example=example, share=share,
        evaluations=evaluations, course=course, assignment=assignment, items=items,
        submission=submission, invitation=invitation,
        invitation_token=invitations.make_token(mailed), extension=extension,
        memberships=memberships, reset=reset,
        extra={"library": library, "model_run": model_run, "mailed": mailed, "target": target,
               "reported": reported},
    )  # fmt: skip
