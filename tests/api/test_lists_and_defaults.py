"""The API for scripts: lists of one's runs and evaluations (paginated, filtered, the pages'
hiding rules), the default model, the CSRF token for cookie clients, and what the OpenAPI
schema says (the method enum, the bearer token)."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client

from playground.benchmarks.models import Dataset, Evaluation
from playground.classroom.models import Item, Mode
from playground.runs.models import Run
from playground.runs.services import start_run
from tests.classroom.student_world import SECRET, assignment, course_world, library_program
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db
SOURCE = "def f(xs):\n    return sorted(xs)[-1]\n"


def _fresh_ip() -> str:
    return "10." + ".".join(str(random.randint(1, 254)) for _ in range(3))  # noqa: S311


def _runs(owner: Any, n: int, **fields: Any) -> list[Run]:
    program = ProgramFactory(owner=owner)
    return [
        Run.objects.create(program=program, owner=owner, source=program.source, **fields)
        for _ in range(n)
    ]


def test_the_list_of_runs_holds_only_the_requesters_own_newest_first_by_pages(
    user_client: Client,
) -> None:
    me = user_client.user  # type: ignore[attr-defined]
    mine = _runs(me, 27, status=Run.Status.DONE)
    _runs(UserFactory(), 3)  # someone else's
    anonymous = Client(REMOTE_ADDR=_fresh_ip())  # a visitor's session: their own only
    first = user_client.get("/api/runs").json()
    assert (first["count"], first["page"], first["pages"]) == (27, 1, 2)
    assert [r["id"] for r in first["results"]] == [r.pk for r in reversed(mine)][:25]
    second = user_client.get("/api/runs?page=2").json()
    assert [r["id"] for r in second["results"]] == [mine[1].pk, mine[0].pk]
    assert user_client.get("/api/runs?page=9").json()["results"] == []
    assert anonymous.get("/api/runs").json() == {"count": 0, "page": 1, "pages": 1, "results": []}
    row = first["results"][0]
    assert row["status"] == "done"
    assert row["hidden"] is False
    assert row["url"] == f"/runs/{row['id']}/"
    for bad in ("0", "-1", "x", "1.5", "²", "9" * 30):
        assert user_client.get(f"/api/runs?page={bad}").status_code == 422


def test_an_anonymous_visitors_runs_are_listed_for_their_session() -> None:
    client = Client(REMOTE_ADDR=_fresh_ip())
    created = client.post(
        "/api/runs", {"source": SOURCE, "call": "f([1])"}, content_type="application/json"
    )
    assert created.status_code == 201
    listed = client.get("/api/runs").json()
    assert [r["id"] for r in listed["results"]] == [created.json()["id"]]
    assert Client().get("/api/runs").json()["count"] == 0


def test_runs_are_filtered_by_status_and_method(user_client: Client) -> None:
    me = user_client.user  # type: ignore[attr-defined]
    done = _runs(me, 2, status=Run.Status.DONE)
    failed = _runs(me, 1, status=Run.Status.FAILED, method="cot", model="smollm2-135m")

    def ids(query: str) -> set[int]:
        return {r["id"] for r in user_client.get(f"/api/runs?{query}").json()["results"]}

    assert ids("status=done") == {r.pk for r in done}
    assert ids("status=failed") == {failed[0].pk}
    assert ids("method=cot") == {failed[0].pk}
    assert ids("method=real&status=done") == {r.pk for r in done}
    assert user_client.get("/api/runs?status=finished").status_code == 422
    assert user_client.get("/api/runs?method=guess").status_code == 422


def test_a_students_hidden_runs_show_no_status_or_verdict_and_match_no_status_filter(
    eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    """The rule of "My runs", in the API: while an assignment holds the program, a student's own
    earlier run of it is listed without its status or verdict, and a status filter cannot
    tell it apart either."""
    w = SimpleNamespace(**vars(course_world()))
    program = library_program()
    with django_capture_on_commit_callbacks(execute=True):
        earlier = start_run(program=program, user=w.s1, anon_token=None, method="real")
        other = start_run(program=ProgramFactory(owner=w.s1), user=w.s1, anon_token=None)
    client = Client()
    client.force_login(w.s1)
    before = {r["id"]: r for r in client.get("/api/runs").json()["results"]}
    assert before[earlier.pk]["status"] == "done"
    assert before[earlier.pk]["hidden"] is False
    Item.objects.create(assignment=assignment(w.course), mode=Mode.OUTPUT, program=program)
    response = client.get("/api/runs")
    assert SECRET not in response.content.decode()
    rows = {r["id"]: r for r in response.json()["results"]}
    assert rows[earlier.pk]["hidden"] is True
    assert rows[earlier.pk]["status"] is None
    assert rows[earlier.pk]["verdict"] is None
    assert rows[other.pk]["status"] == "done"
    assert {r["id"] for r in client.get("/api/runs?status=done").json()["results"]} == {other.pk}
    # The instructor and the student's own run of another program are unaffected.
    teacher = Client()
    teacher.force_login(w.instructor)
    assert teacher.get("/api/runs").json()["count"] == 0


def test_evaluations_are_listed_by_the_evaluation_pages_rules(user_client: Client) -> None:
    me = user_client.user  # type: ignore[attr-defined]
    someone = UserFactory()
    fields = {"dataset": Dataset.CRUXEVAL, "method": "direct", "model": "smollm2-135m"}
    mine_running = Evaluation.objects.create(owner=me, status="running", **fields)
    mine_programs = Evaluation.objects.create(
        owner=me, status="done", dataset=Dataset.PROGRAMS, method="cot", model="m"
    )
    public = Evaluation.objects.create(owner=someone, status="done", **fields)
    Evaluation.objects.create(owner=someone, status="running", **fields)  # not finished
    Evaluation.objects.create(
        owner=someone, status="done", dataset=Dataset.PROGRAMS, method="cot", model="m"
    )  # a list of someone's programs: never public

    def ids(client: Client, query: str = "") -> list[int]:
        body = client.get(f"/api/evaluations{query}").json()
        return [e["id"] for e in body["results"]]

    assert ids(user_client) == [mine_programs.pk, mine_running.pk]
    assert ids(user_client, "?which=public") == [public.pk]
    assert ids(user_client, "?status=running") == [mine_running.pk]
    assert ids(user_client, "?method=cot") == [mine_programs.pk]
    assert ids(Client()) == []
    assert ids(Client(), "?which=public") == [public.pk]
    row = user_client.get("/api/evaluations?which=public").json()["results"][0]
    assert row["owner"] == someone.get_username()
    assert row["url"] == f"/evaluations/{public.pk}/"
    assert {"accuracy", "ci95", "n", "passed", "total"} <= set(row)
    assert (row["task"], row["origin"], row["rules"]) == ("output", "run", "")
    assert user_client.get("/api/evaluations?which=everyone").status_code == 422


def test_a_run_without_a_model_gets_the_sites_default(user_client: Client) -> None:
    """Newcomer bug 10: ``model`` left out was "", a 422. The default is the first configured
    model (the embedded one when none is configured), marked in GET /api/models."""
    models = user_client.get("/api/models").json()
    assert [m["default"] for m in models] == [True] + [False] * (len(models) - 1)
    response = user_client.post(
        "/api/runs",
        {"source": SOURCE, "call": "f([1])", "method": "direct"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["model"] == models[0]["name"]
    assert Run.objects.get().model == models[0]["name"]


def test_a_cookie_client_gets_its_csrf_token_from_the_api() -> None:
    """Newcomer bug 10: the first anonymous POST sets a session cookie; the second was refused
    for lack of a CSRF token that no API response gave. GET /api/csrf gives it (and sets the
    csrftoken cookie), and the refusal says so."""
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR=_fresh_ip())

    def post(**headers: str) -> Any:
        return client.post(
            "/api/runs", {"source": SOURCE, "call": "f([1])"}, content_type="application/json",
            **headers,
        )  # fmt: skip

    assert post().status_code == 201  # no cookie yet
    assert "sessionid" in client.cookies
    refused = post()
    assert refused.status_code == 403
    assert "GET /api/csrf" in refused.json()["detail"]
    got = client.get("/api/csrf")
    assert got.status_code == 200
    token = got.json()["csrf_token"]
    assert got.json()["header"] == "X-CSRFToken"
    assert "csrftoken" in client.cookies
    assert post(HTTP_X_CSRFTOKEN=token).status_code == 201
    assert post(HTTP_X_CSRFTOKEN=token).status_code == 201
    assert client.get("/api/runs").json()["count"] == 3  # all three in the one session


def test_the_openapi_schema_has_the_method_enum_the_lists_and_the_bearer_scheme() -> None:
    schema = Client().get("/api/openapi.json").json()
    assert {"/api/runs", "/api/evaluations", "/api/csrf"} <= set(schema["paths"])
    assert "get" in schema["paths"]["/api/runs"]
    assert "post" in schema["paths"]["/api/runs"]
    run_in = schema["components"]["schemas"]["RunIn"]["properties"]
    assert set(run_in["method"]["enum"]) >= {"real", "direct", "cot", "trace", "coc", "tae"}
    assert schema["components"]["securitySchemes"]["ApiToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["ApiToken"]["description"],
    }
    assert schema["security"] == [{"ApiToken": []}, {}]


def test_a_page_of_runs_costs_the_same_few_queries_however_many_runs(
    user_client: Client, django_assert_max_num_queries: Any
) -> None:
    me = user_client.user  # type: ignore[attr-defined]
    _runs(me, 3)
    with django_assert_max_num_queries(10) as few:
        user_client.get("/api/runs")
    _runs(me, 40)
    with django_assert_max_num_queries(len(few)) as again:
        rows = user_client.get("/api/runs").json()["results"]
    assert len(rows) == 25
    # Nothing heavy is read: no trace, no model text, no program's source.
    sql = " ".join(q["sql"] for q in again.captured_queries)
    for heavy in ("runs_trace", '"emulated_text"', '"programs_program"."source"'):
        assert heavy not in sql, heavy
