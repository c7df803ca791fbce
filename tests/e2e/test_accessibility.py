"""axe-core (tests/vendor/, pinned) on a listed set of pages that together render every template
under templates/: no violation of impact serious or critical against WCAG 2.0/2.1 A and AA.

PAGES is the list: one row per page (its name, how to build its URL from the seeded world, who
is signed in, the templates it is there to cover). A new page is one row; a new template is
named by a row, or by COVERED_ELSEWHERE / NOT_A_PAGE with the reason. The first test checks the
table against the files on disk (no browser); the second loads every row in one browser context,
checks that Django rendered each row's templates while serving it (django.test.signals
.template_rendered, in this process: the live server is a thread of it), and runs axe there.

axe is injected in a context made with ``bypass_csp=True``: the site's policy allows no script
but its own, and this context is for the check alone (tests/e2e/test_csp.py checks the policy).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.test.signals import template_rendered
from playwright.sync_api import Browser, BrowserContext, Page
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.classroom.models import Item, Mode
from playground.compare import compare_traces
from playground.lib import paths
from playground.programs.models import Task, TaskExample
from playground.runs.models import Run
from playground.sharing.models import ExpiredLink, ShareLink
from tests.classroom.student_world import hand_made_key, library_program, puzzle
from tests.e2e import csp_world
from tests.e2e.conftest import session_cookie
from tests.factories import ProgramFactory, UserFactory, store_traces

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE = paths.REPO_DIR / "tests" / "vendor" / "axe-core-4.14.1.min.js"
TEMPLATES = paths.REPO_DIR / "templates"
# WCAG 2.0 and 2.1, levels A and AA (axe's tags; "best-practice" rules are not asked).
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}
SHOTS = os.environ.get("PLAYGROUND_SCREENSHOTS", "")

ANON, STUDENT, TEACHER, ADMIN = None, "student1", "teacher", "admin"
RULE = "swap-add-sub"  # a changed rule of Python (playground/sandbox's rules)
World = dict[str, Any]


@dataclass(frozen=True)
class Row:
    name: str
    url: Callable[[World], str]
    who: str | None  # a username of the seeded world, or None: nobody signed in
    templates: tuple[str, ...]
    status: int = 200


def _at(key: str, suffix: str = "") -> Callable[[World], str]:
    return lambda w: str(w[key]) + suffix


def _path(path: str) -> Callable[[World], str]:
    return lambda w: path


PAGES: list[Row] = [
    # Public pages.
    Row("home", _path("/"), ANON, ("home.html", "base.html", "programs/_program_fields.html")),
    Row("library", _path("/library/?dataset=cruxeval"), ANON,
        ("programs/library.html", "programs/_pagination.html")),
    Row("puzzle", _at("puzzle"), ANON,
        ("programs/puzzle_detail.html", "runs/_run_form.html")),
    Row("task", _at("task"), ANON, ("programs/task_detail.html",)),
    Row("task example", _at("task", "0/"), ANON, ("programs/task_example.html",)),
    Row("login", _path("/accounts/login/"), ANON, ("registration/login.html",)),
    Row("signup", _path("/accounts/signup/"), ANON, ("registration/signup.html",)),
    Row("password reset", _path("/accounts/password/reset/"), ANON,
        ("registration/password_reset_form.html",)),
    Row("password reset sent", _path("/accounts/password/reset/sent/"), ANON,
        ("registration/password_reset_done.html",)),
    Row("password reset link", _path("/accounts/password/reset/MQ/bad-token/"), ANON,
        ("registration/password_reset_confirm.html",)),
    Row("password reset complete", _path("/accounts/password/reset/done/"), ANON,
        ("registration/password_reset_complete.html",)),
    Row("leaderboard", _path("/evaluations/"), ANON, ("benchmarks/leaderboard.html",)),
    Row("evaluation", _at("evaluation"), ANON,
        ("benchmarks/detail.html", "benchmarks/_accuracy_table.html", "benchmarks/_chart.html")),
    Row("evaluations compared", _at("evaluations_compare"), ANON,
        ("benchmarks/compare.html", "benchmarks/_compare_pairs.html")),
    Row("shared run", _at("share"), ANON, ("runs/run_detail.html",)),
    Row("shared run embed", _at("share", "embed/"), ANON, ("sharing/embed.html",)),
    Row("expired share", _at("expired_share"), ANON, ("sharing/expired.html",), 404),
    Row("expired share embed", _at("expired_share", "embed/"), ANON,
        ("sharing/expired_embed.html",), 404),
    Row("hidden share", _at("hidden_share"), ANON, ("classroom/hidden.html",), 404),
    Row("hidden share embed", _at("hidden_share", "embed/"), ANON,
        ("sharing/hidden_embed.html",), 404),
    # Error pages, reached for real.
    Row("404", _path("/no-such-page/"), ANON, ("404.html",), 404),
    Row("400", _path("/library/?q=%00"), ANON, ("400.html", "_error_base.html"), 400),
    Row("405", _at("cancel_url"), STUDENT, ("405.html",), 405),
    # A signed-in student.
    Row("new program", _path("/programs/new/"), STUDENT, ("programs/program_form.html",)),
    Row("my programs", _path("/programs/mine/"), STUDENT, ("programs/my_programs.html",)),
    Row("program", _at("scratch"), STUDENT,
        ("programs/program_detail.html", "moderation/_program_panel.html")),
    Row("my runs", _path("/runs/"), STUDENT, ("runs/my_runs.html",)),
    Row("run compared", _at("compared_run"), STUDENT,
        ("runs/run_detail.html", "runs/_verdict.html", "runs/_compare.html",
         "runs/_surprise.html")),
    Row("account", _path("/accounts/"), STUDENT, ("registration/account.html",)),
    Row("my courses", _path("/courses/"), STUDENT, ("classroom/student/my_courses.html",)),
    Row("course", _at("course"), STUDENT, ("classroom/student/course.html",)),
    Row("assignment", _at("assignment"), STUDENT, ("classroom/student/assignment.html",)),
    Row("item: output, graded", _at("item"), STUDENT, ("classroom/student/item.html",)),
    Row("item: trace", _at("item_trace"), STUDENT, ("classroom/student/item.html",)),
    Row("item: divergence", _at("item_divergence"), STUDENT, ("classroom/student/item.html",)),
    Row("item: probes", _at("item_probes"), STUDENT, ("classroom/student/item.html",)),
    Row("item: next state", _at("item_next_state"), STUDENT,
        ("classroom/student/item.html", "classroom/student/_next_state.html")),
    Row("report a program", _at("report"), STUDENT,
        ("moderation/report.html", "moderation/_report_fields.html")),
    # The instructor.
    Row("course manage", _at("course", "manage/"), TEACHER,
        ("classroom/staff/course_manage.html", "classroom/staff/_base.html")),
    Row("course new", _path("/courses/new/"), TEACHER,
        ("classroom/staff/course_new.html",)),
    Row("assignment edit", _at("staff", "edit/"), TEACHER,
        ("classroom/staff/assignment_form.html",)),
    Row("item new", _at("staff", "items/new/"), TEACHER,
        ("classroom/staff/item_form.html", "classroom/staff/_field.html")),
    Row("item delete", _at("item_staff", "delete/"), TEACHER,
        ("classroom/staff/item_delete.html",)),
    Row("item stats", _at("item_staff", "stats/"), TEACHER, ("classroom/staff/item_stats.html",)),
    Row("extensions", _at("staff", "extensions/"), TEACHER, ("classroom/staff/extensions.html",)),
    Row("submissions", _at("staff", "submissions/"), TEACHER,
        ("classroom/staff/submissions.html",)),
    Row("gradebook", _at("staff", "gradebook/"), TEACHER, ("classroom/staff/gradebook.html",)),
    Row("course gradebook", _at("course", "gradebook/"), TEACHER,
        ("classroom/staff/course_gradebook.html",)),
    Row("override", _at("override"), TEACHER, ("classroom/staff/override.html",)),
    Row("audit log", _at("course", "audit/"), TEACHER, ("classroom/staff/audit_log.html",)),
    Row("item (staff view)", _at("item"), TEACHER,
        ("classroom/student/item.html", "runs/_trace_viewer.html")),
    # Site staff.
    Row("evaluation start", _path("/evaluations/start/"), ADMIN,
        ("benchmarks/start.html", "benchmarks/_start_form.html", "benchmarks/_start_field.html")),
    Row("evaluation import", _path("/evaluations/import/"), ADMIN, ("benchmarks/import.html",)),
    Row("moderation reports", _path("/moderation/"), ADMIN,
        ("moderation/reports.html", "moderation/_nav.html")),
    Row("moderation program", _at("moderation_program"), ADMIN,
        ("moderation/program.html",)),
    Row("moderation accounts", _path("/moderation/accounts/?q=student"), ADMIN,
        ("moderation/accounts.html",)),
    Row("moderation account", _at("moderation_account"), ADMIN, ("moderation/account.html",)),
    Row("moderation log", _path("/moderation/log/"), ADMIN,
        ("moderation/log.html", "moderation/_events.html")),
]  # fmt: skip

# Templates no row is there for, each with the reason.
COVERED_ELSEWHERE: dict[str, str] = {}
# Pages written at the same time as this list (issue 25's LTI 1.3 and privacy parts): each is
# to get a row in PAGES (and leave this table) once its page settles.
PENDING_ROWS: dict[str, str] = {
    "lti/deep_link.html": "LTI 1.3, in progress",
    "lti/deep_link_return.html": "LTI 1.3, in progress",
    "lti/error.html": "LTI 1.3, in progress",
    "lti/scores.html": "LTI 1.3, in progress",
    "privacy/delete_account.html": "privacy, in progress",
}
NOT_A_PAGE: dict[str, str] = {
    "registration/password_reset_email.html": "the body of an e-mail, not a page",
    "403.html": "TODO",
    "403_csrf.html": "TODO",
    "413.html": "TODO",
    "429.html": "TODO",
    "500.html": "TODO",
    "benchmarks/_surprise_ranking.html": "TODO",
    "benchmarks/_paired.html": "TODO",
    "benchmarks/_step_table.html": "TODO",
    "classroom/student/_exam_clock.html": "TODO",
    "classroom/student/invitation.html": "TODO",
    "runs/_probes.html": "TODO",
    "runs/_standard_run.html": "TODO",
    "runs/_stepping.html": "TODO",
}


_EXCLUDED = set(COVERED_ELSEWHERE) | set(NOT_A_PAGE) | set(PENDING_ROWS)


def _all_templates() -> set[str]:
    return {str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html")}


def test_the_listed_pages_name_every_template() -> None:
    named = {t for row in PAGES for t in row.templates} | _EXCLUDED
    on_disk = _all_templates()
    unnamed = sorted(on_disk - named)
    assert unnamed == [], f"add a row to PAGES (or an exclusion with its reason) for {unnamed}"
    gone = sorted(named - on_disk)
    assert gone == [], f"rows and exclusions name templates that are not on disk: {gone}"
    names = [row.name for row in PAGES]
    assert len(names) == len(set(names)), "two rows of one name"


def seed_world() -> World:
    """csp_world's course, evaluations and moderation data, plus a compared run with a share
    link, an expired link, and an item of each answer form (tests/e2e/test_keyboard_only.py
    uses it too)."""
    w: World = csp_world.seed()
    from playground.classroom.models import Assignment, Submission

    student = UserFactory._meta.model.objects.get(username=STUDENT)
    teacher = UserFactory._meta.model.objects.get(username=TEACHER)
    item = Item.objects.get(pk=int(str(w["item"]).rstrip("/").split("/")[-1]))
    loops = Assignment.objects.get(pk=item.assignment_id)
    w["item_staff"] = w["assignment"] + f"items/{item.pk}/"
    w["staff"] = w["assignment"]
    w["assignment"] = loops.get_absolute_url()
    wrong = Submission.objects.get(item=item, student__username="student2")
    w["override"] = f"{w['course']}submissions/{wrong.pk}/override/"
    w["evaluation"] = w["evaluations"][0]
    w["evaluations_compare"] = w["compare"]
    w["report"] = w["reported"] + "report/"
    w["moderation_program"] = w["moderation_pages"][1]
    w["moderation_account"] = w["moderation_pages"][4]

    run = compared_run(student)
    w["compared_run"] = run.get_absolute_url()
    w["cancel_url"] = f"/runs/{run.pk}/cancel/"
    w["share"] = ShareLink.objects.create(run=run, created_by=student).get_absolute_url()
    w["expired_share"] = "/s/" + ExpiredLink.objects.create(token="gone-" + "x" * 20).token + "/"
    w["hidden_share"] = ShareLink.objects.create(run=item.key_run).get_absolute_url()

    w["puzzle"] = puzzle().get_absolute_url()
    task = Task.objects.create(name="navigate")
    TaskExample.objects.create(task=task, index=0, input="Take 1 step. Take 1 step back.",
                               target="Yes")  # fmt: skip
    w["task"] = task.get_absolute_url()

    source = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
    call = "f([40, 900])"
    real = sandbox.run(source, call=call)
    program = library_program(source=source, call=call, expected="940", external_id="sum")
    for mode, key_name, extra in (
        (Mode.TRACE, "item_trace",
         {"checkpoints": [{"line": 4, "occurrence": 1, "variables": ["total", "x"]}]}),
        (Mode.DIVERGENCE, "item_divergence", {}),
        (Mode.PROBES, "item_probes", {}),
        (Mode.NEXT_STATE, "item_next_state", {"step_choice": {"steps": [4, 7]}}),
        (Mode.INPUT, "item_input", {}),
        (Mode.BEAT_MODEL, "item_beat", {}),
        (Mode.OUTPUT, "item_output", {}),
        (Mode.RULE, "item_rule", {"rule": RULE}),
    ):  # fmt: skip
        new = Item.objects.create(assignment=loops, mode=mode, program=program, title=mode.label,
                                  **extra)  # fmt: skip
        emulated = None
        if mode == Mode.DIVERGENCE:
            emulated = copy.deepcopy(real)
            emulated["steps"][3]["locals"] = {"total": "1"}
        key_real = sandbox.run(source, call=call, rule=RULE) if mode == Mode.RULE else real
        key = hand_made_key(new, real=key_real, emulated=emulated, prediction="940", owner=teacher)
        if mode == Mode.RULE:
            Run.objects.filter(pk=key.pk).update(rule=RULE, method="real")
        w[key_name] = new.get_absolute_url()
    w["item_puzzle"] = Item.objects.create(
        assignment=loops, mode=Mode.PUZZLE, puzzle=puzzle(name="Repeat_1:0"), title="A puzzle"
    ).get_absolute_url()
    return w


def compared_run(user: Any) -> Run:
    """A finished Chain of Code run of ``user``'s, wrong at one step, with its comparison."""
    source = (
        "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n"
    )
    real = sandbox.run(source, call="f(3)")
    emulated = {**copy.deepcopy(real), "source": "emulated", "method": "coc"}
    emulated["steps"][6]["locals"]["total"] = "42"
    program = ProgramFactory(source=source, call="f(3)", owner=user, title="Sum below n")
    run = Run.objects.create(
        program=program, owner=user, method="coc", model="test-model", status=Run.Status.DONE,
        emulation_done=True, source=source, call="f(3)",
        verdict={"status": "wrong", "explanation": "The trace departs from the real run."},
        comparison=compare_traces(real, emulated).as_dict(),
    )  # fmt: skip
    store_traces(run, real, emulated)
    return run


@pytest.fixture
def axe_context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1200, "height": 900}, bypass_csp=True)
    yield context
    context.close()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe's violations of the WCAG 2.0/2.1 A and AA rules on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: "
        "['violations']})",
        WCAG_TAGS,
    )
    violations: list[dict[str, Any]] = result["violations"]
    return violations


def describe(where: str, violations: list[dict[str, Any]]) -> list[str]:
    """One line per node: the page, the rule, its impact, the target, the help URL."""
    lines = []
    for v in violations:
        if v["impact"] not in BLOCKING:
            continue
        for node in v["nodes"][:5]:
            lines.append(
                f"{where}: {v['id']} ({v['impact']}) at {' '.join(map(str, node['target']))}"
                f" · {v['help']} · {v['helpUrl']}"
                f"\n    {node.get('failureSummary', '').replace(chr(10), ' ')}"
            )
    return lines


def sign_in_as(context: BrowserContext, who: str | None, base: str) -> None:
    context.clear_cookies()
    if who is not None:
        user = UserFactory._meta.model.objects.get(username=who)
        context.add_cookies([session_cookie(user, base)])


def test_every_listed_page_passes_axe(axe_context: BrowserContext, live_server: LiveServer) -> None:
    world = seed_world()
    rendered: list[str] = []

    def record(sender: Any, template: Any, **kwargs: Any) -> None:
        if template.name:
            rendered.append(template.name.split("#")[0])

    template_rendered.connect(record)
    page = axe_context.new_page()
    page.set_default_timeout(15_000)
    problems: list[str] = []
    seen: set[str] = set()
    try:
        who: Any = object()
        for row in sorted(PAGES, key=lambda r: str(r.who)):
            if row.who != who:
                who = row.who
                sign_in_as(axe_context, who, live_server.url)
            rendered.clear()
            response = page.goto(live_server.url + row.url(world))
            assert response is not None
            if response.status != row.status:
                problems.append(f"{row.name}: HTTP {response.status}, not {row.status}")
            missing = set(row.templates) - set(rendered)
            if missing:
                problems.append(f"{row.name}: did not render {sorted(missing)}")
            seen.update(rendered)
            if SHOTS:
                shot = "a11y-" + "".join(c if c.isalnum() else "-" for c in row.name) + ".png"
                page.screenshot(path=os.path.join(SHOTS, shot), full_page=True)
            problems += describe(row.name, axe_violations(page))
    finally:
        template_rendered.disconnect(record)
    never = _all_templates() - seen - _EXCLUDED
    if never:
        problems.append(f"templates no page rendered: {sorted(never)}")
    assert problems == [], "\n".join(problems)
