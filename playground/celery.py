"""Celery application: queues ``sandbox`` (real execution), ``llm`` (emulation), ``batch``
(evaluations) and ``default`` (periodic and unrouted tasks, taken by the llm worker).

Each worker also keeps a heartbeat file for an orchestrator's liveness probe (``Heartbeat``):
``<var dir>/alive/<node name>``, touched every ``PLAYGROUND_WORKER_HEARTBEAT_S`` (10 s) by the
worker's consumer while it is connected to the broker. A worker whose consumer is wedged, or
cut from the broker, stops touching it; the probe (deploy/k8s/workers.yaml) restarts the pod
when it is two minutes old. `celery inspect ping` asks the same of a worker, but starts a
Celery client each time (seconds of CPU) and answers for any worker of the name."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from celery import Celery, bootsteps, signals
from kombu import Queue

from playground.lib import logcontext, paths

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

app = Celery("playground")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue("sandbox"), Queue("llm"), Queue("batch"), Queue("default")]
app.autodiscover_tasks()

# Request, run and task ids on a task's log records, carried from whoever sent it
# (playground/lib/logcontext.py). weak=False: a weakly held receiver could be collected.
signals.before_task_publish.connect(logcontext.before_task_publish, weak=False)
signals.task_prerun.connect(logcontext.task_prerun, weak=False)
signals.task_postrun.connect(logcontext.task_postrun, weak=False)


@signals.after_setup_logger.connect(weak=False)
@signals.after_setup_task_logger.connect(weak=False)
def _log_with_ids(logger: Any = None, **_: Any) -> None:
    """A worker (or beat) sets its own console handlers up in place of settings.LOGGING's."""
    from django.conf import settings

    logcontext.celery_logging(logger, json=settings.PLAYGROUND_LOG_FORMAT == "json")


def heartbeat_s() -> float:
    raw = os.environ.get("PLAYGROUND_WORKER_HEARTBEAT_S", "")
    try:
        return max(0.1, float(raw)) if raw else 10.0
    except ValueError:
        return 10.0


def alive_file(node: str) -> Path:
    """The heartbeat file of the worker named ``node`` (``llm@host``)."""
    return paths.var_dir() / "alive" / node.replace("/", "_")


class Heartbeat(bootsteps.StartStopStep):
    """Touches the worker's heartbeat file on the consumer's timer while the consumer holds a
    broker connection. A step of the consumer that needs its connection: when the connection is
    lost the consumer stops its steps (no heartbeat while it reconnects) and starts them again
    once connected."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        self.tref: Any = None
        self.path: Path | None = None
        super().__init__(parent, **kwargs)

    def start(self, parent: Any) -> None:
        self.path = alive_file(parent.hostname)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._beat(parent)
        self.tref = parent.timer.call_repeatedly(heartbeat_s(), self._beat, (parent,), priority=10)

    def _beat(self, parent: Any) -> None:
        connection = parent.connection
        if self.path is not None and connection is not None and connection.connected:
            self.path.touch()

    def stop(self, parent: Any) -> None:
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def shutdown(self, parent: Any) -> None:
        self.stop(parent)
        if self.path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


app.steps["consumer"].add(Heartbeat)
