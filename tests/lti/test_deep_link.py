"""Deep linking with the simulated LMS: an instructor picks assignments, the tool's signed
answer goes back to the LMS, which verifies it with the tool's published keys (before and after
a key rotation) and gets one link and gradebook column per assignment; a student's launch of
such a link lands on its assignment. Plus the management command an admin registers with."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from pytest_django.live_server_helper import LiveServer

from playground.classroom.models import Course
from playground.lti import keys
from playground.lti.models import LtiContext, Platform
from tests.classroom.student_world import assignment
from tests.lti.conftest import browser, form_of, launch
from tests.lti.simulator import INSTRUCTOR, LEARNER, Person, Prepared, Simulator

pytestmark = pytest.mark.django_db(transaction=True)

TEACHER = Person("lms-teacher-4", [INSTRUCTOR])
STUDENT = Person("lms-student-5", [LEARNER])


def test_an_instructor_picks_assignments_and_the_lms_gets_signed_links(
    sim: Simulator, platform: Platform, live_server: LiveServer
) -> None:
    tool = live_server.url
    launch(browser(), sim, sim.prepare(Prepared(TEACHER)), tool)
    course = LtiContext.objects.get().course
    loops = assignment(course, title="Loops <b>1</b>")
    exam = assignment(course, title="Midterm", time_limit=30)
    assignment(course, title="Not picked")
    keys.rotate()  # the LMS must still verify with the published set

    teacher = browser()
    landed = launch(
        teacher, sim, sim.prepare(Prepared(TEACHER, message_type="LtiDeepLinkingRequest")), tool
    )
    assert landed.status_code == 302
    assert landed.headers["location"].startswith("/lti/deep-link/")
    picker = teacher.get(tool + landed.headers["location"])
    assert picker.status_code == 200
    assert "Loops &lt;b&gt;1&lt;/b&gt;" in picker.text
    csrf = {"csrfmiddlewaretoken": teacher.cookies["csrftoken"]}
    nothing = teacher.post(tool + landed.headers["location"], data=csrf)
    assert nothing.status_code == 400
    assert "Pick at least one" in nothing.text
    answer = teacher.post(
        tool + landed.headers["location"],
        data={**csrf, "assignment": [str(loops.pk), str(exam.pk)]},
    )
    assert answer.status_code == 200
    assert (
        sim.base in answer.headers["content-security-policy"].split("form-action")[1].split(";")[0]
    )
    action, fields = form_of(answer.text)
    assert action == sim.base + "/deep_link_return"
    received = browser().post(action, data=fields)
    assert received.status_code == 200, sim.deep_link_returns
    [claims] = sim.deep_link_returns
    assert (
        claims["https://purl.imsglobal.org/spec/lti/claim/message_type"] == "LtiDeepLinkingResponse"
    )
    assert claims["https://purl.imsglobal.org/spec/lti-dl/claim/data"] == "opaque-lms-data"
    assert claims["https://purl.imsglobal.org/spec/lti/claim/deployment_id"] == sim.deployment_id
    items = claims["https://purl.imsglobal.org/spec/lti-dl/claim/content_items"]
    assert [(i["title"], i["custom"]["assignment_id"]) for i in items] == [
        ("Loops <b>1</b>", str(loops.pk)),
        ("Midterm", str(exam.pk)),
    ]
    assert items[1]["lineItem"]["resourceId"] == f"assignment-{exam.pk}"
    assert items[0]["url"] == tool + "/lti/launch/"
    # The request is used up: the same page again is a 404.
    assert teacher.get(tool + landed.headers["location"]).status_code == 404

    # The LMS made a link of the second item: a student's launch lands on the exam.
    hint = sim.prepare(Prepared(STUDENT, resource_link_id="lms-link-9", custom=items[1]["custom"]))
    assert launch(browser(), sim, hint, tool).headers["location"] == exam.get_absolute_url()
    # A learner's deep-linking request is refused.
    refused = launch(
        browser(), sim, sim.prepare(Prepared(STUDENT, message_type="LtiDeepLinkingRequest")), tool
    )
    assert refused.status_code == 403
    assert "may pick assignments for the LMS" in refused.text
    # A link naming an assignment of another course is refused.
    other = assignment(Course.objects.create(title="Other"), title="x")
    hint = sim.prepare(
        Prepared(STUDENT, resource_link_id="lms-link-x", custom={"assignment_id": str(other.pk)})
    )
    assert launch(browser(), sim, hint, tool).status_code == 404


@pytest.mark.django_db  # no live server: a rolled-back test, not a flushed one
def test_an_admin_registers_a_platform_with_the_command(db: None) -> None:
    out = StringIO()
    args = [
        "add", "--name", "Moodle", "--issuer", "https://moodle.uni.example", "--client-id", "abc",
        "--deployment", "1", "--deployment", "2", "--auth-url", "https://moodle.uni.example/auth",
        "--token-url", "https://moodle.uni.example/token", "--jwks-url", "https://moodle.uni.example/certs",
    ]  # fmt: skip
    call_command("lti_platform", *args, stdout=out)
    platform = Platform.objects.get(issuer="https://moodle.uni.example")
    assert platform.deployment_ids == ["1", "2"]
    assert "/lti/login/" in out.getvalue()
    assert platform.origins() == ["https://moodle.uni.example"]
    # The tool has a key, published without its private half.
    published = keys.jwks()["keys"]
    assert len(published) == 1
    assert "d" not in published[0]
    assert published[0]["kid"]
    call_command("lti_platform", "rotate-key", stdout=out)
    assert len(keys.jwks()["keys"]) == 2
    assert keys.signing_key().kid == keys.jwks()["keys"][0]["kid"]
    with pytest.raises(Exception, match="jwks_url"):
        call_command(
            "lti_platform",
            *[a if a != "https://moodle.uni.example/certs" else "not a url" for a in args],
        )
