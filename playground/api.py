"""The JSON API (django-ninja): models, runs, and their events. OpenAPI at /api/openapi.json,
interactive docs at /api/docs. The same access rules as the pages: a run belongs to the account
or the session (cookie) that created it; the same rate limit on starting runs."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError
from ninja.utils import check_csrf

from playground.classroom.guards import run_hidden_from, run_start_refusal
from playground.classroom.hiding import HIDDEN_MESSAGE, Hidden, hidden_for
from playground.emulation.registry import methods_for
from playground.lib import ratelimits
from playground.lib.middleware import too_many
from playground.llm.registry import RegistryError, load_models
from playground.programs.access import anon_token, get_program_for_user
from playground.programs.models import Dataset, Program, Puzzle, TaskExample
from playground.programs.validation import (
    ProgramError,
    check_call,
    check_size,
    check_source,
    strip_bom,
)
from playground.runs.access import get_run_for_user
from playground.runs.limits import allowed_overrides
from playground.runs.methods import METHOD_TOKENS
from playground.runs.services import start_run

log = logging.getLogger(__name__)
api = NinjaAPI(
    title="Code reasoning playground",
    version="1",
    description=(
        "Run Python programs for real in a sandbox and have language models emulate them. "
        "Live events of a run: `GET /runs/{id}/events` (Server-Sent Events, JSON data, "
        "resumable with Last-Event-ID)."
    ),
    urls_namespace="api",
)


@api.exception_handler(ratelimits.Refused)
def _too_many(request: HttpRequest, refused: ratelimits.Refused) -> HttpResponse:
    return too_many(request, refused)


class ModelOut(Schema):
    name: str
    label: str
    constrained_json: str  # "", "openai" or "json_object"
    embedded: bool


class RunIn(Schema):
    program_id: int | None = None
    puzzle: str | None = None  # a P3 puzzle's name, e.g. "Study_1:0" (method "puzzle")
    task: str | None = None  # a BIG-Bench Hard task and the instance's index (coc, tae)
    task_index: int | None = None
    source: str | None = None
    call: str = ""
    stdin: str = ""
    method: str = "real"
    model: str = ""
    cpu_s: int | None = None
    max_steps: int | None = None
    max_tokens: int | None = None


class RunOut(Schema):
    id: int
    url: str
    events_url: str
    kind: str
    program_id: int | None
    puzzle: str | None
    task_example: str | None
    status: str
    method: str
    model: str | None
    error: str | None
    trace: dict[str, Any] | None
    emulation: dict[str, Any] | None


class ErrorOut(Schema):
    detail: str


@api.get("/models", response=list[ModelOut], summary="The language models this site offers")
def list_models(request: HttpRequest) -> list[dict[str, Any]]:
    try:
        models = load_models()
    except RegistryError:
        # The detail (a file path, a line) is for the operator's log, not for visitors.
        log.exception("the model configuration is broken")
        raise HttpError(503, "The site's model configuration is broken.") from None
    return [
        {
            "name": m.name,
            "label": m.label,
            "constrained_json": m.json_schema,
            "embedded": m.embedded,
        }
        for m in models
    ]


def _refuse_hidden(request: HttpRequest, hidden: Hidden, *, source: str | None = None,
                   puzzle_id: int | None = None) -> None:  # fmt: skip
    """403 when this requester may not start this run now (an item of an open assignment in
    one of their courses; in exam mode, any run)."""
    refusal = run_start_refusal(request.user, source=source, puzzle_id=puzzle_id, hidden=hidden)
    if refusal is not None:
        raise HttpError(403, refusal)


def _program_for(request: HttpRequest, data: RunIn, hidden: Hidden) -> Program:
    if data.program_id is not None:
        program = get_program_for_user(request, data.program_id)
        _refuse_hidden(request, hidden, source=program.source)
        return program
    if data.source is None:
        raise HttpError(422, "Give program_id, or source (and call) for a new program.")
    source = strip_bom(data.source)  # as CPython reads a file that starts with one
    # The same text as a hidden program is refused before any copy of it is saved.
    _refuse_hidden(request, hidden, source=source)
    try:
        check_source(source, max_bytes=_setting("PLAYGROUND_MAX_SOURCE_BYTES"))
        check_call(data.call, max_chars=_setting("PLAYGROUND_MAX_CALL_CHARS"))
        check_size(data.stdin, _setting("PLAYGROUND_MAX_STDIN_BYTES"), "standard input")
    except ProgramError as exc:
        raise HttpError(422, str(exc)) from None
    program = Program(source=source, call=data.call.strip(), stdin=data.stdin, dataset=Dataset.USER)
    if request.user.is_authenticated:
        program.owner = request.user
    else:
        program.anon_owner = anon_token(request, create=True) or ""
    program.save()
    return program


def _refuse_unstorable(data: RunIn) -> None:
    """422 for text that no database column can hold: a NUL character, or a lone surrogate
    (JSON can carry both; PostgreSQL refuses them, which was a 500)."""
    for name, value in data.dict().items():
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            raise HttpError(422, f"{name!r} contains a NUL character (\\u0000): remove it.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise HttpError(
                422, f"{name!r} contains a lone surrogate (\\ud800-\\udfff), which is not text."
            ) from None


def _get(model: Any, what: str, **lookup: Any) -> Any:
    found = model.objects.filter(**lookup).first()
    if found is None:
        raise HttpError(404, f"No such {what} in the library.")
    return found


def _setting(name: str) -> int:
    return int(getattr(settings, name))


@api.post(
    "/runs", response={201: RunOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut}
)
def create_run(request: HttpRequest, data: RunIn) -> Status[dict[str, Any]]:
    """Run a saved program (``program_id``) or new code (``source``, ``call``, ``stdin``) for
    real and, with an emulation ``method``, have ``model`` emulate it; or have ``model`` solve a
    P3 ``puzzle`` or answer a BIG-Bench Hard ``task`` instance (``task_index``)."""
    # A request that rides on a session cookie must prove it comes from our pages or a client
    # that read the CSRF cookie, exactly as a form post does.
    if settings.SESSION_COOKIE_NAME in request.COOKIES and check_csrf(request) is not None:
        raise HttpError(403, "CSRF check failed: send the X-CSRFToken header.")
    _refuse_unstorable(data)
    kind = "puzzle" if data.puzzle else "task" if data.task else "program"
    offered = ({"real": ""} if kind == "program" else {}) | methods_for(kind)
    if data.method not in offered:
        raise HttpError(
            422,
            f"The method {data.method!r} does not apply to a {kind}; one of {', '.join(offered)}.",
        )
    if data.method != "real":
        try:
            names = {m.name for m in load_models()}
        except RegistryError:
            names = set()
        if data.model not in names:
            raise HttpError(422, f"Unknown model {data.model!r}; see GET /api/models.")
    hidden = hidden_for(request.user)
    _refuse_hidden(request, hidden)  # exam mode: no run at all
    if data.method != "real":  # refused while the requester's model tokens are spent
        ratelimits.hit(request, "model_tokens", count=False)
    ratelimits.hit(request, "runs")
    item: dict[str, Any]
    if data.puzzle:
        puzzle = _get(Puzzle, "puzzle", name=data.puzzle)
        _refuse_hidden(request, hidden, puzzle_id=puzzle.pk)
        item = {"puzzle": puzzle}
    elif data.task:
        example = _get(TaskExample, "task instance", task__name=data.task, index=data.task_index)
        item = {"task_example": example}
    else:
        item = {"program": _program_for(request, data, hidden)}
    limits = allowed_overrides(
        {"cpu_s": data.cpu_s, "max_steps": data.max_steps},
        authenticated=request.user.is_authenticated,
    )
    tokens = METHOD_TOKENS.get(data.method, 512)
    run = start_run(
        **item,
        max_tokens=max(16, min(data.max_tokens, tokens)) if data.max_tokens else tokens,
        user=request.user,
        anon_token=anon_token(request, create=True),
        budget_key=ratelimits.whose(request),
        method=data.method,
        model=data.model,
        limits=limits,
    )
    return Status(201, run.as_dict())


@api.get("/runs/{run_id}", response={200: RunOut, 403: ErrorOut, 404: ErrorOut})
def read_run(request: HttpRequest, run_id: int) -> dict[str, Any]:
    """A run's status, its real trace (schema v2) and the model's emulation with its verdict
    (403 while an open assignment of one of the requester's courses hides its results)."""
    run = get_run_for_user(request, run_id)
    if run_hidden_from(request.user, run):
        raise HttpError(403, HIDDEN_MESSAGE)
    return run.as_dict()


# -- Classroom ---------------------------------------------------------------------------------


def _classroom_assignment(
    request: HttpRequest, course_id: int, assignment_id: int, *, staff: bool
) -> tuple[Any, Any]:
    """The assignment and the requester's membership, with the pages' rules (404 for
    non-members, 403 for a student on staff data)."""
    from django.core.exceptions import PermissionDenied
    from django.http import Http404

    from playground.classroom.access import get_assignment

    try:
        return get_assignment(request, course_id, assignment_id, staff=staff)
    except Http404:
        raise HttpError(404, "No such assignment, or you are not in its course.") from None
    except PermissionDenied as exc:
        raise HttpError(403, str(exc) or "Only the course's staff may see this.") from None


@api.get(
    "/courses/{course_id}/assignments/{assignment_id}/gradebook",
    response={200: dict[str, Any], 403: ErrorOut, 404: ErrorOut},
    summary="The gradebook of an assignment (staff)",
)
def classroom_gradebook(request: HttpRequest, course_id: int, assignment_id: int) -> dict[str, Any]:
    from playground.classroom.gradebook import build

    assignment, _ = _classroom_assignment(request, course_id, assignment_id, staff=True)
    return build(assignment).as_dict()


@api.get(
    "/courses/{course_id}/assignments/{assignment_id}/submissions",
    response={200: list[dict[str, Any]], 403: ErrorOut, 404: ErrorOut},
    summary="Submissions of an assignment: all of them for staff, a student's own for a student",
)
def classroom_submissions(
    request: HttpRequest, course_id: int, assignment_id: int
) -> list[dict[str, Any]]:
    from django.utils import timezone

    from playground.classroom.models import Feedback, Submission

    assignment, member = _classroom_assignment(request, course_id, assignment_id, staff=False)
    submissions = Submission.objects.filter(item__assignment=assignment).select_related(
        "student", "item"
    )
    staff = member.is_staff_role
    show_grades = True
    if not staff:
        submissions = submissions.filter(student_id=request.user.pk)
        window_end = assignment.window(request.user)[1]
        show_grades = assignment.feedback == Feedback.AFTER_ATTEMPT or timezone.now() > window_end
    from playground.classroom.progress import answer_revealed, guarded_message

    rows = list(submissions.order_by("submitted_at", "id"))
    revealed: dict[int, bool] = {}
    if not staff:
        for item_id in {s.item_id for s in rows}:
            mine = [s for s in rows if s.item_id == item_id]
            scores = [s.score for s in mine if s.score is not None]
            revealed[item_id] = answer_revealed(
                assignment,
                request.user,
                attempts=len(mine),
                best_score=max(scores) if scores else None,
            )
    out: list[dict[str, Any]] = []
    for sub in rows:
        record: dict[str, Any] = {
            "id": sub.pk,
            "item": sub.item_id,
            "attempt": sub.attempt,
            "answer": sub.answer,
            "submitted_at": sub.submitted_at.isoformat(),
            "late": sub.late,
            "status": sub.status,
        }
        if staff:
            record["student"] = sub.student.get_username()
        if show_grades:
            record.update(
                score=sub.score,
                credit=sub.final_credit,
                message=guarded_message(sub, staff or revealed[sub.item_id]),
                override_comment=sub.override_comment or None,
            )
        out.append(record)
    return out
