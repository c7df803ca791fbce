"""LTI 1.3 in a real browser (issue 25): a student clicks the timed exam's link in the
simulated LMS, lands on the exam signed in as their LMS person, starts it, answers, and the
LMS's gradebook receives the grade (Assignment and Grade Services)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground.classroom import publishing
from playground.classroom.models import Item, Mode
from playground.lti.models import LtiContext, LtiUser, Platform, ScoreSend
from tests.classroom.student_world import (
    SECRET,
    assignment,
    hand_made_key,
    library_program,
    real_trace,
)
from tests.lti.conftest import browser, launch
from tests.lti.simulator import INSTRUCTOR, LEARNER, Person, Prepared, Simulator

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path("/tmp/playground-e2e")


@pytest.fixture
def sim(live_server: LiveServer) -> Iterator[Simulator]:
    # The LMS on the same host name as the site: a plain-HTTP test cannot have the
    # SameSite=None cookies a cross-site LMS needs (they require HTTPS), so it is same-site.
    simulator = Simulator(public_host="localhost")
    simulator.tool_jwks_url = live_server.url + "/lti/jwks/"
    yield simulator
    simulator.close()


def test_a_student_launched_from_the_lms_takes_a_timed_exam_and_the_lms_gets_the_grade(
    page: Page, live_server: LiveServer, sim: Simulator, eager: None
) -> None:
    tool = live_server.url
    Platform.objects.create(**sim.registration())
    teacher = Person("lms-prof", [INSTRUCTOR])
    assert launch(browser(), sim, sim.prepare(Prepared(teacher)), tool).status_code == 302
    course = LtiContext.objects.get().course
    exam = assignment(course, title="Midterm", time_limit=20, exam_mode=True)
    item = Item.objects.create(assignment=exam, mode=Mode.OUTPUT, program=library_program())
    hand_made_key(item, real=real_trace(f"'{SECRET}'"))

    student = Person("lms-stud-42", [LEARNER], "Grace", "Hopper")
    hint = sim.prepare(
        Prepared(student, resource_link_id="midterm-link", custom={"assignment_id": str(exam.pk)})
    )
    # The LMS's link: login initiation, the LMS's auto-posting form, the launch.
    page.goto(f"{sim.base}/start/{hint}?tool={tool}")
    page.wait_for_url(lambda url: url.endswith(exam.get_absolute_url()))
    expect(page.locator("h1")).to_contain_text("Midterm")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "lti-exam-landed.png"))
    page.get_by_role("button", name="Start the exam").click()
    page.wait_for_url(lambda url: url.endswith(item.get_absolute_url()))
    page.locator("#answer-field").fill(f"'{SECRET}'")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#result")).to_contain_text("Submitted")
    page.screenshot(path=str(SHOTS / "lti-exam-answered.png"), full_page=True)

    grace = LtiUser.objects.get(sub="lms-stud-42").user
    assert grace.first_name == "Grace"
    # An exam's results wait for the instructor: the LMS hears "done, grade pending", no score.
    [pending] = sim.scores
    assert pending["userId"] == "lms-stud-42"
    assert "scoreGiven" not in pending
    assert pending["activityProgress"] == "Completed"
    assert pending["gradingProgress"] == "Pending"

    # The instructor publishes the results: the grade goes to the LMS.
    publishing.publish(assignment=exam, by=LtiUser.objects.get(sub="lms-prof").user)
    page.goto(tool + exam.get_absolute_url())
    expect(page.locator(".score")).to_contain_text("100%")
    page.screenshot(path=str(SHOTS / "lti-exam-published.png"))
    score = sim.scores[-1]
    assert (score["scoreGiven"], score["scoreMaximum"]) == (1.0, 1.0)
    assert score["activityProgress"] == "Completed"
    assert score["gradingProgress"] == "FullyGraded"
    [line_item] = sim.line_items.values()
    assert line_item["label"] == "Midterm"
    assert line_item["resourceLinkId"] == "midterm-link"
    assert ScoreSend.objects.get(student=grace).status == ScoreSend.Status.SENT

    # The instructor, launched from the LMS too, sees what was sent.
    staff = page.context.browser.new_context(viewport={"width": 1200, "height": 900})  # type: ignore[union-attr]
    mine = staff.new_page()
    mine.goto(f"{sim.base}/start/{sim.prepare(Prepared(teacher))}?tool={tool}")
    mine.wait_for_url(lambda url: url.endswith(f"/courses/{course.pk}/manage/"))
    mine.locator("#lti-scores-link").click()
    row = mine.locator("#lti-scores tbody tr")
    expect(row).to_contain_text("Midterm")
    expect(row).to_contain_text("Sent")
    expect(row).to_contain_text("1 / 1")
    mine.screenshot(path=str(SHOTS / "lti-scores.png"), full_page=True)
    staff.close()
