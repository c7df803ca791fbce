"""The one periodic reaper: work a dead worker took with it is sent again.

Celery beat (one per site) sends ``reap`` every ``worktimes.REAP_EVERY_S`` to the ``default``
queue; whichever worker takes it sweeps runs (``runs.recovery``), evaluations
(``benchmarks.services.reap_evaluations``), answers being graded
(``classroom.recovery``) and LMS scores whose task was lost (``lti.tasks.resend_stale_scores``).
A lock in Redis lets one sweep run at a time however many schedulers or copies of the message
there are. It replaces the recovery that ran whenever a worker started, which sent the same
stale work again each time any worker (re)started and reset a live batch worker's items. The
rules and timings: lib/worktimes.py; the measured recovery times: docs/RELIABILITY.md.

At the top of the package, beside the other entry points, because it reaches into the apps on
several floors (runs, benchmarks, classroom); nothing imports it but Celery (``CELERY_IMPORTS``).
"""

from __future__ import annotations

import logging

from celery import shared_task

from playground.benchmarks.services import reap_evaluations
from playground.classroom.recovery import reap_submissions
from playground.lib import leases, worktimes
from playground.lti.tasks import resend_stale_scores
from playground.runs.recovery import reap_runs

log = logging.getLogger(__name__)


def sweep() -> dict[str, list[object]]:
    """One sweep, unless another is running now (then nothing): what was sent again."""
    lock = f"{leases.prefix()}:reaper"
    holder = leases.new_holder()
    client = leases.redis_client()
    if not client.set(lock, holder, nx=True, ex=worktimes.REAP_EVERY_S):
        return {}
    try:
        return {
            "runs": list(reap_runs()),
            "evaluations": list(reap_evaluations()),
            "submissions": list(reap_submissions()),
            "lti_scores": list(resend_stale_scores()),
        }
    finally:
        if client.get(lock) == holder.encode():
            client.delete(lock)


@shared_task(ignore_result=True, soft_time_limit=worktimes.REAP_EVERY_S)
def reap() -> None:
    found = sweep()
    if any(found.values()):
        log.warning("reaper: %s", found)
