"""The warm pool: a drain leaves no sandbox behind, even one the starter thread was starting at
that moment (it used to be filed after the drain and outlive it: a live sandbox left over for the
leftover check of test_hostile.py, and for the process's exit)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from playground.sandbox import warm_pool
from playground.sandbox.spawn import Started


def test_a_drain_during_a_start_discards_what_was_being_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_start = warm_pool.start
    entered, gate = threading.Event(), threading.Event()
    made: list[Started] = []

    def held_start(limits: Any) -> Started:
        # The one fake: hold the start open so the drain lands while it runs.
        entered.set()
        gate.wait(10)
        started = real_start(limits)
        made.append(started)
        return started

    monkeypatch.setattr(warm_pool, "start", held_start)
    pool = warm_pool._WarmPool()
    pool.refill()
    assert entered.wait(10)
    pool.drain()  # while the starter is inside start()
    gate.set()
    deadline = time.monotonic() + 10
    while not (made and made[0].proc.poll() is not None) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert made, "the start never finished"
    assert made[0].proc.poll() is not None, "the sandbox started during the drain is still alive"
    time.sleep(0.3)
    assert not pool.idle  # and the pool stays empty after a drain...
    assert len(made) == 1
    entered.clear()
    pool.refill()  # ...until it is asked again
    assert entered.wait(10)
    deadline = time.monotonic() + 10
    while not pool.idle and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pool.idle) == 1
    pool.drain()
    assert made[1].proc.poll() is not None
