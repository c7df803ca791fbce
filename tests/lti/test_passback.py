"""Grades back to the simulated LMS (Assignment and Grade Services): a token by the client
credentials grant with the tool's signed assertion (verified by the LMS against the tool's
JWKS), the line item made once, the score posted after grading, again after an override and a
regrade, and again after the LMS failed once; the staff see what was sent and may resend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from pytest_django.live_server_helper import LiveServer

from playground.celery import app
from playground.classroom.models import Feedback, Item, Mode, Submission
from playground.classroom.regrading import regrade
from playground.classroom.submissions import override, submit
from playground.lti.models import LtiContext, LtiUser, Platform, ScoreLog, ScoreSend
from playground.lti.tasks import send_revealed_scores
from tests.classroom.student_world import (
    SECRET,
    assignment,
    close,
    hand_made_key,
    library_program,
    real_trace,
)
from tests.lti.conftest import browser, launch
from tests.lti.simulator import INSTRUCTOR, LEARNER, Person, Prepared, Simulator

pytestmark = pytest.mark.django_db(transaction=True)

TEACHER = Person("lms-teacher-1", [INSTRUCTOR])
STUDENT = Person("lms-student-2", [LEARNER])


def _world(sim: Simulator, tool: str) -> tuple[Item, Item, object]:
    teacher = browser()
    launch(teacher, sim, sim.prepare(Prepared(TEACHER)), tool)
    course = LtiContext.objects.get().course
    homework = assignment(course, title="Strings")
    items = []
    program = library_program()
    for position in range(2):
        item = Item.objects.create(
            assignment=homework, mode=Mode.OUTPUT, program=program, position=position
        )
        hand_made_key(item, real=real_trace(f"'{SECRET}'"))
        items.append(item)
    hint = sim.prepare(
        Prepared(
            STUDENT, resource_link_id="link-strings", custom={"assignment_id": str(homework.pk)}
        )
    )
    student = browser()
    assert launch(student, sim, hint, tool).status_code == 302
    return items[0], items[1], LtiUser.objects.get(sub=STUDENT.sub).user


def test_grades_go_back_after_grading_override_a_failing_lms_and_a_regrade_staff_resend(
    sim: Simulator, platform: Platform, live_server: LiveServer, eager: None
) -> None:
    first, second, student = _world(sim, live_server.url)
    submission, _ = submit(item=first, student=student, answer=f"'{SECRET}'")
    assert submission is not None
    # The line item was made once, from the link, with the assignment's points.
    [(url, line_item)] = sim.line_items.items()
    assert line_item["label"] == "Strings"
    assert line_item["resourceLinkId"] == "link-strings"
    assert line_item["scoreMaximum"] == 2.0
    [score] = sim.scores
    assert score["lineitem"] == url
    assert score["userId"] == STUDENT.sub
    assert (score["scoreGiven"], score["scoreMaximum"]) == (1.0, 2.0)
    assert score["gradingProgress"] == "FullyGraded"
    assert score["activityProgress"] == "InProgress"
    assert all(r["ok"] for r in sim.token_requests)
    assert len(sim.token_requests) == 1

    # A wrong answer on the second item, then the instructor's override of it.
    wrong, _ = submit(item=second, student=student, answer="'nope'")
    assert wrong is not None
    assert (sim.scores[-1]["scoreGiven"], sim.scores[-1]["activityProgress"]) == (1.0, "Completed")
    override(Submission.objects.get(pk=wrong.pk), credit=0.5, comment="close", by=None)
    assert sim.scores[-1]["scoreGiven"] == 1.5

    # The LMS fails once: the task tries again and the score arrives.
    sim.fail_scores = 1
    override(Submission.objects.get(pk=wrong.pk), credit=1.0, comment="right after all", by=None)
    assert sim.scores[-1]["scoreGiven"] == 2.0
    row = ScoreSend.objects.get(student=student)
    assert row.status == ScoreSend.Status.SENT
    assert row.score_given == 2.0
    outcomes = list(
        ScoreLog.objects.filter(send=row).order_by("at", "id").values_list("http_status", "outcome")
    )
    assert outcomes[-2:] == [(500, "Score: the LMS answered 500"), (200, "sent")]
    # The first item's key changes and its answers are regraded: the LMS hears the new total.
    hand_made_key(first, real=real_trace("'another'"))
    regrade(first, by=None)
    assert sim.scores[-1]["scoreGiven"] == 1.0
    # One token for all of it (cached), one line item, every assertion verified by the LMS.
    assert len(sim.token_requests) == 1
    assert len(sim.line_items) == 1

    # The course's staff see what was sent (and may send it again); students may not.
    tool = live_server.url
    course = first.assignment.course
    teacher = browser()
    landed = launch(teacher, sim, sim.prepare(Prepared(TEACHER)), tool)
    # The course's manage page, where the LMS launch lands staff, leads to the page.
    manage = teacher.get(tool + landed.headers["location"])
    assert f'href="/lti/courses/{course.pk}/scores/" id="lti-scores-link"' in manage.text
    page = teacher.get(f"{tool}/lti/courses/{course.pk}/scores/")
    assert page.status_code == 200
    assert "1 / 2" in page.text
    assert "Sent" in page.text
    csrf = teacher.cookies.get("csrftoken")
    sent_before = len(sim.scores)
    resent = teacher.post(
        f"{tool}/lti/courses/{course.pk}/scores/{row.pk}/resend/",
        data={"csrfmiddlewaretoken": csrf},
        headers={"Referer": tool + "/"},
    )
    assert resent.status_code == 302
    assert len(sim.scores) == sent_before + 1
    assert sim.scores[-1] == {
        **sim.scores[-2],
        "timestamp": sim.scores[-1]["timestamp"],
    }
    assert (
        ScoreLog.objects.filter(send=row).first().by
        == LtiUser.objects.get(sub=TEACHER.sub).user.username
    )  # type: ignore[union-attr]

    learner = browser()
    launch(learner, sim, sim.prepare(Prepared(STUDENT)), tool)
    assert learner.get(f"{tool}/lti/courses/{course.pk}/scores/").status_code == 403
    assert browser().get(f"{tool}/lti/courses/{course.pk}/scores/").status_code == 302  # to login


def test_a_grade_hidden_until_the_due_time_goes_back_once_the_assignment_closes(
    sim: Simulator, platform: Platform, live_server: LiveServer, eager: None
) -> None:
    first, _, student = _world(sim, live_server.url)
    homework = first.assignment
    homework.feedback = Feedback.AFTER_DUE
    homework.save(update_fields=["feedback"])
    submit(item=first, student=student, answer=f"'{SECRET}'")
    assert "scoreGiven" not in sim.scores[-1]
    assert sim.scores[-1]["gradingProgress"] == "Pending"
    assert send_revealed_scores() == 0  # still open: nothing to send
    # Time passes: the answer was sent three days ago, the windows closed since.
    ScoreSend.objects.update(sent_at=timezone.now() - timedelta(days=3))
    close(homework)
    assert send_revealed_scores() == 1
    assert (sim.scores[-1]["scoreGiven"], sim.scores[-1]["gradingProgress"]) == (1.0, "FullyGraded")
    assert send_revealed_scores() == 0  # sent after the close: not again
    app.loader.import_default_modules()
    entry = app.conf.beat_schedule["lti-revealed-scores"]
    assert entry["task"] in app.tasks
    assert app.amqp.router.route({}, entry["task"])["queue"].name == "default"
