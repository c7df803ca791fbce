"""A run stopped at a time limit keeps the steps it recorded, says where it was, and says it once;
a MemoryError without a message reads well."""

from __future__ import annotations

import time

from playground import sandbox
from playground.sandbox import BatchSandbox
from playground.sandbox.limits import Limits

SLEEPER = "import time\nn = 0\nwhile True:\n    n += 1\n    time.sleep(0.2)\n"


def _check_sleeper(trace: dict, wall_s: float) -> None:
    assert trace["status"] == "time_limit"
    # On 3103616 the kill lost every step still in the tracer's batch: "No steps were recorded."
    steps = trace["steps"]
    assert len(steps) >= 8, len(steps)
    assert steps[-1]["line"] == 5  # the step of the sleep it was stopped in
    counted = [s["locals"]["n"] for s in steps if "n" in s.get("locals", {})]
    assert counted[-1] == str(len(counted) - 1)  # 0, 1, 2...: every round is there
    assert trace["error"] == {
        "type": "TimeLimit",
        "message": f"The program ran for {wall_s:g} s of wall-clock time.",
        "line": 5,  # asleep on line 5 when the clock ran out
    }


def test_a_run_killed_at_the_wall_clock_keeps_its_steps() -> None:
    t0 = time.perf_counter()
    trace = sandbox.run(SLEEPER, limits=Limits(wall_s=2))
    elapsed = time.perf_counter() - t0
    _check_sleeper(trace, 2)
    assert 1.9 < elapsed < 3.5  # stopped at the limit, not at the kill a moment later


def test_a_batch_run_killed_at_the_wall_clock_keeps_its_steps_and_the_batch_goes_on() -> None:
    batch = BatchSandbox(Limits(wall_s=2))
    try:
        _check_sleeper(batch.run(SLEEPER), 2)
        assert batch.run("x = 1\n")["status"] == "ok"
    finally:
        batch.close()


def test_the_cpu_limit_stops_the_program_where_it_was() -> None:
    trace = sandbox.run("n = 0\nwhile True:\n    n += 1\n", limits=Limits(cpu_s=1, max_steps=10**8))
    assert trace["status"] == "time_limit"
    assert trace["error"]["message"] == "The program used 1 s of CPU time."
    assert trace["error"]["line"] in (2, 3)
    assert len(trace["steps"]) > 1000


def test_a_program_that_takes_the_alarm_away_is_still_stopped_by_the_kill() -> None:
    # The backstop: a program can ignore SIGALRM; the parent's kill stops it anyway, with the
    # steps that had reached it (those of the last, unsent batch are lost then).
    source = (
        "import signal, time\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
        "for i in range(300):\n    pass\nwhile True:\n    time.sleep(0.2)\n"
    )
    trace = sandbox.run(source, limits=Limits(wall_s=1))
    assert trace["status"] == "time_limit"
    assert trace["error"]["message"] == "The program ran for 1 s of wall-clock time."
    assert len(trace["steps"]) >= 200  # the first full batch had been sent


def test_a_memory_error_without_a_message_says_what_happened() -> None:
    trace = sandbox.run("x = bytearray(10**10)\n")
    assert trace["status"] == "memory_limit"
    assert trace["error"] == {
        "type": "MemoryError",
        "message": "out of memory; a run may use 256 MB",
        "line": 1,
    }
