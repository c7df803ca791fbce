"""The runs' part of the JSON API (a django-ninja ``Router``, mounted by ``playground/api.py``):
start a run (``POST /api/runs``), read one, list the requester's runs. A file of its own, beside
``runs/views.py``, because the API checks a request by its schema and answers JSON errors where
the pages render forms. It also holds what the other routers share and runs own: the error shape
(``ErrorOut``), the method names as a schema enum, and the size of a listed page."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError
from ninja.utils import check_csrf

from playground.accounts.tokens import by_token
from playground.emulation.probes import MAX_PER_KIND
from playground.emulation.registry import REGISTRY
from playground.lib import hiding, ratelimits
from playground.lib.hiding import Hidden
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
from playground.runs.models import Run
from playground.runs.requests import Kind, Refusal, offered_rules, resolve_run_request
from playground.runs.services import start_run
from playground.runs.views import LIST_FIELDS, STATUS_FIELDS
from playground.sandbox.inside.semantics import RULES

router = Router()
METHOD_NAMES = ["real", *REGISTRY]
PAGE_SIZE = 25
CSRF_REFUSED = (
    "CSRF check failed: this request carries a session cookie, so it must also send the "
    "CSRF token in the X-CSRFToken header (GET /api/csrf returns it and sets the csrftoken "
    "cookie). Scripts can use a personal API token instead (Authorization: Bearer ..., from "
    "/accounts/), which needs no CSRF token."
)


def refuse_cookie_post_without_csrf(request: HttpRequest) -> None:
    """A request that rides on a session cookie must prove it comes from our pages or a client
    that read the CSRF cookie, exactly as a form post does (403 otherwise). A token request does
    not ride on the cookie (the token decides who it is), so it needs no CSRF token."""
    if (
        not by_token(request)
        and settings.SESSION_COOKIE_NAME in request.COOKIES
        and check_csrf(request) is not None
    ):
        raise HttpError(403, CSRF_REFUSED)


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
    rule: str = Field(
        "",
        description="Run the program under a changed rule of Python: a name from GET "
        "/api/rules (the ground truth is the program run under it; the model is told it). "
        "Empty: standard Python. Only a rule that changes something in the program is taken.",
        max_length=64,
    )
    probes: dict[str, int] | None = Field(
        None,
        description="A probe method's questions: how many of each kind (coverage, state, path, "
        f"output, sequence), each 0 to {MAX_PER_KIND}; left out kinds take their default. "
        "Other methods ignore it.",
    )
    seed: int | None = Field(
        None,
        description="Seeds the model's sampling, and fixes a probe method's questions (the same "
        "seed and counts ask the same ones).",
    )


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
    rule: str | None
    rule_text: str | None
    probes: dict[str, int] | None
    seed: int | None
    trace: dict[str, Any] | None
    standard_trace: dict[str, Any] | None
    emulation: dict[str, Any] | None


class ErrorOut(Schema):
    detail: str


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


@router.post(
    "/runs", response={201: RunOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut, 429: ErrorOut}
)
def create_run(request: HttpRequest, data: RunIn) -> Status[dict[str, Any]]:
    """Run a saved program (``program_id``) or new code (``source``, ``call``, ``stdin``) for
    real and, with an emulation ``method``, have ``model`` emulate it; or have ``model`` solve a
    P3 ``puzzle`` or answer a BIG-Bench Hard ``task`` instance (``task_index``)."""
    refuse_cookie_post_without_csrf(request)
    _refuse_unstorable(data)
    kind: Kind = "puzzle" if data.puzzle else "task" if data.task else "program"
    hidden = hiding.policy().hidden_for(request.user)
    _refuse_hidden(request, hidden)  # exam mode: no run at all
    # The program's text, for the rule's check (offered for this program?) before anything is
    # counted or saved.
    source: str | None = None
    if kind == "program" and data.rule:
        if data.program_id is not None:
            source = get_program_for_user(request, data.program_id).source
        elif data.source is not None:
            source = strip_bom(data.source)
    asked = resolve_run_request(
        request,
        kind=kind,
        method=data.method,
        model=data.model or None,  # left out or empty: the site's default
        max_tokens=data.max_tokens or None,
        limits={"cpu_s": data.cpu_s, "max_steps": data.max_steps},
        rule=data.rule,
        source=source,
        probes=data.probes,
        seed=data.seed,
    )
    if isinstance(asked, Refusal):
        if asked.limit is not None:
            raise asked.limit  # the 429 with Retry-After (_too_many)
        if asked.reason in ("method", "rule", "probes"):
            raise HttpError(422, asked.message)
        raise HttpError(422, f"{asked.message}; see GET /api/models.")
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
    run = start_run(
        **item,
        max_tokens=asked.max_tokens,
        user=request.user,
        # A signed-in requester's runs are their account's: no session is started for them.
        anon_token=None if request.user.is_authenticated else anon_token(request, create=True),
        budget_key=ratelimits.whose(request),
        method=asked.method,
        model=asked.model,
        limits=asked.limits,
        rule=asked.rule,
        probes=asked.probes,
        seed=asked.seed,
    )
    return Status(201, run.as_dict())


class RuleOut(Schema):
    name: str
    text: str  # the sentence a model is told


@router.get(
    "/rules",
    response={200: list[RuleOut], 403: ErrorOut, 404: ErrorOut},
    summary="The changed rules of Python a program may run under",
)
def list_rules(request: HttpRequest, program_id: int | None = None) -> list[dict[str, str]]:
    """Every rule, or with ``program_id`` the rules offered for that program (those that change
    something in it); a run's ``rule`` is one of these names."""
    rules = list(RULES.values())
    if program_id is not None:
        rules = list(offered_rules(get_program_for_user(request, program_id).source))
    return [{"name": rule.name, "text": rule.text} for rule in rules]


@router.get("/runs/{run_id}", response={200: RunOut, 403: ErrorOut, 404: ErrorOut})
def read_run(request: HttpRequest, run_id: int) -> dict[str, Any]:
    """A run's status, its real trace (schema v2) and the model's emulation with its verdict
    (403 while an open assignment of one of the requester's courses hides its results)."""
    run = get_run_for_user(request, run_id)
    if hiding.policy().hidden_for(request.user).run(run):
        raise HttpError(403, hiding.policy().hidden_message)
    return run.as_dict()


# -- The list of the requester's runs ---------------------------------------------------------


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
    rule: str | None
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


def page_bounds(count: int, page: int) -> tuple[int, int]:
    """The number of pages of ``count`` rows, and the offset of page ``page``."""
    pages = max(1, -(-count // PAGE_SIZE))
    return pages, (page - 1) * PAGE_SIZE


def _hidden_ids(runs: QuerySet[Run], hidden: Hidden) -> list[int]:
    """The runs of ``runs`` whose results are hidden from this requester."""
    out = []
    for pk, source, puzzle_id in runs.values_list("pk", "source", "puzzle_id").iterator(2000):
        if hidden.puzzle(puzzle_id) if puzzle_id is not None else hidden.program(source):
            out.append(pk)
    return out


@router.get("/runs", response=RunPageOut, summary="Your runs, newest first")
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
    pages, start = page_bounds(count, filters.page)
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
                "rule": run.rule or None,
                "created_at": run.created_at,
                "hidden": secret,
                "status": None if secret else run.status,
                "verdict": None if secret else (run.verdict or None),
            }
        )
    return {"count": count, "page": filters.page, "pages": pages, "results": rows}
