"""Who gets what on the evaluation pages: every page, export and action against the same six
kinds of visitor as the classroom's matrix (anonymous, the evaluation's owner, another user, a
student in an exam-mode window, an assistant, an instructor). Finished evaluations of the shared
data sets are public; unfinished ones and those of a list of programs are their owner's (404 for
everyone else: their existence is not revealed); starting needs an account (and no exam window),
cancelling is the owner's."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.benchmarks.models import Evaluation, Result
from playground.classroom.models import Assignment, Course, Membership, Role
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db

PEOPLE = ["anonymous", "owner", "other", "examinee", "assistant", "instructor"]


@pytest.fixture
def world() -> dict[str, Any]:
    users = {name: UserFactory(username=name) for name in PEOPLE[1:]}
    course = Course.objects.create(title="Exams", created_by=users["instructor"])
    for name, role in (("examinee", Role.STUDENT), ("assistant", Role.ASSISTANT),
                       ("instructor", Role.INSTRUCTOR)):  # fmt: skip
        Membership.objects.create(course=course, user=users[name], role=role)
    now = timezone.now()
    window = {"opens_at": now - timedelta(hours=1), "due_at": now + timedelta(hours=2)}
    Assignment.objects.create(course=course, title="Final", exam_mode=True, **window)
    owner = users["owner"]
    evaluations = {
        "public": Evaluation.objects.create(dataset="cruxeval", method="direct", model="tiny",
                                            status="done", owner=owner, total=1),
        "running": Evaluation.objects.create(dataset="cruxeval", method="direct", model="tiny",
                                             status="running", owner=owner, total=1),
        "list": Evaluation.objects.create(dataset="programs", method="direct", model="tiny",
                                          status="done", owner=owner, total=1,
                                          subset=[ProgramFactory(owner=owner).pk]),
    }  # fmt: skip
    for evaluation in evaluations.values():
        Result.objects.create(evaluation=evaluation, index=0, item_key="sample_0",
                              status="done", passed=True)  # fmt: skip
    return {"users": users, **{k: e.pk for k, e in evaluations.items()}}


def _client(world: dict[str, Any], who: str) -> Client:
    client = Client()
    if who != "anonymous":
        client.force_login(world["users"][who])
    return client


def _status(response: Any) -> int | str:
    if response.status_code == 302 and "/accounts/login" in response["Location"]:
        return "login"
    return int(response.status_code)


PUBLIC = [200, 200, 200, 200, 200, 200]
OWNERS = [404, 200, 404, 404, 404, 404]
PAGES = [
    ("benchmarks:detail", "public", PUBLIC),
    ("benchmarks:export_json", "public", PUBLIC),
    ("benchmarks:export_csv", "public", PUBLIC),
    ("benchmarks:detail", "running", OWNERS),
    ("benchmarks:export_json", "running", OWNERS),
    ("benchmarks:export_csv", "running", OWNERS),
    ("benchmarks:detail", "list", OWNERS),
    ("benchmarks:export_json", "list", OWNERS),
    ("benchmarks:export_csv", "list", OWNERS),
]


@pytest.mark.parametrize(("name", "which", "expected"), PAGES,
                         ids=[f"{p[0]}-{p[1]}" for p in PAGES])  # fmt: skip
def test_pages(world: dict[str, Any], name: str, which: str, expected: list[Any]) -> None:
    url = reverse(name, args=[world[which]])
    got = [_status(_client(world, who).get(url)) for who in PEOPLE]
    assert got == expected, dict(zip(PEOPLE, got, strict=True))


def test_the_leaderboard_is_public_and_lists_only_public_evaluations(world: dict[str, Any]) -> None:
    for who in PEOPLE:
        response = _client(world, who).get(reverse("benchmarks:leaderboard"))
        assert response.status_code == 200
        board = response.content.decode().split("Start an evaluation")[0]
        assert reverse("benchmarks:detail", args=[world["public"]]) in board, who
        assert reverse("benchmarks:detail", args=[world["list"]]) not in board, who


def test_compare_needs_both_evaluations_visible(world: dict[str, Any]) -> None:
    url = reverse("benchmarks:compare")
    pairs = {"public-public": (world["public"], world["public"]),
             "public-list": (world["public"], world["list"])}  # fmt: skip
    got = {
        name: [_status(_client(world, who).get(url, {"a": a, "b": b})) for who in PEOPLE]
        for name, (a, b) in pairs.items()
    }
    assert got == {
        "public-public": [400] * 6,  # the same evaluation twice: a clear refusal
        # Visible to the owner only (who is told the two data sets differ); 404 for the rest.
        "public-list": [404, 400, 404, 404, 404, 404],
    }


def test_starting_needs_an_account_and_no_exam_window(world: dict[str, Any]) -> None:
    url = reverse("benchmarks:start")
    data = {"dataset": "cruxeval", "method": "direct", "model": "smollm2-135m", "limit": "1"}
    ProgramFactory(dataset="cruxeval", external_id="sample_0", is_public=True)
    got = []
    for who in PEOPLE:
        before = Evaluation.objects.count()
        response = _client(world, who).post(url, data)
        made = Evaluation.objects.count() - before
        got.append(_status(response) if not made else "made")
    assert got == ["login", "made", "made", 302, "made", "made"]
    assert not Evaluation.objects.filter(owner=world["users"]["examinee"]).exists()


def test_cancelling_is_the_owners(world: dict[str, Any]) -> None:
    url = reverse("benchmarks:cancel", args=[world["running"]])
    got = [_status(_client(world, who).post(url)) for who in PEOPLE[::-1]]  # the owner last
    assert got == [404, 404, 404, 404, 302, "login"]
    assert Evaluation.objects.get(pk=world["running"]).status == "cancelled"
