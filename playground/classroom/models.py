"""Courses, their members, assignments of items graded against the real execution, and the
students' submissions."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from playground.programs.models import Program, Puzzle
from playground.runs.models import Run

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud in class


def new_join_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))


class Course(models.Model):
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    join_code = models.CharField(max_length=16, unique=True, default=new_join_code)
    join_enabled = models.BooleanField(default=True)
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


class RosterEntry(models.Model):
    """An expected member from an uploaded roster (email or username); claimed when that person
    joins or signs up, and then they get its role."""

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="roster")
    identifier = models.CharField(max_length=254, help_text="Email or username, lower case.")
    role = models.CharField(max_length=12, choices=Role.choices, default=Role.STUDENT)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "identifier"], name="roster_once_per_course")
        ]

    def __str__(self) -> str:
        return f"{self.identifier} in {self.course}"


class Feedback(models.TextChoices):
    AFTER_ATTEMPT = "attempt", "After each attempt"
    AFTER_DUE = "due", "After the due time"


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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["opens_at", "id"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("classroom:assignment", args=[self.course_id, self.pk])

    def window(self, student: Any = None) -> tuple[datetime, datetime]:
        """(due, end of the late period) for this student, extensions applied."""
        due, end = self.due_at, self.late_until or self.due_at
        if student is not None and getattr(student, "pk", None):
            extension = self.extensions.filter(student=student).first()
            if extension is not None:
                due = max(due, extension.due_at)
                end = max(end, extension.late_until or extension.due_at, due)
        return due, max(end, due)

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


class Mode(models.TextChoices):
    OUTPUT = "output", "Predict the output"
    TRACE = "trace", "Predict the trace"
    PUZZLE = "puzzle", "Solve the puzzle"
    DIVERGENCE = "divergence", "Spot the divergence"
    BEAT_MODEL = "beat", "Beat the model"


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
    # The answer key: the real run (and, for the model modes, the model's emulation of it).
    key_run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["assignment", "position", "id"]

    def __str__(self) -> str:
        return self.title or f"Item {self.position + 1}"

    def get_absolute_url(self) -> str:
        return reverse(
            "classroom:item", args=[self.assignment.course_id, self.assignment_id, self.pk]
        )

    @property
    def key_ready(self) -> bool:
        """Whether the answer key exists (a puzzle is checked by its sat at grading time)."""
        if self.mode == Mode.PUZZLE:
            return True
        run = self.key_run
        return run is not None and run.status == Run.Status.DONE


class Extension(models.Model):
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="extensions")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="extensions"
    )
    due_at = models.DateTimeField()
    late_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "student"], name="extension_once")
        ]

    def __str__(self) -> str:
        return f"Extension for {self.student} on {self.assignment}"


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
