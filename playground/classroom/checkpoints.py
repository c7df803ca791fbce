"""Checking an item's checkpoints before the item is saved: the item form asks whether every
checkpoint can be answered, from the key run's trace when the program is unchanged, else from a
run on the sandbox worker that the form waits for. Its own file, apart from ``keys`` (what a
saved item's key says), because it queues a Celery task whose module imports the marking that
imports ``keys``: kept here, the arrows only point down."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from playground.classroom import grading
from playground.classroom.keys import LIMITS, trace_data
from playground.runs.models import Run

log = logging.getLogger(__name__)


# How long the item form waits for the sandbox worker: the run's own wall limit, plus the queue.
CHECK_MARGIN_S = 5.0


@dataclass(frozen=True)
class CheckpointCheck:
    """What the program's real trace says of the checkpoints: ``problems`` (empty: all of them
    can be answered), or ``unchecked`` with the reason when no trace could be had in time."""

    problems: tuple[str, ...] = ()
    unchecked: str = ""


def check_checkpoints(
    checkpoints: list[dict[str, Any]],
    *,
    source: str,
    call: str,
    stdin: str = "",
    key_run: Run | None = None,
) -> CheckpointCheck:
    """Check checkpoints against the real trace: the item's finished key run when it is of this
    program (editing checkpoints only), else a run in the sandbox now, on the sandbox worker,
    waited for at most the wall limit plus a margin."""
    if key_run is not None and key_run.status == Run.Status.DONE:
        same = (key_run.source, key_run.call, key_run.stdin) == (source, call, stdin)
        real = trace_data(key_run.real_trace) if same else {}
        if real:
            steps = real.get("steps")
            found = grading.checkpoint_values(steps if isinstance(steps, list) else [], checkpoints)
            status = str(real.get("status", ""))
            return CheckpointCheck(
                tuple(grading.checkpoint_problems(found, complete=status not in LIMITS))
            )
    from celery.exceptions import TimeoutError as CeleryTimeout

    from playground.classroom.tasks import check_checkpoints as task
    from playground.runs.limits import default_limits

    wait = default_limits().wall_s + CHECK_MARGIN_S
    try:
        # A worker that takes it after the form gave up drops it rather than run it for nobody.
        pending = task.apply_async(args=(source, call, stdin, checkpoints), expires=wait)
        answer = pending.get(timeout=wait, propagate=True)
    except CeleryTimeout:
        return CheckpointCheck(unchecked=f"the sandbox did not answer within {wait:.0f} s")
    except Exception as exc:  # the broker is away, the task failed: not the teacher's doing
        log.warning("checking checkpoints failed", exc_info=True)
        return CheckpointCheck(unchecked=f"the sandbox could not be reached ({type(exc).__name__})")
    with contextlib.suppress(Exception):  # the result is small and expires anyway
        pending.forget()
    if not isinstance(answer, dict) or "found" not in answer:
        why = answer.get("unavailable") if isinstance(answer, dict) else None
        return CheckpointCheck(unchecked=f"the sandbox is not available ({why or 'no answer'})")
    status = str(answer.get("status", ""))
    return CheckpointCheck(
        tuple(grading.checkpoint_problems(answer["found"], complete=status not in LIMITS))
    )
