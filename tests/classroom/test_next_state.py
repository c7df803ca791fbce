"""Predict the next state (issue 24): a student steps through the real run of the call, predicts
each asked step before the server shows it, is graded per step with the item's partial credit
rule (by the ``step`` method's own grading), cannot change a prediction once shown, and picks up
where they left off; the page never holds a step after the one asked."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from playground.classroom import authoring, keys, nextstate, stats
from playground.classroom.models import Item, Mode, PartialCredit, Results, StepPrediction
from playground.classroom.models import Submission as Sub
from playground.emulation import stepping
from playground.runs.models import Run
from tests.classroom.student_world import assignment, client_for, course_world, library_program

HTMX = {"HX-Request": "true"}
SOURCE = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"
CALL = "f([40, 900])"
# The call's steps, numbered as the page numbers them: 1 the call, 2 line 2, 3 line 3 (total =
# 0), 4 line 4 (x = 40), 5 line 3 (total = 40), 6 line 4 (x = 900), 7 line 3 (total = 940),
# 8 line 5, 9 its return (940). Asked: steps 4 and 7.
ASKED = {"steps": [4, 7]}


def _text(response: Any) -> str:
    body = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(body).split())


# -- Grading, by hand ---------------------------------------------------------------------------

STEPS = [
    {"line": 1, "event": "call", "locals": {"xs": "[40, 900]"}},
    {"line": 2},
    {"line": 3, "locals": {"total": "0"}},
    {"line": 4, "locals": {"x": "40"}},
    {"line": 3, "locals": {"total": "40"}},
    {"line": 4, "locals": {"x": "900"}},
    {"line": 3, "locals": {"total": "940"}},
    {"line": 5},
    {"line": 5, "event": "return", "locals": {"__return__": "940"}},
]


def _prediction(line: int, event: str = "line", value: str = "", **changed: str) -> dict[str, Any]:
    out: dict[str, Any] = {"line": line, "event": event, "changed": changed}
    if value:
        out["value"] = value
    return out


def test_each_step_is_marked_in_parts_by_the_step_methods_rule() -> None:
    right = nextstate.mark_step(3, STEPS, _prediction(4, x="40"))
    assert (right["right"], right["total"]) == (2, 2)
    # A value is read as a literal (40.0 == 40, as the verdict compares); a variable predicted
    # that did not change is a wrong part.
    extra = nextstate.mark_step(3, STEPS, _prediction(4, x="40.0", total="40"))
    assert extra["variables"] == {"x": True, "total": False}
    assert (extra["right"], extra["total"]) == (2, 3)
    returned = nextstate.mark_step(8, STEPS, _prediction(5, "return", "941"))
    assert returned["parts"] == {"line": True, "value": False}
    assert nextstate.mark_step(8, STEPS, _prediction(5, "line"))["parts"]["line"] is False


def test_partial_credit_both_ways() -> None:
    answer = {"steps": {"3": _prediction(4, x="40"), "6": _prediction(3, total="900")}}
    proportional = nextstate.grade(answer, STEPS, ASKED, PartialCredit.PROPORTIONAL)
    assert proportional.score == pytest.approx((1 + 1 / 2) / 2)  # 0.75
    assert proportional.message == "1 of 2 steps fully right."
    whole = nextstate.grade(answer, STEPS, ASKED, PartialCredit.ALL_OR_NOTHING)
    assert whole.score == pytest.approx(0.5)  # the half-right step counts nothing
    assert "All or nothing per step" in whole.message
    missing = nextstate.grade({"steps": {"3": _prediction(4)}}, STEPS, ASKED, "proportional")
    assert missing.invalid
    assert missing.message == "Predict step 7 first."


def test_the_asked_steps_every_or_chosen() -> None:
    assert nextstate.asked({"every": 3}, 9) == [1, 2, 3]
    assert nextstate.asked({"every": 20}, 9) == list(range(1, 9))
    assert nextstate.asked({"steps": [4, 7, 30]}, 9) == [3, 6]
    assert nextstate.parse_choice("every 12") == {"every": 12}
    assert nextstate.parse_choice("7, 4 4") == {"steps": [4, 7]}
    for bad in ("1, 3", "every 99", "three"):
        with pytest.raises(ValueError, match=r"step|every"):
            nextstate.parse_choice(bad)


# -- The item, for real --------------------------------------------------------------------------


@pytest.fixture
def world(
    db: None, eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> SimpleNamespace:
    w = course_world()
    w.assignment = assignment(w.course)
    program = library_program(source=SOURCE, call=CALL, expected="940")
    w.item = Item.objects.create(
        assignment=w.assignment, mode=Mode.NEXT_STATE, program=program, step_choice=ASKED
    )
    with django_capture_on_commit_callbacks(execute=True):
        authoring.prepare_item(w.item, by=w.instructor)
    w.item.refresh_from_db()
    args = [w.course.pk, w.assignment.pk, w.item.pk]
    w.page = reverse("classroom:item", args=args)
    w.url = reverse("classroom:next_state", args=args)
    return w


def _predict(client: Any, w: SimpleNamespace, step: int, line: int, changed: str, **kw: Any) -> Any:
    data = {"step": str(step), "line": str(line), "event": "line", "changed": changed}
    return client.post(w.url, data, **kw)


def test_the_key_is_the_real_run_and_its_steps_are_the_step_methods(world: SimpleNamespace) -> None:
    assert keys.key_status(world.item).ready
    steps = nextstate.key_steps(world.item)
    assert [s["line"] for s in steps] == [1, 2, 3, 4, 3, 4, 3, 5, 5]
    assert steps[6]["locals"] == {"total": "940"}


def test_a_student_predicts_step_by_step_and_each_step_is_shown_only_after(
    world: SimpleNamespace,
) -> None:
    w = world
    c = client_for(w.s1)
    first = _text(c.get(w.page))
    assert "total = 0" in first  # step 3, given
    assert "Step 4: what happens next?" in first
    assert "x = 40" not in first
    assert "940" not in first
    assert "x = 900" not in first
    assert "940" not in c.get(w.page).content.decode()

    shown = _predict(c, w, 4, 4, "x = 40", headers=HTMX)
    assert shown.status_code == 200
    text = _text(shown)
    assert "You predicted: line 4, x = 40 — right" in text
    assert "x = 900" in text  # step 6, given
    assert "Step 7: what happens next?" in text
    assert "940" not in text  # step 7 is asked: not on the page before its answer
    assert "940" not in shown.content.decode()  # nor anywhere in its HTML (no hidden copy)
    assert not Sub.objects.filter(item=w.item).exists()

    # Reloading continues at step 7, with step 4's prediction kept.
    again = _text(c.get(w.page))
    assert "Step 7: what happens next?" in again
    assert "940" not in again
    assert "You predicted: line 4" in again

    last = _text(_predict(c, w, 7, 3, "total = 900", headers=HTMX))
    assert "total = 940" in last  # the truth, now
    assert "1 of 2 parts right" in last
    assert "total wrong" in last
    assert "Every asked step is predicted." in last
    sub = Sub.objects.get(item=w.item, student=w.s1)
    assert sub.status == Sub.Status.GRADED
    assert sub.score == pytest.approx(0.75)  # (1 + 1/2) / 2, proportional
    assert sub.feedback["message"] == "1 of 2 steps fully right."
    # Not right everywhere and the window is open: the steps after the last asked stay hidden.
    assert "return at line 5" not in last


def test_all_or_nothing_counts_a_half_right_step_as_wrong(world: SimpleNamespace) -> None:
    Item.objects.filter(pk=world.item.pk).update(partial_credit=PartialCredit.ALL_OR_NOTHING)
    c = client_for(world.s1)
    _predict(c, world, 4, 4, "x = 40")
    _predict(c, world, 7, 3, "total = 900")
    assert Sub.objects.get(item=world.item, student=world.s1).score == pytest.approx(0.5)


def test_a_prediction_cannot_change_after_its_reveal(world: SimpleNamespace) -> None:
    c = client_for(world.s1)
    assert _predict(c, world, 4, 3, "x = 1").status_code == 302
    again = _predict(c, world, 4, 4, "x = 40")
    assert again.status_code == 409
    assert "Step 4 was already predicted and shown: a prediction cannot be changed." in _text(again)
    kept = StepPrediction.objects.get(item=world.item, student=world.s1, step=3)
    assert kept.answer["line"] == 3
    assert kept.mark["right"] == 0
    # Nor may a later step be answered before the one asked (it would skip a reveal).
    skip = _predict(client_for(world.s2), world, 7, 3, "total = 940")
    assert skip.status_code == 409
    assert "not the one asked now" in _text(skip)


def test_an_unreadable_prediction_is_a_form_error_and_records_nothing(
    world: SimpleNamespace,
) -> None:
    c = client_for(world.s1)
    response = _predict(c, world, 4, 4, "x is 40", headers=HTMX)
    assert response.status_code == 200
    assert "Write each changed variable as name = value" in _text(response)
    assert "x = 40" not in _text(response).replace("x is 40", "")
    plain = c.post(world.url, {"step": "4", "line": "four"})
    assert plain.status_code == 400
    assert "Write the number of the line that runs next." in _text(plain)
    assert not StepPrediction.objects.exists()


def test_other_students_progress_is_not_found_staff_see_it(world: SimpleNamespace) -> None:
    w = world
    _predict(client_for(w.s1), w, 4, 4, "x = 40")
    mine = f"{w.url}?student={w.s1.pk}"
    assert client_for(w.s2).get(mine).status_code == 404
    assert client_for(w.outsider).get(mine).status_code == 404
    staff = client_for(w.instructor).get(mine)
    assert staff.status_code == 200
    assert "Predictions of student1" in _text(staff)
    assert "You predicted: line 4, x = 40 — right" in _text(staff)
    # Staff predict nothing; the item's own page for them shows every step.
    assert _predict(client_for(w.instructor), w, 4, 4, "x = 40").status_code == 403
    assert "total = 940" in _text(client_for(w.instructor).get(w.url))


def test_the_window_and_the_results_rule_hold(world: SimpleNamespace) -> None:
    w = world
    Item.objects.filter(pk=w.item.pk).update(results=Results.NEVER)
    c = client_for(w.s1)
    shown = _text(_predict(c, w, 4, 4, "x = 40", headers=HTMX))
    assert "x = 40" in shown  # the step is shown: the exercise goes on
    assert "— right" not in shown  # but no mark: the item's results are never shown
    now = timezone.now()
    w.assignment.due_at = now - timedelta(minutes=1)
    w.assignment.save(update_fields=["due_at"])
    closed = _predict(c, w, 7, 3, "total = 940")
    assert closed.status_code == 409
    assert "The assignment is closed." in _text(closed)
    assert StepPrediction.objects.filter(student=w.s1).count() == 1


def test_a_timed_exam_needs_its_clock(world: SimpleNamespace) -> None:
    world.assignment.time_limit = 30
    world.assignment.save(update_fields=["time_limit"])
    refused = _predict(client_for(world.s1), world, 4, 4, "x = 40")
    assert refused.status_code == 409
    assert "Start the exam first" in _text(refused)


# -- The model takes the same exercise (statistics) -------------------------------------------


def _step_run(w: SimpleNamespace, answers: dict[int, str]) -> Run:
    """A finished re-synced ``step`` run of the item's program, its verdict as the method makes
    it (``stepping.grade`` of each answer against the real step)."""
    steps = nextstate.key_steps(w.item)
    kinds = stepping.kinds_of(steps)
    marks = [stepping.grade(i, kinds[i], steps[i], text) for i, text in answers.items()]
    verdict = stepping.summary(marks, total=len(steps), resyncs=None, mode="resync")
    return Run.objects.create(
        program=w.item.program, source=SOURCE, call=CALL, method="step", model="smollm2-135m",
        status=Run.Status.DONE, verdict=verdict,
    )  # fmt: skip


def test_the_statistics_put_students_and_the_model_side_by_side_per_step(
    world: SimpleNamespace,
) -> None:
    w = world
    _predict(client_for(w.s1), w, 4, 4, "x = 40")
    _predict(client_for(w.s1), w, 7, 3, "total = 900")
    _predict(client_for(w.s2), w, 4, 3, "")
    # The model: step 4 right, step 7 on the right line with the wrong total, step 5 (not
    # asked of the students) left out of the table.
    _step_run(w, {3: '{"line": 4, "changed": {"x": "40"}}', 4: '{"line": 3}',
                  6: '{"line": 3, "changed": {"total": "941"}}'})  # fmt: skip
    table = stats.step_table(w.item)
    students, model = table.columns
    assert [r["number"] for r in table.rows] == [4, 7]
    assert students.mean(3) == pytest.approx(0.5)  # s1 right, s2 wrong line and no x
    assert students.mean(6) == pytest.approx(0.5)
    assert model.mean(3) == 1.0
    assert model.mean(6) == pytest.approx(0.5)  # the line right, total wrong
    assert model.runs == 1
    page = client_for(w.instructor).get(
        reverse("classroom:item_stats", args=[w.course.pk, w.assignment.pk, w.item.pk])
    )
    text = _text(page)
    assert "The asked steps: students vs models" in text
    assert "4 4 50% (2) 100% (1)" in text
    assert "7 3 50% (1) 50% (1)" in text


def test_staff_start_a_models_step_run_counted_as_work(world: SimpleNamespace) -> None:
    w = world
    url = reverse("classroom:next_state_model_run", args=[w.course.pk, w.assignment.pk, w.item.pk])
    assert client_for(w.s1).post(url, {"model": "smollm2-135m"}).status_code == 403
    staff = client_for(w.instructor)
    refused = staff.post(url, {"model": "no-such-model"}, follow=True)
    assert "Choose one of the site" in _text(refused)
    assert not Run.objects.filter(method="step").exists()
    staff.post(url, {"model": "smollm2-135m"})
    run = Run.objects.get(method="step")
    assert (run.model, run.call, run.owner) == ("smollm2-135m", CALL, w.instructor)


def test_the_item_form_saves_the_asked_steps_and_the_key_checks_them(
    db: None, eager: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    w = course_world()
    w.assignment = assignment(w.course)
    program = library_program(source=SOURCE, call=CALL, expected="940")
    url = reverse("classroom:item_new", args=[w.course.pk, w.assignment.pk])
    client = client_for(w.instructor)
    fields = {"mode": "nextstate", "origin": "library", "pick": f"program:{program.pk}",
              "points": "1"}  # fmt: skip
    refused = client.post(url, {**fields, "step_choice": "1, 4"})
    assert "Step 1 is the call, which is always shown: ask from step 2 on." in _text(refused)
    with django_capture_on_commit_callbacks(execute=True):
        saved = client.post(url, {**fields, "step_choice": "7, 4"})
    assert saved.status_code == 302
    item = Item.objects.get(assignment=w.assignment)
    assert item.step_choice == {"steps": [4, 7]}
    assert keys.key_status(item).ready
    # Steps the call never reaches: the key says why, and students cannot start.
    Item.objects.filter(pk=item.pk).update(step_choice={"steps": [40]}, key_check=None)
    item.refresh_from_db()
    status = keys.key_status(item)
    assert status.problems == (
        "None of the asked steps exists: the call has 9 steps. Ask other steps, or choose a "
        "longer call.",
    )
    page = _text(client_for(w.s1).get(item.get_absolute_url()))
    assert "its answer key has a problem" in page
    assert 'id="step-form"' not in client_for(w.s1).get(item.get_absolute_url()).content.decode()


def test_a_regrade_applies_the_new_partial_credit_rule_and_staff_reach_the_steps(
    world: SimpleNamespace,
) -> None:
    from playground.classroom import regrading

    w = world
    c = client_for(w.s1)
    _predict(c, w, 4, 4, "x = 40")
    _predict(c, w, 7, 3, "total = 900")
    sub = Sub.objects.get(item=w.item, student=w.s1)
    assert sub.score == pytest.approx(0.75)
    Item.objects.filter(pk=w.item.pk).update(partial_credit=PartialCredit.ALL_OR_NOTHING)
    w.item.refresh_from_db()
    regrading.regrade(w.item, by=w.instructor)
    sub.refresh_from_db()
    assert sub.score == pytest.approx(0.5)
    assert sub.history[0]["score"] == pytest.approx(0.75)
    page = (
        client_for(w.instructor)
        .get(reverse("classroom:override", args=[w.course.pk, sub.pk]))
        .content.decode()
    )
    assert f"next-state/?student={w.s1.pk}" in page
