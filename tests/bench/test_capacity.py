"""The capacity model (bench/capacity.py) against queueing arithmetic a reader can check by hand,
and its sizing against the demand it is given."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import capacity

# Only the sandbox costs anything: one pass is one 0.1 s sandbox run.
SANDBOX_ONLY = capacity.Demand(web=capacity.LOGIN_CPU_S, sandbox=0.1, llm=0.0, rest=0.0,
                               harness=0.0, fixed_s=0.0, model_s=0.0)  # fmt: skip


def test_one_sandbox_drains_a_burst_one_run_at_a_time() -> None:
    """100 runs at once on one sandbox process: the last verdict comes after 100 x 0.1 s (the
    login's web work comes before the run and is spread over the burst's first 0.4 s x 100)."""
    site = capacity.Site(cores=math.inf, web=100, sandbox=1, with_harness=False)
    out = capacity.simulate_burst(SANDBOX_ONLY, site, students=100, over_s=0.001)
    assert len(out) == 100
    assert max(out) == pytest.approx(10.0, abs=0.05)
    assert min(out) == pytest.approx(0.1, abs=0.05)


def test_shared_cores_are_shared() -> None:
    """Two runs of 1 s of CPU each on one core, processor-shared: both end at about 2 s."""
    demand = capacity.Demand(web=capacity.LOGIN_CPU_S, sandbox=1.0, llm=0.0, rest=0.0,
                             harness=0.0, fixed_s=0.0, model_s=0.0)  # fmt: skip
    site = capacity.Site(cores=1, web=2, sandbox=2, with_harness=False)
    out = capacity.simulate_burst(demand, site, students=2, over_s=0.001)
    # Both logins (0.4 s of CPU each) share the core first, then both runs do.
    assert sorted(out) == pytest.approx([2.0, 2.0], abs=0.05)


def test_sizing_adds_the_part_that_is_short() -> None:
    """300 runs of 0.5 s of sandbox over 60 s offer 2.5 busy sandbox processes: the sizing gives
    at least 3, and with them p95 is within the target."""
    demand = capacity.Demand(web=capacity.LOGIN_CPU_S, sandbox=0.5, llm=0.0, rest=0.0,
                             harness=0.0, fixed_s=0.0, model_s=0.0)  # fmt: skip
    site = capacity.size(demand, students=300, over_s=60, model_s=0.1, per_replica=32)
    assert site.sandbox >= 3
    out = capacity.simulate_burst(demand, site, students=300, over_s=60)
    assert capacity.p95(out) <= capacity.KNEE_S


def test_an_evaluation_is_bounded_by_its_places_its_model_and_its_sandbox() -> None:
    """100 items of a 1 s model answer: 2 places (batch threads) take 50 s, whatever the model
    serves; 64 places with a model of 4 slots take 25 s; a 0.5 s sandbox run on one process
    (twice per item) makes the sandbox the bound: 100 s; and shared cores cap it."""

    def seconds(**given: float) -> float:
        base = {"in_flight": 2, "model_slots": 64, "model_s": 1.0, "sandbox_slots": 64,
                "sandbox_s": 0.0, "other_s": 0.0}  # fmt: skip
        return capacity.evaluation_seconds(100, **{**base, **given})  # type: ignore[arg-type]

    assert seconds() == pytest.approx(50.0)
    assert seconds(in_flight=64, model_slots=4) == pytest.approx(25.0)
    assert seconds(in_flight=64, sandbox_slots=1, sandbox_s=0.5) == pytest.approx(100.0, abs=1.0)
    assert seconds(other_s=1.0) == pytest.approx(100.0)  # each item holds its place 2 s
    # Everything on 2 shared cores, 2 s of CPU per item: the cores, not the places, bound it.
    assert seconds(cores=2, cpu_s=2.0) == pytest.approx(100.0)
    assert seconds(cores=2, cpu_s=0.5) == pytest.approx(50.0)
