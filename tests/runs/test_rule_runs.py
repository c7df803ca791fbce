"""A run under a semantic rule (issue 21): the request checks the rule, the run keeps it, its
real trace is the rewritten program run for real and the standard run is kept beside it; the
page, the API and the command line take the rule and say why one is refused."""

from __future__ import annotations

import dataclasses
import html
import io
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from playground import sandbox
from playground.runs import pipeline, sandboxing
from playground.runs.models import Run, Trace
from playground.runs.requests import rule_refusal
from playground.runs.services import start_run
from playground.sandbox.inside.semantics import RULES
from tests.factories import ProgramFactory
from tests.oracle import Oracle, oracle_server

pytestmark = pytest.mark.django_db
# f(4): 0 + 1 + 2 + 3 = 6 in Python; -6 when + and - are swapped; 10 when range includes 4.
SOURCE = "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n"


def _client() -> Client:
    address = "10." + ".".join(str(random.randint(1, 254)) for _ in range(3))  # noqa: S311
    return Client(REMOTE_ADDR=address)


def test_a_rule_is_checked_against_the_program_and_the_method() -> None:
    def why(rule: str, method: str = "real", kind: str = "program") -> str:
        return rule_refusal(rule, kind=kind, method=method, source=SOURCE)

    assert why("swap-add-sub") == ""
    assert why("range-includes-end", "probe") == ""
    assert why("plus-is-times").startswith("Unknown rule 'plus-is-times'; the rules are: ")
    assert all(name in why("plus-is-times") for name in RULES)
    # Nothing in SOURCE is compared with ==: the rule changes nothing, and the refusal names the
    # rules that would.
    refused = why("swap-eq-ne")
    assert refused.startswith("The rule 'swap-eq-ne' changes nothing in this program")
    assert "swap-add-sub" in refused
    assert "range-includes-end" in refused
    assert "swap-eq-ne, " not in refused
    assert why("swap-add-sub", "coc") == ""  # Chain of Code runs under a rule too
    assert (
        why("swap-add-sub", kind="puzzle")
        == "A rule changes how a program runs; a puzzle has none."
    )


def test_the_page_runs_the_program_under_the_rule_and_keeps_standard_python_beside(
    run_now: Any,
) -> None:
    program = ProgramFactory(is_public=True, source=SOURCE, call="f(4)")
    client = _client()
    response = run_now(client, program.pk, method="real", rule="swap-add-sub")
    assert response.status_code == 302
    run = Run.objects.get()
    assert run.rule == "swap-add-sub"
    assert run.status == Run.Status.DONE
    real = Trace.objects.get(run=run, kind=Trace.Kind.REAL).data
    standard = Trace.objects.get(run=run, kind=Trace.Kind.STANDARD).data
    assert (real["result"], real["rule"]) == ("-6", "swap-add-sub")
    assert standard["result"] == "6"
    assert "rule" not in standard
    # Step for step in the user's lines: the same lines run, only the values differ.
    assert [s["line"] for s in real["steps"]] == [s["line"] for s in standard["steps"]]

    body = client.get(reverse("runs:trace_json", args=[run.pk])).json()
    assert body["rule"] == "swap-add-sub"
    assert body["rule_text"] == RULES["swap-add-sub"].text
    assert body["trace"]["result"] == "-6"
    assert body["standard_trace"]["result"] == "6"


def test_a_run_without_a_rule_is_standard_python_with_one_trace(run_now: Any) -> None:
    program = ProgramFactory(is_public=True, source=SOURCE, call="f(4)")
    run_now(_client(), program.pk)
    run = Run.objects.get()
    assert run.rule == ""
    assert [t.kind for t in run.traces.all()] == [Trace.Kind.REAL]
    assert run.as_dict()["rule"] is None
    assert run.as_dict()["standard_trace"] is None


def test_a_stale_form_with_a_rule_not_offered_gets_a_clear_400(run_now: Any) -> None:
    program = ProgramFactory(is_public=True, source=SOURCE, call="f(4)")
    response = run_now(_client(), program.pk, rule="swap-eq-ne")
    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert "The rule 'swap-eq-ne' changes nothing in this program" in page
    assert not Run.objects.exists()
    response = run_now(_client(), program.pk, rule="<script>alert(1)</script>")
    assert response.status_code == 400
    assert "<script>alert(1)" not in response.content.decode()
    assert not Run.objects.exists()


def test_the_api_takes_a_rule_and_refuses_a_bad_one_with_422(
    eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    client = _client()

    def post(**data: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/api/runs", data, content_type="application/json")

    made = post(source=SOURCE, call="f(4)", rule="range-includes-end")
    assert made.status_code == 201, made.content
    assert made.json()["rule"] == "range-includes-end"
    run = client.get(f"/api/runs/{made.json()['id']}").json()
    assert (run["trace"]["result"], run["standard_trace"]["result"]) == ("10", "6")
    assert run["rule_text"] == RULES["range-includes-end"].text

    count = Run.objects.count()
    for data, message in [
        ({"rule": "nope"}, "Unknown rule 'nope'; the rules are: swap-add-sub"),
        ({"rule": "swap-and-or"}, "changes nothing in this program; the rules that do: "),
        ({"rule": "swap-add-sub", "puzzle": "Study_1:0", "method": "puzzle"}, "a puzzle has"),
    ]:
        response = post(source=SOURCE, call="f(4)", **data)
        assert response.status_code == 422, (data, response.content)
        assert message in response.json()["detail"]
    assert Run.objects.count() == count  # nothing saved, nothing started

    rows = client.get("/api/runs").json()["results"]
    assert [row["rule"] for row in rows] == ["range-includes-end"]
    mine = client.get(reverse("runs:mine")).content.decode()
    assert "rule: range-includes-end" in mine
    assert mine.count('class="tag status-') == 1  # the run's own trace, not the standard one
    listed = client.get(f"/api/rules?program_id={run['program_id']}").json()
    assert [r["name"] for r in listed] == ["swap-add-sub", "range-includes-end"]
    assert len(client.get("/api/rules").json()) == len(RULES)

    # Chain of Code under a rule is taken: Python runs every line of SOURCE, under the rule.
    made = post(source=SOURCE, call="f(4)", rule="swap-add-sub", method="coc")
    assert made.status_code == 201, made.content
    coc = client.get(f"/api/runs/{made.json()['id']}").json()
    assert (coc["method"], coc["rule"], coc["status"]) == ("coc", "swap-add-sub", "done")
    assert (coc["trace"]["result"], coc["standard_trace"]["result"]) == ("-6", "6")
    emulation = coc["emulation"]
    assert (emulation["prediction"], emulation["trace"]["rule"]) == ("-6", "swap-add-sub")
    assert emulation["verdict"]["status"] == "no_model"
    assert emulation["comparison"]["full_match"] is True


def test_the_sandbox_queues_job_carries_the_rule() -> None:
    payload = {
        "job": uuid.uuid4().hex, "source": SOURCE, "call": "f(4)", "stdin": "",
        "limits": dataclasses.asdict(sandbox.Limits()), "coc": False, "rule": "swap-add-sub",
    }  # fmt: skip
    trace = sandboxing.serve(payload)["trace"]
    assert (trace["result"], trace["rule"]) == ("-6", "swap-add-sub")
    older = {k: v for k, v in payload.items() if k != "rule"} | {"job": uuid.uuid4().hex}
    assert sandboxing.serve(older)["trace"]["result"] == "6"  # a sender of the last release
    with pytest.raises(ValueError, match="Unknown rule"):
        sandboxing.run(SOURCE, call="f(4)", rule="nope")


def test_the_trace_command_runs_under_a_rule(tmp_path: Path) -> None:
    path = tmp_path / "prog.py"
    path.write_text(SOURCE)
    out = io.StringIO()
    call_command("trace", str(path), "--call", "f(4)", "--rule", "swap-add-sub", stdout=out)
    table = out.getvalue()
    assert RULES["swap-add-sub"].text in table
    assert "result: -6" in table
    with pytest.raises(CommandError, match="changes nothing in this program"):
        call_command("trace", str(path), "--call", "f(4)", "--rule", "swap-eq-ne")
    with pytest.raises(CommandError, match="Unknown rule"):
        call_command("trace", str(path), "--rule", "nope")
    batch = tmp_path / "in.jsonl"
    lines = [{"id": 1, "code": SOURCE, "call": "f(4)"}, {"id": 2, "code": "x = 1\n"}]
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = io.StringIO()
    call_command("trace", "--jsonl", str(batch), "--rule", "range-includes-end", stdout=out)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["trace"]["result"] == "10"
    assert "changes nothing" in second["error"]


def test_the_emulate_command_tells_the_model_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prog.py"
    path.write_text(SOURCE)
    with oracle_server(Oracle()) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        out = io.StringIO()
        call_command("emulate", str(path), "--method", "direct", "--call", "f(4)",
                     "--rule", "swap-add-sub", "--json", stdout=out)  # fmt: skip
        record = json.loads(out.getvalue())
        assert record["rule"] == "swap-add-sub"
        assert record["verdict"]["status"] == "correct"
        assert record["emulated"]["prediction"] == "-6"
        assert (record["real"]["result"], record["standard"]["result"]) == ("-6", "6")
        out = io.StringIO()
        call_command("emulate", str(path), "--method", "coc", "--call", "f(4)",
                     "--rule", "swap-add-sub", "--json", stdout=out)  # fmt: skip
        record = json.loads(out.getvalue())
        assert record["rule"] == "swap-add-sub"
        assert record["emulated"]["prediction"] == "-6"  # Python ran every line, under the rule
        assert record["verdict"]["status"] == "no_model"
        with pytest.raises(CommandError, match="changes nothing in this program"):
            call_command("emulate", str(path), "--method", "direct", "--call", "f(4)",
                         "--rule", "swap-eq-ne")  # fmt: skip


def test_a_sandbox_worker_that_ignores_the_rule_is_not_believed() -> None:
    """During a rolling upgrade a sandbox worker of the previous release runs a job without its
    rule: its standard trace must not come back as the rule's."""

    class Done:
        def __init__(self, trace: dict[str, Any]) -> None:
            self.trace = trace

        def get(self, **_: Any) -> dict[str, Any]:
            return {"trace": self.trace}

        def forget(self) -> None:
            pass

    job = sandboxing.Job(SOURCE, "f(4)", "", sandbox.Limits(), None, "swap-add-sub")
    standard = sandbox.run(SOURCE, call="f(4)")
    with pytest.raises(sandbox.SandboxUnavailable, match="cannot run a program under a rule"):
        job._outcome(Done(standard))  # type: ignore[arg-type]
    ruled = sandbox.run(SOURCE, call="f(4)", rule="swap-add-sub")
    assert job._outcome(Done(ruled))["result"] == "-6"  # type: ignore[arg-type]


def test_a_real_trace_made_without_the_runs_rule_fails_the_run() -> None:
    """A sandbox worker of the previous release runs a rule run's program without the rule (it
    knows no Run.rule): the run fails, saying so, rather than judging against Python's run."""
    program = ProgramFactory(is_public=True, source=SOURCE, call="f(4)")
    run = start_run(program=program, user=AnonymousUser(), anon_token="t", rule="swap-add-sub",
                    enqueue=False)  # fmt: skip
    pipeline.save_trace(run.pk, Trace.Kind.REAL, sandbox.run(SOURCE, call="f(4)"))
    pipeline.finish_if_complete(run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert run.error == pipeline.NO_RULE
