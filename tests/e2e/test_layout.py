"""Long values never widen the page, and no page logs an error, in a real browser.

Every page a long string can reach (a run with a 5,000-character value and a 3,000-character code
line, a Think-and-Execute run whose model wrote a huge line, the side-by-side comparison, an
evaluation, the leaderboard, the gradebook, a program page, the library) is loaded at 1280 px
and at 390 px (a phone); the document must be no wider than the window: long text wraps or
scrolls inside its own box. Every console error and uncaught script error on those pages fails
the test, among them htmx's `oobErrorNoTarget` that every real-only run page used to log while
it waited for its result. The pages come from the real ASGI application (uvicorn in a thread,
websockets included) over the test database; screenshots go to test-artifacts/layout/.
"""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import uvicorn
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from playground import sandbox
from playground.benchmarks.models import Evaluation, Result
from playground.classroom.models import Assignment, Course, Item, Membership, Mode, Role, Submission
from playground.compare import compare_traces
from playground.lib import paths
from playground.programs.models import Dataset
from playground.runs.models import Run, Trace
from playground.sharing.models import ShareLink
from tests.e2e.conftest import session_cookie
from tests.factories import ProgramFactory, UserFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    # WhiteNoise hands static files to Django's ASGI handler as a synchronous iterator.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]

WIDTHS = (1280, 390)
SHOTS = paths.REPO_DIR / "test-artifacts" / "layout"
# Long strings without a space: nothing can wrap them at a word boundary.
WORD = "supercalifragilistic" * 12  # 240 characters
LONG_LINE = "    banner = '" + "=-" * 1493 + "'\n"  # a 3,000-character code line
SOURCE = (
    "def f(words):\n"
    "    value = 'v' * 5000\n"
    f"{LONG_LINE}"
    "    print('o' * 3000)\n"
    "    print(value)\n"
    "    return value + words\n"
)
CALL = "f('" + "q" * 500 + "')"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def site(transactional_db: None) -> Iterator[str]:
    """The ASGI application (pages, static files and the run pages' websockets) on a free port,
    over the test database."""
    from playground.asgi import application

    port = _free_port()
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _trace_row(run: Run, kind: str, data: dict[str, Any]) -> None:
    Trace.objects.create(
        run=run, kind=kind, status=data["status"], step_count=len(data["steps"]), data=data
    )


def _world(user: AbstractBaseUser) -> dict[str, str]:
    """Every page a long string can reach, with the longest strings each field accepts."""
    program = ProgramFactory(
        owner=user, is_public=True, source=SOURCE, call=CALL, title="A" + WORD[:199],
        expected_output=repr("v" * 5000 + "q" * 500), dataset=Dataset.USER,
    )  # fmt: skip
    real = sandbox.run(SOURCE, call=CALL)
    assert real["status"] == "ok", real.get("error")
    common = {"program": program, "owner": user, "source": SOURCE, "call": CALL}

    real_only = Run.objects.create(**common, status=Run.Status.DONE)
    _trace_row(real_only, "real", real)
    # Waiting for its worker (there is none): the page follows it over the websocket.
    waiting = Run.objects.create(**common, status=Run.Status.QUEUED)

    # Think-and-Execute: the model repeats a token without a space for thousands of characters.
    huge = "tok" * 6000
    tae = Run.objects.create(
        **common, method="tae", model="smollm2-135m", status=Run.Status.DONE, emulation_done=True,
        emulated_text=f"Plan:\n{huge}\nFinal answer: {huge}",
        verdict={"status": "wrong", "explanation": f"Answered {huge[:200]}, but the answer is 1."},
        details={"plan": {"analysis": huge, "pseudocode": f"def plan():\n    print('{huge}')\n"},
                 "plan_reused": False},
        model_calls=2, completion_tokens=1107, prompt_tokens=900,
    )  # fmt: skip
    _trace_row(tae, "real", real)
    _trace_row(tae, "emulated", {
        "schema": 1, "status": "ok", "source": "emulated", "method": "tae", "result": huge,
        "error": None, "stats": {"steps": 3, "wall_ms": 0},
        "steps": [{"i": 0, "line": 1, "by": "lm", "stdout": huge},
                  {"i": 1, "line": 2, "by": "lm", "locals": {"value": f"'{huge}'"}},
                  {"i": 2, "line": 3, "by": "lm", "locals": {WORD: huge}, "stdout": huge}],
    })  # fmt: skip

    # Chain of Code, compared step by step: a long value that differs.
    emulated = {**copy.deepcopy(real), "source": "emulated", "method": "coc"}
    for step in emulated["steps"]:
        if "value" in step.get("locals", {}):
            step["locals"]["value"] = repr("w" * 5000)
            step["by"] = "lm"
    comparison = compare_traces(real, emulated).as_dict()
    coc = Run.objects.create(
        **common, method="coc", model="smollm2-135m", status=Run.Status.DONE, emulation_done=True,
        comparison=comparison, emulated_text=huge,
        verdict={"status": "wrong", "explanation": comparison["first_divergence"]["message"]},
    )  # fmt: skip
    _trace_row(coc, "real", real)
    _trace_row(coc, "emulated", emulated)

    # Two finished evaluations with long titles, keys, predictions and reasons.
    evaluations = []
    for method, right in (
        ("direct", [True, False, True, False]),
        ("cot", [True, True, False, False]),
    ):
        evaluation = Evaluation.objects.create(
            dataset="cruxeval", method=method, model="smollm2-135m" + "-x" * 40, owner=user,
            status=Evaluation.Status.DONE, title=f"{method} " + WORD[:190], total=4,
            finished_at=timezone.now(),
        )  # fmt: skip
        for index in range(4):
            Result.objects.create(
                evaluation=evaluation, index=index, item_key=f"sample_{index}_" + WORD[:100],
                passed=right[index], status=Result.Status.DONE, prediction=huge,
                reason=huge, score_status="correct" if right[index] else "wrong",
                lines=3 + index, steps=5 + index, run=coc,
            )  # fmt: skip
        evaluations.append(evaluation)

    # A course whose gradebook has many items with long titles and students with long names.
    course = Course.objects.create(title="C" + WORD[:150], created_by=user)
    Membership.objects.create(course=course, user=user, role=Role.INSTRUCTOR)
    now = timezone.now()
    homework = Assignment.objects.create(
        course=course, title="H" + WORD[:150], opens_at=now - timedelta(days=3),
        due_at=now - timedelta(days=2),
    )  # fmt: skip
    items = [
        Item.objects.create(
            assignment=homework,
            position=n,
            mode=Mode.OUTPUT,
            program=program,
            title=f"Item {n} " + WORD[:120],
        )
        for n in range(8)
    ]
    for n in range(3):
        student = UserFactory(username=f"s{n}" + WORD[:140])
        Membership.objects.create(course=course, user=student, role=Role.STUDENT)
        for item in items:
            Submission.objects.create(
                item=item, student=student, answer=huge, score=1.0, credit=1.0, attempt=1,
                status=Submission.Status.GRADED,
            )  # fmt: skip

    link = ShareLink.objects.create(run=tae, created_by=user)
    a, b = evaluations
    staff = f"/courses/{course.pk}/assignments/{homework.pk}/"
    return {
        "program": program.get_absolute_url(),
        "library": "/library/?dataset=user",
        "my-programs": "/programs/mine/",
        "my-runs": "/runs/",
        "run-real": real_only.get_absolute_url(),
        "run-waiting": waiting.get_absolute_url(),
        "run-tae": tae.get_absolute_url(),
        "run-compare": coc.get_absolute_url(),
        "share": link.get_absolute_url(),
        "embed": f"/s/{link.token}/embed/",
        "home": "/",
        "evaluations": "/evaluations/",
        "evaluation": a.get_absolute_url(),
        "evaluation-compare": f"/evaluations/compare/?a={a.pk}&b={b.pk}",
        "gradebook": f"{staff}gradebook/",
        "submissions": f"{staff}submissions/",
        "course": f"/courses/{course.pk}/",
    }


def _too_wide(page: Page) -> dict[str, Any]:
    """The document's width against the window's, and the outermost elements that stick out of
    the window without a scrolling box around them (the culprits)."""
    result: dict[str, Any] = page.evaluate(
        """() => {
          const root = document.documentElement;
          const limit = root.clientWidth;
          const sticksOut = (el) => el.getBoundingClientRect().right > limit + 0.5;
          const clipped = (el) => {
            for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
              if (getComputedStyle(a).overflowX !== "visible") return true;
            }
            return false;
          };
          const out = [];
          for (const el of document.body.querySelectorAll("*")) {
            if (!sticksOut(el) || clipped(el)) continue;
            if (el.parentElement !== document.body && sticksOut(el.parentElement)) continue;
            const id = el.id ? "#" + el.id : "";
            const cls = el.classList.length ? "." + [...el.classList].join(".") : "";
            const right = Math.round(el.getBoundingClientRect().right);
            out.push(`${el.tagName.toLowerCase()}${id}${cls} (to ${right} px)`);
          }
          return {scrollWidth: root.scrollWidth, clientWidth: limit, culprits: out.slice(0, 10)};
        }"""
    )
    return result


def test_no_page_is_wider_than_the_window_and_none_logs_an_error(
    browser: Browser, site: str
) -> None:
    user = UserFactory(username="u" + WORD[:120])
    pages = _world(user)
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for width in WIDTHS:
        context = browser.new_context(viewport={"width": width, "height": 900})
        context.add_cookies([session_cookie(user, site)])
        context.add_init_script(
            "document.addEventListener('htmx:wsOpen', () => { window.wsOpened = true; });"
        )
        page = context.new_page()
        page.set_default_timeout(20_000)

        def on_console(message: ConsoleMessage, page: Page = page) -> None:
            if message.type == "error":
                problems.append(f"{page.url}: console error: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda error, page=page: problems.append(f"{page.url}: {error}"))
        for name, path in pages.items():
            if name == "run-waiting":
                # This page follows its run over a websocket: once it is open, the server sends
                # the run's events so far at once, which htmx swaps into the page.
                response = page.goto(site + path)
                deadline = time.monotonic() + 20
                while not page.evaluate("window.wsOpened === true"):
                    assert time.monotonic() < deadline, "the run page's websocket did not open"
                    page.wait_for_timeout(100)
                page.wait_for_timeout(1000)
            else:
                response = page.goto(site + path)
            assert response is not None
            assert response.status == 200, (path, response.status)
            size = _too_wide(page)
            # The top of the page, two screens high, as wide as the document (to see what sticks
            # out), unless that is absurdly wide (Chromium then takes minutes).
            height = min(page.evaluate("document.documentElement.scrollHeight"), 1800)
            shot_width = min(size["scrollWidth"], 3 * width)
            page.screenshot(
                path=str(SHOTS / f"{name}-{width}.png"), full_page=True,
                clip={"x": 0, "y": 0, "width": shot_width, "height": height},
            )  # fmt: skip
            if size["scrollWidth"] > size["clientWidth"]:
                problems.append(
                    f"{path} at {width} px: the document is {size['scrollWidth']} px wide "
                    f"(window {size['clientWidth']}); sticking out: {size['culprits']}"
                )
        context.close()
    assert problems == [], "\n".join(problems)


def test_the_line_number_gutter_is_as_wide_as_its_numbers(browser: Browser, site: str) -> None:
    # On 3103616 a short program's gutter took a share of the table: about 100 px for "1".
    short = ProgramFactory(source="def f(x):\n    return x + 1\n", is_public=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(site + short.get_absolute_url())
    gutter = page.locator(".code-block td.linenos").bounding_box()
    digit = page.locator(".code-block td.linenos pre").evaluate(
        "el => { const r = document.createRange(); r.selectNodeContents(el);"
        " return r.getBoundingClientRect().width; }"
    )
    page.close()
    assert gutter is not None
    assert gutter["width"] <= digit + 30, (gutter, digit)  # the numbers and their padding


def test_an_evaluation_lists_only_its_failures_on_request(browser: Browser, site: str) -> None:
    evaluation = Evaluation.objects.create(
        dataset="cruxeval", method="direct", model="m", status=Evaluation.Status.DONE, total=3
    )
    for index, passed in enumerate([True, False, True]):
        Result.objects.create(
            evaluation=evaluation, index=index, item_key=f"sample_{index}", passed=passed,
            status=Result.Status.DONE, score_status="correct" if passed else "wrong",
        )  # fmt: skip
    page = browser.new_page(viewport={"width": 390, "height": 900})
    page.goto(site + evaluation.get_absolute_url())
    rows = page.locator("#results tbody tr")
    expect(rows.filter(visible=True)).to_have_count(3)
    page.get_by_label("Show only the items it failed").check()
    expect(rows.filter(visible=True)).to_have_count(1)
    expect(rows.filter(visible=True)).to_contain_text("sample_1")
    page.close()


def test_the_model_select_shows_the_whole_model_name(browser: Browser, site: str) -> None:
    # On 3103616 it read "SmolLM2-135M (tiny demo model on the CP…" at any window width.
    program = ProgramFactory(is_public=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(site + program.get_absolute_url())
    select = page.get_by_label("Model", exact=True)
    label = select.evaluate("el => el.options[el.selectedIndex].text")
    assert len(label) > 40  # a long name: the embedded model's
    fits = select.evaluate(
        """el => {
          const style = getComputedStyle(el);
          const context = document.createElement("canvas").getContext("2d");
          context.font = `${style.fontSize} ${style.fontFamily}`;
          const text = context.measureText(el.options[el.selectedIndex].text).width;
          const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
          const room = el.clientWidth - padding;
          return [text, room];
        }"""
    )
    page.close()
    assert fits[0] <= fits[1], f"the name needs {fits[0]:.0f} px, the select gives {fits[1]:.0f}"


def test_the_evaluation_form_shows_the_fields_of_the_chosen_data_set(
    browser: Browser, site: str
) -> None:
    # On 3103616 "BIG-Bench Hard tasks" sat beside "Method" whatever the data set.
    user = UserFactory()
    context = browser.new_context(viewport={"width": 390, "height": 900})
    context.add_cookies([session_cookie(user, site)])
    page = context.new_page()
    page.goto(site + "/evaluations/")
    form = page.locator("form.start-form")
    tasks, programs = form.locator("[name=tasks]"), form.locator("[name=programs]")
    expect(tasks).to_be_hidden()
    expect(programs).to_be_hidden()
    form.locator("select[name=dataset]").select_option("bbh")
    expect(tasks).to_be_visible()
    expect(programs).to_be_hidden()
    form.locator("select[name=dataset]").select_option("programs")
    expect(programs).to_be_visible()
    expect(tasks).to_be_hidden()
    # One field per row on a phone: every field starts at the form's left edge.
    lefts = form.locator("input:visible, select:visible").evaluate_all(
        "els => els.filter(e => e.type !== 'checkbox' && e.type !== 'hidden')"
        ".map(e => Math.round(e.getBoundingClientRect().left))"
    )
    assert len(set(lefts)) == 1, lefts
    context.close()
