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
The last test watches the page's polite region (site.js's #announcer) through a live model run.
docs/ACCESSIBILITY.md says what these checks cover and what was checked by hand.
"""

from __future__ import annotations

import copy
import importlib
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test.signals import template_rendered
from django.utils import timezone
from playwright.sync_api import Browser, BrowserContext, Page, Response, expect
from pytest_django.fixtures import Settings
from pytest_django.live_server_helper import LiveServer

from playground import sandbox
from playground.benchmarks.models import Evaluation, Result
from playground.classroom.models import Assignment, Item, Mode, Submission
from playground.compare import compare_traces
from playground.lib import paths
from playground.lti.models import LtiContext, Platform, ResourceLink, ScoreSend
from playground.programs.models import Task, TaskExample
from playground.runs.models import Run, Trace
from playground.sharing.models import ExpiredLink, ShareLink
from tests.classroom.student_world import assignment, hand_made_key, library_program, puzzle
from tests.e2e import csp_world
from tests.e2e.conftest import session_cookie
from tests.e2e.test_probe_page import _probe_run
from tests.e2e.test_stepping_viewer import _stepping_run
from tests.factories import ProgramFactory, store_traces
from tests.stack import Stack

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
    # Send the page's form with these fields (a name starting with "-": that field removed; the
    # name "@action": a form of its own to that address, with the page's CSRF token; the value
    # "*checked": every box of that name checked) and check the answer instead of the page.
    submit: dict[str, str] | None = None
    # "module.attribute": replaced, for this page only, by a function that raises (a crash).
    fault: str | None = None


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
        ("benchmarks/detail.html", "benchmarks/_accuracy_table.html", "benchmarks/_chart.html",
         "benchmarks/_surprise_ranking.html")),
    Row("stepping evaluation", _at("stepping_evaluation"), ANON,
        ("benchmarks/_step_table.html",)),
    Row("evaluation under a rule", _at("rule_evaluation"), ANON, ("benchmarks/_paired.html",)),
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
    Row("403", _at("course", "manage/"), STUDENT, ("403.html",), 403),
    Row("403 (form expired)", _path("/accounts/login/"), ANON, ("403_csrf.html",), 403,
        submit={"username": "a", "password": "b", "-csrfmiddlewaretoken": ""}),
    Row("429", _at("rule_evaluation"), STUDENT, ("429.html",), 429,
        submit={"@action": "surprise/"}),
    Row("413", _path("/accounts/login/"), ANON, ("413.html",), 413,
        submit={"username": "x" * 5000, "password": "b"}),
    Row("500", _path("/"), ANON, ("500.html",), 500, fault="playground.views.ProgramForm"),
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
    Row("exam assignment", _at("exam"), STUDENT,
        ("classroom/student/assignment.html", "classroom/student/_exam_clock.html")),
    Row("invitation", _path("/courses/invitation/no-such-invitation/"), STUDENT,
        ("classroom/student/invitation.html",), 400),
    Row("run with probes", _at("probe_run"), STUDENT,
        ("runs/_probes.html", "runs/_trace_viewer.html")),
    Row("stepping run", _at("stepping_run"), STUDENT, ("runs/_stepping.html",)),
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
    Row("run under a rule", _at("rule_run"), TEACHER, ("runs/_standard_run.html",)),
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
    # LTI 1.3 and privacy (issue 25).
    Row("delete account", _path("/accounts/delete/"), STUDENT, ("privacy/delete_account.html",)),
    Row("LTI refusal", _path("/lti/login/"), ANON, ("lti/error.html",), 400),
    Row("LTI scores sent", _at("lti_scores"), TEACHER, ("lti/scores.html",)),
    Row("LTI deep linking", _at("lti_deep_link"), TEACHER, ("lti/deep_link.html",)),
    Row("LTI deep linking answered", _at("lti_deep_link_answer"), TEACHER,
        ("lti/deep_link_return.html",), submit={"assignment": "*checked"}),
]  # fmt: skip

# Templates no row is there for, each with the reason: rendered only inside a page a row covers
# under another name (none now), ...
COVERED_ELSEWHERE: dict[str, str] = {}
# Pages written at the same time as this list (issue 25's LTI 1.3 and privacy parts): each is
# to get a row in PAGES (and leave this table) once its page settles.
PENDING_ROWS: dict[str, str] = {}
# ... or not a page at all.
NOT_A_PAGE: dict[str, str] = {
    "registration/password_reset_email.html": "the body of an e-mail, not a page",
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
    student = get_user_model().objects.get(username=STUDENT)
    teacher = get_user_model().objects.get(username=TEACHER)
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
            Trace.objects.create(run=key, kind=Trace.Kind.STANDARD, status="ok", data=real)
            w["rule_run"] = key.get_absolute_url()
        w[key_name] = new.get_absolute_url()
    w["item_puzzle"] = Item.objects.create(
        assignment=loops, mode=Mode.PUZZLE, puzzle=puzzle(name="Repeat_1:0"), title="A puzzle"
    ).get_absolute_url()
    w["rule_evaluation"] = Evaluation.objects.create(
        dataset="cruxeval", method="direct", model="smollm2-135m", status="done", rule=RULE,
        title="Under a rule", total=0, owner=student,
    ).get_absolute_url()  # fmt: skip
    w["exam"] = assignment(
        loops.course, title="Midterm", time_limit=20, opens_at=timezone.now()
    ).get_absolute_url()
    w["probe_run"] = _probe_run(student, 2)[0].get_absolute_url()
    stepping = _stepping_run(student)[0]
    w["stepping_run"] = stepping.get_absolute_url()
    steps = Evaluation.objects.create(
        dataset="cruxeval", method="step", model="oracle", status="done", title="Stepping",
        total=1,
    )  # fmt: skip
    Result.objects.create(
        evaluation=steps, index=0, item_key="sample_0", passed=False, run=stepping,
        status=Result.Status.DONE, score_status="wrong", lines=11, steps=30,
    )  # fmt: skip
    w["stepping_evaluation"] = steps.get_absolute_url()
    w |= _lti_world(loops, teacher, student)
    return w


def _lti_world(loops: Assignment, teacher: Any, student: Any) -> World:
    """The course linked to an LMS (no grade service, so nothing is sent anywhere), a score
    shown on the staff's page, and two deep-linking requests of the teacher's (one to look at,
    one to answer: answering uses it up)."""
    platform = Platform.objects.create(
        name="Canvas (test)", issuer="https://lms.example", client_id="tool",
        deployment_ids=["1"], auth_login_url="https://lms.example/auth",
        auth_token_url="https://lms.example/token", jwks_url="https://lms.example/jwks",
    )  # fmt: skip
    context = LtiContext.objects.create(
        platform=platform, context_id="c1", title="Loops", course=loops.course
    )
    link = ResourceLink.objects.create(context=context, resource_link_id="r1", assignment=loops)
    ScoreSend.objects.create(
        link=link, student=student, status=ScoreSend.Status.SENT, score_given=1,
        score_maximum=2, grading_progress="FullyGraded", activity_progress="Completed",
        tries=1, sent_at=timezone.now(),
    )  # fmt: skip
    found: World = {"lti_scores": f"/lti/courses/{loops.course_id}/scores/"}
    for key in ("lti_deep_link", "lti_deep_link_answer"):
        token = secrets.token_urlsafe(24)
        cache.set(
            f"lti:deeplink:{token}",
            {"platform": platform.pk, "user": teacher.pk, "course": loops.course_id,
             "deployment_id": "1", "return_url": "https://lms.example/deep-link-return",
             "data": None, "multiple": True},
            3600,
        )  # fmt: skip
        found[key] = f"/lti/deep-link/{token}/"
    return found


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


@contextmanager
def faulty(target: str | None) -> Iterator[None]:
    """``target`` ("module.attribute") raises while the block runs: the site's 500 page."""
    if target is None:
        yield
        return
    module, name = target.rsplit(".", 1)
    owner = importlib.import_module(module)
    saved = getattr(owner, name)

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a crash, on purpose (tests/e2e/test_accessibility.py)")

    setattr(owner, name, crash)
    try:
        yield
    finally:
        setattr(owner, name, saved)


def visit(page: Page, url: str, submit: dict[str, str] | None) -> Response:
    """Load ``url``; with ``submit``, then send its main content's form with those fields."""
    response = page.goto(url)
    if submit is not None:
        with page.expect_navigation() as sent:
            page.evaluate(
                """fields => {
                  let form = document.querySelector("main form[method=post]");
                  if (fields["@action"]) {
                    form = document.createElement("form");
                    form.method = "post";
                    form.action = fields["@action"];
                    const token = document.querySelector("[name=csrfmiddlewaretoken]");
                    form.append(token.cloneNode());
                    document.body.append(form);
                    delete fields["@action"];
                  }
                  for (const [name, value] of Object.entries(fields)) {
                    if (name.startsWith("-")) form.elements.namedItem(name.slice(1)).remove();
                    else if (value === "*checked") {
                      const boxes = form.querySelectorAll(`[name="${name}"]`);
                      for (const box of boxes) box.checked = true;
                    } else form.elements.namedItem(name).value = value;
                  }
                  form.submit();
                }""",
                submit,
            )
        response = sent.value
    assert response is not None
    return response


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
        "['violations'], iframes: false})",
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
        user = get_user_model().objects.get(username=who)
        context.add_cookies([session_cookie(user, base)])


def test_every_listed_page_passes_axe(
    axe_context: BrowserContext, live_server: LiveServer, settings: Settings
) -> None:
    # The 429 row: asking for an evaluation's surprise is over the limit from the first time.
    settings.PLAYGROUND_LIMITS = {**settings.PLAYGROUND_LIMITS, "surprises.user": "0/h"}
    # The 413 row: a login form of 5,000 characters is over a 4 KB limit.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
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
            with faulty(row.fault):
                response = visit(page, live_server.url + row.url(world), row.submit)
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


# Every text the page's polite region (#announcer) holds, in order, sampled every 20 ms (what a
# screen reader is given to say).
HEARD = """
window.__heard = [];
window.setInterval(() => {
  const el = document.getElementById("announcer");
  const text = el ? el.textContent : "";
  if (text && text !== window.__heard[window.__heard.length - 1]) window.__heard.push(text);
}, 20);
"""


def test_a_live_run_is_announced_at_milestones_not_token_by_token(
    stack: Stack, browser: Browser
) -> None:
    """The embedded model thinks aloud, live: the streamed text is not a live region (it would
    be read again with every token); the polite region says the status as it changes, a count
    of lines every twenty, and the verdict once the finished page is in. A short answer: the
    shared site's model is busy on every core while it writes."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.add_init_script(HEARD)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"http://127.0.0.1:{stack.port}/library/?dataset=cruxeval&q=sample_5")
    page.get_by_role("link", name="CRUXEval sample_5", exact=True).click()
    page.get_by_label("Method").select_option("cot")
    page.locator("summary", has_text="Limits for this run").click()
    page.get_by_label("Longest model answer").fill("40")
    page.get_by_role("button", name="Run and ask the model").click()
    page.wait_for_url("**/runs/*/")
    output = page.locator("#model-output")
    expect(output).to_be_visible()
    assert output.get_attribute("aria-live") is None
    announcer = page.locator("#announcer")
    expect(announcer).to_have_attribute("role", "status")
    expect(announcer).to_have_attribute("aria-live", "polite")
    # Once the stream has replaced the text and the status line, neither speaks on its own
    # (the announcer says them): each would be heard again at every token or change.
    expect(output).not_to_be_empty(timeout=60_000)
    if page.locator("#run-status").count():
        assert page.locator("#run-status").get_attribute("role") is None
        assert output.get_attribute("aria-live") is None
    expect(page.locator("#verdict")).to_be_visible(timeout=120_000)
    headline = page.locator("#verdict strong").first.text_content() or ""
    expect(announcer).to_have_text(f"The run finished. {' '.join(headline.split())}", timeout=5_000)
    heard: list[str] = page.evaluate("window.__heard")
    lines = len((page.locator("#model-output").text_content() or "").splitlines())
    context.close()
    assert heard[-1].startswith("The run finished."), heard
    assert len(heard) <= 4 + lines // 20, f"the region spoke too often: {heard}"
    if lines >= 20:
        assert "The model has written 20 lines." in heard, heard
