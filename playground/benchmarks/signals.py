"""When the batch worker starts, evaluations a dead worker left unfinished continue."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready

log = logging.getLogger(__name__)


@worker_ready.connect
def resume_evaluations(sender: Any = None, **kwargs: Any) -> None:
    queues = [q.name for q in getattr(getattr(sender, "task_consumer", None), "queues", [])]
    batch = [q for q in queues if q.startswith("batch")]
    if not batch:
        return  # only the batch worker owns evaluations (there is one: see the launcher)
    from playground.benchmarks.services import resume_interrupted

    try:
        resumed = resume_interrupted(queue=batch[0])
    except Exception:  # the worker must start even if the database is briefly away
        log.exception("could not look for unfinished evaluations")
        return
    if resumed:
        log.warning("resuming %d evaluation(s): %s", len(resumed), resumed)
