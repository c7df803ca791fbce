"""The one error of the classroom's writes: ``ClassroomError``, a refusal whose message is shown
to the user as is. Its own file because every topic module (courses, joining, roster, items,
submissions, invitations) raises it and the views catch it: here it sits below all of them, so
none has to import another only for the exception."""

from __future__ import annotations


class ClassroomError(Exception):
    """Something the user asked cannot be done; the message says why (shown as is)."""
