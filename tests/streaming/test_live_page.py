"""What the run page gives a viewer while the model writes, and once it was cancelled: the
meter's counts with every token (escaped), no fragment for a box the page does not have, a
cancelled run that says so on its page, its share link and its embed, and run buttons that say
what will happen. (The browser's side: tests/e2e/test_live_feedback.py.)"""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from playground.runs.models import Run
from playground.sharing.models import ShareLink
from playground.streaming import fragments
from tests.factories import ProgramFactory, UserFactory

PAGE = "/runs/1/"


def test_a_models_token_carries_the_counts_for_the_meter() -> None:
    event = {
        "seq": 7, "type": "token", "text": "<b>x</b>", "tokens": 412, "answer_tokens": 12,
        "limit": 2048, "rate": 18.3, "calls": 2,
    }  # fmt: skip
    html = fragments.event_fragment(PAGE, event)
    assert '<span hx-swap-oob="beforeend:#model-output">&lt;b&gt;x&lt;/b&gt;</span>' in html
    meter = re.search(r'<data id="model-meter-data" hx-swap-oob="true"[^>]*>', html)
    assert meter is not None
    assert 'value="412"' in meter.group(0)
    assert 'data-answer="12"' in meter.group(0)
    assert 'data-limit="2048"' in meter.group(0)
    assert 'data-rate="18.3"' in meter.group(0)
    assert 'data-calls="2"' in meter.group(0)


def test_the_meters_counts_are_escaped_whatever_they_hold() -> None:
    event = {"seq": 1, "type": "token", "text": "", "tokens": '"><script>x</script>'}
    html = fragments.event_fragment(PAGE, event)
    assert "<script>" not in html
    assert "&quot;&gt;&lt;script&gt;" in html


def test_our_own_headings_do_not_move_the_meter() -> None:
    html = fragments.event_fragment(PAGE, {"seq": 1, "type": "token", "text": "── Think ──\n"})
    assert "model-meter-data" not in html


def test_a_viewer_joining_late_gets_the_latest_counts() -> None:
    events = [
        {"seq": 1, "type": "token", "text": "a", "tokens": 1, "limit": 64, "calls": 1},
        {"seq": 2, "type": "token", "text": "b", "tokens": 2, "limit": 64, "calls": 1},
        {"seq": 3, "type": "status", "text": "Asking…"},
    ]
    html = fragments.state(PAGE, events)
    assert re.search(r'<pre id="model-output"[^>]*>ab</pre>', html)
    assert 'value="2"' in html
    assert 'value="1"' not in html


def test_a_model_that_starts_again_empties_what_its_dead_worker_wrote() -> None:
    # Its worker died mid-answer; the pipeline sent the run again and says so.
    events = [
        {"seq": 1, "type": "token", "text": "half an ", "tokens": 3, "calls": 1},
        {"seq": 2, "type": "step", "step": {"line": 2, "locals": {"x": "1"}}},
        {"seq": 3, "type": "plan", "plan": {"pseudocode": "old plan"}},
        {"seq": 4, "type": "restarted", "text": "The model starts <again>.", "live_steps": True},
        {"seq": 5, "type": "token", "text": "whole", "tokens": 1, "calls": 1},
    ]
    live = fragments.event_fragment(PAGE, events[3])
    assert re.search(r'<pre id="model-output"[^>]*hx-swap-oob="true"></pre>', live)
    assert re.search(r'<ol id="emulated-steps"[^>]*hx-swap-oob="true"></ol>', live)
    assert '<div id="live-plan" hx-swap-oob="true"></div>' in live
    assert "The model starts &lt;again&gt;." in live  # the status line, escaped
    # A viewer joining afterwards sees only the new attempt, and the status line says why.
    late = fragments.state(PAGE, events)
    assert re.search(r'<pre id="model-output"[^>]*>whole</pre>', late)
    assert "half" not in late
    assert "old plan" not in late
    assert "emulated-steps" not in late
    assert late.count('id="model-output"') == 1  # not emptied after the new text
    assert "The model starts &lt;again&gt;." in late
    just_restarted = fragments.state(PAGE, events[:4])
    assert re.search(r'<pre id="model-output"[^>]*></pre>', just_restarted)  # emptied


def test_a_run_without_a_model_gets_no_fragment_for_a_model_box() -> None:
    # htmx reports oobErrorNoTarget for every fragment whose target is not on the page.
    events = [{"seq": 1, "type": "trace", "status": "ok", "steps": 3, "result": "1"}]
    html = fragments.state(PAGE, events)
    assert "model-output" not in html
    assert "model-meter-data" not in html


def _cancelled_run(**fields: object) -> tuple[Run, Client]:
    user = UserFactory()
    client = Client()
    client.force_login(user)
    program = ProgramFactory(owner=user)
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=user, method="trace",
        model="smollm2-135m", status=Run.Status.CANCELLED, finished_at=timezone.now(),
        emulated_text='{"steps": [{"line": 1', **fields,
    )  # fmt: skip
    return run, client


@pytest.mark.django_db
def test_a_cancelled_run_says_so_on_its_page_its_share_link_and_its_embed() -> None:
    run, client = _cancelled_run(completion_tokens=37, model_calls=1)
    page = client.get(run.get_absolute_url()).content.decode()
    strip = re.search(r'<div id="run-cancelled"[^>]*>(.*?)</div>', page, re.S)
    assert strip is not None
    assert "Cancelled" in strip.group(1)
    assert "you stopped this run" in strip.group(1)
    box = re.search(r'<div id="model-cancelled"[^>]*>(.*?)</div>', page, re.S)
    assert box is not None
    assert "after 37 tokens" in box.group(1)
    assert "What the model wrote before it was cancelled" in page
    assert "The model got it" not in page  # no verdict pretends to be one

    link = ShareLink.objects.create(run=run)
    stranger = Client()
    shared = stranger.get(link.get_absolute_url()).content.decode()
    assert re.search(r'<div id="run-cancelled"[^>]*><strong>Cancelled</strong>', shared)
    assert "its owner stopped this run" in shared
    embed = stranger.get(reverse("sharing:embed", args=[link.token])).content.decode()
    assert re.search(r'<div class="banner verdict-unknown" id="run-cancelled">', embed)


@pytest.mark.django_db
def test_a_live_run_page_has_the_meter_and_the_box_that_follows() -> None:
    user = UserFactory()
    client = Client()
    client.force_login(user)
    program = ProgramFactory(owner=user)
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=user, method="cot",
        model="smollm2-135m", status=Run.Status.RUNNING, max_tokens=1024,
    )  # fmt: skip
    page = client.get(run.get_absolute_url()).content.decode()
    assert re.search(r'<p id="model-meter"[^>]* data-limit="1024" hidden>', page)
    assert '<data id="model-meter-data"' in page
    assert re.search(r'<button type="button" id="model-jump"[^>]*hidden>Jump to newest', page)
    assert "/static/js/live-run.js" in page
    since = re.search(r'<time [^>]*data-since="(\d+)" data-now="(\d+)"', page)
    assert since is not None
    assert 0 <= int(since.group(2)) - int(since.group(1)) < 60


@pytest.mark.django_db
def test_the_run_button_says_what_will_happen(client: Client) -> None:
    program = ProgramFactory(is_public=True)
    page = client.get(program.get_absolute_url()).content.decode()
    button = re.search(r'<button class="button" data-label-real="([^"]*)" '
                       r'data-label-model="([^"]*)">([^<]*)</button>', page)  # fmt: skip
    assert button is not None
    assert button.groups() == ("▶ Run it for real", "▶ Run and ask the model", "▶ Run it for real")
    assert "/static/js/run-form.js" in page
    empty = client.get(reverse("runs:mine")).content.decode()
    assert "“▶ Run it for real”" in empty
    assert "“▶ Run and ask the model”" in empty
