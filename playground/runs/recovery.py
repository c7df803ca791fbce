"""Runs a dead worker took with it, sent again: the reaper's sweep of runs (playground.reaper
calls it every ``worktimes.REAP_EVERY_S``; the rules and timings are in lib/worktimes.py).

A run has up to two parts, each done by its own task: the real run (``execute_real_run``, on
``sandbox``) and the model's emulation (``execute_emulation``, on ``llm``). A task holds a lease
on its part while it works (``pipeline.holding``) and writes when it took it
(``<part>_claimed_at``). A part still outstanding is sent again when

- a task took it and holds no lease any more: the task died (a SIGKILL, an out-of-memory kill, a
  lost host, a hard time limit) at most ``LEASE_S`` ago; or
- no task took it within ``LOST_AFTER_S`` of its sending and the broker holds its message in
  none of its places (lib/broker.py: not queued, not taken by a worker): the message was lost
  with a Redis primary that failed over, or never sent (the process that made the run died
  between its commit and the sending). A message the broker holds is left to come: it waits its
  turn in a long queue, or, held by a worker that died, comes back after the broker's
  visibility timeout.

Each message is sent under an id made of the run, the part and the attempt
(``broker.task_id``), so the sweep knows which message to look for from the row alone.

A run is sent again at most ``MAX_RESENDS`` times; lost once more, it fails with a message
that says so rather than going round for ever. Sending again is a conditional write (the claim
and the count as they were read), so two sweeps at once cannot both send a part.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from playground.lib import broker, leases, worktimes
from playground.runs.models import Run, Trace
from playground.runs.pipeline import fail_run, finish_if_complete, work_key
from playground.runs.tasks import execute_emulation, execute_real_run, send_part

log = logging.getLogger(__name__)

LOST = (
    "The server lost this run: the worker running it stopped {times} times, so it was not "
    "tried again. Start it again; if it keeps happening, tell the site's operator."
)
_QUEUES = (execute_real_run.name, execute_emulation.name)
_FIELDS = ("pk", "program_id", "method", "emulation_done", "has_real", "created_at",
           "resent_at", "resends", "real_claimed_at", "emulation_claimed_at",
           "sent_as_tasks")  # fmt: skip


def _outstanding(row: dict[str, Any]) -> list[str]:
    parts = []
    if row["program_id"] is not None and not row["has_real"]:
        parts.append("real")
    if row["method"] != "real" and not row["emulation_done"]:
        parts.append("emulation")
    return parts


def reap_runs(now: datetime | None = None) -> list[tuple[int, str, str]]:
    """Send again every part of an unfinished run whose task died or whose message was lost;
    finish runs whose parts are all done (their last task died before judging them). Returns
    (run id, part, why) for each part sent again or run failed."""
    now = now or timezone.now()
    looked_for_before = now - timedelta(seconds=worktimes.LOST_AFTER_S)
    unclaimed_before = now - timedelta(seconds=worktimes.UNCLAIMED_AFTER_S)
    rows = list(
        Run.objects.filter(status__in=[Run.Status.QUEUED, Run.Status.RUNNING])
        .annotate(has_real=Exists(Trace.objects.filter(run=OuterRef("pk"), kind=Trace.Kind.REAL)))
        .values(*_FIELDS)
    )
    # The parts some task took: is its holder alive? One round trip for all of them.
    taken = [
        (row["pk"], part)
        for row in rows
        for part in _outstanding(row)
        if row[f"{part}_claimed_at"] is not None
    ]
    alive = dict(
        zip(taken, leases.live_many([work_key("run", pk, p) for pk, p in taken]), strict=True)
    )
    # The parts no task took for a while: is their message still in the broker? One read of
    # their queues for all of them.
    waiting = {
        (row["pk"], part): broker.task_id("run", row["pk"], part, row["resends"])
        for row in rows
        for part in _outstanding(row)
        if row["sent_as_tasks"]
        and row[f"{part}_claimed_at"] is None
        and (row["resent_at"] or row["created_at"]) < looked_for_before
    }
    in_broker = broker.held(waiting.values(), map(broker.queue_of, _QUEUES)) if waiting else set()
    done: list[tuple[int, str, str]] = []
    for row in rows:
        parts = _outstanding(row)
        if not parts:
            finish_if_complete(row["pk"])
            continue
        lost: list[tuple[str, str]] = []
        for part in parts:
            claimed = row[f"{part}_claimed_at"]
            if claimed is not None:
                if not alive[(row["pk"], part)]:
                    lost.append((part, "its worker stopped"))
            elif (row["pk"], part) in waiting:
                if waiting[(row["pk"], part)] not in in_broker:
                    lost.append((part, "its message is not in the broker"))
            elif (row["resent_at"] or row["created_at"]) < unclaimed_before:
                lost.append((part, "no worker took it"))
        if lost:
            done += _send_again(row, lost, now)
    return done


def _send_again(
    row: dict[str, Any], lost: list[tuple[str, str]], now: datetime
) -> list[tuple[int, str, str]]:
    pk = row["pk"]
    as_read = {f"{part}_claimed_at": row[f"{part}_claimed_at"] for part, _ in lost}
    if row["resends"] >= worktimes.MAX_RESENDS:
        # Conditional on what was read: a part taken meanwhile is alive after all.
        if Run.objects.filter(pk=pk, resends=row["resends"], **as_read).exists():
            log.error("run %s lost %d times (%s): failed", pk, row["resends"] + 1, lost)
            fail_run(pk, LOST.format(times=row["resends"] + 1))
            return [(pk, part, f"failed: {why}") for part, why in lost]
        return []
    sent = Run.objects.filter(pk=pk, resends=row["resends"], **as_read).update(
        resends=F("resends") + 1, resent_at=now, **dict.fromkeys(as_read)
    )
    if not sent:
        return []  # taken meanwhile, or another sweep sent it
    for part, why in lost:
        log.warning("run %s: %s sent again (%s)", pk, part, why)
        send_part(pk, part, row["resends"] + 1)
    return [(pk, part, why) for part, why in lost]
