"""Courses, their members, assignments of items graded against the real execution, and the
students' submissions.

One file of about 450 lines because Django keeps an app's models in one module (and its
migrations refer to them there); the behaviour lives in the topic modules beside it (courses,
roster, authoring, submissions, marking)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.urls import reverse
from django.utils import timezone

from playground.programs.models import Program, Puzzle
from playground.programs.signals import sources_changed
from playground.runs.models import Run

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud in class


def new_join_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))


class Course(models.Model):
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    join_code = models.CharField(max_length=16, unique=True, default=new_join_code)
    join_enabled = models.BooleanField(default=True)
    # Its dates are typed and shown in this zone (a zoneinfo name; "": the site's TIME_ZONE).
    time_zone = models.CharField(max_length=64, blank=True, default="", db_default="")
    # The course gradebook (coursebook.py): each assignment category's weight, {"Exams": 60};
    # a category not named weighs 1.
    category_weights = models.JSONField(default=dict, blank=True, db_default={})
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("classroom:course", args=[self.pk])

    def rotate_join_code(self) -> None:
        self.join_code = new_join_code()
        self.save(update_fields=["join_code"])


class Role(models.TextChoices):
    INSTRUCTOR = "instructor", "Instructor"
    ASSISTANT = "assistant", "Assistant"
    STUDENT = "student", "Student"


STAFF_ROLES = frozenset({Role.INSTRUCTOR, Role.ASSISTANT})


class Membership(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.STUDENT)
    # The staff role an accepted invitation asked for. The person is a student until an
    # instructor confirms it: a roster row names an address or a username, not a known person.
    pending_role = models.CharField(max_length=12, choices=Role.choices, blank=True, default="")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "user"], name="membership_once_per_course")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.course}"

    @property
    def is_staff_role(self) -> bool:
        return self.role in STAFF_ROLES


def new_nonce() -> str:
    return secrets.token_hex(16)


class Invitation(models.Model):
    """An offer to join a course, made by its staff (a roster row). Nobody is a member before
    accepting: an invitation by e-mail is answered through a signed link sent to that address
    (whoever is signed in when opening it accepts for their own account); an invitation of an
    existing username waits on that person's "My courses" page."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        DECLINED = "declined", "Declined"
        REVOKED = "revoked", "Revoked"

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(blank=True, help_text="Where the link was sent (lower case).")
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="course_invitations",
    )
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.STUDENT)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Part of the signed link; a new one at every (re)send, so that older links stop working.
    nonce = models.CharField(max_length=32, default=new_nonce)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the link was mailed.")
    mail_failed = models.BooleanField(default=False)
    answered_at = models.DateTimeField(null=True, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(email="") & Q(invitee__isnull=False))
                | (~Q(email="") & Q(invitee__isnull=True)),
                name="invitation_email_or_invitee",
            ),
            models.UniqueConstraint(
                fields=["course", "email"],
                condition=Q(status="pending") & ~Q(email=""),
                name="invitation_pending_once_per_email",
            ),
            models.UniqueConstraint(
                fields=["course", "invitee"],
                condition=Q(status="pending"),
                name="invitation_pending_once_per_invitee",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.addressee} to {self.course}"

    @property
    def addressee(self) -> str:
        return self.email or (self.invitee.get_username() if self.invitee else "")

    @property
    def by_mail(self) -> bool:
        return bool(self.email)


class AuditEvent(models.Model):
    """One line of a course's audit log (with no course: of the site's moderation log,
    playground/moderation): who did what, when. Append-only: no code updates or
    deletes a row, and a trigger in the database refuses UPDATE and DELETE (migration 0002).
    There is no foreign key, so that deleting a course or a user touches no row: ids and names
    are copied at the time of the event."""

    class Action(models.TextChoices):
        COURSE_CREATED = "course.created", "Course created"
        COURSE_DELETED = "course.deleted", "Course deleted"
        JOIN_CODE = "course.join_code", "Join code changed"
        ROSTER_IMPORTED = "roster.imported", "Roster uploaded"
        INVITATION_SENT = "invitation.sent", "Invitation sent"
        INVITATION_RESENT = "invitation.resent", "Invitation sent again"
        INVITATION_ACCEPTED = "invitation.accepted", "Invitation accepted"
        INVITATION_DECLINED = "invitation.declined", "Invitation declined"
        INVITATION_REVOKED = "invitation.revoked", "Invitation revoked"
        MEMBER_JOINED = "member.joined", "Joined with the code"
        ROLE_CHANGED = "member.role", "Role changed"
        ROLE_CONFIRMED = "member.role_confirmed", "Staff role confirmed"
        ROLE_REFUSED = "member.role_refused", "Staff role refused"
        MEMBER_REMOVED = "member.removed", "Removed from the course"
        MEMBER_LEFT = "member.left", "Left the course"
        ASSIGNMENT_DELETED = "assignment.deleted", "Assignment deleted"
        ITEM_DELETED = "item.deleted", "Item deleted"
        EXTENSION_GRANTED = "extension.granted", "Extension given"
        EXTENSION_REMOVED = "extension.removed", "Extension removed"
        GRADE_OVERRIDDEN = "grade.overridden", "Grade overridden"
        OVERRIDE_CLEARED = "grade.override_cleared", "Grade override removed"
        RESULTS_PUBLISHED = "results.published", "Results published"
        RESULTS_UNPUBLISHED = "results.unpublished", "Results unpublished"
        EXAM_STARTED = "exam.started", "Timed exam started"
        EXAM_FINISHED = "exam.finished", "Timed exam handed in"
        REGRADED = "grades.regraded", "Answers regraded"
        UPGRADE = "upgrade", "Changed by a site upgrade"
        # Site-level events (no course): playground/moderation.
        PROGRAM_REPORTED = "moderation.reported", "Program reported"
        REPORTS_DISMISSED = "moderation.dismissed", "Reports dismissed"
        PROGRAM_UNPUBLISHED = "moderation.unpublished", "Program unpublished by staff"
        PUBLISHING_ALLOWED = "moderation.allowed", "Allowed to publish again"
        ACCOUNT_DISABLED = "moderation.disabled", "Account disabled"
        ACCOUNT_ENABLED = "moderation.enabled", "Account enabled"
        # Privacy (playground/privacy/deletion.py): names in earlier rows became a pseudonym.
        ACCOUNT_DELETED = "account.deleted", "Account deleted"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    course_ref = models.BigIntegerField(null=True, db_index=True)
    course_title = models.CharField(max_length=200, blank=True)
    actor_ref = models.BigIntegerField(null=True)
    actor_name = models.CharField(max_length=150, blank=True)
    subject_ref = models.BigIntegerField(null=True)
    subject_name = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["course_ref", "-at"], name="audit_course_time")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_name}: {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("An audit event cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AuditLogIsAppendOnly("An audit event cannot be deleted.")

    def detail_items(self) -> list[tuple[str, str]]:
        """The details as (name, value) pairs in name order (JSONB keeps no order; and a
        template would read a key named "items" in place of dict.items)."""
        detail = self.detail if isinstance(self.detail, dict) else {}
        return sorted((str(k).replace("_", " "), _readable(v)) for k, v in detail.items())


def _readable(value: Any) -> str:
    """A detail's value as a person reads it (yes/no rather than True/False)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class AuditLogIsAppendOnly(Exception):
    """Raised by any attempt to change or delete an audit event."""


class Feedback(models.TextChoices):
    AFTER_ATTEMPT = "attempt", "After each attempt"
    AFTER_DUE = "due", "After the due time"


class Results(models.TextChoices):
    """When a student sees their results of one item (score, marks, the answer once revealed),
    as Gradescope offers it. In exam mode nothing is shown before the instructor publishes."""

    ASSIGNMENT = "", "As the assignment says"
    NOW = "now", "At once, after each attempt"
    DUE = "due", "After the student's due time (late period included)"
    PUBLISHED = "published", "Once an instructor publishes the results"
    NEVER = "never", "Never"


class Assignment(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="assignments")
    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True)
    opens_at = models.DateTimeField()
    due_at = models.DateTimeField()
    late_until = models.DateTimeField(
        null=True, blank=True, help_text="End of the late period (none: no late submissions)."
    )
    late_credit = models.PositiveSmallIntegerField(
        default=50, help_text="Percent of the credit a late submission earns."
    )
    max_attempts = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Per item; empty for no limit."
    )
    feedback = models.CharField(
        max_length=8, choices=Feedback.choices, default=Feedback.AFTER_ATTEMPT
    )
    exam_mode = models.BooleanField(
        default=False,
        help_text="During the window, the course's students cannot run new programs.",
    )
    # A timed exam: minutes each student has from the moment they start it, within the window
    # (opens_at to their due time); None: not timed. exams.py starts and ends it.
    time_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Minutes each student has from when they start; empty: not timed.",
    )
    # The course gradebook (coursebook.py): its category ("": "Assignments") and its weight
    # within the category.
    category = models.CharField(
        max_length=40,
        blank=True,
        default="",
        db_default="",
        help_text="The course gradebook's category, e.g. Homework or Exams; empty: Assignments.",
    )
    weight = models.FloatField(
        default=1.0, db_default=1.0, help_text="Its weight within its category."
    )
    # When an instructor published the results (visibility.py: items whose results wait for
    # publishing, and every item of an exam-mode assignment); None: not published.
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["opens_at", "id"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("classroom:assignment", args=[self.course_id, self.pk])

    def is_published(self, now: datetime | None = None) -> bool:
        return self.published_at is not None and self.published_at <= (now or timezone.now())

    def window(self, student: Any = None) -> tuple[datetime, datetime]:
        """(due, end of the late period) for this student, extensions applied. In a timed exam,
        before they start: (due, due), the last moment to start; once started: their own end
        twice (no late period), ``timed_end``."""
        due, end = self.due_at, self.late_until or self.due_at
        extension = None
        if student is not None and getattr(student, "pk", None):
            extension = self.extensions.filter(student=student).first()
            if extension is not None:
                due = max(due, extension.due_at)
                end = max(end, extension.late_until or extension.due_at, due)
            if self.time_limit is not None:
                start = self.exam_starts.filter(student=student).first()
                if start is None:
                    return due, due
                extra = extension.extra_minutes if extension is not None else 0
                own = self.timed_end(start, due=due, extra_minutes=extra)
                return own, own
        return due, max(end, due)

    def timed_end(self, start: ExamStart, *, due: datetime, extra_minutes: int) -> datetime:
        """When a started timed exam ends: the duration (and the student's extra minutes) from
        the start, never after their due time; earlier if they handed it in."""
        assert self.time_limit is not None
        end = min(start.started_at + timedelta(minutes=self.time_limit + extra_minutes), due)
        if start.finished_at is not None:
            end = min(end, start.finished_at)
        return end

    def closes_at(self) -> datetime:
        """When the last student's window ends (answers stay hidden until then)."""
        ends = [self.late_until or self.due_at, self.due_at]
        for ext in self.extensions.all():
            ends += [ext.due_at, ext.late_until or ext.due_at]
        return max(ends)

    def is_open_for_submissions(self, student: Any = None, now: datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.opens_at <= now <= self.window(student)[1]

    def hides_answers(self, now: datetime | None = None) -> bool:
        """From the opening until every window has ended, the items' real results stay hidden
        from students (before it opens, nothing may tell which items it holds)."""
        now = now or timezone.now()
        return self.opens_at <= now <= self.closes_at()


def results_rule(item: Any) -> str:
    """The item's own results rule, or the one its assignment's feedback setting means."""
    if item.results:
        return str(item.results)
    return Results.NOW if item.assignment.feedback == Feedback.AFTER_ATTEMPT else Results.DUE


class PartialCredit(models.TextChoices):
    """How a multi-part answer (a trace's checkpoints, the probes) earns credit."""

    PROPORTIONAL = "proportional", "Proportional: the share of parts right"
    ALL_OR_NOTHING = "all", "All or nothing: every part right, or no credit"


class Mode(models.TextChoices):
    OUTPUT = "output", "Predict the output"
    INPUT = "input", "Predict the input"
    TRACE = "trace", "Predict the trace"
    PUZZLE = "puzzle", "Solve the puzzle"
    DIVERGENCE = "divergence", "Spot the divergence"
    BEAT_MODEL = "beat", "Beat the model"
    PROBES = "probes", "Answer the probes"
    RULE = "rule", "Execute under a changed rule"
    NEXT_STATE = "nextstate", "Predict the next state"


def source_key(source: str) -> str:
    """What the hiding recognises a program by: a digest of its text, trailing spaces and blank
    edge lines ignored (so a copy with other line endings is the same program)."""
    lines = [line.rstrip() for line in source.replace("\r\n", "\n").split("\n")]
    text = "\n".join(lines).strip("\n")
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Item(models.Model):
    """One question of an assignment: a program (or a puzzle) and what the student must do."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(default=0)
    mode = models.CharField(max_length=12, choices=Mode.choices)
    title = models.CharField(max_length=200, blank=True)
    prompt = models.TextField(blank=True, help_text="Instructions shown with the item.")
    points = models.FloatField(default=1.0)
    program = models.ForeignKey(
        Program, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    puzzle = models.ForeignKey(
        Puzzle, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Predict the trace: [{"line": 3, "occurrence": 2, "variables": ["total"]}, ...]
    checkpoints = models.JSONField(default=list, blank=True)
    # Spot the divergence / beat the model: which model and method emulate the item.
    model = models.CharField(max_length=100, blank=True)
    method = models.CharField(max_length=16, blank=True)
    # Answer the probes: the seed and how many questions of each kind (emulation/probes.Config's
    # fields), {"seed": 0, "coverage": 4, ...}; empty: probes.DEFAULT with seed 0, what a probe
    # run asks. A default in the database too, for rows the previous release inserts.
    probe_config = models.JSONField(default=dict, blank=True, db_default={})
    # Execute under a changed rule: the rule's name (sandbox/inside/semantics.py's RULES).
    rule = models.CharField(max_length=32, blank=True, default="", db_default="")
    # Predict the next state (nextstate.py): which steps of the call are asked, {"every": 20}
    # (every step after the call, up to 20) or {"steps": [3, 5]} (step numbers, the call is 1).
    step_choice = models.JSONField(default=dict, blank=True, db_default={})
    # Predict the trace, answer the probes, predict the next state: grading.partial_credit's rule.
    partial_credit = models.CharField(
        max_length=12,
        choices=PartialCredit.choices,
        default=PartialCredit.PROPORTIONAL,
        db_default=PartialCredit.PROPORTIONAL,
    )
    # When students see their results of this item (visibility.results_shown); "": as the
    # assignment's feedback rule says.
    results = models.CharField(
        max_length=10, choices=Results.choices, blank=True, default="", db_default=""
    )
    # The answer key: the real run (and, for the model modes, the model's emulation of it; under
    # a rule, the program run for real under it, with its standard run beside it).
    key_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # What is wrong with the finished key run, worked out once (keys.key_status, which templates
    # read as item|answer_key):
    # {"run": id, "problems": [...], "warnings": [...]}; stale when the run is another.
    key_check = models.JSONField(null=True, blank=True)
    # A varied item (variants.py): each student gets their own call, drawn from the valid
    # variants its generator made (a range or choices per literal argument of the call):
    # {"args": [{"index": 0, "range": [1, 9]}, {"index": 1, "choices": ["'ab'"]}],
    #  "count": 8, "seed": 0}; {}: one call for every student.
    variation = models.JSONField(default=dict, blank=True, db_default={})
    # A pool (pools.py): the items of one assignment with the same label are one slot, and each
    # student draws one of them; "": an item every student gets.
    pool = models.CharField(max_length=40, blank=True, default="", db_default="")
    # source_key() of the program's text, kept with the item (save(), and refresh_item_keys when
    # a program's text changes) so that hiding a share link is one indexed query, not a hash of
    # every open item's program per view.
    source_key = models.CharField(max_length=64, blank=True, db_index=True, editable=False)

    class Meta:
        ordering = ["assignment", "position", "id"]

    def __str__(self) -> str:
        return self.title or f"Item {self.position + 1}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "program" in update_fields:
            self.source_key = source_key(self.program.source) if self.program is not None else ""
            if update_fields is not None:
                kwargs["update_fields"] = {*update_fields, "source_key"}
        super().save(*args, **kwargs)

    def get_absolute_url(self) -> str:
        return reverse(
            "classroom:item", args=[self.assignment.course_id, self.assignment_id, self.pk]
        )


class Variant(models.Model):
    """One candidate call of a varied item and its answer key, a real run in the sandbox
    (variants.py). Only valid ones (the run finished with a value, the item's key check has no
    problem) are handed out; ``spec`` ties it to the generator it came from, so that a changed
    generator, program or call leaves the old ones unused."""

    class Status(models.TextChoices):
        PENDING = "pending", "Being run"
        VALID = "valid", "Handed out"
        REFUSED = "refused", "Never handed out"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="variants")
    spec = models.CharField(max_length=64)
    number = models.PositiveIntegerField()
    call = models.TextField()
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    problem = models.TextField(blank=True, help_text="Why it is never handed out.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item", "number"]
        constraints = [
            models.UniqueConstraint(fields=["item", "spec", "number"], name="variant_once")
        ]

    def __str__(self) -> str:
        return f"Variant {self.number + 1} of {self.item}: {self.call[:60]}"


class Extension(models.Model):
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="extensions")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="extensions"
    )
    due_at = models.DateTimeField()
    late_until = models.DateTimeField(null=True, blank=True)
    # A timed exam: minutes added to this student's duration (still within their due time).
    extra_minutes = models.PositiveIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "student"], name="extension_once")
        ]

    def __str__(self) -> str:
        return f"Extension for {self.student} on {self.assignment}"


class ExamStart(models.Model):
    """When a student started a timed exam (and handed it in, if before the end): the server's
    clock, never the browser's. One per student and assignment."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="exam_starts")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exam_starts"
    )
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "student"], name="exam_start_once")
        ]

    def __str__(self) -> str:
        return f"{self.student} started {self.assignment} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class Submission(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Being graded"
        GRADED = "graded", "Graded"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="submissions")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="submissions"
    )
    attempt = models.PositiveSmallIntegerField()
    answer = models.JSONField(help_text="What the student entered, as entered.")
    submitted_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    score = models.FloatField(null=True, blank=True, help_text="Correctness, 0 to 1.")
    credit = models.FloatField(null=True, blank=True, help_text="Score after the late factor.")
    late = models.BooleanField(default=False)
    feedback = models.JSONField(default=dict, blank=True)
    # A varied item: the variant this answer was graded against (the student's own).
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The grades it had before each regrade (regrading.py), oldest first: [{"at", "score",
    # "credit", "message", "by"}]; the current grade is the fields above.
    history = models.JSONField(default=list, blank=True, db_default=[])
    override_credit = models.FloatField(null=True, blank=True)
    override_comment = models.TextField(blank=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    overridden_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["item", "student", "attempt"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "student", "attempt"], name="submission_attempt_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.student} on {self.item} (attempt {self.attempt})"

    @property
    def final_credit(self) -> float | None:
        return self.override_credit if self.override_credit is not None else self.credit


class StepPrediction(models.Model):
    """A student's prediction of one asked step of a "predict the next state" item, graded when
    made (nextstate.py); the true step is shown only after it exists, so it is never changed."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="step_predictions")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    step = models.PositiveIntegerField(help_text="Index of the call's steps (0: the call).")
    answer = models.JSONField(help_text="The prediction as entered: line, event, changed, value.")
    mark = models.JSONField(default=dict, blank=True)
    answered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["item", "student", "step"]
        constraints = [
            models.UniqueConstraint(fields=["item", "student", "step"], name="step_prediction_once")
        ]

    def __str__(self) -> str:
        return f"{self.student} on step {self.step + 1} of {self.item}"


def refresh_item_keys(program_ids: list[int]) -> int:
    """Bring the items of these programs up to date after their text changed (a library
    re-import, the admin); returns how many items changed."""
    changed = 0
    for pk, source in Program.objects.filter(pk__in=program_ids).values_list("pk", "source"):
        key = source_key(source)
        changed += Item.objects.filter(program_id=pk).exclude(source_key=key).update(source_key=key)
    return changed


@receiver(post_save, sender=Program)
def _program_saved(sender: Any, instance: Program, created: bool, **kwargs: Any) -> None:
    fields = kwargs.get("update_fields")
    if not created and (fields is None or "source" in fields):
        refresh_item_keys([instance.pk])


@receiver(sources_changed)
def _sources_changed(sender: Any, program_ids: list[int], **kwargs: Any) -> None:
    refresh_item_keys(program_ids)
