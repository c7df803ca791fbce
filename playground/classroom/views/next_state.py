"""Predict the next state: a student's stepping exercise (the asked step, a prediction, its
reveal), and staff's view of one student's progress in it. The reveal is the server's: each
response holds the steps up to the one asked next, never a later one (nextstate.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from playground.classroom import nextstate, progress
from playground.classroom.access import get_item
from playground.classroom.errors import ClassroomError
from playground.classroom.item_form import model_choices
from playground.classroom.models import Item, Membership, Mode, Role
from playground.classroom.stats import STEP_METHOD
from playground.classroom.views.student import _item_context, _item_for
from playground.classroom.zones import in_course_zone
from playground.lib import ratelimits
from playground.lib.htmx import HtmxHttpRequest
from playground.lib.params import object_id

TEMPLATE = "classroom/student/_next_state.html"


def context_for(
    item: Item, member: Membership, viewer: Any, *, student: Any = None, error: str = ""
) -> dict[str, Any]:
    """The exercise as ``viewer`` may see it: their own (a student), or ``student``'s or the
    whole run's (staff)."""
    now = timezone.now()
    is_student = member.role == Role.STUDENT
    whose = viewer if is_student else student
    if is_student:
        marks = progress.feedback_allowed(item, viewer, now)
        mine = progress.for_item(item, viewer, now)
        everything = progress.reveal(item, mine, viewer, now)
    else:
        marks, everything = True, True
    exercise = nextstate.exercise(item, whose, marks_shown=marks, everything=everything)
    refusal = ""
    if is_student and not exercise.finished:
        refusal = nextstate.refusal(item, viewer, now)
    return {
        "item": item,
        "course": item.assignment.course,
        "assignment": item.assignment,
        "exercise": exercise,
        "is_student": is_student,
        "student": whose,
        "can_predict": is_student and exercise.question is not None and not refusal,
        "refusal": refusal,
        "step_error": error,
        "events": nextstate.EVENTS,
    }


def _student_of(item: Item, member: Membership, request: HtmxHttpRequest) -> Any:
    """Whose exercise staff look at (``?student=``, a student of the course); a student names
    nobody else: another's progress is not found."""
    raw = request.GET.get("student", "")
    if not raw:
        return None
    pk = object_id(raw)
    if member.role == Role.STUDENT:
        if pk != request.user.pk:
            raise Http404("No such student.")
        return None
    if (
        pk is None
        or not Membership.objects.filter(
            course_id=item.assignment.course_id, user_id=pk, role=Role.STUDENT
        ).exists()
    ):
        raise Http404("No such student.")
    return get_user_model().objects.get(pk=pk)


@login_required
@require_http_methods(["GET", "POST"])
@in_course_zone
def next_state(
    request: HtmxHttpRequest, course_id: int, assignment_id: int, item_id: int
) -> HttpResponse:
    """GET: the exercise (a student's own; staff: the item's steps, or ``?student=``'s
    predictions). POST (a student): a prediction of the asked step; the answer is the exercise
    again, with that step's true state and the next question. A step already predicted is
    refused with 409, and so is one that is not the step asked now."""
    item, member = _item_for(request, course_id, assignment_id, item_id)
    if item.mode != Mode.NEXT_STATE:
        raise Http404("This item is not a stepping exercise.")
    if request.method == "GET":
        student = _student_of(item, member, request)
        return render(request, TEMPLATE, context_for(item, member, request.user, student=student))
    if member.role != Role.STUDENT:
        return HttpResponse("Only the course's students predict steps.", status=403)
    step = object_id(request.POST.get("step", ""))
    status, error = 200, ""
    if step is None:
        status, error = 400, "Which step is this prediction for? Reload the page."
    else:
        try:
            _, error, submission = nextstate.predict(
                item=item, student=request.user, step=step - 1, data=request.POST
            )
        except ClassroomError as exc:
            status, error = 409, str(exc)
        else:
            status = 400 if error else 200
            if submission is not None and not request.htmx:
                messages.success(request, "Every asked step predicted: your answer is recorded.")
    context = context_for(item, member, request.user, error=error)
    if request.htmx:  # htmx swaps no 4xx (base.html's config): the error is in the fragment
        return render(request, TEMPLATE, context)
    if not error:
        return redirect(item)
    page = {**_item_context(request, item, member), **context, "step_error": error}
    return render(request, "classroom/student/item.html", page, status=status)


@login_required
@require_POST
@in_course_zone
def model_run(request: HtmxHttpRequest, course_id: int, assignment_id: int, item_id: int) -> Any:
    """Staff start a model's re-synced ``step`` run of the item's program and call (at most
    ``stepping.MAX_CALLS`` model calls), for the statistics page's per-step comparison;
    counted as an answer key's run is (``item_prepares.user``)."""
    item, _ = get_item(request, course_id, assignment_id, item_id, staff=True)
    here = reverse("classroom:item_stats", args=[course_id, assignment_id, item_id])
    if item.mode != Mode.NEXT_STATE or item.program is None:
        raise Http404("This item is not a stepping exercise.")
    models, problem = model_choices()
    model = request.POST.get("model", "")
    if model not in {name for name, _ in models}:
        messages.error(request, problem or "Choose one of the site's models.")
        return redirect(here)
    refused = ratelimits.exceeded(request, "item_prepares.user")
    if refused is not None:
        messages.error(request, refused.message)
        return redirect(here)
    from playground.emulation.registry import max_tokens_for
    from playground.runs.services import start_run

    start_run(
        program=item.program, user=request.user, anon_token=None, method=STEP_METHOD,
        model=model, max_tokens=max_tokens_for(STEP_METHOD),
    )  # fmt: skip
    messages.success(request, "The model's step run has started: reload this page when it is done.")
    return redirect(here)
