"""The runner's answer, collected: its JSON lines validated as they arrive (``Collector``) and
the trace assembled from them and from how its process ended (``assemble``).

Nothing the program writes on the protocol descriptor can make this code raise. Its own file
because a single run (process.py) and a batch (batch.py) read answers the same way, and because
it is pure: it is tested, and measured (bench/protocol_memory.py), without any sandbox.
"""

from __future__ import annotations

import logging
import signal
from collections import deque
from typing import Any

from playground.sandbox import protocol
from playground.sandbox.jail import SandboxUnavailable
from playground.sandbox.limits import Limits
from playground.sandbox.lmulator import LMRequest, LMSession
from playground.sandbox.schema import (
    MAX_RESULT,
    TraceInvalid,
    clean_error,
    clean_step,
    make_trace,
    one_line,
    storable,
    stored_size,
)

log = logging.getLogger(__name__)

_MAX_PROTOCOL_BYTES = 48 * 1024 * 1024


class Collector:
    """Parses the runner's JSON lines as they arrive, validating each step (and, in coc mode,
    each request for the model, queued in ``lm_pending`` with the step it pauses on). Nothing the
    program writes on the protocol descriptor can make it raise: a line it refuses sets
    ``problem`` (and ``reason``, our own words, never the program's)."""

    def __init__(self, limits: Limits, lm: LMSession | None = None) -> None:
        self.limits = limits
        self.lm = lm
        self.lm_pending: deque[tuple[LMRequest, int]] = deque()
        # A final record holds the whole output, each character escaped to at most 6 bytes.
        self.lines = protocol.LineBuffer(max(protocol.MAX_LINE_BYTES, 8 * limits.max_stdout))
        self.total = 0
        self.steps: list[dict[str, Any]] = []  # the steps kept: up to limits.max_trace_bytes
        self.count = 0  # every valid step received, kept or not
        self.kept_size = 0
        self.objects: set[int] = set()  # heap ids recorded so far (a step may refer to these)
        self.final: dict[str, Any] | None = None
        self.problem: str | None = None
        self.reason = ""
        self.started = False  # the runner is about to run user code (nothing before is forged)
        self.fatal: str | None = None

    def feed(self, data: bytes | memoryview) -> None:
        if self.problem is not None:
            return
        self.total += len(data)
        if self.total > _MAX_PROTOCOL_BYTES:
            self.problem = "output_limit"
            return
        lines = self.lines
        for start, end in lines.feed(data):
            if end > start and self.problem is None and self.final is None:
                self._line(lines.data, start, end)
        lines.consume()
        if lines.too_long and self.problem is None:
            self._refuse(f"a line longer than {lines.max_line:,} bytes")

    def _refuse(self, reason: str) -> None:
        log.warning("sandbox answered an invalid message: %s", reason)
        self.problem, self.reason = "invalid", reason

    def _line(self, buffer: bytearray, start: int, end: int) -> None:
        try:
            message = protocol.load(buffer, start, end, self.lines.budget)
            if type(message) is not dict or len(message) != 1:
                raise TraceInvalid("not an object with one key")
            if "steps" in message:
                self._steps(message["steps"])
            elif "final" in message:
                if type(message["final"]) is not dict:
                    raise TraceInvalid("final is not an object")
                self.final = message["final"]
            elif "started" in message:
                self.started = True
            elif "fatal" in message:
                if self.started:  # only the runner, before user code, reports a setup failure
                    raise TraceInvalid("a setup failure reported after the program started")
                self.fatal = one_line(str(message["fatal"]))[:500]
            elif "lm" in message and self.lm is not None:
                self.lm_pending.append(self.lm.request(message["lm"], self.steps, self.count))
            else:
                raise TraceInvalid("unknown message")
        except TraceInvalid as exc:
            self._refuse(str(exc))
        except RecursionError:
            self._refuse("nested too deeply")
        except Exception as exc:  # TypeError, MemoryError, an int of 5,000 digits: all invalid
            self._refuse(f"not a well-formed message ({type(exc).__name__})")

    def _steps(self, batch: Any) -> None:
        if type(batch) is not list:
            raise TraceInvalid("steps is not a list")
        limits = self.limits
        for raw in batch:
            if self.count >= limits.max_steps:
                raise TraceInvalid("more steps than the limit")
            step = clean_step(raw, self.count, max_stdout=limits.max_stdout, objects=self.objects)
            self.count += 1
            if len(self.steps) == self.count - 1:  # nothing dropped yet
                size = stored_size(step)
                if self.kept_size + size <= limits.max_trace_bytes:
                    self.kept_size += size
                    self.steps.append(step)


_RUNNER_STATUSES = frozenset(
    {"ok", "exception", "step_limit", "time_limit", "memory_limit", "output_limit"}
)


def make_error(kind: str, message: str) -> dict[str, Any]:
    return {"type": kind, "message": message, "line": None}


def _from_final(
    final: dict[str, Any],
    collector: Collector,
    limits: Limits,
    wall_ms: float,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    status, result, stdout = final.get("status"), final.get("result"), final.get("stdout", "")
    if type(status) is not str or status not in _RUNNER_STATUSES:
        raise TraceInvalid("bad status")
    if result is not None and type(result) is not str:
        raise TraceInvalid("bad result")
    if type(stdout) is not str:
        raise TraceInvalid("bad stdout")
    error = clean_error(final.get("error"))
    if status == "memory_limit" and error is not None and not error["message"]:
        # CPython's MemoryError has no message: "MemoryError: (line 1)" says nothing.
        error["message"] = f"out of memory; a run may use {limits.memory_mb} MB"
    return make_trace(
        status=status,
        steps=collector.steps,
        stdout=storable(stdout[: limits.max_stdout]),
        result=storable(result[:MAX_RESULT]) if result is not None else None,
        error=error,
        wall_ms=wall_ms,
        truncated=final.get("truncated") is True,
        total_steps=collector.count,
        **(meta or {}),
    )


def _signal_name(returncode: int) -> str:
    """The signal that ended the process ("" if it exited); bwrap reports it as 128 + n."""
    number = -returncode if returncode < 0 else returncode - 128 if returncode > 128 else 0
    if not number:
        return ""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def assemble(
    collector: Collector,
    *,
    timed_out: bool,
    returncode: int,
    cpu_s: float,
    stderr: bytes,
    limits: Limits,
    wall_ms: float,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The trace from what the runner sent and how its process ended (``meta``: make_trace's
    source, method and lm_calls for a coc run). Raises only SandboxUnavailable (the runner
    reported, before any user code, that it could not set the sandbox up)."""
    try:
        steps = collector.steps
        meta = meta or {}

        def trace(status: str, error: dict[str, Any] | None, stdout: str = "") -> dict[str, Any]:
            return make_trace(
                status=status, steps=steps, stdout=stdout, error=error, wall_ms=wall_ms,
                total_steps=collector.count, **meta,
            )  # fmt: skip

        if collector.problem == "output_limit":
            return trace(
                "output_limit", make_error("OutputLimit", "The trace is larger than the limit.")
            )
        invalid = "The program wrote something that is not a trace on the tracer's channel"
        if collector.problem == "invalid":
            return trace("crash", make_error("TraceInvalid", f"{invalid}: {collector.reason}."))
        if collector.final is not None:
            try:
                return _from_final(collector.final, collector, limits, wall_ms, meta)
            except TraceInvalid as exc:
                message = f"{invalid}: a malformed final record ({exc})."
                return trace("crash", make_error("TraceInvalid", message))
        stdout = "".join(step.get("stdout", "") for step in steps)[: limits.max_stdout]
        if timed_out:
            message = f"The program ran for {limits.wall_s:g} s of wall-clock time."
            return trace("time_limit", make_error("TimeLimit", message), stdout)
        signame = _signal_name(returncode)
        # RLIMIT_CPU: SIGXCPU at the soft limit (the runner reports it itself), SIGKILL at the hard
        # one (a program that ignores SIGXCPU). Our own wall-clock kill is `timed_out` above.
        if cpu_s >= limits.cpu_s - 0.05 or signame in ("SIGKILL", "SIGXCPU"):
            message = f"The program used {limits.cpu_s} s of CPU time."
            return trace("time_limit", make_error("TimeLimit", message), stdout)
        if collector.fatal and not collector.started:
            raise SandboxUnavailable(f"The sandbox could not start the program: {collector.fatal}")
        if signame:
            message = f"The program was killed by {signame}."
        else:
            message = f"The program exited with code {returncode}."
        detail = stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        if detail:
            message += " " + " | ".join(detail)[:500]
        return trace("crash", make_error("Crash", storable(message)), stdout)
    except SandboxUnavailable:
        raise
    except Exception:  # a bug here must not leave the run unfinished: the program "crashed"
        log.exception("could not assemble a trace")
        return make_trace(
            status="crash",
            steps=collector.steps,
            error=make_error("TraceInvalid", "The sandbox's answer could not be read."),
            wall_ms=wall_ms,
            total_steps=collector.count,
            **(meta or {}),
        )


def check_bwrap_failure(returncode: int, stderr: bytes, collector: Collector) -> None:
    """bubblewrap itself failed (no user namespaces...): that is a setup problem, not a crash.
    Once the runner said it starts the program, stderr is the program's: never a setup failure."""
    text = stderr.decode("utf-8", "replace")
    if collector.total == 0 and returncode == 1 and text.startswith("bwrap:"):
        detail = one_line(text)[:300]
        raise SandboxUnavailable(f"bubblewrap could not create the sandbox: {detail}")
