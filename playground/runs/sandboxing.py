"""Untrusted code runs on the sandbox queue's workers only: this module sends it there from any
other process and waits for its trace.

``run(source, call=..., stdin=..., limits=..., lmulator=..., rule=...)`` takes ``sandbox.run``'s
arguments and returns the same trace. In a process that may start a sandbox (a sandbox worker, the
command line, the tests) it is ``sandbox.run``. Everywhere else (the web process and the llm and
batch workers call ``sandbox.forbid`` as they start) it sends a job to the sandbox queue
(``tasks.run_sandbox_job``) and waits for its result, so a Chain of Code pause, a puzzle's
``sat`` check, an input prediction's call and an evaluation's scoring all run where the
sandbox's permissions are, and nowhere else.

Chain of Code: the sandbox worker has no model and no model keys. When the program pauses on a
line Python cannot run, the job pushes the request (``LMRequest``) onto a Redis list; the
waiting thread here, which holds the model, answers it onto another; the sandbox side validates
and counts exactly as it does for a local run (``LMSession``).

A job lost with its worker (a SIGKILL, an out-of-memory kill) is noticed by its lapsed lease
(``lib/leases.py``) and sent again, at most ``MAX_ATTEMPTS`` times; a job no worker takes within
``WAIT_FOR_WORKER_S`` ends in ``SandboxUnavailable``, which every caller already reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
import uuid
from typing import Any

from celery.exceptions import TimeoutError
from celery.result import AsyncResult
from django.conf import settings

from playground import sandbox
from playground.lib import leases, worktimes
from playground.sandbox.inside.semantics import check as check_rule
from playground.sandbox.lmulator import LMRequest, Lmulator, LMulatorError, LMulatorStop

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # a job whose worker dies is sent again, up to this many sends in all
WAIT_FOR_WORKER_S = 600.0  # how long a job may wait in the queue before anyone takes it
POLL_S = 0.25


def run(
    source: str,
    *,
    call: str | None = None,
    stdin: str = "",
    limits: sandbox.Limits | None = None,
    lmulator: Lmulator | None = None,
    rule: str | None = None,
) -> dict[str, Any]:
    """``sandbox.run`` here when this process may start a sandbox, else on the sandbox queue.
    ``rule``: under that semantic rule, as ``sandbox.run`` takes it (checked here first, so an
    unknown name never reaches the queue)."""
    if rule:
        check_rule(rule)
    if sandbox.forbidden() is None:
        return sandbox.run(
            source, call=call, stdin=stdin, limits=limits, lmulator=lmulator, rule=rule or None
        )
    return Job(source, call, stdin, limits or sandbox.Limits(), lmulator, rule or None).wait()


def _keys(job: str) -> dict[str, str]:
    base = f"{leases.prefix()}:sandbox-job:{job}"
    return {
        "lease": f"{base}:lease",  # held by the worker running the job
        "taken": f"{base}:taken",  # set when a worker took it (then a lapsed lease means lost)
        "ask": f"{base}:ask",  # Chain of Code: the paused program's requests
        "reply": f"{base}:reply",  # ...and the model's answers
    }


class Job:
    """One run sent to the sandbox queue, waited for by this thread."""

    def __init__(
        self,
        source: str,
        call: str | None,
        stdin: str,
        limits: sandbox.Limits,
        lmulator: Lmulator | None,
        rule: str | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex
        self.keys = _keys(self.id)
        self.lmulator = lmulator
        self.payload = {
            "job": self.id,
            "source": source,
            "call": call,
            "stdin": stdin,
            "limits": dataclasses.asdict(limits),
            "coc": lmulator is not None,
            "rule": rule,
        }
        # Once a worker took it: the program's own wall clock, the model's time for a Chain of
        # Code run, and the slack of the sandbox's start and the result's way back.
        self.run_s = limits.wall_s + (limits.lm_seconds if lmulator is not None else 0) + 60

    def _send(self, attempt: int) -> AsyncResult:
        from playground.runs.tasks import run_sandbox_job

        leases.redis_client().delete(self.keys["taken"])
        return run_sandbox_job.apply_async(
            args=(self.payload,), queue=settings.PLAYGROUND_SANDBOX_QUEUE,
            task_id=f"{self.id}-{attempt}",
        )  # fmt: skip

    def wait(self) -> dict[str, Any]:
        client = leases.redis_client()
        attempt = 1
        result = self._send(attempt)
        sent = time.monotonic()
        taken_at: float | None = None
        try:
            while True:
                if self.lmulator is not None:
                    asked = client.blpop([self.keys["ask"]], timeout=POLL_S)
                    if asked is not None:
                        self._answer(asked[1])
                        continue
                elif result.ready():  # a copy that found the lease held: see below
                    time.sleep(POLL_S)
                else:
                    _wait_for(result, POLL_S)
                if result.ready() and (trace := self._outcome(result)) is not None:
                    return trace
                now = time.monotonic()
                if taken_at is None:
                    if client.exists(self.keys["taken"]):
                        taken_at = now
                    elif now - sent > WAIT_FOR_WORKER_S:
                        raise sandbox.SandboxUnavailable(
                            f"No sandbox worker took the run within {WAIT_FOR_WORKER_S:g} s."
                        )
                    continue
                lost = not leases.live(self.keys["lease"])
                if lost and result.ready() and (trace := self._outcome(result)) is not None:
                    return trace  # finished between the two looks
                if lost or now - taken_at > self.run_s:
                    if attempt >= MAX_ATTEMPTS:
                        raise sandbox.SandboxUnavailable(
                            "The sandbox worker running this stopped "
                            f"{attempt} times; it was not tried again."
                        )
                    why = "its worker stopped" if lost else "it ran past its time"
                    log.warning("sandbox job %s sent again (%s)", self.id, why)
                    result.revoke()
                    attempt += 1
                    result = self._send(attempt)
                    sent, taken_at = time.monotonic(), None
        finally:
            client.delete(self.keys["ask"], self.keys["reply"], self.keys["taken"])

    def _answer(self, raw: bytes | str) -> None:
        """A paused Chain of Code program's request: ask the model (here, where it is), send
        what it said back to the sandbox worker."""
        assert self.lmulator is not None
        try:
            request = LMRequest(**json.loads(raw))
            reply = {"ok": self.lmulator(request)}
        except LMulatorStop as exc:
            reply = {"stop": str(exc)}
        except LMulatorError as exc:
            reply = {"error": str(exc)}
        except Exception as exc:  # the job turns it into the trace's error, as a local run does
            log.exception("sandbox job %s: the lmulator failed", self.id)
            reply = {"failed": f"{type(exc).__name__}: {str(exc)[:200]}"}
        client = leases.redis_client()
        client.rpush(self.keys["reply"], json.dumps(reply))
        client.expire(self.keys["reply"], int(self.run_s) + 60)

    def _outcome(self, result: AsyncResult) -> dict[str, Any] | None:
        """The trace the job returned; None when this copy of it found the job's lease held
        (Celery handed it out again after killing the pool child that ran it: the dead child's
        lease lapses, and the job is sent again); SandboxUnavailable otherwise."""
        value = result.get(disable_sync_subtasks=False, propagate=False)
        if isinstance(value, dict) and value.get("held"):
            return None
        result.forget()
        if isinstance(value, dict) and "trace" in value:
            trace = dict(value["trace"])
            rule = self.payload.get("rule")
            if rule and trace.get("rule") != rule:
                # A sandbox worker of the previous release (during a rolling upgrade) ignores
                # the rule: its trace is standard Python's, which must never pass for the rule's.
                log.error("sandbox job %s came back without its rule %s", self.id, rule)
                raise sandbox.SandboxUnavailable(
                    "The sandbox worker that ran this cannot run a program under a rule yet."
                )
            return trace
        if isinstance(value, dict) and "unavailable" in value:
            raise sandbox.SandboxUnavailable(str(value["unavailable"]))
        log.error("sandbox job %s ended without a trace: %r", self.id, value)
        raise sandbox.SandboxUnavailable("The sandbox worker failed while running this.")


def _wait_for(result: AsyncResult, seconds: float) -> None:
    """Up to ``seconds`` for the task's result (the result backend says at once when it is
    stored), without raising what it holds."""
    with contextlib.suppress(TimeoutError):
        result.get(timeout=seconds, propagate=False, disable_sync_subtasks=False)


class RemoteLmulator:
    """On the sandbox worker: the lmulator of a Chain of Code job, which asks the thread that
    sent the job (it has the model) through Redis and waits for its answer."""

    def __init__(self, job: str, timeout_s: float) -> None:
        self.keys = _keys(job)
        self.timeout_s = timeout_s

    def __call__(self, request: LMRequest) -> str:
        client = leases.redis_client()
        client.rpush(self.keys["ask"], json.dumps(dataclasses.asdict(request)))
        client.expire(self.keys["ask"], int(self.timeout_s) + 60)
        got = client.blpop([self.keys["reply"]], timeout=self.timeout_s)
        if got is None:
            raise LMulatorStop("the model's side did not answer in time")
        reply = json.loads(got[1])
        if "ok" in reply:
            return str(reply["ok"])
        if "stop" in reply:
            raise LMulatorStop(str(reply["stop"]))
        raise LMulatorError(str(reply.get("error") or reply.get("failed") or "no answer"))


def serve(payload: dict[str, Any]) -> dict[str, Any]:
    """The sandbox worker's side of a job (``tasks.run_sandbox_job``): run it here while holding
    its lease; a second copy of it (a redelivery) finds the lease held and does nothing."""
    keys = _keys(str(payload["job"]))
    with leases.Held([keys["lease"]], [1], worktimes.LEASE_S) as lease:
        if not lease.taken:
            return {"held": True}
        leases.redis_client().set(keys["taken"], "1", ex=3600)
        limits = sandbox.Limits(**payload["limits"])
        lmulator = RemoteLmulator(payload["job"], limits.lm_seconds) if payload["coc"] else None
        try:
            trace = sandbox.run(
                payload["source"], call=payload["call"], stdin=payload["stdin"], limits=limits,
                lmulator=lmulator, rule=payload.get("rule") or None,  # absent: an older sender
            )  # fmt: skip
        except sandbox.SandboxUnavailable as exc:
            return {"unavailable": str(exc)}
        return {"trace": trace}
