"""The data behind tests/e2e/test_csp.py, written into a running stack's own database (the test
calls ``seed()`` in a subprocess pointed at the stack's var/): a course with an instructor, two
students, an open assignment with a graded item, a private program to delete, two finished
evaluations whose pages draw every kind of chart, and a reported and a locked program for the
moderation pages."""

from __future__ import annotations

from typing import Any

from playground.benchmarks.models import Evaluation, Result
from playground.classroom.models import Item, Mode, Submission
from playground.moderation.models import ProgramLock, Report
from tests.classroom.student_world import (
    SECRET,
    assignment,
    course_world,
    hand_made_key,
    library_program,
    real_trace,
)
from tests.factories import ProgramFactory, UserFactory


def _evaluation(method: str, right: list[bool]) -> Evaluation:
    evaluation = Evaluation.objects.create(
        dataset="cruxeval", method=method, model="smollm2-135m", status="done",
        title=f"CSP check · {method}", total=len(right),
    )  # fmt: skip
    for index, passed in enumerate(right):
        Result.objects.create(
            evaluation=evaluation, index=index, item_key=f"sample_{index}", passed=passed,
            status=Result.Status.DONE, score_status="correct" if passed else "wrong",
            lines=3 + 4 * index, steps=5 + 20 * index, divergence_step=None if passed else index,
        )  # fmt: skip
    return evaluation


def seed() -> dict[str, Any]:
    """Make the world; return the ids and URLs the test visits."""
    w = course_world()  # teacher, student1, student2 (members), outsider
    loops = assignment(w.course)
    item = Item.objects.create(assignment=loops, mode=Mode.OUTPUT, program=library_program())
    hand_made_key(item, real=real_trace(f"'{SECRET}'"), owner=w.instructor)
    graded = {"status": Submission.Status.GRADED, "attempt": 1}
    Submission.objects.create(item=item, student=w.s1, answer=f"'{SECRET}'", score=1.0,
                              credit=1.0, **graded)  # fmt: skip
    wrong = Submission.objects.create(item=item, student=w.s2, answer="'no'", score=0.0,
                                      credit=0.0, **graded)  # fmt: skip
    scratch = ProgramFactory(owner=w.s1, is_public=False, title="Scratch to delete")
    admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
    reported = ProgramFactory(owner=w.s2, is_public=True, title="Reported <b>program</b>")
    Report.objects.create(program=reported, reporter_key="ip:csp", reason="spam", note="<i>")
    locked = ProgramFactory(owner=w.s2, is_public=False, title="Locked")
    ProgramLock.objects.create(program=locked, reason="abuse", message="Why", locked_by=admin)
    a = _evaluation("trace", [True, False, True, False, False, True])
    b = _evaluation("direct", [True, True, False, False, True, True])
    course = f"/courses/{w.course.pk}/"
    staff = f"{course}assignments/{loops.pk}/"
    return {
        "course": course,
        "assignment": staff,
        "item": item.get_absolute_url(),
        "staff_pages": [
            f"{course}manage/",
            f"{staff}edit/",
            f"{staff}items/new/",
            f"{staff}items/{item.pk}/edit/",
            f"{staff}items/{item.pk}/stats/",
            f"{staff}extensions/",
            f"{staff}submissions/",
            f"{staff}gradebook/",
            f"{course}submissions/{wrong.pk}/override/",
            "/courses/new/",
        ],
        "item_stats": f"{staff}items/{item.pk}/stats/",
        "submissions": f"{staff}submissions/",
        "item_new": f"{staff}items/new/",
        "manage": f"{course}manage/",
        "scratch": scratch.get_absolute_url(),
        "evaluations": [f"/evaluations/{a.pk}/", f"/evaluations/{b.pk}/"],
        "compare": f"/evaluations/compare/?a={a.pk}&b={b.pk}",
        "reported": reported.get_absolute_url(),
        "locked": locked.get_absolute_url(),
        "moderation_pages": [
            "/moderation/",
            f"/moderation/programs/{reported.pk}/",
            f"/moderation/programs/{locked.pk}/",
            "/moderation/accounts/?q=student",
            f"/moderation/accounts/{w.s2.pk}/",
            "/moderation/log/",
            f"/programs/{reported.pk}/report/",
        ],
        "admin_pages": [
            "/admin/",
            "/admin/auth/user/",
            f"/admin/auth/user/{w.s1.pk}/change/",
            "/admin/auth/user/add/",
            "/admin/auth/group/add/",
            f"/admin/auth/user/{w.s1.pk}/change/",
        ],
    }
