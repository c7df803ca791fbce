"""The upgrade (migration 0002) on a database made before invitations: memberships a roster row
made without asking become invitations, unless the person took part or an instructor changed
their role since; rows nobody claimed are dropped and listed in the course's audit log."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from tests.migrations import apps_at, migrate

BEFORE = [("classroom", "0001_initial")]
AFTER = [("classroom", "0002_invitations_audit_log")]


@pytest.fixture
def old_apps(transactional_db: None) -> Iterator[Any]:
    yield from apps_at(BEFORE)


def test_roster_rows_become_invitations(old_apps: Any) -> None:
    User = old_apps.get_model("auth", "User")
    Course = old_apps.get_model("classroom", "Course")
    Membership = old_apps.get_model("classroom", "Membership")
    RosterEntry = old_apps.get_model("classroom", "RosterEntry")
    Assignment = old_apps.get_model("classroom", "Assignment")
    Item = old_apps.get_model("classroom", "Item")
    Submission = old_apps.get_model("classroom", "Submission")
    Program = old_apps.get_model("programs", "Program")

    people = {n: User.objects.create(username=n) for n in
              ("teacher", "victim", "squatter", "worker", "promoted", "joined")}  # fmt: skip
    course = Course.objects.create(title="Execution 101", created_by=people["teacher"])

    def member(name: str, role: str) -> None:
        Membership.objects.create(course=course, user=people[name], role=role)

    member("teacher", "instructor")
    # Enrolled by a roster row without being asked (the H2 attack), as a student...
    member("victim", "student")
    RosterEntry.objects.create(course=course, identifier="victim", claimed_by=people["victim"])
    # ...or given a staff role by squatting the row's name at sign-up.
    member("squatter", "assistant")
    RosterEntry.objects.create(
        course=course, identifier="s@uni.edu", role="assistant", claimed_by=people["squatter"]
    )
    # Took part (answered): kept.
    member("worker", "student")
    RosterEntry.objects.create(course=course, identifier="worker", claimed_by=people["worker"])
    now = timezone.now()
    assignment = Assignment.objects.create(course=course, title="A", opens_at=now, due_at=now)
    program = Program.objects.create(title="p", source="x = 1\n", dataset="user")
    item = Item.objects.create(assignment=assignment, mode="output", program=program)
    Submission.objects.create(item=item, student=people["worker"], attempt=1, answer="1")
    # An instructor gave another role since: their decision, kept.
    member("promoted", "assistant")
    RosterEntry.objects.create(course=course, identifier="promoted", claimed_by=people["promoted"])
    # Joined with the code, never on a roster: untouched.
    member("joined", "student")
    # Nobody claimed these.
    RosterEntry.objects.create(course=course, identifier="later@uni.edu")
    RosterEntry.objects.create(course=course, identifier="ghost")

    apps = migrate(AFTER)
    Membership = apps.get_model("classroom", "Membership")
    Invitation = apps.get_model("classroom", "Invitation")
    AuditEvent = apps.get_model("classroom", "AuditEvent")

    kept = dict(Membership.objects.values_list("user__username", "role"))
    assert kept == {
        "teacher": "instructor",
        "worker": "student",
        "promoted": "assistant",
        "joined": "student",
    }
    invited = set(Invitation.objects.values_list("invitee__username", "role", "status"))
    assert invited == {("victim", "student", "pending"), ("squatter", "assistant", "pending")}
    log = {e.subject_name or "-": e.detail for e in AuditEvent.objects.filter(action="upgrade")}
    assert set(log) == {"victim", "squatter", "-"}
    assert log["-"]["count"] == 2
    assert sorted(log["-"]["rows"]) == ["ghost", "later@uni.edu"]
    assert "RosterEntry" not in {m.__name__ for m in apps.get_app_config("classroom").get_models()}
