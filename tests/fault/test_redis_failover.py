"""Redis behind Sentinel, and its primary killed in the middle of real work.

The whole product (`make run`'s launcher: web, the workers, the scheduler) with every Redis role
on one primary watched by three sentinels (Debian's `redis-server` and `redis-sentinel` on
loopback ports, tests/redis_ha.py), a replica beside it. While a run streams its model's answer
and more runs wait in the queues, the primary gets a SIGKILL; the sentinels promote the replica
(down after 1 s here), and every client follows: Celery's broker and results, the channel layer,
the cache, the event streams and the leases. Afterwards every run has finished, right, and an
API client that followed the streaming run saw every event once, in order, and the run's shared
page on its websocket showed the model's text exactly as stored.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oracle import Oracle, oracle_server
from tests.redis_ha import SentinelGroup, sentinel_group
from tests.stack import Stack, model_text, running_stack

pytestmark = [pytest.mark.slow, pytest.mark.fault]

MAKE_TOKEN = """
from django.contrib.auth import get_user_model
from playground.accounts.tokens import create_token
user = get_user_model().objects.create_user("failover", password="not used here")
print(create_token(user=user, name="failover", scope="run")[1])
"""
# A loop: its trace is long, so the model's answer streams for several seconds.
LOOP = (
    "def f(n):\n    total = 0\n    for i in range(n):\n        total += i * i\n    return total\n"
)
SHORT = "def f(xs):\n    return sorted(xs)[0]\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, SentinelGroup, str]]:
    base = Path(tmp_path_factory.mktemp("sentinel"))
    oracle = Oracle(chunk_delay=0.08)
    with sentinel_group(base) as group, oracle_server(oracle) as model, running_stack() as stack:
        spec = {
            "name": "oracle", "base_url": model.base_url, "model": "oracle",
            "first_token_s": 20, "total_s": 120, "max_concurrency": 8,
        }  # fmt: skip
        stack.env = {
            "REDIS_URL": group.url,
            "PLAYGROUND_LEASE_S": "4",
            "PLAYGROUND_REAP_EVERY_S": "2",
            "PLAYGROUND_EMBEDDED_LLM": "off",
            "PLAYGROUND_MODELS": json.dumps([spec]),
        }
        stack.start()
        for worker in ("sandbox", "llm"):
            stack.wait_for(rf"{worker}@\S+ ready\.")
        token = stack.manage(MAKE_TOKEN).strip().splitlines()[-1]
        yield stack, group, token
        stack.kill()


def _start(stack: Stack, token: str, source: str, call: str, method: str) -> int:
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.port}", timeout=60) as api:
        response = api.post(
            "/api/runs", headers={"Authorization": f"Bearer {token}"},
            json={"source": source, "call": call, "method": method, "model": "oracle"},
        )  # fmt: skip
    assert response.status_code in (200, 201), response.text
    return int(response.json()["id"])


def _follow(stack: Stack, token: str, run_id: int, seen: list[tuple[int, str, dict[str, Any]]],
            on_event: Any) -> None:  # fmt: skip
    for event in stack.events(run_id, token):
        seen.append(event)
        on_event(event[1], len(seen))


def _difference(shown: str, stored: str) -> str:
    """Where a viewer's text first departs from the stored one, with some text either side."""
    at = next((i for i, (a, b) in enumerate(zip(shown, stored, strict=False)) if a != b),
              min(len(shown), len(stored)))  # fmt: skip
    start = max(0, at - 80)
    return (
        f"{len(shown)} characters shown, {len(stored)} stored; they differ from {at}:\n"
        f"shown:  {shown[start : at + 120]!r}\nstored: {stored[start : at + 120]!r}"
    )


def _why_not_done(stack: Stack, run_id: int, status: str) -> str:
    """What a CI log needs to tell why a run did not finish: its row (which parts a task took,
    how often it was sent again, why it failed) and the launcher's lines about deaths, the
    reaper and errors (the last 40 lines are a restarted worker's banner)."""
    row = stack.sql(
        "SELECT real_claimed_at, emulation_claimed_at, resends, resent_at, created_at, error"
        " FROM runs_run WHERE id = %s",
        run_id,
    )
    telling = [line for line in stack.output
               if re.search(r" died |reaper|ERROR|Error:|lost", line)]  # fmt: skip
    parts = "real_claimed_at, emulation_claimed_at, resends, resent_at, created_at, error"
    return f"run {run_id} is {status}; {parts}: {row}\n" + "".join(telling[-60:])


def _state(stack: Stack, run_id: int) -> tuple[str, Any]:
    rows = stack.sql("SELECT status, verdict FROM runs_run WHERE id = %s", run_id)
    return rows[0][0], rows[0][1]


# A run whose row was committed and whose messages never reached the broker: the web process
# died between its commit and its sends, or the primary that took them died before its replica
# had them (the case the failover below may or may not hit, depending on timing).
UNSENT = """
from django.contrib.auth import get_user_model
from playground.programs.models import Program
from playground.runs.services import start_run
from playground.runs.models import Run
user = get_user_model().objects.get(username="failover")
program = Program.objects.create(owner=user, source=%r, call="f([3, 1, 2])")
run = start_run(program=program, user=user, anon_token=None, method="direct", model="oracle",
                enqueue=False)
Run.objects.filter(pk=run.pk).update(sent_as_tasks=True)
print(run.pk)
"""


def test_a_run_whose_messages_the_broker_never_had_finishes_within_seconds(
    site: tuple[Stack, SentinelGroup, str],
) -> None:
    stack, _, _ = site
    t0 = time.monotonic()
    run = int(stack.manage(UNSENT % SHORT).split()[-1])
    deadline = t0 + 60
    while _state(stack, run)[0] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
    took = time.monotonic() - t0
    status, verdict = _state(stack, run)
    assert status == "done", _why_not_done(stack, run, status)
    assert verdict["status"] == "correct", verdict
    # Looked for in the broker two sweeps after its sending (4 s here; a minute by default),
    # not after the 25 minutes of the visibility timeout and more.
    stack.wait_for(rf"run {run}: real sent again \(its message is not in the broker\)", 5)
    stack.wait_for(rf"run {run}: emulation sent again \(its message is not in the broker\)", 5)
    print(f"a run never sent finished {took:.1f} s after its commit")
    assert took < 30


def test_a_killed_redis_primary_costs_no_run_and_no_event(
    site: tuple[Stack, SentinelGroup, str],
) -> None:
    stack, group, token = site
    assert group.primary() == group.primary_port
    streaming = _start(stack, token, LOOP, "f(12)", "trace")
    seen: list[tuple[int, str, dict[str, Any]]] = []
    tokens_seen = threading.Event()

    def on_event(kind: str, count: int) -> None:
        if kind == "token" and count >= 8:
            tokens_seen.set()

    viewer = threading.Thread(target=_follow, args=(stack, token, streaming, seen, on_event))
    viewer.start()
    share = stack.manage(
        "from playground.sharing.models import ShareLink\n"
        f"print(ShareLink.objects.create(run_id={streaming}).token)"
    ).split()[-1]
    shown: list[str] = []
    browser = threading.Thread(target=stack.watch_page, args=(streaming, share, shown))
    browser.start()
    assert tokens_seen.wait(60), ("the model never streamed", seen, stack.output[-30:])
    # More work in the queues as the primary dies: runs waiting for the sandbox and the model.
    queued = [_start(stack, token, SHORT, f"f([{i}, 3, 2])", "direct") for i in range(3)]
    t0 = time.monotonic()
    stack.drain()
    mark = len(stack.output)
    group.kill_primary()
    # One more submitted during the failover: the site takes it (or keeps the request waiting
    # until the new primary is there), never loses it.
    queued.append(_start(stack, token, SHORT, "f([9, 8])", "cot"))
    submitted_in = time.monotonic() - t0

    deadline = time.monotonic() + 90
    states: dict[int, tuple[str, Any]] = {}
    ended: dict[int, float] = {}
    while time.monotonic() < deadline:
        states = {run: _state(stack, run) for run in [streaming, *queued]}
        for run, (status, _) in states.items():
            if status in ("done", "failed", "cancelled"):
                ended.setdefault(run, round(time.monotonic() - t0, 1))
        if len(ended) == len(states):
            break
        time.sleep(0.3)
    print("finished, seconds after the kill:", ended)
    stack.drain()
    since_kill = "".join(
        line for line in stack.output[mark:]
        if re.search(r"WARNING|ERROR|Error|Traceback| died |started \(pid", line)
    )  # fmt: skip
    print(since_kill)
    finished_in = time.monotonic() - t0
    viewer.join(30)
    browser.join(90)  # its own deadline is 120 s; a loaded machine delivers the end late

    assert group.primary() == group.replica_port  # the sentinels did fail over
    for run, (status, verdict) in states.items():
        assert status == "done", _why_not_done(stack, run, status)
        assert verdict["status"] == "correct", (run, verdict)
    numbers = [seq for seq, _, _ in seen]
    assert numbers == list(range(1, len(numbers) + 1)), numbers  # every event, once, in order
    assert seen[-1][1] == "done", seen[-5:]
    # Both viewers showed the model's text exactly as stored: no token lost, none twice (the
    # numbers alone would not tell a token lost with the old primary whose number the new one
    # gave to the next).
    stored = stack.sql("SELECT emulated_text FROM runs_run WHERE id = %s", streaming)[0][0]
    streamed = model_text(seen)
    assert streamed == stored, "Server-Sent Events: " + _difference(streamed, stored) + since_kill
    assert len(shown) == 1, ("the page's websocket never saw the run end", stack.output[-30:])
    assert shown[0] == stored, "the page's websocket: " + _difference(shown[0], stored) + since_kill
    print(
        f"failover: a run submitted {submitted_in:.1f} s into it was taken; every run "
        f"finished {finished_in:.1f} s after the kill; the viewer saw {len(seen)} events"
    )
    assert finished_in < 60
