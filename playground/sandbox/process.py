"""One program, one sandbox: take a started sandbox, feed it the program, supervise it, collect its
trace.

Layers, all of them or nothing (fail closed): the jail (jail.py: account, namespaces, empty
environment, rlimits and a seccomp allowlist set by the runner before user code), and here a
wall-clock kill, a cap on what is read back and validation of every byte of it (collect.py).

Chain of Code runs (``lmulator``, see lmulator.py) keep the request pipe open: the runner pauses
on a line Python cannot run and asks; the model is called here and its checked answer written
back.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import time
from typing import Any

from playground.sandbox.collect import Collector, assemble, check_bwrap_failure
from playground.sandbox.limits import Limits
from playground.sandbox.lmulator import LMSession, Lmulator, encode_reply
from playground.sandbox.protocol import encode_request
from playground.sandbox.spawn import (
    KILL_GRACE_S,
    MAX_STDERR,
    kill,
    reap_adopted,
    start,
)
from playground.sandbox.warm_pool import pool


def run_isolated(
    source: str,
    call: str | None,
    stdin: str,
    limits: Limits,
    lmulator: Lmulator | None = None,
    rule: str | None = None,
) -> dict[str, Any]:
    """Run one program in a sandbox process of its own and return its validated trace; with
    ``lmulator``, in Chain of Code mode; with ``rule``, rewritten under it in the sandbox (both:
    Chain of Code of the program rewritten under the rule, inside/coc_runtime.py)."""
    lm = (
        LMSession(lmulator, source, max_calls=limits.lm_calls, max_seconds=limits.lm_seconds)
        if lmulator is not None
        else None
    )
    started = pool.take(limits) or start(limits)
    request = encode_request(
        source, call, stdin, limits, started.sandboxed, mode="one" if lm is None else "coc",
        rule=rule,
    )  # fmt: skip
    t0 = time.perf_counter()
    try:
        return _supervise(started.proc, request, limits, t0, lm)
    finally:
        reap_adopted(started.pidfd)
        os.close(started.info_r)
        # Start the next sandbox only now: started earlier, it competes for the CPU with this run.
        pool.refill()


def _supervise(
    proc: subprocess.Popen[bytes],
    request: bytes,
    limits: Limits,
    t0: float,
    lm: LMSession | None = None,
) -> dict[str, Any]:
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    collector = Collector(limits, lm)
    stderr = b""
    try:
        proc.stdin.write(request)
        if lm is None:
            proc.stdin.close()
        else:  # coc: the model's answers go back on this pipe, without ever blocking us
            proc.stdin.flush()
            os.set_blocking(proc.stdin.fileno(), False)
    except BrokenPipeError:
        pass
    # The runner stops the program at the limit itself and reports its steps; the kill is the
    # backstop for a program that keeps it from doing so.
    deadline = t0 + limits.wall_s + KILL_GRACE_S
    timed_out = False
    outbox = b""  # replies for the runner not yet written
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    open_streams = 2
    try:
        while open_streams:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=remaining):
                if key.data == "in":
                    try:
                        outbox = outbox[os.write(key.fd, outbox) :]
                    except BlockingIOError:
                        pass
                    except OSError:  # the runner is gone or closed its end
                        outbox = b""
                    if not outbox:
                        sel.unregister(key.fileobj)
                    continue
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                elif key.data == "out":
                    collector.feed(data)
                    if collector.problem is not None:
                        timed_out = False
                        open_streams = 0
                        break
                    if lm is not None and collector.lm_pending:
                        waited, replies = _ask_model(lm, collector)
                        # The model's time is not the program's: the wall clock waits for it.
                        # The program can forge requests (it can write on the protocol
                        # descriptor): that asks the model about its own code, and buys it at
                        # most Limits.lm_calls calls and lm_seconds of wall clock; its CPU
                        # limit is per process and never waits.
                        deadline += waited
                        if not outbox and not proc.stdin.closed:
                            sel.register(proc.stdin, selectors.EVENT_WRITE, "in")
                        outbox += replies
                elif len(stderr) < MAX_STDERR:
                    stderr += data[: MAX_STDERR - len(stderr)]
    except BaseException:  # e.g. the lmulator was interrupted: never leave the sandbox behind
        kill(proc)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        raise
    finally:
        sel.close()
        if lm is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
    if timed_out or collector.problem is not None:
        kill(proc)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    wall_ms = (time.perf_counter() - t0) * 1000
    if not timed_out and collector.final is None:
        check_bwrap_failure(proc.returncode, stderr, collector)
    return assemble(
        collector, timed_out=timed_out, returncode=proc.returncode,
        cpu_s=usage.ru_utime + usage.ru_stime, stderr=stderr, limits=limits, wall_ms=wall_ms,
        meta=lm.meta() if lm is not None else None,
    )  # fmt: skip


def _ask_model(lm: LMSession, collector: Collector) -> tuple[float, bytes]:
    """Answer the runner's pending requests: seconds spent, and the replies to write back. A
    request the program forged is answered like any other (it can only ask about itself)."""
    t0 = time.perf_counter()
    replies = bytearray()
    while collector.lm_pending:
        request, step = collector.lm_pending.popleft()
        status, text = lm.answer(request)
        if status == "ok" and 0 <= step < len(collector.steps):  # a dropped step stays dropped
            collector.steps[step]["by"] = "lm"
        replies += encode_reply(status, text)
    return time.perf_counter() - t0, bytes(replies)
