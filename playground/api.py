"""The JSON API (django-ninja) as one object: its title and OpenAPI settings (OpenAPI at
/api/openapi.json, interactive docs at /api/docs), the personal API token as its security
scheme, the 429 of the rate limits, the operation ids, and the routers of the apps mounted at
/api/. Each app answers its own endpoints in its ``api.py`` router: ``accounts`` (the CSRF
token), ``runs`` (start, read and list runs; the error shape and the method enum the others
share), ``benchmarks`` (evaluations), ``classroom`` (gradebook, submissions). The language
models this site offers are listed here: ``llm`` is a core package without Django, and every
app that asks a model reads the same list.

The same access rules as the pages: a run belongs to the account or the session (cookie) that
created it; the same rate limits. A script authenticates with a personal API token
(``Authorization: Bearer``, playground/accounts/tokens.py) and then acts as its owner; a cookie
client sends the CSRF token, which ``GET /api/csrf`` hands out."""

from __future__ import annotations

import logging
from typing import Any

from csp.decorators import csp_update
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import HttpError
from ninja.openapi.schema import OpenAPISchema
from ninja.operation import Operation

from playground.accounts.api import router as accounts_router
from playground.benchmarks.api import router as benchmarks_router
from playground.classroom.api import router as classroom_router
from playground.lib import ratelimits
from playground.lib.middleware import too_many
from playground.llm.registry import RegistryError, load_models
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
api.add_router("", accounts_router)
api.add_router("", runs_router)
api.add_router("", benchmarks_router)
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
