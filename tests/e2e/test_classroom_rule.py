"""A student answers an "execute under a changed rule" item in a real browser (issue 21): the
rule's sentence in its banner above the question, Python's usual answer marked wrong, the rule's
right, and then both runs: the one under the rule in the viewer, standard Python's beside it."""

from __future__ import annotations

import os
import re

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.classroom.models import Item, Mode
from playground.runs.models import Run, Trace
from playground.sandbox.inside.semantics import RULES
from tests.classroom.student_world import (
    assignment,
    course_world,
    hand_made_key,
    library_program,
)
from tests.e2e.conftest import log_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SOURCE = "def f(a, b):\n    s = a + b\n    return s * 2\n"
CALL = "f(5, 3)"  # 16; under swap-add-sub 4
RULE = "swap-add-sub"
SHOTS = os.environ.get("PLAYGROUND_SCREENSHOTS", "")


def test_a_student_predicts_under_the_rule_and_then_sees_both_runs(
    page: Page, live_server: LiveServer
) -> None:
    w = course_world()
    program = library_program(source=SOURCE, call=CALL, expected="16")
    item = Item.objects.create(
        assignment=assignment(w.course), mode=Mode.RULE, program=program, rule=RULE,
        title="Plus subtracts",
    )  # fmt: skip
    key = hand_made_key(item, real=sandbox.run(SOURCE, call=CALL, rule=RULE), owner=w.instructor)
    Run.objects.filter(pk=key.pk).update(rule=RULE, method="real")
    Trace.objects.create(
        run=key, kind=Trace.Kind.STANDARD, status="ok", data=sandbox.run(SOURCE, call=CALL)
    )

    log_in(page, live_server.url, "student1")
    page.goto(live_server.url + item.get_absolute_url())
    expect(page.locator("#rule-banner")).to_contain_text(RULES[RULE].text)
    expect(page.locator("#viewer")).to_have_count(0)
    page.locator("#answer-field").fill("16")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#result")).to_contain_text("Wrong")
    expect(page.locator("#standard-run")).to_have_count(0)

    page.locator("#answer-field").fill("4")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#result")).to_contain_text("Right")
    expect(page.locator("#key-trace h2").first).to_have_text("The run under the rule")
    expect(page.locator("#key-trace .banner").first).to_contain_text("returned 4")
    expect(page.locator("#standard-run")).to_contain_text("f(5, 3) returns 16")
    # The run under the rule steps: s is 2 after line 2, not 8.
    page.locator("#viewer").get_by_role("button", name="Last »").click()
    expect(page.locator("#vars tr").filter(has_text=re.compile(r"^\s*s\s*\d"))).to_have_text(
        re.compile(r"^\s*s\s*2\s*$")
    )
    expect(page.locator("#standard-steps")).to_contain_text("s = 8")
    expect(page.locator("#standard-steps")).to_contain_text("return value = 16")
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, "classroom_rule.png"), full_page=True)
