"""A course as its members see it: the course with its assignments, an assignment with its items,
an item with its question and answer form, and submitting.

Staff see the same pages with everything listed; a student sees their progress. Results follow the
item's results rule (``progress.feedback_allowed``, the hiding policy's ``Surface.SCORE``); every
value from a program, a trace or a model reaches the page through the template's escaping. Its
own file because these pages are the student's side of the classroom."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from playground.classroom import (
    access,
    exams,
    grading,
    keys,
    marking,
    pools,
    progress,
    submissions,
    variants,
    visibility,
)
from playground.classroom.errors import ClassroomError
from playground.classroom.models import Item, Membership, Mode, Role, Submission
from playground.classroom.probing import identity
from playground.classroom.zones import in_course_zone
from playground.lib import ratelimits
from playground.lib.htmx import HtmxHttpRequest
from playground.lib.middleware import with_refusal
from playground.lib.params import object_id
from playground.sandbox.inside.semantics import RULES, Rule

_MAX_MODEL_STEPS = 5000
# Modes whose feedback includes the real run of the answer key, stepped through.
_KEY_TRACE_MODES = frozenset(
    {Mode.OUTPUT, Mode.INPUT, Mode.TRACE, Mode.BEAT_MODEL, Mode.PROBES, Mode.RULE}
)
_MAX_STANDARD_STEPS = 2000  # steps of a rule item's standard run listed beside the viewer


@login_required
@in_course_zone
def course(request: HttpRequest, course_id: int) -> HttpResponse:
    """Staff see every assignment; a student sees those open or past, with their status."""
    the_course, member = access.get_course(request, course_id)
    context: dict[str, Any] = {"course": the_course, "member": member}
    if member.is_staff_role:
        context["assignments"] = the_course.assignments.order_by("opens_at", "id")
    else:
        context["rows"] = progress.for_course(the_course, request.user)
    return render(request, "classroom/student/course.html", context)


@login_required
@in_course_zone
def assignment(request: HttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    the_assignment, member = access.get_assignment(request, course_id, assignment_id)
    context: dict[str, Any] = {
        "assignment": the_assignment,
        "course": the_assignment.course,
        "member": member,
    }
    if member.is_staff_role:
        context["items"] = the_assignment.items.order_by("position", "id")
    else:
        context["progress"] = progress.for_assignment(the_assignment, request.user)
        context["clock"] = exams.clock(the_assignment, request.user)
    return render(request, "classroom/student/assignment.html", context)


@login_required
@require_POST
@in_course_zone
def exam_start(request: HttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    """A student starts their own clock of a timed exam (only their own: the request names no
    one else), then goes to its first item."""
    the_assignment, _ = access.get_assignment(request, course_id, assignment_id)
    try:
        exams.start(assignment=the_assignment, student=request.user)
    except ClassroomError as exc:
        messages.error(request, str(exc))
        return redirect(the_assignment)
    mine = pools.items_for(the_assignment, request.user)
    return redirect(mine[0] if mine else the_assignment)


@login_required
@require_POST
@in_course_zone
def exam_finish(request: HttpRequest, course_id: int, assignment_id: int) -> HttpResponse:
    """A student hands their timed exam in before the time is up."""
    the_assignment, _ = access.get_assignment(request, course_id, assignment_id)
    try:
        exams.finish(assignment=the_assignment, student=request.user)
    except ClassroomError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Exam handed in: no more answers are accepted.")
    return redirect(the_assignment)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _checkpoints(
    item: Item, values: dict[str, Any], details: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The trace form: per checkpoint its label and a field per variable, with what was written
    and (when feedback is shown) whether it was right and the real value."""
    graded = (details or {}).get("checkpoints") or []
    rows: list[dict[str, Any]] = []
    for index, cp in enumerate(item.checkpoints if isinstance(item.checkpoints, list) else []):
        if not isinstance(cp, dict):
            continue
        result = graded[index] if index < len(graded) and isinstance(graded[index], dict) else {}
        right, expected = _dict(result.get("right")), _dict(result.get("expected"))
        occurrence = cp.get("occurrence", 1)
        nth = grading.ordinal(occurrence) if type(occurrence) is int else str(occurrence)
        fields = []
        variables = cp.get("variables")
        for variable in variables if isinstance(variables, list) else []:
            name = f"{index}.{variable}"
            fields.append(
                {
                    "name": name,
                    "variable": str(variable),
                    "value": values.get(name, ""),
                    "right": right.get(variable) if details else None,
                    "expected": expected.get(variable) if details else None,
                }
            )
        rows.append(
            {
                "label": f"line {cp.get('line')}, {nth} time",
                "fields": fields,
            }
        )
    return rows


def _probe_rows(
    item: Item, values: dict[str, Any], details: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The probes form: each question with its field, what was written and (when feedback is
    shown) its mark and, once the answer is revealed, its true answer. The questions name lines
    and variables of the program, never a value of the run."""
    graded = (details or {}).get("probes") or []
    rows: list[dict[str, Any]] = []
    for index, probe in enumerate(keys.questions(item)):
        mark = graded[index] if index < len(graded) and isinstance(graded[index], dict) else {}
        if "kind" in mark and identity(mark) != identity(probe.as_dict()):
            mark = {}  # graded on other questions (the staff changed the counts or the seed)
        rows.append(
            {
                "number": index + 1,
                "name": f"probe_{index}",
                "kind": probe.kind,
                "question": probe.question,
                "value": values.get(str(index), ""),
                "right": mark.get("right") if details else None,
                "truth": mark.get("truth") if details else None,
                "step": mark.get("step") if details else None,
            }
        )
    return rows


def _standard_steps(item: Item) -> dict[str, Any] | None:
    """A rule item's standard run (the same program under standard Python, kept beside the run
    under the rule): its outcome and its steps, each line with the variables it changed."""
    run = item.key_run
    data = keys.trace_data(run.standard_trace) if run is not None else {}
    if not data:
        return None
    raw = data.get("steps")
    steps = []
    for number, step in enumerate(raw[:_MAX_STANDARD_STEPS] if isinstance(raw, list) else []):
        if not isinstance(step, dict):
            continue
        locals_ = {
            ("return value" if k == "__return__" else k): v
            for k, v in _dict(step.get("locals")).items()
        }
        steps.append(
            {
                "number": number + 1,
                "event": str(step.get("event") or "line"),
                "line": step.get("line") if type(step.get("line")) is int else None,
                "locals": [(str(k), str(v)) for k, v in list(locals_.items())[:50]],
                "stdout": "" if step.get("stdout") is None else str(step.get("stdout")),
            }
        )
    error = _dict(data.get("error"))
    return {
        "status": str(data.get("status", "")),
        "result": data.get("result") if data.get("status") == "ok" else None,
        "error": str(error.get("type") or ""),
        "steps": steps,
        "more": max(0, len(raw) - _MAX_STANDARD_STEPS) if isinstance(raw, list) else 0,
    }


def _model_steps(item: Item) -> list[dict[str, Any]]:
    """The model's emulated trace of the key run as a list numbered from 1: the numbers a
    student marks and ``grading.first_mistake`` counts. Nothing in it is trusted."""
    if item.key_run is None:
        return []
    _, raw = keys.divergence_key(item.key_run)
    steps: list[dict[str, Any]] = []
    for number, step in enumerate(raw[:_MAX_MODEL_STEPS], start=1):
        locals_ = _dict(step.get("locals"))
        stdout = step.get("stdout")
        steps.append(
            {
                "number": number,
                "event": str(step.get("event") or "line"),
                "line": step.get("line") if type(step.get("line")) is int else None,
                "locals": [(str(k), str(v)) for k, v in list(locals_.items())[:50]],
                "stdout": "" if stdout is None else str(stdout),
            }
        )
    return steps


def _answer_from(request: HttpRequest, item: Item) -> Any:
    if item.mode == Mode.TRACE:
        answer: dict[str, str] = {}
        for row in _checkpoints(item, {}, None):
            for f in row["fields"]:
                answer[f["name"]] = request.POST.get(f["name"], "")
        return answer
    if item.mode == Mode.PROBES:
        count = len(keys.questions(item))
        return {str(n): request.POST.get(f"probe_{n}", "") for n in range(count)}
    return request.POST.get("answer", "")


def _unreadable(item: Item, answer: Any) -> grading.Grade | None:
    """Answers refused before they reach grading (no attempt used): empty, far too long, or
    with a character the database cannot store."""
    texts = list(answer.values()) if isinstance(answer, dict) else [answer]
    if any("\x00" in t for t in texts):
        return grading.invalid("The answer contains a NUL character (\\0), which cannot be saved.")
    if any(len(t) > grading.MAX_ANSWER for t in texts):
        return grading.invalid(f"The answer is longer than {grading.MAX_ANSWER:,} characters.")
    if item.mode == Mode.PROBES and not answer:
        return grading.invalid("This item has no questions yet.")
    if item.mode not in (Mode.TRACE, Mode.PROBES) and not str(answer).strip():
        if item.mode == Mode.DIVERGENCE:
            return grading.invalid(
                "Mark the model's first wrong step, “none” if every step is right, or “early” "
                "if it stops too early."
            )
        return grading.invalid("Write your answer first.")
    return None


def _item_context(
    request: HttpRequest,
    item: Item,
    member: Membership,
    *,
    answer: Any = None,
    error: str = "",
    shown: Submission | None = None,
    oob_viewer: bool = False,
) -> dict[str, Any]:
    """What the item page (and its ``answer`` partial) shows. ``answer``: what the student
    typed, kept in the form; ``error``: why it was not accepted; ``shown``: the submission
    whose result to show (default: the latest)."""
    the_assignment = item.assignment
    now = timezone.now()
    is_student = member.role == Role.STUDENT
    mine = progress.for_item(item, request.user) if is_student else None
    due, end = the_assignment.window(request.user if is_student else None)
    feedback = is_student and progress.feedback_allowed(item, request.user, now)
    if shown is None and mine is not None:
        shown = mine.latest

    clock = exams.clock(the_assignment, request.user, now) if is_student else None
    refusal = (
        exams.refusal(the_assignment, request.user, now)
        or progress.submit_refusal(item, attempts=mine.attempts, end=end, now=now)
        if mine is not None
        else ""
    )

    key_trace = None
    if item.mode in _KEY_TRACE_MODES and item.key_run is not None:
        real = item.key_run.real_trace
        key_trace = real.data if real is not None else None
    revealed = progress.reveal(item, mine, request.user, now)
    show_key_trace = key_trace is not None and progress.key_trace_shown(
        mine, feedback=feedback, revealed=revealed, closed=now > end
    )

    # The form shows what was just typed or, on arrival, the latest answer.
    typed = answer if answer is not None else (shown.answer if shown is not None else None)
    if item.mode in (Mode.TRACE, Mode.PROBES):
        typed = typed if isinstance(typed, dict) else {}
    elif not isinstance(typed, str):
        typed = ""
    details = progress.feedback_details(shown, feedback=feedback, revealed=revealed)
    # Right/wrong marks on the fields belong to the answer they are about, not to a new one.
    marks = details if not error else None
    values = typed if isinstance(typed, dict) else {}

    return {
        "nav": _navigation(item, request.user if is_student else None, feedback),
        "course": the_assignment.course,
        "assignment": the_assignment,
        "item": item,
        "member": member,
        "is_student": is_student,
        "mine": mine,
        "due": due,
        "end": end,
        "late_period": due < now <= end,
        "feedback": feedback,
        "clock": clock,
        # An answer refused (time up, closed): shown back, so that nothing typed is lost.
        "kept": _kept(answer) if error and answer is not None and refusal else [],
        "results_wait": "" if feedback or not is_student else visibility.results_wait(item, end),
        "refusal": refusal,
        # Predict the next state answers step by step (views/next_state.py), not in this form.
        "can_submit": is_student and not refusal and item.mode != Mode.NEXT_STATE,
        "answer_text": typed if isinstance(typed, str) else "",
        "checkpoints": _checkpoints(item, values, marks) if item.mode == Mode.TRACE else [],
        "model_steps": _model_steps(item) if item.mode == Mode.DIVERGENCE else [],
        "probes": _probe_rows(item, values, marks) if item.mode == Mode.PROBES else [],
        "consistency": (marks or {}).get("consistency") if item.mode == Mode.PROBES else None,
        "rule": _rule(item) if item.mode == Mode.RULE else None,
        "standard": _standard_steps(item) if item.mode == Mode.RULE and show_key_trace else None,
        "from_call": item.key_run is not None and keys.divergence_from_call(item.key_run),
        "error": error,
        "shown": shown,
        "shown_message": progress.guarded_message(shown, revealed) if shown else "",
        "revealed": revealed,
        "details": details,
        "key_run": item.key_run if show_key_trace else None,
        "key_trace": key_trace if show_key_trace else None,
        "show_key_trace": show_key_trace,
        "oob_viewer": oob_viewer and show_key_trace,
        "poll_url": item.get_absolute_url(),
        **(_input_question(item) if item.mode == Mode.INPUT else {}),
        **(_next_state(item, member, request.user) if item.mode == Mode.NEXT_STATE else {}),
    }


def _next_state(item: Item, member: Membership, user: Any) -> dict[str, Any]:
    from playground.classroom.views.next_state import context_for

    return context_for(item, member, user)


def _kept(answer: Any) -> list[tuple[str, str]]:
    """A refused answer as (field, text) pairs, to show back when the form is gone."""
    if isinstance(answer, dict):
        return [(str(k), str(v)) for k, v in answer.items() if str(v).strip()]
    return [("", str(answer))] if str(answer).strip() else []


def _rule(item: Item) -> Rule | None:
    """The rule a "execute under a changed rule" item runs its program under (its sentence is
    what the students are told)."""
    return RULES.get(item.rule)


def _input_question(item: Item) -> dict[str, Any]:
    """What a "predict the input" item asks: ``f(??) == <output>``, the output from the answer
    key's real run (never the program's call: that is the answer)."""
    trace = item.key_run.real_trace if item.key_run is not None else None
    data = trace.data if trace is not None else {}
    output = data.get("result") if data.get("status") == "ok" else None
    return {"input_function": marking.input_function(item), "input_output": output}


def _navigation(item: Item, student: Any, feedback: bool) -> dict[str, Any]:
    """Where the item sits in its assignment (item k of n, the previous and next ones) and, for
    a student, how far they are: items answered and, when feedback is allowed, items right."""
    assignment = item.assignment
    if student is not None:
        mine = progress.for_assignment(assignment, student)
        items = [p.item for p in mine.items]
        answered = sum(1 for p in mine.items if p.attempts)
        right = sum(1 for p in mine.items if p.shown and p.best is not None and p.best >= 1.0)
    else:
        items = list(assignment.items.order_by("position", "id"))
        answered = right = 0
    index = next((i for i, other in enumerate(items) if other.pk == item.pk), 0)
    return {
        "number": index + 1,
        "count": len(items),
        "previous": items[index - 1] if index > 0 else None,
        "next": items[index + 1] if index + 1 < len(items) else None,
        "student": student is not None,
        "answered": answered,
        "right": right if feedback else None,
    }


def _item_for(
    request: HttpRequest, course_id: int, assignment_id: int, item_id: int
) -> tuple[Item, Membership]:
    """The item as the requester is asked it: for a student, only their draw of a pool (another
    item of it is not found), and their own variant of a varied item."""
    the_item, member = access.get_item(request, course_id, assignment_id, item_id)
    if member.role != Role.STUDENT:
        return the_item, member
    if not pools.gets(the_item, request.user):
        raise Http404("No such item.")
    return variants.for_student(the_item, request.user), member


@login_required
@in_course_zone
def item(
    request: HtmxHttpRequest, course_id: int, assignment_id: int, item_id: int
) -> HttpResponse:
    """The item's question and answer form. An htmx GET with ``?submission=`` is the poll of a
    puzzle answer being checked: it returns that result only."""
    the_item, member = _item_for(request, course_id, assignment_id, item_id)
    polled = request.GET.get("submission", "")
    if polled:
        polled_id = object_id(polled)
        submission = (
            Submission.objects.filter(
                item=the_item, student_id=request.user.pk, pk=polled_id
            ).first()
            if polled_id is not None
            else None
        )
        if submission is None:
            raise Http404("No such submission.")
        context = _item_context(request, the_item, member, shown=submission)
        template = "classroom/student/item.html" + ("#result" if request.htmx else "")
        return render(request, template, context)
    clock = exams.clock(the_item.assignment, request.user) if not member.is_staff_role else None
    if clock is not None and clock.can_start:
        # A timed exam's questions wait until the student starts their clock.
        messages.info(request, "Start the exam to see its questions: your time runs from then.")
        return redirect(the_item.assignment)
    context = _item_context(request, the_item, member)
    return render(request, "classroom/student/item.html", context)


@login_required
@require_POST
@in_course_zone
def submit(
    request: HtmxHttpRequest, course_id: int, assignment_id: int, item_id: int
) -> HttpResponse:
    """Grade an answer: htmx gets the answer area back (result, form, attempts); a plain POST is
    redirected to the item with a message. A malformed answer uses no attempt and stays in the
    field (a plain POST gets the page back with it)."""
    the_item, member = _item_for(request, course_id, assignment_id, item_id)
    answer = _answer_from(request, the_item)
    had_viewer = request.POST.get("has_viewer") == "1"

    def answer_area(**kwargs: Any) -> HttpResponse:
        context = _item_context(request, the_item, member, answer=answer, **kwargs)
        # A timed exam's clock sits outside the answer area: an htmx answer brings it anew.
        context["oob_clock"] = bool(request.htmx and context["clock"] is not None)
        if request.htmx:
            return render(request, "classroom/student/item.html#answer", context)
        return render(request, "classroom/student/item.html", context)

    problem = _unreadable(the_item, answer)
    if problem is not None:
        return answer_area(error=problem.message)
    # Counted before anything is recorded or run; refused, the answer stays in the form.
    refused = ratelimits.exceeded(request, "puzzle_submissions.user")
    if refused is not None:
        return with_refusal(answer_area(error=refused.message), refused)
    try:
        submission, grade = submissions.submit(item=the_item, student=request.user, answer=answer)
    except ClassroomError as exc:
        # Refused (time up, closed, no attempts left): the page says why and shows the answer
        # back, so that nothing typed is lost; a plain POST gets the page with a 409.
        page = answer_area(error=str(exc))
        if not request.htmx:
            page.status_code = 409
        return page
    if submission is None:
        assert grade is not None
        return answer_area(error=grade.message)
    if request.htmx:
        return answer_area(shown=submission, oob_viewer=not had_viewer)
    if submission.status == Submission.Status.PENDING:
        messages.info(request, "Submitted: your answer is being checked.")
    elif grade is not None and progress.feedback_allowed(the_item, request.user):
        context = _item_context(request, the_item, member, shown=submission)
        messages.success(
            request, f"Submitted (attempt {submission.attempt}): {context['shown_message']}"
        )
    else:
        messages.success(request, f"Submitted (attempt {submission.attempt}).")
    return redirect(the_item)
