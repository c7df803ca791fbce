"""An LTI 1.3 launch from the simulated LMS, over real HTTP: login initiation, the platform's
auth endpoint, the signed id_token posted back, the person landing in the right course or
assignment with the role the LMS gave; and each launch the tool must refuse."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from pytest_django.live_server_helper import LiveServer

from playground.classroom.models import AuditEvent, Membership, Role
from playground.lti.launch import state_cookie_name
from playground.lti.models import LtiContext, LtiUser, Platform, ResourceLink
from tests.classroom.student_world import assignment
from tests.factories import UserFactory
from tests.lti.conftest import browser, form_of, launch
from tests.lti.simulator import INSTRUCTOR, LEARNER, TA, Person, Prepared, Simulator

pytestmark = pytest.mark.django_db(transaction=True)

TEACHER = Person("lms-teacher-7", [INSTRUCTOR], "Ada", "Lovelace", "ada@uni.example")
STUDENT = Person("lms-student-9", [LEARNER], "Alan", "Turing", "alan@uni.example")


def test_launches_land_in_the_course_and_assignment_with_the_lms_role(
    sim: Simulator, platform: Platform, live_server: LiveServer
) -> None:
    # One story (a transactional test's flush costs more than its launches): a learner before
    # the course is set up, the instructor who sets it up, a student whose LMS address is a
    # local account's, the roles the LMS changes, a name that is markup.
    tool = live_server.url
    first = launch(browser(), sim, sim.prepare(Prepared(STUDENT, context_id="new-ctx")), tool)
    assert first.status_code == 403
    assert "not set up on this site yet" in first.text
    assert not LtiContext.objects.exists()
    # A local account with the address the LMS sends for Alan: his launch makes another one.
    local = UserFactory(username="alan", email="alan@uni.example")

    teacher = browser()
    landed = launch(teacher, sim, sim.prepare(Prepared(TEACHER)), tool)
    assert landed.status_code == 302, landed.text
    context = LtiContext.objects.get(platform=platform, context_id="ctx-1")
    course = context.course
    assert course.title == "CS 101 (LMS)"
    assert landed.headers["location"] == f"/courses/{course.pk}/manage/"
    ada = LtiUser.objects.get(platform=platform, sub=TEACHER.sub).user
    assert Membership.objects.get(course=course, user=ada).role == Role.INSTRUCTOR
    # The instructor's page works in that browser: they are signed in.
    assert teacher.get(tool + landed.headers["location"]).status_code == 200

    # A student follows a link to an assignment of the course (its id in the link's custom
    # parameters, as deep linking puts it there).
    homework = assignment(course, title="Loops homework")
    student = browser()
    hint = sim.prepare(
        Prepared(STUDENT, resource_link_id="link-hw", custom={"assignment_id": str(homework.pk)})
    )
    landed = launch(student, sim, hint, tool)
    assert landed.headers["location"] == homework.get_absolute_url()
    alan = LtiUser.objects.get(platform=platform, sub=STUDENT.sub).user
    assert Membership.objects.get(course=course, user=alan).role == Role.STUDENT
    assert (alan.first_name, alan.last_name) == ("Alan", "Turing")
    assert alan != local
    assert alan.username.startswith("alan-turing-")
    assert not alan.has_usable_password()
    assert not Membership.objects.filter(user=local).exists()
    page = student.get(tool + homework.get_absolute_url())
    assert page.status_code == 200
    assert "Loops homework" in page.text
    # The top bar greets them by the name the LMS gave, not by the made-up username.
    greeting = f'title="Signed in as {alan.username}: your account and API tokens">Alan Turing</a>'
    assert greeting in page.text
    # The staff page stays closed to them.
    assert student.get(tool + f"/courses/{course.pk}/manage/").status_code == 403
    link = ResourceLink.objects.get(resource_link_id="link-hw")
    assert link.assignment == homework
    assert link.lineitems_url == sim.lineitems_url("ctx-1")

    # The same LMS person again: the same account, no second course.
    again = launch(browser(), sim, sim.prepare(Prepared(STUDENT)), tool)
    assert again.status_code == 302
    assert LtiUser.objects.filter(sub=STUDENT.sub).count() == 1
    assert LtiContext.objects.count() == 1

    # A name that is markup is shown as text.
    mallory = Person("lms-student-666", [LEARNER], '<img src=x onerror="alert(1)">', "&amp;")
    hostile = browser()
    assert launch(hostile, sim, sim.prepare(Prepared(mallory)), tool).status_code == 302
    top = hostile.get(tool + homework.get_absolute_url()).text
    assert ">&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp;amp;</a>" in top
    assert "<img src=x" not in top

    # The LMS changes a person's role in the course: the membership follows, each change in
    # the course's audit log.
    ta = Person("lms-ta-3", [TA, INSTRUCTOR])
    for roles, expected in (
        ([LEARNER], Role.STUDENT),
        ([TA], Role.ASSISTANT),
        ([LEARNER], Role.STUDENT),
    ):
        ta.roles = roles
        assert launch(browser(), sim, sim.prepare(Prepared(ta)), tool).status_code == 302
        user = LtiUser.objects.get(sub="lms-ta-3").user
        assert Membership.objects.get(course=course, user=user).role == expected
    changes = AuditEvent.objects.filter(course_ref=course.pk, action=AuditEvent.Action.ROLE_CHANGED)
    assert [(e.detail["role_before"], e.detail["role_after"]) for e in changes.order_by("at")] == [
        ("student", "assistant"),
        ("assistant", "student"),
    ]
    # No role this site knows: refused, nothing made.
    nobody = Person("lms-guest", ["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"])
    refused = launch(browser(), sim, sim.prepare(Prepared(nobody)), tool)
    assert refused.status_code == 403
    assert "no role this site knows" in refused.text


SPOILED: list[tuple[dict[str, Any], int, str]] = [
    ({"rogue_key": True}, 400, "signature is not valid"),
    ({"aud": "another-tool"}, 400, "meant for another tool"),
    ({"aud": ["another-tool", "tool-client-1"]}, 400, "meant for another tool (its azp)"),
    ({"deployment_id": "deployment-unknown"}, 403, "deployment is not registered"),
    ({"exp_delta": -600}, 400, "The launch expired"),
    ({"nonce": "not-the-one-asked-for"}, 400, "nonce is not the one"),
    ({"message_type": "LtiSubmissionReviewRequest"}, 400, "resource-link and deep-linking"),
]


def _a_spoiled_launch_is_refused_with_a_clear_page(
    sim: Simulator, platform: Platform, tool: str
) -> None:
    for spoil, status, words in SPOILED:
        refused = launch(browser(), sim, sim.prepare(Prepared(TEACHER, **spoil)), tool)
        assert (refused.status_code, words) == (status, words), refused.text
        assert words in refused.text
        assert 'id="lti-error"' in refused.text
    assert not get_user_model().objects.filter(lti_identities__isnull=False).exists()
    assert not LtiContext.objects.exists()


def _a_replayed_launch_and_a_foreign_browser_are_refused(
    sim: Simulator, platform: Platform, tool: str
) -> None:
    client = browser()
    hint = sim.prepare(Prepared(TEACHER))
    start = client.get(tool + "/lti/login/?" + sim.login_query(hint, tool))
    auth = client.get(start.headers["location"])
    action, fields = form_of(auth.text)

    # Posted from another browser (an attacker's id_token pushed into a victim's): no cookie.
    other = browser().post(action, data=fields)
    assert other.status_code == 403
    assert "did not send back the cookie" in other.text

    assert client.post(action, data=fields).status_code == 302
    # The same post again: the state was used up.
    replay = client.post(action, data=fields)
    assert replay.status_code == 400
    assert "unknown or expired" in replay.text
    # Even with its state back (two posts racing), the nonce is accepted once only.
    cache.set(
        f"lti:state:{fields['state']}", {"platform": platform.pk, "nonce": _nonce(fields)}, 60
    )
    racer = browser()
    racer.cookies.set(state_cookie_name(fields["state"]), fields["state"])
    raced = racer.post(action, data=fields)
    assert raced.status_code == 400
    assert "already used" in raced.text


def _nonce(fields: dict[str, str]) -> str:
    import jwt

    return str(jwt.decode(fields["id_token"], options={"verify_signature": False})["nonce"])


def _login_initiation_refuses_unknown_lms_and_odd_requests(
    sim: Simulator, platform: Platform, tool: str
) -> None:
    client = browser()
    unknown = client.get(
        tool + "/lti/login/",
        params={
            "iss": "https://evil.example",
            "login_hint": "x",
            "target_link_uri": tool + "/lti/launch/",
        },
    )
    assert unknown.status_code == 403
    assert "not registered" in unknown.text
    missing = client.get(tool + "/lti/login/", params={"iss": sim.issuer})
    assert missing.status_code == 400
    assert "lacks iss, login_hint or target_link_uri" in missing.text
    elsewhere = client.get(
        tool + "/lti/login/",
        params={
            "iss": sim.issuer,
            "login_hint": "x",
            "target_link_uri": "https://elsewhere.example/",
        },
    )
    assert elsewhere.status_code == 400
    assert "not this site" in elsewhere.text
    # Markup in what the LMS sent comes back escaped.
    error = client.post(
        tool + "/lti/launch/", data={"error": "<script>alert(1)</script>", "state": "s"}
    )
    assert error.status_code == 400
    assert "&lt;script&gt;" in error.text
    assert "<script>alert" not in error.text
    assert client.post(tool + "/lti/launch/", data={}).status_code == 400


def _an_lms_whose_key_set_fails_gets_a_page_not_a_500(
    sim: Simulator, platform: Platform, tool: str
) -> None:
    for jwks_url, words in (
        (sim.base + "/no-such-key-set", "could not be fetched"),  # a 404
        (tool + "/", "could not be read"),  # a page, not JSON
    ):
        Platform.objects.filter(pk=platform.pk).update(jwks_url=jwks_url)
        refused = launch(browser(), sim, sim.prepare(Prepared(TEACHER)), tool)
        assert refused.status_code == 502
        assert words in refused.text


def test_every_refused_launch_gets_a_clear_page_never_a_500(
    sim: Simulator, platform: Platform, live_server: LiveServer
) -> None:
    # One test for all of them: each is a launch or two, and a transactional test's flush (the
    # live server needs one) costs more than all of them. In this order: the spoiled launches
    # check that nothing was made, the key set's failures change the registration.
    tool = live_server.url
    _a_spoiled_launch_is_refused_with_a_clear_page(sim, platform, tool)
    _a_replayed_launch_and_a_foreign_browser_are_refused(sim, platform, tool)
    _login_initiation_refuses_unknown_lms_and_odd_requests(sim, platform, tool)
    _an_lms_whose_key_set_fails_gets_a_page_not_a_500(sim, platform, tool)
