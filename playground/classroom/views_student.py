"""The classroom for everyone in a course: my courses, invitations, joining and leaving, a course
with its assignments, an assignment with its items, an item with its question and answer form,
and submitting.

Results follow the assignment's feedback rule (``progress.feedback_allowed``); every value from a
program, a trace or a model reaches the page through the template's escaping."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from playground.classroom import access, grading, invitations, keys, progress, services
from playground.classroom.guards import site_time
from playground.classroom.models import Item, Membership, Mode, Role, Submission
from playground.classroom.services import ClassroomError
from playground.lib import ratelimits
from playground.lib.htmx import HtmxHttpRequest
from playground.lib.middleware import with_refusal
from playground.lib.params import object_id

_MAX_CODE = 100
_MAX_MODEL_STEPS = 5000
# Modes whose feedback includes the real run of the answer key, stepped through.
_KEY_TRACE_MODES = frozenset({Mode.OUTPUT, Mode.TRACE, Mode.BEAT_MODEL})


def _member_of(request: HttpRequest) -> Any:
    """The signed-in user (every view here is behind login_required)."""
    return request.user


# -- My courses and joining -------------------------------------------------------------------


def _courses_page(
    request: HtmxHttpRequest, *, code: str = "", error: str = "", status: int = 200
) -> HttpResponse:
    memberships = (
        Membership.objects.filter(user=_member_of(request))
        .select_related("course")
        .order_by("course__title", "course_id")
    )
    context = {
        "memberships": memberships,
        "invitations": invitations.pending_for(request.user),
        "code": code,
        "error": error,
    }
    template = "classroom/student/my_courses.html"
    if request.htmx and request.method == "POST":
        template += "#join"
    return render(request, template, context, status=status)


@login_required
def my_courses(request: HtmxHttpRequest) -> HttpResponse:
    """The courses I am in, with my role; invitations waiting for my answer; joining with a
    code. Nothing here makes me a member by itself."""
    return _courses_page(request, code=request.GET.get("code", "").strip()[:_MAX_CODE])


@login_required
@require_http_methods(["GET", "POST"])
def join(request: HtmxHttpRequest) -> HttpResponse:
    """Join a course with its code (a GET, e.g. from a link with ?code=, fills in the form)."""
    if request.method == "GET":
        code = request.GET.get("code", "").strip()[:_MAX_CODE]
        query = f"?{urlencode({'code': code})}" if code else ""
        return redirect(reverse("classroom:courses") + query)
    code = request.POST.get("code", "").strip()
    if not code:
        return _courses_page(request, error="Enter the course's join code.")
    if len(code) > _MAX_CODE or "\x00" in code:
        shown = code[:_MAX_CODE].replace("\x00", "")
        return _courses_page(request, code=shown, error="That is not a join code.")
    # Every code tried counts, right or wrong: join codes must not be guessed in a loop.
    refused = ratelimits.exceeded(request, "course_joins.user")
    if refused is not None:
        return with_refusal(
            _courses_page(request, code=code, error=refused.message, status=429), refused
        )
    already = Membership.objects.filter(
        user=_member_of(request), course__join_code__iexact=code
    ).first()
    try:
        membership = services.join_course(user=request.user, code=code)
    except ClassroomError as exc:
        return _courses_page(request, code=code, error=str(exc))
    course = membership.course
    _joined_message(request, membership, created=already is None)
    if request.htmx:
        return HttpResponseClientRedirect(course.get_absolute_url())
    return redirect(course)


def _joined_message(request: HttpRequest, membership: Membership, created: bool) -> None:
    course = membership.course
    if not created:
        messages.info(request, f"You are already in “{course.title}”.")
        return
    text = f"You joined “{course.title}” as student."
    if membership.pending_role:
        text += (
            f" The role of {Role(membership.pending_role).label.lower()} it offers waits for an "
            "instructor's confirmation."
        )
    messages.success(request, text)


@login_required
@require_POST
def invitation_answer(request: HttpRequest, invitation_id: int) -> HttpResponse:
    """Accept or decline an invitation shown on my "My courses" page (only mine: 404 else)."""
    invitation = invitations.pending_for(request.user).filter(pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    action = request.POST.get("action", "")
    try:
        if action == "accept":
            membership, created = invitations.accept(invitation, request.user)
            _joined_message(request, membership, created)
            return redirect(membership.course)
        if action == "decline":
            invitations.decline(invitation, request.user)
            messages.info(request, f"You declined the invitation to “{invitation.course.title}”.")
        else:
            messages.error(request, "Choose accept or decline: nothing changed.")
    except ClassroomError as exc:
        messages.error(request, str(exc))
    return redirect("classroom:courses")


@require_http_methods(["GET", "POST"])
def invitation_link(request: HttpRequest, token: str) -> HttpResponse:
    """The page an e-mailed link opens: the course, and accept or decline. Opening it changes
    nothing (mail scanners open links); accepting needs an account and a POST, declining only
    the link."""
    invitation, problem = invitations.resolve(token)
    if problem is not None:
        return render(
            request,
            "classroom/student/invitation.html",
            {"problem": problem.message, "invitation": invitation},
            status=problem.status,
        )
    assert invitation is not None
    here = request.path
    login_url = f"{reverse('login')}?{urlencode({'next': here})}"
    context: dict[str, Any] = {
        "invitation": invitation,
        "course": invitation.course,
        "role": Role(invitation.role).label.lower(),
        "here": here,
        "signed_in": request.user.is_authenticated,
        "login_url": login_url,
        "signup_url": f"{reverse('signup')}?{urlencode({'next': here})}",
    }
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "accept" and request.user.is_authenticated:
                membership, created = invitations.accept(invitation, request.user)
                _joined_message(request, membership, created)
                return redirect(membership.course)
            if action == "accept":
                return redirect(login_url)
            if action == "decline":
                user = request.user if request.user.is_authenticated else None
                invitations.decline(invitation, user)
                context["declined"] = True
                return render(request, "classroom/student/invitation.html", context)
            context["error"] = "Choose accept or decline: nothing changed."
            return render(request, "classroom/student/invitation.html", context, status=400)
        except ClassroomError as exc:
            context["error"] = str(exc)
            return render(request, "classroom/student/invitation.html", context, status=409)
    return render(request, "classroom/student/invitation.html", context)


@login_required
@require_POST
def leave(request: HttpRequest, course_id: int) -> HttpResponse:
    """Leave a course I am in (404 for a course I am not in)."""
    the_course, _ = access.get_course(request, course_id)
    try:
        services.leave_course(user=request.user, course=the_course)
    except ClassroomError as exc:
        messages.error(request, str(exc))
        return redirect(the_course)
    messages.success(request, f"You left “{the_course.title}”.")
    return redirect("classroom:courses")


# -- A course and an assignment ----------------------------------------------------------------


@login_required
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
    return render(request, "classroom/student/assignment.html", context)


# -- An item: the question, the answer form, the result ---------------------------------------


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
    return request.POST.get("answer", "")


def _unreadable(item: Item, answer: Any) -> grading.Grade | None:
    """Answers refused before they reach grading (no attempt used): empty, far too long, or
    with a character the database cannot store."""
    texts = list(answer.values()) if isinstance(answer, dict) else [answer]
    if any("\x00" in t for t in texts):
        return grading.invalid("The answer contains a NUL character (\\0), which cannot be saved.")
    if any(len(t) > grading.MAX_ANSWER for t in texts):
        return grading.invalid(f"The answer is longer than {grading.MAX_ANSWER:,} characters.")
    if item.mode != Mode.TRACE and not str(answer).strip():
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
    feedback = is_student and progress.feedback_allowed(the_assignment, request.user, now)
    if shown is None and mine is not None:
        shown = mine.latest

    refusal = ""
    if is_student:
        if now > end:
            refusal = f"This assignment closed on {site_time(end)}: no more answers."
        elif mine is not None and mine.attempts_left == 0:
            refusal = f"No attempts left (the limit is {the_assignment.max_attempts})."
        elif not item.key_ready:
            refusal = services.key_refusal(item)

    key_trace = None
    if item.mode in _KEY_TRACE_MODES and item.key_run is not None:
        real = item.key_run.real_trace
        key_trace = real.data if real is not None else None
    best_score = max((s.score or 0.0 for s in mine.graded), default=None) if mine else None
    revealed = not is_student or progress.answer_revealed(
        the_assignment,
        request.user,
        attempts=mine.attempts if mine else 0,
        best_score=best_score,
        now=now,
    )
    show_key_trace = (
        key_trace is not None
        and revealed
        and (not is_student or (feedback and (bool(mine and mine.graded) or now > end)))
    )

    # The form shows what was just typed or, on arrival, the latest answer.
    typed = answer if answer is not None else (shown.answer if shown is not None else None)
    if item.mode == Mode.TRACE:
        typed = typed if isinstance(typed, dict) else {}
    elif not isinstance(typed, str):
        typed = ""
    details = None
    if shown is not None and feedback and shown.status == Submission.Status.GRADED:
        details = shown.feedback.get("details") or {}
        if not revealed:  # right or wrong only: no expected values, no model answer
            details = {
                "checkpoints": [
                    {"right": c.get("right"), "score": c.get("score")}
                    for c in details.get("checkpoints", [])
                    if isinstance(c, dict)
                ]
            }
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
        "refusal": refusal,
        "can_submit": is_student and not refusal,
        "answer_text": typed if isinstance(typed, str) else "",
        "checkpoints": _checkpoints(item, values, marks) if item.mode == Mode.TRACE else [],
        "model_steps": _model_steps(item) if item.mode == Mode.DIVERGENCE else [],
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
    }


def _navigation(item: Item, student: Any, feedback: bool) -> dict[str, Any]:
    """Where the item sits in its assignment (item k of n, the previous and next ones) and, for
    a student, how far they are: items answered and, when feedback is allowed, items right."""
    assignment = item.assignment
    if student is not None:
        mine = progress.for_assignment(assignment, student)
        items = [p.item for p in mine.items]
        answered = sum(1 for p in mine.items if p.attempts)
        right = sum(1 for p in mine.items if p.best is not None and p.best >= 1.0)
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


@login_required
def item(
    request: HtmxHttpRequest, course_id: int, assignment_id: int, item_id: int
) -> HttpResponse:
    """The item's question and answer form. An htmx GET with ``?submission=`` is the poll of a
    puzzle answer being checked: it returns that result only."""
    the_item, member = access.get_item(request, course_id, assignment_id, item_id)
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
    context = _item_context(request, the_item, member)
    return render(request, "classroom/student/item.html", context)


@login_required
@require_POST
def submit(
    request: HtmxHttpRequest, course_id: int, assignment_id: int, item_id: int
) -> HttpResponse:
    """Grade an answer: htmx gets the answer area back (result, form, attempts); a plain POST is
    redirected to the item with a message. A malformed answer uses no attempt and stays in the
    field (a plain POST gets the page back with it)."""
    the_item, member = access.get_item(request, course_id, assignment_id, item_id)
    answer = _answer_from(request, the_item)
    had_viewer = request.POST.get("has_viewer") == "1"

    def answer_area(**kwargs: Any) -> HttpResponse:
        context = _item_context(request, the_item, member, answer=answer, **kwargs)
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
        submission, grade = services.submit(item=the_item, student=request.user, answer=answer)
    except ClassroomError as exc:
        if request.htmx:
            return answer_area(error=str(exc))
        messages.error(request, str(exc))
        return redirect(the_item)
    if submission is None:
        assert grade is not None
        return answer_area(error=grade.message)
    if request.htmx:
        return answer_area(shown=submission, oob_viewer=not had_viewer)
    if submission.status == Submission.Status.PENDING:
        messages.info(request, "Submitted: your answer is being checked.")
    elif grade is not None and progress.feedback_allowed(the_item.assignment, request.user):
        context = _item_context(request, the_item, member, shown=submission)
        messages.success(
            request, f"Submitted (attempt {submission.attempt}): {context['shown_message']}"
        )
    else:
        messages.success(request, f"Submitted (attempt {submission.attempt}).")
    return redirect(the_item)
