"""The run page of a run under a rule (issue 21): the rule's sentence in a banner, the code the
user wrote, the real run under the rule and standard Python's beside it with the steps where they
differ marked, everything a program printed escaped; the run form offers only the rules that
change the program. And a probe method's questions on the form and the API (issue 20): the
counts of each kind and the seed, capped, kept with the run, so a second run asks the same."""

from __future__ import annotations

import html
import json
import random
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from playground.emulation.probes import MAX_PER_KIND
from playground.runs.models import Run
from playground.sandbox.inside.semantics import RULES
from tests.factories import ProgramFactory
from tests.oracle import Oracle, oracle_server

pytestmark = pytest.mark.django_db
SOURCE = "def f(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n"
HOSTILE = (
    "def f(n):\n    s = '<script>alert(1)</script>'\n    for i in range(n):\n"
    "        print('<b>' + s + '</b>')\n    return s + '<img src=x onerror=alert(2)>'\n"
)


def _client() -> Client:
    address = "10." + ".".join(str(random.randint(1, 254)) for _ in range(3))  # noqa: S311
    return Client(REMOTE_ADDR=address)


def _text(response: Any) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", response.content.decode()))


def test_the_form_offers_the_rules_that_change_the_program_and_the_probe_questions() -> None:
    program = ProgramFactory(is_public=True, source=SOURCE, call="f(4)")
    page = _client().get(program.get_absolute_url()).content.decode()
    offered = re.findall(r'<select name="rule"[^>]*>(.*?)</select>', page, re.DOTALL)
    assert offered, "no rule select on the program's page"
    values = re.findall(r'<option value="([^"]*)"', offered[0])
    assert values == ["", "swap-add-sub", "range-includes-end"]  # the others change nothing
    assert html.escape(RULES["swap-add-sub"].text, quote=False) in page
    for kind, default in (("coverage", 4), ("state", 3), ("path", 3)):
        assert f'name="probe_{kind}" min="0" max="{MAX_PER_KIND}" value="{default}"' in page
    assert 'name="seed"' in page
    # Every program method takes a rule, Chain of Code too: run-form.js turns the select off
    # for none of them.
    assert re.search(r'<option value="coc"', page)
    assert "data-no-rule" not in page
    # A program no rule changes gets no select at all.
    plain = ProgramFactory(is_public=True, source="print('hi')\n", call="")
    assert 'name="rule"' not in _client().get(plain.get_absolute_url()).content.decode()


def test_the_page_shows_the_rule_both_runs_and_where_they_differ(run_now: Any) -> None:
    program = ProgramFactory(is_public=True, source=SOURCE, call="f(4)")
    client = _client()
    run_now(client, program.pk, rule="swap-add-sub")
    run = Run.objects.get()
    response = client.get(run.get_absolute_url())
    page = response.content.decode()
    text = _text(response)
    banner = re.search(r'<div id="rule-banner"[^>]*>(.*?)</div>', page, re.DOTALL)
    assert banner is not None
    assert RULES["swap-add-sub"].text in html.unescape(banner.group(1))
    assert "Under a changed rule of Python" in text
    # The code as the user wrote it (the viewer's lines), not the rewritten program.
    assert "total += i" in text
    assert "__sem_" not in page
    assert "f(4) returned -6" in re.sub(r"\s+", " ", text)
    standard = re.search(r'<div id="standard-status"[^>]*>(.*?)</div>', page, re.DOTALL)
    assert standard is not None
    assert "returned 6" in re.sub(r"\s+", " ", _text_of(standard.group(1)))
    # total is 0 after the first pass either way (0 + 0, 0 - 0); they part at the second.
    rows = re.findall(r"<tr( class=\"differs\" data-differs)?><td>.*?</tr>", page, re.DOTALL)
    differs = [i for i, mark in enumerate(rows) if mark]
    assert differs, "no differing step marked"
    first = differs[0]
    assert f'The two runs part at <a href="#step-{first + 1}">step {first + 1}</a>' in page
    assert "and end differently" in page
    assert not rows[0]  # the first steps are the same


def _text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_what_a_program_prints_under_a_rule_stays_text(run_now: Any) -> None:
    program = ProgramFactory(is_public=True, source=HOSTILE, call="f(2)")
    client = _client()
    run_now(client, program.pk, rule="range-includes-end")
    run = Run.objects.get()
    assert run.real_trace is not None
    assert run.standard_trace is not None
    page = client.get(run.get_absolute_url()).content.decode()
    assert "<script>alert(1)" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.fixture
def oracle(db: None, eager: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Oracle]:
    knows = Oracle()
    with oracle_server(knows) as model:
        entry = {"name": model.name, "base_url": model.base_url, "model": model.model}
        monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
        yield knows


def test_the_form_sets_the_probes_asked_and_the_seed_fixes_them(
    oracle: Oracle, run_now: Any
) -> None:
    program = ProgramFactory(is_public=True, source=SOURCE, call="f(4)")
    client = _client()
    form = {"method": "probe", "model": "oracle", "probe_coverage": "1", "probe_state": "2",
            "probe_path": "0", "probe_output": "1", "probe_sequence": "0", "seed": "7"}  # fmt: skip
    run_now(client, program.pk, **form)
    run_now(client, program.pk, **form)
    first, second = Run.objects.order_by("pk")
    expected = {"coverage": 1, "state": 2, "path": 0, "output": 1, "sequence": 0}
    assert first.probes == expected
    assert first.seed == 7
    asked = [p["kind"] for p in first.details["probes"]]
    assert sorted(asked) == sorted(["coverage", "state", "state", "output"])
    assert first.details["probes"] == second.details["probes"]  # the same questions
    assert first.verdict["status"] == "correct"
    shown = re.sub(r"\s+", " ", _text(client.get(first.get_absolute_url())))
    assert "Asked: 1 coverage, 2 state, 0 path, 1 output, 0 sequence; seed 7" in shown
    body = client.get(reverse("runs:trace_json", args=[first.pk])).json()
    assert (body["probes"], body["seed"]) == (expected, 7)

    for bad, message in [
        ({"probe_state": str(MAX_PER_KIND + 1)}, f"from 0 to {MAX_PER_KIND}"),
        ({"probe_state": "many"}, f"from 0 to {MAX_PER_KIND}"),
        ({key: "0" for key in form if key.startswith("probe_")}, "Ask at least one probe."),
        ({"seed": "99999999999"}, "The seed must be a whole number"),
    ]:
        response = run_now(client, program.pk, **{**form, **bad})
        assert response.status_code == 400, bad
        assert message in _text(response)
    assert Run.objects.count() == 2


def test_the_api_takes_the_probes_and_seed_and_refuses_what_is_out_of_bounds(
    oracle: Oracle, django_capture_on_commit_callbacks: Any
) -> None:
    client = _client()

    def post(**data: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/api/runs", data, content_type="application/json")

    made = post(
        source=SOURCE, call="f(4)", method="probe-chain", model="oracle",
        probes={"coverage": 2, "state": 0, "path": 1}, seed=3, rule="swap-add-sub",
    )  # fmt: skip
    assert made.status_code == 201, made.content
    body = client.get(f"/api/runs/{made.json()['id']}").json()
    assert body["probes"] == {"coverage": 2, "state": 0, "path": 1, "output": 1, "sequence": 1}
    assert body["seed"] == 3
    assert body["rule"] == "swap-add-sub"
    assert body["emulation"]["verdict"]["status"] == "correct"
    count = Run.objects.count()
    for data, message in [
        ({"probes": {"state": MAX_PER_KIND + 1}}, f"from 0 to {MAX_PER_KIND}"),
        ({"probes": {"bogus": 1}}, "Unknown probe kind 'bogus'"),
        ({"seed": -1}, "The seed must be a whole number from 0 to"),
    ]:
        response = post(source=SOURCE, call="f(4)", method="probe", model="oracle", **data)
        assert response.status_code == 422, data
        assert message in response.json()["detail"]
    assert Run.objects.count() == count
    # Another method keeps no probe counts.
    other = post(source=SOURCE, call="f(4)", method="direct", model="oracle",
                 probes={"state": 5})  # fmt: skip
    assert other.status_code == 201
    assert Run.objects.get(pk=other.json()["id"]).probes == {}


def test_a_share_link_and_its_embed_show_the_rule(run_now: Any) -> None:
    program = ProgramFactory(is_public=True, source=SOURCE, call="f(4)")
    client = _client()
    run_now(client, program.pk, rule="swap-add-sub")
    run = Run.objects.get()
    made = client.post(reverse("sharing:create", args=[run.pk]))
    assert made.status_code == 302
    link = run.share_links.get()
    stranger = _client()
    shared = re.sub(r"\s+", " ", _text(stranger.get(link.get_absolute_url())))
    assert RULES["swap-add-sub"].text in shared
    assert "f(4) returned -6" in shared
    assert "returned 6" in shared  # standard Python's, beside it
    embed = re.sub(r"\s+", " ", _text(stranger.get(reverse("sharing:embed", args=[link.token]))))
    assert RULES["swap-add-sub"].text in embed
    assert "under standard Python the call returns 6" in embed


def test_run_again_repeats_the_rule_the_questions_and_the_seed(
    oracle: Oracle, run_now: Any
) -> None:
    program = ProgramFactory(is_public=True, source=SOURCE, call="f(4)")
    client = _client()
    run_now(client, program.pk, method="probe", model="oracle", rule="range-includes-end",
            probe_coverage="2", probe_state="1", seed="11")  # fmt: skip
    first = Run.objects.get()
    page = client.get(first.get_absolute_url()).content.decode()
    form = re.search(r'<form method="post" action="([^"]+)" class="inline" id="rerun">(.*?)</form>',
                     page, re.DOTALL)  # fmt: skip
    assert form is not None
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form[2]))
    fields.pop("csrfmiddlewaretoken", None)
    assert fields["rule"] == "range-includes-end"
    assert (fields["seed"], fields["probe_coverage"], fields["probe_state"]) == ("11", "2", "1")
    assert form[1] == reverse("runs:start", args=[program.pk])
    run_now(client, program.pk, **fields)
    again = Run.objects.exclude(pk=first.pk).get()
    assert (again.rule, again.seed, again.probes, again.method) == (
        first.rule, first.seed, first.probes, first.method,
    )  # fmt: skip
    assert again.details["probes"] == first.details["probes"]  # the same questions
    # A share link's holder reads the run; only its owner runs it again.
    client.post(reverse("sharing:create", args=[first.pk]))
    shared = _client().get(first.share_links.get().get_absolute_url()).content.decode()
    assert 'id="rerun"' not in shared


def test_the_form_says_how_many_rules_change_the_program() -> None:
    program = ProgramFactory(is_public=True, source=SOURCE, call="f(4)")
    text = re.sub(r"\s+", " ", _text(_client().get(program.get_absolute_url())))
    assert "(2 rules change something here)" in text
    one = ProgramFactory(is_public=True, source="def f(a, b):\n    return a == b\n", call="f(1, 2)")
    text = re.sub(r"\s+", " ", _text(_client().get(one.get_absolute_url())))
    assert "(one rule changes something here)" in text


def _returned(page: str) -> str:
    """What the call returns in the trace the page's viewer steps through."""
    found = re.search(r'<script id="trace-steps" type="application/json">(.*?)</script>', page)
    assert found is not None
    returns = [
        s["locals"]["__return__"] for s in json.loads(found[1]) if s.get("event") == "return"
    ]
    return str(returns[-1])


def test_the_viewer_steps_through_either_run(run_now: Any) -> None:
    program = ProgramFactory(is_public=True, source=SOURCE, call="f(4)")
    client = _client()
    run_now(client, program.pk, rule="swap-add-sub")
    run = Run.objects.get()
    page = client.get(run.get_absolute_url()).content.decode()
    assert _returned(page) == "-6"  # the run under the rule
    assert f'href="{run.get_absolute_url()}?trace=standard#viewer"' in page
    standard = client.get(run.get_absolute_url() + "?trace=standard").content.decode()
    assert _returned(standard) == "6"  # standard Python's
    assert 'id="viewing-standard"' in standard
    assert "f(4) returned -6" in re.sub(r"\s+", " ", _text_of(standard))  # the verdict's run
    client.post(reverse("sharing:create", args=[run.pk]))
    url = run.share_links.get().get_absolute_url()
    shared = _client().get(url + "?trace=standard").content.decode()
    assert _returned(shared) == "6"
    assert f'href="{url}#viewer"' in shared
