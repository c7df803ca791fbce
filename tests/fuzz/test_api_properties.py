"""Property-based fuzzing of the JSON API from its own OpenAPI schema (/api/openapi.json, read
from the running site, so a new endpoint is fuzzed without touching this file): hypothesis
draws path parameters, query parameters and JSON bodies from each operation's schema, mixed
with hostile values, wrong types and names that exist, as visitors of every kind. Whatever it
draws, the answer is never a 5xx and never a hang. `make test` draws ``EXAMPLES`` per
operation, `make test-full` ``FULL_EXAMPLES``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_django.fixtures import Settings

from playground.lib import ratelimits
from tests.fuzz.harness import Harness
from tests.fuzz.world import World, build

EXAMPLES = 60
FULL_EXAMPLES = 1500
LIMIT_S = 10.0
Json = dict[str, Any]

HOSTILE_TEXT = [
    "", " ", "\x00", "a\x00b", "\ud800", "\udfff", "\ufeffdef f():\n    return 1\n", "\u202e",
    "\r\nX-Injected: 1", "\x1b[31m", "²", "\u0661\u0662", "\uff11\uff12", "9" * 5000,
    "<svg onload=alert(1)>", "x" * 100_000, "../../etc/passwd", "null", "{}", "[]",
]  # fmt: skip
HOSTILE_INT = [0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**20, 10**400]
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _valid_strings(world: World) -> dict[str, list[str]]:
    """Values of string fields that name something real: they get the request past the first
    check and into the code behind it."""
    return {
        "method": ["real", "direct", "cot", "trace", "coc", "tae", "puzzle"],
        "model": ["smollm2-135m"],
        "puzzle": [world.puzzle.name],
        "task": [world.task.name],
        "source": ["def f(x):\n    return x\n", "print(input())\n"],
        "call": ["f(1)", "", "f(" * 200],
        "stdin": ["", "1\n"],
    }


def _valid_ints(world: World) -> dict[str, list[int]]:
    return {
        "run_id": [r.pk for r in world.runs.values()],
        "program_id": [world.program.pk, world.programs["user"].pk, world.programs["anon"].pk],
        "course_id": [world.course.pk],
        "assignment_id": [world.assignment.pk],
        "task_index": [world.example.index],
    }


def _body_seeds(world: World) -> dict[str, list[Json]]:
    """Valid bodies per operation: each example starts from one, with some of its fields
    (drawn from the schema) replaced, so that hostile values reach past the first check."""
    model = "smollm2-135m"
    return {
        "/api/runs": [
            {"source": "def f(x):\n    return x\n", "call": "f(1)"},
            {"source": "print(input())\n", "stdin": "1\n", "method": "direct", "model": model},
            {"program_id": world.program.pk, "method": "trace", "model": model},
            {"puzzle": world.puzzle.name, "method": "puzzle", "model": model},
            {"task": world.task.name, "task_index": 0, "method": "coc", "model": model},
        ],
    }


class Schema:
    """JSON-schema fragments of the OpenAPI document turned into hypothesis strategies."""

    def __init__(self, document: Json, world: World) -> None:
        self.components = document.get("components", {}).get("schemas", {})
        self.strings = _valid_strings(world)
        self.ints = _valid_ints(world)

    def resolve(self, schema: Json) -> Json:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def value(self, schema: Json, name: str = "") -> st.SearchStrategy[Any]:
        schema = self.resolve(schema)
        choices = schema.get("anyOf") or schema.get("oneOf")
        if choices:
            return st.one_of([self.value(c, name) for c in choices])
        kind = schema.get("type")
        if kind == "integer":
            return st.one_of(
                st.sampled_from(self.ints.get(name) or [1]),
                st.sampled_from(HOSTILE_INT),
                st.integers(),
            )
        if kind == "number":
            return st.floats(allow_nan=False) | st.sampled_from(HOSTILE_INT)
        if kind == "string":
            return st.one_of(
                st.sampled_from(self.strings.get(name) or ["x"]),
                st.sampled_from(HOSTILE_TEXT),
                st.text(max_size=50),
            )
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        if kind == "array":
            return st.lists(self.value(schema.get("items", {}), name), max_size=3)
        if kind == "object" and "properties" in schema:
            return self.object(schema)
        return ANY_JSON

    def object(self, schema: Json) -> st.SearchStrategy[Json]:
        schema = self.resolve(schema)
        properties = schema.get("properties", {})
        required = set(schema.get("required", []))
        # A property is sometimes of the wrong type (a script's mistake): a 422, never a 500.
        fields = {
            name: self.value(sub, name) | ANY_JSON
            if name not in required
            else self.value(sub, name)
            for name, sub in properties.items()
        }
        return st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in required},
            optional={k: v for k, v in fields.items() if k not in required},
        )


def operations(document: Json) -> list[tuple[str, str, Json]]:
    return [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


@pytest.fixture
def world(db: None, settings: Settings) -> World:
    settings.PLAYGROUND_LIMITS = ratelimits.table("load-test")
    return build()


def test_the_schema_lists_the_api(world: World) -> None:
    document = Client().get("/api/openapi.json").json()
    paths = {path for _, path, _ in operations(document)}
    assert {"/api/runs", "/api/runs/{run_id}", "/api/models"} <= paths


def test_every_api_operation_survives_whatever_its_schema_allows_and_more(
    world: World, full: bool
) -> None:
    document = Client().get("/api/openapi.json").json()
    schema = Schema(document, world)
    harness = Harness(world, LIMIT_S)
    roles = st.sampled_from(["anon", "user", "student", "instructor"])
    tried: dict[str, int] = {}

    for method, path, operation in operations(document):
        params = operation.get("parameters", [])
        path_params = {p["name"]: schema.value(p.get("schema", {}), p["name"]) for p in params
                       if p.get("in") == "path"}  # fmt: skip
        query_params = {p["name"]: schema.value(p.get("schema", {}), p["name"]) for p in params
                        if p.get("in") == "query"}  # fmt: skip
        body_schema = (
            operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        ).get("schema")
        body: st.SearchStrategy[Any] = st.none()
        if body_schema:
            seeds = _body_seeds(world).get(path, [])
            changes = schema.object({**schema.resolve(body_schema), "required": []})
            mutated = st.builds(lambda base, new: {**base, **new}, st.sampled_from(seeds), changes)
            body = st.one_of(mutated, mutated, mutated, schema.object(body_schema), ANY_JSON)
            if not seeds:
                body = schema.object(body_schema) | ANY_JSON

        _probe(harness, tried, method, path, full)(
            role=roles,
            path_values=st.fixed_dictionaries(path_params),
            query=st.fixed_dictionaries({}, optional=query_params),
            data=body,
        )()
    print(f"\nAPI properties: {harness.requests} requests over {len(tried)} operations: {tried}")
    assert not harness.failures, harness.report()


def _probe(harness: Harness, tried: dict[str, int], method: str, path: str, full: bool) -> Any:
    """The property for one operation; ``given`` is applied by the caller with its strategies."""

    def probe(role: str, path_values: Json, query: Json, data: Any) -> None:
        url = path.format(**{k: _segment(v) for k, v in path_values.items()})
        if query:
            url += "?" + "&".join(f"{k}={_segment(v)}" for k, v in query.items())
        if method == "get":
            harness.send(role, "get", url)
        else:
            harness.send(role, method, url, json.dumps(data), content_type="application/json")
        key = f"{method.upper()} {path}"
        tried[key] = tried.get(key, 0) + 1

    run_settings = settings(
        max_examples=FULL_EXAMPLES if full else EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not full,  # the short form draws the same examples every run (CI)
        suppress_health_check=list(HealthCheck),
    )

    def with_strategies(**strategies: Any) -> Any:
        return run_settings(given(**strategies)(probe))

    return with_strategies


def _segment(value: Any) -> str:
    """A drawn value as it travels in a path or a query (hostile bytes included)."""
    from urllib.parse import quote

    text = value if isinstance(value, str) else json.dumps(value)
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"\xff\xfe\x00",
        b"[" * 50_000 + b"]" * 50_000,  # deeper than any JSON parser's recursion
        b'{"source": "' + b"a" * 2_000_000 + b'"}',
        b'{"source": "def f():\\n  return 1\\n", "call": "f()", "method": "real", "cpu_s": 1e999}',
        b'{"program_id": 99999999999999999999999}',
        b'{"method": "direct", "model": "smollm2-135m", "source": "x=1", "max_tokens": -5}',
    ],
    ids=["empty", "cut", "bad-utf8", "deep", "two-mb", "float-inf", "huge-id", "negative-tokens"],
)
def test_raw_bodies_that_are_barely_json(world: World, body: bytes) -> None:
    harness = Harness(world, LIMIT_S)
    for role in ("anon", "user"):
        harness.send(role, "post", "/api/runs", body, content_type="application/json")
    assert not harness.failures, harness.report()


# Field by field, from each valid body: what the page forms get in test_no_500, for the API.
FIELD_VALUES: list[Any] = ["\x00", "a\x00b", "\ud800", "²", "9" * 5000, "", -1, 0, 10**20, 1.5,
                           None, True, [], {}, "x" * 100_000]  # fmt: skip
FULL_FIELD_VALUES: list[Any] = FIELD_VALUES + HOSTILE_TEXT + HOSTILE_INT


def test_every_api_field_survives_hostile_values_one_at_a_time(world: World, full: bool) -> None:
    document = Client().get("/api/openapi.json").json()
    schema = Schema(document, world)
    harness = Harness(world, LIMIT_S)
    values = FULL_FIELD_VALUES if full else FIELD_VALUES
    for method, path, operation in operations(document):
        body_schema = (
            operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        ).get("schema")
        if not body_schema:
            continue
        fields = list(schema.resolve(body_schema).get("properties", {}))
        for seed in _body_seeds(world).get(path, [{}]):
            for name in fields:
                for value in values:
                    body = json.dumps({**seed, name: value})
                    harness.send("user", method, path, body, content_type="application/json")
    print(f"\nAPI fields: {harness.requests} requests")
    assert harness.requests > 300
    assert not harness.failures, harness.report()
