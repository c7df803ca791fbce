"""Every out-of-band fragment the run page's websocket sends has its target on that page.

htmx logs `htmx:oobErrorNoTarget` in the browser's console for a fragment whose target is
missing: on 3103616 every real-only run page did, for the model box it does not have. Here the
page of an unfinished run of each method is rendered, and the fragments of that method's events
(the backlog sent on connect, then each live event) must only aim at ids the page holds.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from playground.runs.models import Run
from playground.streaming import fragments
from tests.factories import ProgramFactory, UserFactory

pytestmark = pytest.mark.django_db

STEP = {"i": 0, "line": 1, "event": "line", "locals": {"x": "1"}}
# What each method publishes while it runs (playground/runs/tasks.py and the methods).
EVENTS: dict[str, list[dict[str, Any]]] = {
    "real": [
        {"type": "status", "text": "Running in the sandbox…"},
        {"type": "trace", "status": "ok"},
    ],
    "direct": [{"type": "token", "text": "[ANSWER]"}, {"type": "trace", "status": "ok"}],
    "trace": [
        {"type": "token", "text": '{"steps": ['},
        {"type": "step", "step": STEP},
        {"type": "progress", "steps": 1, "correct_prefix": 1},
        {"type": "emulated", "steps": 1, "status": "ok"},
    ],
    "tae": [
        {"type": "plan", "plan": {"pseudocode": "print(1)"}, "reused": False},
        {"type": "token", "text": "1"},
        {"type": "step", "step": {**STEP, "by": "lm"}},
    ],
    "coc": [{"type": "step", "step": {**STEP, "by": "lm"}}, {"type": "token", "text": "x = 1"}],
}
TERMINAL = [{"type": "done"}, {"type": "failed", "error": "boom"}, {"type": "cancelled"}]
# The model started again (its worker died mid-answer): sent on every method's page but a
# real-only run's, with what the pipeline says of the method.
RESTARTED = {"type": "restarted", "text": "The model starts again."}


def _targets(html: str) -> set[str]:
    whole = re.findall(r'<\w+ id="([^"]+)"[^>]*hx-swap-oob="true"', html)
    inside = re.findall(r'hx-swap-oob="\w+:#([^"]+)"', html)
    return {*whole, *inside}


@pytest.mark.parametrize("method", sorted(EVENTS))
def test_every_fragment_of_a_live_run_has_a_target_on_its_page(method: str) -> None:
    user = UserFactory()
    client = Client()
    client.force_login(user)
    program = ProgramFactory(owner=user)
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=user, method=method,
        model="" if method == "real" else "smollm2-135m", status=Run.Status.RUNNING,
    )  # fmt: skip
    page = client.get(run.get_absolute_url()).content.decode()
    ids = set(re.findall(r'\sid="([^"]+)"', page))
    url = run.get_absolute_url()

    events = [{**event, "seq": n} for n, event in enumerate(EVENTS[method])]
    if method != "real":
        spec = run.spec
        assert spec is not None
        restarted = {**RESTARTED, "seq": len(events), "live_steps": spec.live_steps}
        events += [restarted, {**events[0], "seq": len(events) + 1}]
    sent = [fragments.state(url, [])]  # a viewer who comes before anything happened
    sent += [fragments.state(url, events)]  # ...or after
    sent += [fragments.event_fragment(url, event) for event in events + TERMINAL]
    missing = {target for html in sent for target in _targets(html)} - ids
    assert not missing, f"fragments aim at ids the {method} run page lacks: {sorted(missing)}"
