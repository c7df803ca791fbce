"""Celery application: queues ``sandbox`` (real execution), ``llm`` (emulation), ``batch``
(evaluations) and ``default`` (periodic and unrouted tasks, taken by the llm worker).

Each worker also keeps a heartbeat file for an orchestrator's liveness probe (``Heartbeat``):
``<var dir>/alive/<node name>``, touched every ``PLAYGROUND_WORKER_HEARTBEAT_S`` (10 s) by the
worker's consumer while it is connected to the broker. A worker whose consumer is wedged, or
cut from the broker, stops touching it; the probe (deploy/k8s/workers.yaml) restarts the pod
when it is two minutes old. `celery inspect ping` asks the same of a worker, but starts a
Celery client each time (seconds of CPU) and answers for any worker of the name.

Each worker counts its tasks (started, and ended by outcome, with their durations) for
Prometheus (lib/process_metrics.py). A worker has no web server: with
``PLAYGROUND_WORKER_METRICS_PORT`` set it answers scrapes on that port itself (``Metrics``),
on ``PLAYGROUND_WORKER_METRICS_HOST`` (127.0.0.1 unless told: the figures name tasks and models,
for the operator's eyes only), adding up its pool's processes (multiprocess mode, set up by the
launcher). Under `make run` the workers open no port: the web process's /metrics shows theirs."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from celery import Celery, bootsteps, signals
from kombu import Queue

from playground.lib import logcontext, paths, process_metrics

log = logging.getLogger(__name__)

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


def metrics_address() -> tuple[str, int] | None:
    """Where the worker answers scrapes (``PLAYGROUND_WORKER_METRICS_HOST``/``_PORT``); None
    when no port is set, the default."""
    raw = os.environ.get("PLAYGROUND_WORKER_METRICS_PORT", "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and 0 < int(raw) < 65536):
        raise ValueError(f"PLAYGROUND_WORKER_METRICS_PORT is a port number, not {raw!r}")
    return os.environ.get("PLAYGROUND_WORKER_METRICS_HOST", "").strip() or "127.0.0.1", int(raw)


class Metrics(bootsteps.StartStopStep):
    """Answers scrapes of the worker's figures on its own port, from a thread of the worker's
    main process. A step of the worker (not of the consumer, which stops and starts again with
    each broker connection), started after the pool: its first processes are forked without
    the listening socket."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        self.server: Any = None
        super().__init__(parent, **kwargs)

    def start(self, parent: Any) -> None:
        address = metrics_address()
        if address is None:
            return
        if process_metrics.multiprocess_dir() is None and "prefork" in parent.pool_cls.__module__:
            log.warning(
                "PROMETHEUS_MULTIPROC_DIR is not set: the figures of the pool's processes (its "
                "tasks) will not be seen on the metrics port. The launcher sets it (python -m "
                "playground.launcher serve ...)."
            )
        self.server = process_metrics.serve(address[1], address[0])
        log.info("metrics for Prometheus on %s port %s", *address)

    def stop(self, parent: Any) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


app.steps["worker"].add(Metrics)

# When each running task began, by task id, in the process that runs it (a threads pool runs
# several at once in one process, each under its own id).
_began: dict[str, float] = {}


@signals.task_prerun.connect(dispatch_uid="metrics-task-started")
def _task_started(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
    _began[task_id] = time.monotonic()
    process_metrics.TASKS_STARTED.labels(task=getattr(task, "name", "unknown")).inc()


@signals.task_postrun.connect(dispatch_uid="metrics-task-ended")
def _task_ended(task_id: str = "", task: Any = None, state: str | None = None, **kw: Any) -> None:
    began = _began.pop(task_id, None)
    seconds = None if began is None else time.monotonic() - began
    process_metrics.task_ended(getattr(task, "name", "unknown"), state, seconds)


@signals.worker_process_shutdown.connect(dispatch_uid="metrics-pool-process-ended")
@signals.worker_shutdown.connect(dispatch_uid="metrics-worker-ended")
def _process_ended(**kwargs: Any) -> None:
    """A pool process, or the worker itself, ends as asked: its gauges stop counting."""
    process_metrics.process_ended()
