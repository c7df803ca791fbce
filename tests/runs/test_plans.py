"""Think-and-Execute plans cannot be poisoned (review M6): the Think call has its own budget and
temperature whatever the run asked for; a plan cut at its token limit, or empty, is never
stored; plans are stored under a digest of everything that shaped them; staff purge them from
the command line or the admin; the upgrade drops the plans stored before."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from playground.emulation import tae
from playground.emulation.base import Item
from playground.llm.registry import ModelSpec
from playground.programs.models import Program
from playground.runs.models import Plan, Run
from playground.runs.services import start_run
from tests.factories import UserFactory
from tests.migrations import apps_at, migrate

SOURCE = "def f(x):\n    y = x + 1\n    return y * 2\n"
WHOLE_PLAN = (
    "[ANALYSIS] add one, then double [/ANALYSIS]\n[PSEUDOCODE]\ndef solve(x):\n"
    "    y = x + 1\n    print('y =', y)\n    print('Final answer:', y * 2)\n[/PSEUDOCODE]"
)


class Engine:
    """A server that honours max_tokens as an engine does (one chunk a token, then
    finish_reason "length"); records every request. Only for what a real model will not do on
    demand: stop at a given length, or say nothing."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.think = WHOLE_PLAN

    def reply(self, body: dict[str, Any]) -> tuple[list[str], str]:
        prompt = body["messages"][0]["content"]
        text = self.think if prompt.startswith("You will plan") else "y = 4\nFinal answer: 8\n"
        tokens = [text[i : i + 4] for i in range(0, len(text), 4)]
        limit = body["max_tokens"]
        return tokens[:limit], "length" if len(tokens) > limit else "stop"


@pytest.fixture
def engine(db: None, eager: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    it = Engine()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            it.requests.append(body)
            tokens, finish = it.reply(body)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for token in tokens:
                data = {"choices": [{"index": 0, "delta": {"content": token}}]}
                self.wfile.write(b"data: " + json.dumps(data).encode() + b"\n\n")
            end = {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
            self.wfile.write(b"data: " + json.dumps(end).encode() + b"\n\ndata: [DONE]\n\n")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    entry = {"name": "engine", "base_url": f"http://127.0.0.1:{server.server_address[1]}/v1"}
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([{**entry, "model": "engine-1"}]))
    yield it
    server.shutdown()
    server.server_close()


@pytest.fixture
def run_tae(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> Callable[..., Run]:
    program = Program.objects.create(title="p", source=SOURCE, call="f(3)", is_public=True)
    user = UserFactory()

    def start(max_tokens: int) -> Run:
        with django_capture_on_commit_callbacks(execute=True):
            run = start_run(
                program=program, user=user, anon_token=None, method="tae",
                model="engine", max_tokens=max_tokens, temperature=0.9,
            )  # fmt: skip
        return Run.objects.get(pk=run.pk)

    return start


def test_a_run_with_a_tiny_budget_still_stores_a_whole_plan(
    engine: Engine, run_tae: Callable[..., Run]
) -> None:
    poisoner = run_tae(max_tokens=16)
    think = engine.requests[0]
    assert think["max_tokens"] == tae.THINK_TOKENS == 1024
    assert think["temperature"] == 0.0
    assert engine.requests[1]["max_tokens"] == 16  # the run's own answer keeps its limit
    plan = Plan.objects.get()
    assert "print('Final answer:', y * 2)" in plan.data["pseudocode"]
    assert poisoner.details["plan"]["pseudocode"] == plan.data["pseudocode"]
    later = run_tae(max_tokens=1024)
    assert later.details["plan_reused"] is True
    assert later.details["plan"]["pseudocode"] == plan.data["pseudocode"]


def test_a_plan_cut_at_its_limit_or_empty_is_used_once_never_stored(
    engine: Engine, run_tae: Callable[..., Run]
) -> None:
    # Pseudocode that never closes and runs past THINK_TOKENS: cut with "length".
    engine.think = "[PSEUDOCODE]\ndef solve(x):\n" + "    print(x)\n" * 2000
    cut = run_tae(max_tokens=512)
    assert cut.status == Run.Status.DONE, cut.error
    assert cut.details["plan"]["not_stored"] == "the plan was cut at its token limit"
    owner = Client()
    owner.force_login(cut.owner)
    page = owner.get(f"/runs/{cut.pk}/").content.decode()
    assert "used for this run only: the plan was cut at its token limit" in page
    engine.think = ""
    empty = run_tae(max_tokens=512)
    assert empty.details["plan"]["not_stored"] == "the plan is empty"
    assert not Plan.objects.exists()
    engine.think = WHOLE_PLAN
    whole = run_tae(max_tokens=512)
    assert whole.details["plan_reused"] is False
    assert Plan.objects.count() == 1
    assert run_tae(max_tokens=512).details["plan_reused"] is True
    thinks = [r for r in engine.requests if r["messages"][0]["content"].startswith("You will")]
    assert len(thinks) == 3


def test_the_digest_changes_with_everything_that_shapes_a_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = ModelSpec(name="coder", base_url="http://x/v1", model="qwen-7b", label="c")
    program = Item(kind="program", source=SOURCE, call="f(3)")
    base = tae.plan_digest(program, model)
    assert len(base) == 64
    # Another call of the same program, another instance of the same task: the same plan.
    assert tae.plan_digest(dataclasses.replace(program, call="f(9)"), model) == base
    one = Item(kind="task", task="navigate", question="a", examples=(("b", "c"),))
    other = Item(kind="task", task="navigate", question="b", examples=(("a", "d"),))
    assert tae.plan_digest(one, model) == tae.plan_digest(other, model)
    changed = {
        "source": tae.plan_digest(dataclasses.replace(program, source=SOURCE + "\n# x"), model),
        "task": tae.plan_digest(dataclasses.replace(one, task="snarks"), model),
        "model": tae.plan_digest(program, dataclasses.replace(model, name="coder-2")),
        "engine": tae.plan_digest(program, dataclasses.replace(model, model="qwen-14b")),
    }
    monkeypatch.setattr(tae, "THINK_TOKENS", 2048)
    changed["budget"] = tae.plan_digest(program, model)
    monkeypatch.setattr(tae, "THINK_TOKENS", 1024)
    monkeypatch.setattr(tae, "THINK_TEMPERATURE", 0.7)
    changed["temperature"] = tae.plan_digest(program, model)
    monkeypatch.setattr(tae, "THINK_TEMPERATURE", 0.0)
    # Fewer solved instances shown: another plan (which ones are shown, as above: the same).
    assert tae.plan_digest(dataclasses.replace(one, examples=()), model) != tae.plan_digest(
        one, model
    )
    monkeypatch.setattr(tae, "THINK_INSTRUCTIONS", tae.THINK_INSTRUCTIONS + " Be brief.")
    changed["prompt"] = tae.plan_digest(program, model)
    monkeypatch.undo()
    assert tae.plan_digest(program, model) == base
    assert len({base, *changed.values()}) == len(changed) + 1, changed


def _plans() -> None:
    for subject, model in (
        ("task:navigate", "a"),
        ("task:navigate", "b"),
        ("task:snarks", "a"),
        (f"program:{__import__('hashlib').sha256(SOURCE.encode()).hexdigest()}", "a"),
    ):
        Plan.objects.create(key=f"{subject}/{model}", subject=subject, model=model, data={})


def test_staff_purge_plans_from_the_command_line(db: None, tmp_path: Path) -> None:
    _plans()
    with pytest.raises(CommandError, match="purge needs --all"):
        call_command("plans", "purge")
    with pytest.raises(CommandError, match="not both"):
        call_command("plans", "purge", "--all", "--model", "a")
    call_command("plans", "purge", "--task", "navigate", "--model", "b")
    assert Plan.objects.count() == 3
    program = tmp_path / "p.py"
    program.write_text(SOURCE)
    call_command("plans", "purge", "--program", str(program))
    assert sorted(Plan.objects.values_list("subject", flat=True)) == [
        "task:navigate",
        "task:snarks",
    ]
    call_command("plans", "purge", "--model", "a")
    assert not Plan.objects.exists()
    _plans()
    call_command("plans", "purge", "--all")
    assert not Plan.objects.exists()


def test_staff_purge_plans_in_the_admin_and_nobody_else_can(db: None) -> None:
    _plans()
    visitor = Client()
    visitor.force_login(UserFactory())
    assert visitor.get("/admin/runs/plan/").status_code == 302  # to the admin's login
    staff = Client()
    staff.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = staff.get("/admin/runs/plan/?model__exact=a")
    assert page.status_code == 200
    assert "task:snarks" in page.content.decode()
    assert staff.get("/admin/runs/plan/add/").status_code == 403
    ids = list(Plan.objects.filter(model="a").values_list("pk", flat=True))
    response = staff.post(
        "/admin/runs/plan/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert list(Plan.objects.values_list("model", flat=True)) == ["b"]


@pytest.fixture
def old_apps(transactional_db: None) -> Iterator[Any]:
    yield from apps_at([("runs", "0004_no_model_verdict")])


def test_the_upgrade_drops_the_plans_stored_before(old_apps: Any) -> None:
    """Each was stored whatever budget wrote it, and nothing says which were cut."""
    OldPlan = old_apps.get_model("runs", "Plan")
    OldPlan.objects.create(key="task:navigate", model="m", data={"pseudocode": "def s("})
    migrate([("runs", "0005_cost_budget_plan_digest")])
    assert not Plan.objects.exists()
