"""The batch sandbox: one sandbox that runs many programs of ONE owner, each forked from a zygote.

Its own file because it speaks the runner's batch mode (a header, then framed answers) and keeps
a sandbox alive across programs; single runs go through process.py instead.
"""

from __future__ import annotations

import json
import os
import select
import time
from typing import Any

from playground.sandbox.collect import Collector, assemble, make_error
from playground.sandbox.inside.semantics import check as check_rule
from playground.sandbox.jail import SandboxUnavailable, check_allowed
from playground.sandbox.limits import Limits
from playground.sandbox.protocol import encode_request
from playground.sandbox.schema import make_trace
from playground.sandbox.spawn import KILL_GRACE_S, MAX_STDERR, Started, discard, kill, start


class BatchSandbox:
    """One sandbox that runs many programs of ONE owner (a batch from the command line or an
    evaluation), each in a fresh process forked from a pre-imported zygote inside the sandbox.
    The zygote never runs user code and empties /tmp between programs; programs of different
    owners must never share one (use ``run_isolated`` for those)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.started: Started | None = None
        self.buffer = bytearray()

    def _ensure(self) -> Started:
        if self.started is not None and self.started.proc.poll() is None:
            return self.started
        self.close()
        check_allowed()
        started = start(self.limits)
        if started.sandboxed and started.pidfd is None:  # bubblewrap never created the sandbox
            assert started.proc.stderr is not None
            try:
                started.proc.wait(5)
                detail = started.proc.stderr.read(MAX_STDERR).decode("utf-8", "replace").strip()
            finally:
                discard(started)
            raise SandboxUnavailable(f"bubblewrap could not create the sandbox: {detail[:300]}")
        header = encode_request("", None, "", self.limits, started.sandboxed, mode="batch")
        assert started.proc.stdin is not None
        started.proc.stdin.write(header)
        started.proc.stdin.flush()
        self.started, self.buffer = started, bytearray()
        return started

    def _read(self, fd: int, deadline: float) -> bool:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return False
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return False
        self.buffer += chunk  # a bytearray grows in place: linear in what arrives
        return True

    def run(
        self, source: str, call: str | None = None, stdin: str = "", *, rule: str | None = None
    ) -> dict[str, Any]:
        """Run one program of the batch; the trace is validated exactly as for a single run.
        ``rule``: under that semantic rule (see ``sandbox.run``)."""
        if rule is not None:
            check_rule(rule)
        trace = self._run(source, call, stdin, rule)
        if rule is not None:
            trace["rule"] = rule
        return trace

    def _run(self, source: str, call: str | None, stdin: str, rule: str | None) -> dict[str, Any]:
        started = self._ensure()
        assert started.proc.stdin is not None
        assert started.proc.stdout is not None
        fd = started.proc.stdout.fileno()
        t0 = time.perf_counter()
        # The zygote enforces the wall clock; this is the backstop if the zygote itself hangs.
        deadline = t0 + self.limits.wall_s + KILL_GRACE_S + 3
        try:
            started.proc.stdin.write(
                encode_request(source, call, stdin, self.limits, started.sandboxed, None, rule=rule)
            )
            started.proc.stdin.flush()
            while (colon := self.buffer.find(b":")) < 0:
                if len(self.buffer) > 20 or not self._read(fd, deadline):
                    raise TimeoutError
            size = int(self.buffer[:colon])
            del self.buffer[: colon + 1]
            searched = size  # the done line follows the frame: search only what is new
            while len(self.buffer) < size or self.buffer.find(b"\n", searched) < 0:
                searched = max(size, len(self.buffer))
                if not self._read(fd, deadline):
                    raise TimeoutError
        except (TimeoutError, ValueError, OSError):
            self._kill()
            return make_trace(
                status="time_limit",
                steps=[],
                wall_ms=(time.perf_counter() - t0) * 1000,
                error=make_error("TimeLimit", "The sandbox stopped answering."),
            )
        newline = self.buffer.find(b"\n", size)
        done_line = bytes(self.buffer[size:newline])
        collector = Collector(self.limits)
        with memoryview(self.buffer) as view:
            for offset in range(0, size, 1 << 16):  # as a single run reads it: the same bounds
                with view[offset : min(size, offset + (1 << 16))] as chunk:
                    collector.feed(chunk)
        del self.buffer[: newline + 1]
        try:
            done = json.loads(done_line)["done"]
            returncode, timed_out = int(done["exit"]), bool(done["timed_out"])
            cpu_s = int(done["cpu_ms"]) / 1000
            if done.get("too_big"):
                collector.problem = collector.problem or "output_limit"
        except (ValueError, KeyError, TypeError):
            self._kill()
            return make_trace(
                status="crash",
                steps=collector.steps,
                error=make_error("TraceInvalid", "The batch sandbox answered nonsense."),
            )
        return assemble(
            collector, timed_out=timed_out, returncode=returncode, cpu_s=cpu_s, stderr=b"",
            limits=self.limits, wall_ms=(time.perf_counter() - t0) * 1000,
        )  # fmt: skip

    def _kill(self) -> None:
        if self.started is not None:
            kill(self.started.proc)
            self.close()

    def close(self) -> None:
        """End the zygote (EOF on its requests) and reap everything."""
        if self.started is not None:
            discard(self.started)
            self.started = None
