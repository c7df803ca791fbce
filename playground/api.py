"""The JSON API (django-ninja): models, runs, evaluations. OpenAPI at /api/openapi.json,
interactive docs at /api/docs. The same access rules as the pages: a run belongs to the account
or the session (cookie) that created it; the same rate limits. A script authenticates with a
personal API token (``Authorization: Bearer``, playground/accounts/tokens.py) and then acts as
its owner; a cookie client sends the CSRF token, which ``GET /api/csrf`` hands out."""

from __future__ import annotations

import enum
import logging
from datetime import datetime
from typing import Any, Literal

from csp.decorators import csp_update
from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from ninja import Field, NinjaAPI, Query, Schema, Status
from ninja.errors import HttpError
from ninja.openapi.schema import OpenAPISchema
from ninja.utils import check_csrf

from playground.accounts.tokens import by_token
from playground.benchmarks.models import Evaluation
from playground.emulation.registry import REGISTRY, max_tokens_for, methods_for
from playground.lib import hiding, ratelimits
from playground.lib.hiding import Hidden
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
from playground.runs.access import get_run_for_user, runs_of
from playground.runs.limits import allowed_overrides
from playground.runs.models import Run
from playground.runs.services import start_run
from playground.runs.views import LIST_FIELDS, STATUS_FIELDS

log = logging.getLogger(__name__)
METHOD_NAMES = ["real", *REGISTRY]
PAGE_SIZE = 25
CSRF_REFUSED = (
    "CSRF check failed: this request carries a session cookie, so it must also send the "
    "CSRF token in the X-CSRFToken header (GET /api/csrf returns it and sets the csrftoken "
    "cookie). Scripts can use a personal API token instead (Authorization: Bearer ..., from "
    "/accounts/), which needs no CSRF token."
)


class PlaygroundAPI(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        """The schema, with the personal API token described as its security scheme. The
        token is optional: anonymous visitors use the API too (with a session cookie)."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["ApiToken"] = {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A personal API token from your account page (/accounts/): the request acts "
                "as you. Scope `read` allows GET; `run` also starts runs. Without a token the "
                "API serves the session of the cookie sent, or an anonymous visitor."
            ),
        }
        schema["security"] = [{"ApiToken": []}, {}]
        return schema


api = PlaygroundAPI(
    title="Code reasoning playground",
    version="1",
    description=(
        "Run Python programs for real in a sandbox and have language models emulate them. "
        "Scripts authenticate with a personal API token (`Authorization: Bearer <token>`, "
        "made on /accounts/). Live events of a run: `GET /runs/{id}/events` (Server-Sent "
        "Events, JSON data, resumable with Last-Event-ID; the same token works there)."
    ),
    urls_namespace="api",
    # Swagger UI's own stylesheet draws its icons (the arrows of selects, the lock of an
    # operation) as data: SVG images, which the site's policy refuses; an image cannot run
    # script, so the docs page alone also allows data: images.
    docs_decorator=csp_update({"img-src": ["data:"]}),
)


@api.exception_handler(ratelimits.Refused)
def _too_many(request: HttpRequest, refused: ratelimits.Refused) -> HttpResponse:
    return too_many(request, refused)


class ModelOut(Schema):
    name: str
    label: str
    constrained_json: str  # "", "openai" or "json_object"
    embedded: bool
    default: bool  # the model a run gets when it names none (the first configured)


class RunIn(Schema):
    program_id: int | None = None
    puzzle: str | None = None  # a P3 puzzle's name, e.g. "Study_1:0" (method "puzzle")
    task: str | None = None  # a BIG-Bench Hard task and the instance's index (coc, tae)
    task_index: int | None = None
    source: str | None = None
    call: str = ""
    stdin: str = ""
    # A string checked by the handler (its 422 names the methods that apply to this kind of
    # item), described as the enum of every method in the schema.
    method: str = Field(
        "real",
        description="`real` runs the program only; the others also ask a model (which apply "
        "depends on what is run: a program, a puzzle or a task).",
        json_schema_extra={"enum": list[Any](METHOD_NAMES)},
    )
    model: str | None = Field(
        None, description="A name from GET /api/models; left out: the site's default model."
    )
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
            "default": i == 0,
        }
        for i, m in enumerate(models)
    ]


class CsrfOut(Schema):
    csrf_token: str
    header: str


@api.get("/csrf", response=CsrfOut, summary="The CSRF token for clients that send cookies")
def csrf(request: HttpRequest) -> dict[str, str]:
    """A client that keeps cookies (the session cookie the first run sets) sends this token in
    the ``X-CSRFToken`` header of every POST; the response also sets the ``csrftoken`` cookie.
    Clients with a personal API token need neither."""
    return {"csrf_token": get_token(request), "header": "X-CSRFToken"}


def _refuse_hidden(request: HttpRequest, hidden: Hidden, *, source: str | None = None,
                   puzzle_id: int | None = None) -> None:  # fmt: skip
    """403 when this requester may not start this run now (an item of an open assignment in
    one of their courses; in exam mode, any run)."""
    refusal = hiding.policy().run_start_refusal(
        request.user, source=source, puzzle_id=puzzle_id, hidden=hidden
    )
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
    # that read the CSRF cookie, exactly as a form post does. A token request does not ride on
    # the cookie (the token decides who it is), so it needs no CSRF token.
    if (
        not by_token(request)
        and settings.SESSION_COOKIE_NAME in request.COOKIES
        and check_csrf(request) is not None
    ):
        raise HttpError(403, CSRF_REFUSED)
    _refuse_unstorable(data)
    kind = "puzzle" if data.puzzle else "task" if data.task else "program"
    offered = ({"real": ""} if kind == "program" else {}) | methods_for(kind)
    if data.method not in offered:
        raise HttpError(
            422,
            f"The method {data.method!r} does not apply to a {kind}; one of {', '.join(offered)}.",
        )
    model = ""
    if data.method != "real":
        try:
            names = [m.name for m in load_models()]
        except RegistryError:
            names = []
        # Left out (or empty): the site's default, the first configured model (the embedded
        # one when none is configured), as in GET /api/models and `manage.py emulate`.
        model = data.model or (names[0] if names else "")
        if not names:
            raise HttpError(422, "This site offers no language model; see GET /api/models.")
        if model not in names:
            raise HttpError(422, f"Unknown model {model!r}; see GET /api/models.")
    hidden = hiding.policy().hidden_for(request.user)
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
    tokens = max_tokens_for(data.method)
    run = start_run(
        **item,
        max_tokens=max(16, min(data.max_tokens, tokens)) if data.max_tokens else tokens,
        user=request.user,
        # A signed-in requester's runs are their account's: no session is started for them.
        anon_token=None if request.user.is_authenticated else anon_token(request, create=True),
        budget_key=ratelimits.whose(request),
        method=data.method,
        model=model,
        limits=limits,
    )
    return Status(201, run.as_dict())


@api.get("/runs/{run_id}", response={200: RunOut, 403: ErrorOut, 404: ErrorOut})
def read_run(request: HttpRequest, run_id: int) -> dict[str, Any]:
    """A run's status, its real trace (schema v2) and the model's emulation with its verdict
    (403 while an open assignment of one of the requester's courses hides its results)."""
    run = get_run_for_user(request, run_id)
    if hiding.policy().hidden_for(request.user).run(run):
        raise HttpError(403, hiding.policy().hidden_message)
    return run.as_dict()


# -- Lists: the requester's runs and evaluations ---------------------------------------------


MethodName = enum.Enum("MethodName", {name: name for name in METHOD_NAMES}, type=str)  # type: ignore[misc]


class RunFilters(Schema):
    status: Run.Status | None = Field(None, description="Only runs with this status.")
    method: MethodName | None = Field(None, description="Only runs of this method.")
    page: int = Field(1, ge=1, le=1_000_000, description=f"{PAGE_SIZE} runs a page.")


class RunRowOut(Schema):
    id: int
    url: str
    kind: str
    title: str
    program_id: int | None
    puzzle: str | None
    task_example: str | None
    method: str
    model: str | None
    created_at: datetime
    hidden: bool  # an open assignment hides its results: no status, no verdict
    status: str | None
    verdict: dict[str, Any] | None


class RunPageOut(Schema):
    count: int
    page: int
    pages: int
    results: list[RunRowOut]


# What a row reads of a run: never a trace, the model's text or a program's source (the run's
# own source stays: hiding is decided on it).
ROW_FIELDS = (
    *STATUS_FIELDS, *LIST_FIELDS, "method", "model", "verdict",
)  # fmt: skip


def _page_bounds(count: int, page: int) -> tuple[int, int]:
    pages = max(1, -(-count // PAGE_SIZE))
    return pages, (page - 1) * PAGE_SIZE


def _hidden_ids(runs: QuerySet[Run], hidden: Hidden) -> list[int]:
    """The runs of ``runs`` whose results are hidden from this requester."""
    out = []
    for pk, source, puzzle_id in runs.values_list("pk", "source", "puzzle_id").iterator(2000):
        if hidden.puzzle(puzzle_id) if puzzle_id is not None else hidden.program(source):
            out.append(pk)
    return out


@api.get("/runs", response=RunPageOut, summary="Your runs, newest first")
def list_runs(request: HttpRequest, filters: Query[RunFilters]) -> dict[str, Any]:
    """The runs of the requester (their account, or for a visitor without one, their session),
    as "My runs" lists them: a run whose results an open assignment hides shows neither status
    nor verdict, and is in no ``status`` filter's list."""
    runs = runs_of(request).select_related("program", "puzzle", "task_example__task")
    if filters.method is not None:
        runs = runs.filter(method=filters.method.value)
    hidden = hiding.policy().hidden_for(request.user)
    if filters.status is not None:
        runs = runs.filter(status=filters.status)
        if hidden.anything:
            runs = runs.exclude(pk__in=_hidden_ids(runs, hidden))
    count = runs.count()
    pages, start = _page_bounds(count, filters.page)
    rows = []
    for run in runs.only(*ROW_FIELDS)[start : start + PAGE_SIZE]:
        secret = hidden.anything and hidden.run(run)
        rows.append(
            {
                "id": run.pk,
                "url": run.get_absolute_url(),
                "kind": run.kind,
                "title": run.subject_title,
                "program_id": run.program_id,
                "puzzle": run.puzzle.name if run.puzzle is not None else None,
                "task_example": str(run.task_example) if run.task_example is not None else None,
                "method": run.method,
                "model": run.model or None,
                "created_at": run.created_at,
                "hidden": secret,
                "status": None if secret else run.status,
                "verdict": None if secret else (run.verdict or None),
            }
        )
    return {"count": count, "page": filters.page, "pages": pages, "results": rows}


class EvaluationFilters(Schema):
    which: Literal["mine", "public"] = Field(
        "mine",
        description="`mine`: your own evaluations, in any state; `public`: the leaderboard "
        "(finished evaluations of the shared data sets, anyone's).",
    )
    status: Evaluation.Status | None = None
    method: MethodName | None = None
    page: int = Field(1, ge=1, le=1_000_000, description=f"{PAGE_SIZE} evaluations a page.")


class EvaluationRowOut(Schema):
    id: int
    url: str
    title: str
    owner: str | None
    dataset: str
    subset: list[Any]
    method: str
    model: str
    status: str
    created_at: datetime
    finished_at: datetime | None
    n: int
    passed: int
    accuracy: float
    ci95: list[float]
    no_model: int
    errors: int
    done: int
    total: int


SUMMARY_FIELDS = (
    "n", "passed", "accuracy", "ci95", "no_model", "errors", "done", "total", "subset",
)  # fmt: skip


class EvaluationPageOut(Schema):
    count: int
    page: int
    pages: int
    results: list[EvaluationRowOut]


@api.get("/evaluations", response=EvaluationPageOut, summary="Your evaluations, or the public ones")
def list_evaluations(request: HttpRequest, filters: Query[EvaluationFilters]) -> dict[str, Any]:
    """Evaluations with their figures (accuracy, 95% interval, counts), newest first, by the
    evaluation pages' rules: your own in any state, and the finished ones of the shared data
    sets for everyone. Per-item results are on each evaluation's page (``url``)."""
    from playground.benchmarks.summary import keep_figures, summarise
    from playground.benchmarks.views import _public

    if filters.which == "public":
        evaluations = _public()
    elif request.user.is_authenticated:
        evaluations = Evaluation.objects.filter(owner_id=request.user.pk).select_related("owner")
    else:
        evaluations = Evaluation.objects.none()
    if filters.status is not None:
        evaluations = evaluations.filter(status=filters.status)
    if filters.method is not None:
        evaluations = evaluations.filter(method=filters.method.value)
    count = evaluations.count()
    pages, start = _page_bounds(count, filters.page)
    rows = []
    shown = list(evaluations.order_by("-id")[start : start + PAGE_SIZE])
    keep_figures(shown)  # the finished ones' figures, counted once for the page and kept
    for evaluation in shown:
        summary = summarise(evaluation)
        rows.append(
            {
                **{k: summary[k] for k in SUMMARY_FIELDS},
                "id": evaluation.pk,
                "url": evaluation.get_absolute_url(),
                "title": str(evaluation),
                "owner": evaluation.owner.get_username() if evaluation.owner else None,
                "dataset": evaluation.dataset,
                "method": evaluation.method,
                "model": evaluation.model,
                "status": evaluation.status,
                "created_at": evaluation.created_at,
                "finished_at": evaluation.finished_at,
            }
        )
    return {"count": count, "page": filters.page, "pages": pages, "results": rows}


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
