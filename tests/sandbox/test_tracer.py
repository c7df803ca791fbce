"""The step recorder, in-process: what a step holds, limits, determinism, safe values."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from playground import sandbox
from playground.sandbox import BatchSandbox
from playground.sandbox.inside.saferepr import safe_repr
from playground.sandbox.inside.tracer import Execution, LimitReached
from playground.sandbox.warm_pool import pool


def _trace(
    source: str, call: str | None = None, **limits: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    execution = Execution(
        source,
        call,
        max_steps=limits.get("max_steps", 10_000),
        max_stdout=limits.get("max_stdout", 64_000),
        emit=steps.extend,
        finish=final.update,
    )
    with contextlib.suppress(LimitReached):
        execution.run()
    return steps, final


PROGRAM = """def f(nums):
    total = 0
    for n in nums:
        total += n
        print("at", n)
    return total
"""


def test_steps_record_lines_changed_locals_and_output() -> None:
    steps, final = _trace(PROGRAM, "f([1, 2])")
    assert final["status"] == "ok"
    assert final["result"] == "3"
    assert final["stdout"] == "at 1\nat 2\n"
    in_f = [s for s in steps if s["func"] == "f"]
    assert [s.get("event", "line") for s in in_f][:3] == ["call", "line", "line"]
    assert in_f[0]["locals"] == {"nums": "[1, 2]"}
    assert [s["line"] for s in in_f if "event" not in s] == [2, 3, 4, 5, 3, 4, 5, 3, 6]
    # Only what changed is recorded; "total" changes after line 2 runs and again after each +=.
    changes = [s.get("locals", {}) for s in in_f]
    assert [c["total"] for c in changes if "total" in c] == ["0", "1", "3"]
    # Output appears on the step after the print ran.
    printed = [(s["line"], s["stdout"]) for s in in_f if s.get("stdout")]
    assert printed == [(3, "at 1\n"), (3, "at 2\n")]
    assert in_f[-1]["event"] == "return"
    assert in_f[-1]["locals"]["__return__"] == "3"
    assert [s["i"] for s in steps] == list(range(len(steps)))


def test_exception_is_reported_with_its_line() -> None:
    steps, final = _trace("def f(x):\n    y = 1\n    return x / 0\n", "f(3)")
    assert final["status"] == "exception"
    assert final["error"] == {"type": "ZeroDivisionError", "message": "division by zero", "line": 3}
    assert any(
        s.get("event") == "exception" and s["exception"].startswith("ZeroDivisionError")
        for s in steps
    )


def test_step_limit_keeps_the_partial_trace() -> None:
    steps, final = _trace("i = 0\nwhile True:\n    i += 1\n", max_steps=50)
    assert final["status"] == "step_limit"
    assert len(steps) == 50
    assert final["steps"] == 51


def test_output_limit() -> None:
    _, final = _trace("while True:\n    print('x' * 100)\n", max_stdout=1000)
    assert final["status"] == "output_limit"
    assert len(final["stdout"]) <= 1000


def test_user_defined_repr_and_eq_are_never_called() -> None:
    source = """class Sneaky:
    def __init__(self):
        self.value = 1
    def __repr__(self):
        raise SystemExit("repr called")
    def __eq__(self, other):
        raise SystemExit("eq called")
    __hash__ = None

def f():
    s = Sneaky()
    s.value = 2
    return [s]
"""
    steps, final = _trace(source, "f()")
    assert final["status"] == "ok", final
    assert final["result"] == "[Sneaky(value=2)]"
    values = [s["locals"]["s"] for s in steps if "s" in s.get("locals", {})]
    assert values == ["Sneaky(value=1)", "Sneaky(value=2)"]


def test_safe_repr_bounds_sizes() -> None:
    assert safe_repr("x" * 10_000).endswith("...")
    assert len(safe_repr("x" * 10_000)) <= 300
    assert safe_repr(list(range(100))).endswith("... (100 items)]")
    assert safe_repr(10**10_000) == "<int of about 10000 digits>"
    nested: list[Any] = []
    nested.append(nested)
    assert safe_repr(nested) == "[[...]]"
    assert safe_repr({3, 1, 2}) == "{1, 2, 3}"


def test_sandboxed_traces_are_deterministic() -> None:
    source = "def f(words):\n    s = set(words)\n    return sorted(s), len({w: 1 for w in s})\n"
    first = sandbox.run(source, call="f(['pear', 'apple', 'fig'])")
    second = sandbox.run(source, call="f(['pear', 'apple', 'fig'])")
    assert first["status"] == "ok"
    assert first["steps"] == second["steps"]
    assert first["result"] == second["result"] == "(['apple', 'fig', 'pear'], 3)"


def test_missing_bubblewrap_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    pool.drain()  # a sandbox started earlier would still work
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(sandbox.SandboxUnavailable, match="bubblewrap is not installed"):
        sandbox.run("print(1)")


def test_unsafe_local_mode_runs_without_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_SANDBOX", "unsafe-local")
    pool.drain()
    trace = sandbox.run("print('hi')\n")
    assert trace["status"] == "ok"
    assert trace["stdout"] == "hi\n"


def test_limits_can_only_be_lowered() -> None:
    limits = sandbox.Limits().lowered(cpu_s=10, wall_s=1.0, max_steps=None)
    assert limits.cpu_s == 2
    assert limits.wall_s == 1.0
    assert limits.max_steps == 10_000


def test_oversized_program_is_refused_before_starting() -> None:
    trace = sandbox.run("x = 1\n" + "#" * 200_000)
    assert trace["status"] == "crash"
    assert "limit is 100,000" in trace["error"]["message"]


def test_bubblewrap_that_cannot_create_namespaces_fails_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host without unprivileged user namespaces: bwrap refuses, and so must we. (A stand-in
    bwrap forces this error path; the sandbox account must be able to run it, hence /tmp.)"""
    bin_dir = Path(tempfile.mkdtemp(prefix="fake-bwrap-"))
    bin_dir.chmod(0o755)
    fake = bin_dir / "bwrap"
    fake.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create a new namespace' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    pool.drain()
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="No permissions to create a new"):
            sandbox.run("print(1)")
        batch = BatchSandbox()
        with pytest.raises(sandbox.SandboxUnavailable, match="No permissions to create a new"):
            batch.run("print(1)")
    finally:
        shutil.rmtree(bin_dir)


def test_keep_running_records_the_first_steps_and_lets_the_program_finish() -> None:
    source = "def f(n):\n    t = 0\n    for i in range(n):\n        t += i\n    return t"
    stopped = sandbox.run(source, call="f(100000)", limits=sandbox.Limits(max_steps=500))
    assert stopped["status"] == "step_limit"
    assert stopped["result"] is None
    finished = sandbox.run(
        source, call="f(100000)", limits=sandbox.Limits(max_steps=500, keep_running=True)
    )
    assert finished["status"] == "ok"
    assert finished["result"] == str(sum(range(100000)))
    assert len(finished["steps"]) == 500
    assert finished["stats"]["truncated"] is True
    assert "truncated" not in sandbox.run(source, call="f(3)")["stats"]
