"""When a worker starts, runs left unfinished by a worker that died are sent again."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready

log = logging.getLogger(__name__)
# Longer than any task's hard time limit (the emulation task's is 660 s): such a run is stuck.
STALE_AFTER_S = 15 * 60


@worker_ready.connect
def recover_unfinished_runs(sender: Any = None, **kwargs: Any) -> None:
    from playground.runs.services import requeue_stale_runs

    try:
        requeued = requeue_stale_runs(older_than_s=STALE_AFTER_S)
    except Exception:  # the worker must start even if the database is briefly away
        log.exception("could not look for unfinished runs")
        return
    if requeued:
        log.warning("sent %d unfinished run(s) again: %s", len(requeued), requeued)
