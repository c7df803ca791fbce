"""The evaluations' part of the JSON API (a django-ninja ``Router``, mounted by
``playground/api.py``): the requester's evaluations, or the public ones (the leaderboard), with
their figures. A file of its own, beside ``benchmarks/views/``, whose rules for who sees which
evaluation it follows, because it answers a page of JSON rows where the views render tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest
from ninja import Field, File, Form, Query, Router, Schema, Status, UploadedFile
from ninja.errors import HttpError

from playground.benchmarks import imports, paired, rescoring, services
from playground.benchmarks.access import (
    listable_programs,
    public_evaluations,
    visible_evaluations,
)
from playground.benchmarks.forms import EvaluationForm
from playground.benchmarks.models import Evaluation
from playground.benchmarks.summary import keep_figures, summarise
from playground.emulation.registry import REGISTRY, max_tokens_for
from playground.lib import hiding, ratelimits
from playground.lib.hiding import Surface
from playground.llm.registry import RegistryError, load_models
from playground.runs.api import (
    PAGE_SIZE,
    ErrorOut,
    MethodName,
    page_bounds,
    refuse_cookie_post_without_csrf,
)

router = Router()


class EvaluationFilters(Schema):
    which: Literal["mine", "public"] = Field(
        "mine",
        description="`mine`: your own evaluations, in any state; `public`: the leaderboard "
        "(finished evaluations of the shared data sets, anyone's).",
    )
    status: Evaluation.Status | None = None
    method: MethodName | None = None
    rule: str | None = Field(
        None, max_length=32,
        description="only those under this semantic rule; an empty value: Python's own",
    )  # fmt: skip
    page: int = Field(1, ge=1, le=1_000_000, description=f"{PAGE_SIZE} evaluations a page.")


class EvaluationRowOut(Schema):
    id: int
    url: str
    title: str
    owner: str | None
    dataset: str
    task: str = Field(description="`output` (CRUXEval-O and the others) or `input` (CRUXEval-I)")
    origin: str = Field(description="`run`: generated here; `import`: outputs read from a file")
    rules: str = Field(description="the scoring rules' version (`official-1`: the benchmark's)")
    subset: list[Any]
    method: str
    model: str
    rule: str = Field(description="the semantic rule its programs ran under; `` for Python's own")
    not_offered: int = Field(description="items left out: the rule changes nothing in them")
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
    "n", "passed", "accuracy", "ci95", "no_model", "errors", "done", "total", "subset", "rule",
    "not_offered",
)  # fmt: skip


class EvaluationPageOut(Schema):
    count: int
    page: int
    pages: int
    results: list[EvaluationRowOut]


@router.get(
    "/evaluations", response=EvaluationPageOut, summary="Your evaluations, or the public ones"
)
def list_evaluations(request: HttpRequest, filters: Query[EvaluationFilters]) -> dict[str, Any]:
    """Evaluations with their figures (accuracy, 95% interval, counts), newest first, by the
    evaluation pages' rules: your own in any state, and the finished ones of the shared data
    sets for everyone. Per-item results are on each evaluation's page (``url``)."""
    if filters.which == "public":
        evaluations = public_evaluations()
    elif request.user.is_authenticated:
        evaluations = Evaluation.objects.filter(owner_id=request.user.pk).select_related("owner")
    else:
        evaluations = Evaluation.objects.none()
    if filters.status is not None:
        evaluations = evaluations.filter(status=filters.status)
    if filters.method is not None:
        evaluations = evaluations.filter(method=filters.method.value)
    if filters.rule is not None:
        evaluations = evaluations.filter(rule=filters.rule)
    count = evaluations.count()
    pages, start = page_bounds(count, filters.page)
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
                "task": evaluation.task,
                "origin": evaluation.origin,
                "rules": evaluation.rules,
                "method": evaluation.method,
                "model": evaluation.model,
                "status": evaluation.status,
                "created_at": evaluation.created_at,
                "finished_at": evaluation.finished_at,
            }
        )
    return {"count": count, "page": filters.page, "pages": pages, "results": rows}


class ShareOut(Schema):
    passed: int
    accuracy: float
    ci95: list[float]


class DifferenceOut(Schema):
    value: float
    ci95: list[float]


class PriorOut(Schema):
    count: int = Field(description="wrong under the rule, and what Python normally returns")
    checked: int = Field(description="the wrong answers that could be checked (literals)")
    of: int = Field(description="every wrong answer under the rule")


class PairedFiguresOut(Schema):
    n: int = Field(description="items both scored (first samples)")
    standard: ShareOut
    under_rule: ShareOut
    difference: DifferenceOut = Field(description="under the rule minus standard (Newcombe)")
    only_standard_right: int
    only_rule_right: int
    both_right: int
    both_wrong: int
    p: float = Field(description="McNemar's exact two-sided p")
    prior_following: PriorOut


class PairedOut(PairedFiguresOut):
    rule: str
    rule_text: str
    standard_id: int
    standard_url: str
    rule_id: int
    rule_url: str
    complete: bool = Field(description="both evaluations done: the figures are final")
    changed: PairedFiguresOut = Field(
        description="the same, on the items whose outcome the rule changed (its value, or "
        "that it raises): the only ones where an answer tells the rule from the model's priors"
    )
    left_out: int
    not_offered: int


@router.get(
    "/evaluations/{evaluation_id}/paired",
    response={200: list[PairedOut], 404: ErrorOut},
    summary="An evaluation under a rule paired with its standard twin",
)
def paired_figures(request: HttpRequest, evaluation_id: int) -> list[dict[str, Any]]:
    """Per semantic rule, the evaluation under it against its standard twin (the same
    evaluation under Python's own semantics), on the items both scored: accuracy both ways,
    the difference with its 95% interval, the discordant counts, McNemar's exact p, and the
    wrong answers that are what Python normally returns. Empty when there is no twin (yet)
    among the evaluations you may see."""
    visible = visible_evaluations(request)
    evaluation = visible.filter(pk=evaluation_id).first()
    if evaluation is None:
        raise HttpError(404, "No such evaluation.")
    return paired.figures(evaluation, visible)


class EvaluationIn(Schema):
    dataset: Literal["cruxeval", "bbh", "p3", "programs"]
    method: MethodName
    model: str = Field("", max_length=100, description="a configured model (GET /api/models); "
                       "left out: the site's default")  # fmt: skip
    tasks: list[str] = Field([], max_length=100, description="BIG-Bench Hard: task names")
    programs: list[int] = Field([], max_length=1000, description="`programs`: their ids")
    limit: int | None = Field(None, description="items at most; left out: every item")
    random: bool = Field(False, description="a random sample of `limit` items (with the seed)")
    samples: int = 1
    seed: int = 0
    concurrency: int = 4
    title: str = Field("", max_length=200)
    rule: str = Field(
        "", max_length=32,
        description="run every program under this semantic rule (GET /api/rules); the items "
        "it changes nothing in are left out",
    )  # fmt: skip
    twin: bool = Field(False, description="with a rule: also its standard twin, to pair with")


class StartedOut(Schema):
    id: int
    url: str
    status: str
    total: int
    rule: str
    not_offered: int


@router.post(
    "/evaluations",
    response={201: list[StartedOut], 403: ErrorOut, 422: ErrorOut, 429: ErrorOut},
    summary="Start an evaluation (and, under a rule, its standard twin)",
)
def start_evaluation(request: HttpRequest, data: EvaluationIn) -> Status[list[dict[str, Any]]]:
    """Start an evaluation as the start form does, with its checks, caps and limits: a method
    and model over a data set, optionally under a semantic ``rule`` (with ``twin``: and the
    same evaluation under Python's own semantics, to pair with: GET
    /api/evaluations/{id}/paired). 422 says what is wrong; the evaluations are queued on the
    batch workers."""
    refuse_cookie_post_without_csrf(request)
    user: Any = request.user
    if not user.is_authenticated:
        raise HttpError(403, "Sign in (or send an API token) to start an evaluation.")
    hidden = hiding.policy().hidden_for(user)
    refusal = hiding.policy().refusal(user, Surface.START_EVALUATION, hidden=hidden)
    if refusal is not None:
        raise HttpError(403, refusal)
    models = [m.name for m in _models()]
    # As the form posts it: text, the checkboxes "on" or left out.
    fields: dict[str, str] = {
        "dataset": data.dataset, "method": data.method.value,
        "model": data.model or (models[0] if models else ""),
        "tasks": " ".join(data.tasks), "programs": ", ".join(str(i) for i in data.programs),
        "limit": "" if data.limit is None else str(data.limit), "samples": str(data.samples),
        "seed": str(data.seed), "concurrency": str(data.concurrency), "title": data.title,
        "rule": data.rule,
    }  # fmt: skip
    if data.random:
        fields["random"] = "on"
    if data.twin:
        fields["twin"] = "on"
    form = EvaluationForm(fields, owner=user)
    if not form.is_valid():
        raise HttpError(422, " ".join(str(e) for errors in form.errors.values() for e in errors))
    cleaned = form.cleaned_data
    if cleaned["dataset"] == "programs":
        listed = listable_programs(user).filter(pk__in=form.subset)
        for source in listed.values_list("source", flat=True):
            refused = hiding.policy().refusal(user, Surface.START_RUN, source=source, hidden=hidden)
            if refused is not None:
                raise HttpError(403, refused)
    if form.limited:  # over either: the API's 429 with Retry-After
        ratelimits.hit(request, "model_tokens", count=False)
        for _ in range(form.per_model):
            ratelimits.hit(request, "evaluations")
    made = []
    try:
        with transaction.atomic():
            made.append(
                services.create_evaluation(
                    dataset=cleaned["dataset"], method=cleaned["method"], model=cleaned["model"],
                    subset=form.subset, owner=user, limit=cleaned["limit"],
                    sample_randomly=cleaned["random"], samples=cleaned["samples"],
                    seed=cleaned["seed"], temperature=0.8 if cleaned["samples"] > 1 else 0.0,
                    concurrency=cleaned["concurrency"],
                    max_tokens=max_tokens_for(cleaned["method"]), title=cleaned["title"],
                    max_results=form.most_results, rule=cleaned["rule"],
                )
            )  # fmt: skip
            if form.per_model == 2:
                made.append(
                    services.start_standard_twin(made[0], owner=user, max_results=form.most_results)
                )
    except services.EvaluationError as exc:
        raise HttpError(422, str(exc)) from None
    return Status(
        201,
        [
            {"id": e.pk, "url": e.get_absolute_url(), "status": e.status, "total": e.total,
             "rule": e.rule, "not_offered": e.not_offered}
            for e in made
        ],
    )  # fmt: skip


def _models() -> list[Any]:
    """The configured models (none when the configuration is broken: the form says so)."""
    try:
        return list(load_models())
    except RegistryError:
        return []


class RescoreOut(Schema):
    id: int
    queued: bool
    rules: str = Field(description="the rules' version the evaluation will be scored by")


@router.post(
    "/evaluations/{evaluation_id}/rescore",
    response={202: RescoreOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 429: ErrorOut},
    summary="Score a finished evaluation again under the current rules",
)
def rescore(request: HttpRequest, evaluation_id: int) -> Status[dict[str, Any]]:
    """Queue the evaluation's re-scoring: every stored generation scored again by the rules of
    today (``rules``), on the batch worker; its figures change when that is done (GET
    /api/evaluations). Yours only (staff: any); a finished evaluation only (409 otherwise)."""
    refuse_cookie_post_without_csrf(request)
    user: Any = request.user
    evaluation = (
        Evaluation.objects.filter(pk=evaluation_id).first() if user.is_authenticated else None
    )
    if evaluation is None or not (evaluation.owner_id == user.pk or user.is_staff):
        raise HttpError(404, "No such evaluation of yours.")
    why = rescoring.refusal(evaluation)
    if why is not None:
        raise HttpError(409, why)
    if not user.is_staff:
        ratelimits.hit(request, "rescores")  # the API's 429 with Retry-After
    services.queue_rescore(evaluation)
    return Status(
        202, {"id": evaluation.pk, "queued": True, "rules": rescoring.rules_for(evaluation)}
    )


class ImportIn(Schema):
    dataset: Literal["cruxeval", "bbh", "p3"]
    task: Literal["output", "input"] = Field("output", description="CRUXEval's task")
    method: str = Field(
        "", description="BIG-Bench Hard: `cot` or `direct` (how the outputs answer); elsewhere "
        "a label (default: the method that writes such outputs here)",
    )  # fmt: skip
    model: str = Field(..., max_length=100, description="a label for the model")


class ImportOut(Schema):
    id: int
    url: str
    status: str
    total: int


@router.post(
    "/evaluations/import",
    response={201: ImportOut, 403: ErrorOut, 422: ErrorOut, 429: ErrorOut},
    summary="Import outputs and score them with the benchmark's own rules",
)
def import_outputs(
    request: HttpRequest, data: Form[ImportIn], file: File[UploadedFile]
) -> Status[dict[str, Any]]:
    """Upload a model's outputs (multipart: the fields and ``file``): CRUXEval's generations
    JSON, one BIG-Bench Hard ``<task>.json``, or a ``.jsonl`` of ``{"id", "predictions"}``
    lines. The file is checked whole (422 with the reason; nothing is made); the evaluation is
    made at once and scored on the batch worker (GET its ``url``, or /api/evaluations)."""
    refuse_cookie_post_without_csrf(request)
    user: Any = request.user
    if not user.is_authenticated:
        raise HttpError(403, "Sign in (or send an API token) to import outputs.")
    refusal = hiding.policy().refusal(user, Surface.START_EVALUATION)
    if refusal is not None:
        raise HttpError(403, refusal)
    if data.method and data.method not in REGISTRY:
        raise HttpError(422, f"No method is called {data.method[:40]!r}.")
    if not user.is_staff:
        ratelimits.hit(request, "imports")
    try:
        evaluation = services.import_upload({**data.dict(), "file": file}, owner=user)
    except imports.ImportRefused as exc:
        raise HttpError(422, str(exc)) from None
    return Status(
        201,
        {
            "id": evaluation.pk, "url": evaluation.get_absolute_url(),
            "status": evaluation.status, "total": evaluation.total,
        },
    )  # fmt: skip
