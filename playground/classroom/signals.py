"""What the classroom tells the rooms above it without importing them: a student's grade on an
assignment changed (graded, regraded, overridden, marked not graded). Sent once the write is
committed, so a receiver that queues work reads the new grade."""

from __future__ import annotations

from django.db import transaction
from django.dispatch import Signal

from playground.classroom.models import Assignment, Submission

# Arguments: assignment_id, student_id (None: every student of the assignment, e.g. its
# results were published and grades hidden until then may now be told).
grade_changed = Signal()


def announce_grade(submission: Submission) -> None:
    """Send ``grade_changed`` for this submission's student and assignment after the commit."""
    assignment_id = submission.item.assignment_id
    student_id = submission.student_id
    transaction.on_commit(
        lambda: grade_changed.send(
            sender=Submission, assignment_id=assignment_id, student_id=student_id
        )
    )


def announce_assignment(assignment: Assignment) -> None:
    """Send ``grade_changed`` for every student of the assignment after the commit."""
    assignment_id = assignment.pk
    transaction.on_commit(
        lambda: grade_changed.send(sender=Assignment, assignment_id=assignment_id, student_id=None)
    )
