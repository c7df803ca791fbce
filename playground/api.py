"""The JSON API (django-ninja): models, runs, evaluations. OpenAPI at /api/openapi.json,
interactive docs at /api/docs. The same access rules as the pages: a run belongs to the account
or the session (cookie) that created it; the same rate limits. A script authenticates with a
personal API token (``Authorization: Bearer``, playground/accounts/tokens.py) and then acts as
its owner; a cookie client sends the CSRF token, which ``GET /api/csrf`` hands out."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from csp.decorators import csp_update
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from ninja import Field, NinjaAPI, Query, Schema
from ninja.errors import HttpError
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation

from playground.benchmarks.models import Evaluation
from playground.classroom.api import router as classroom_router
from playground.lib import ratelimits
from playground.lib.middleware import too_many
from playground.llm.registry import RegistryError, load_models
from playground.runs.api import PAGE_SIZE, MethodName, page_bounds
from playground.runs.api import router as runs_router

log = logging.getLogger(__name__)


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

    def get_openapi_operation_id(self, operation: Operation) -> str:
        """``playground_api_<function>``, whichever app's router holds the function: the ids
        that clients generated from the schema call, kept from when one module held them all."""
        return f"playground_api_{operation.view_func.__name__}"


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
# Each app's endpoints are its own router, mounted at the root: the paths stay as they were.
api.add_router("", runs_router)
api.add_router("", classroom_router)


@api.exception_handler(ratelimits.Refused)
def _too_many(request: HttpRequest, refused: ratelimits.Refused) -> HttpResponse:
    return too_many(request, refused)


class ModelOut(Schema):
    name: str
    label: str
    constrained_json: str  # "", "openai" or "json_object"
    embedded: bool
    default: bool  # the model a run gets when it names none (the first configured)


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


# -- The requester's evaluations, or the public ones ------------------------------------------


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
                "method": evaluation.method,
                "model": evaluation.model,
                "status": evaluation.status,
                "created_at": evaluation.created_at,
                "finished_at": evaluation.finished_at,
            }
        )
    return {"count": count, "page": filters.page, "pages": pages, "results": rows}
