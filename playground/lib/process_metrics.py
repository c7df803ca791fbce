"""What only one process knows, for Prometheus: its requests' latencies, the rate-limit refusals
it answered, the websocket viewers it holds, the Celery tasks it ran, its sandboxes' and model
streams' durations. (The site's shared state is read at scrape time by playground/metrics.py.)

Several processes serve one host or pod (uvicorn's workers, a prefork worker's pool), and a
scrape reaches only one of them. So under the launcher (``run`` and ``serve``) each of them
writes its figures to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess
mode), which the launcher empties before they start, and whoever is scraped (a web process's
``/metrics``, a worker's own port) adds up the files of all of them. A process that ends as
asked marks itself dead (``process_ended``), so its viewers stop counting; one that was killed
cannot, and is found at the next scrape by its pid (``collect``). Without that directory (the
tests, ``runserver``) each process keeps its figures in memory and shows only its own.

Labels have few values, fixed by the code: a route's name, never its path (every distinct
value is a new series in Prometheus, and paths are chosen by whoever sends the request).
No Django here: the model client and the sandbox, which import no Django, count too."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The directory the processes of this host share, or None (figures kept in memory)."""
    return os.environ.get(DIR_VARIABLE) or None


# A process given the directory before it exists would fail as it defines the first figure.
if (_dir := multiprocess_dir()) is not None:
    Path(_dir).mkdir(parents=True, exist_ok=True)
# A `_created` series per label set doubles what is stored for nothing a panel reads.
disable_created_metrics()

REGISTRY = CollectorRegistry()

# Seconds, from a cached page (a few ms) to a slow report or a long upload.
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds, from a task that finds its work done to an evaluation item waiting on a model.
_TASK_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
_SANDBOX_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
_STREAM_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
_RATE_BUCKETS = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500)

REQUEST_SECONDS = Histogram(
    "playground_http_request_duration_seconds",
    "From a request reaching Django to its response (a stream: until it starts), by route name "
    "and status class.",
    ["route", "status"], buckets=_REQUEST_BUCKETS, registry=REGISTRY,
)  # fmt: skip
REFUSALS = Counter(
    "playground_rate_limit_refusals",
    "Requests or runs refused for being over a limit (lib/ratelimits.py), by the limit's name.",
    ["limit"], registry=REGISTRY,
)  # fmt: skip
VIEWERS = Gauge(
    "playground_websocket_viewers",
    "Run pages following a run on a websocket now.",
    registry=REGISTRY, multiprocess_mode="livesum",
)  # fmt: skip
TASKS_STARTED = Counter(
    "playground_tasks_started", "Celery tasks a worker began, by task name.",
    ["task"], registry=REGISTRY,
)  # fmt: skip
TASKS_FINISHED = Counter(
    "playground_tasks_finished",
    "Celery tasks a worker ended, by task name and outcome (succeeded, failed, retried, ...).",
    ["task", "outcome"], registry=REGISTRY,
)  # fmt: skip
TASK_SECONDS = Histogram(
    "playground_task_duration_seconds", "How long a Celery task ran in its worker, by task name.",
    ["task"], buckets=_TASK_BUCKETS, registry=REGISTRY,
)  # fmt: skip
SANDBOX_SECONDS = Histogram(
    "playground_sandbox_run_seconds",
    "A program's run in a sandbox, from the start of isolation to its trace, by the trace's "
    "status.",
    ["status"], buckets=_SANDBOX_BUCKETS, registry=REGISTRY,
)  # fmt: skip
STREAM_SECONDS = Histogram(
    "playground_model_stream_seconds",
    "A model's answer, from its slot being taken to its end, by model and outcome (ok, error).",
    ["model", "outcome"], buckets=_STREAM_BUCKETS, registry=REGISTRY,
)  # fmt: skip
FIRST_TOKEN_SECONDS = Histogram(
    "playground_model_first_token_seconds", "Time to a model answer's first token, by model.",
    ["model"], buckets=_FIRST_TOKEN_BUCKETS, registry=REGISTRY,
)  # fmt: skip
COMPLETION_TOKENS = Counter(
    "playground_model_completion_tokens",
    "Tokens the models wrote in their answers (the server's count where it reports one).",
    ["model"], registry=REGISTRY,
)  # fmt: skip
TOKENS_PER_SECOND = Histogram(
    "playground_model_tokens_per_second",
    "A model answer's tokens per second after its first token, by model.",
    ["model"], buckets=_RATE_BUCKETS, registry=REGISTRY,
)  # fmt: skip


def status_class(code: int) -> str:
    return f"{code // 100}xx" if 100 <= code < 600 else "other"


def request_served(route: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(route=route, status=status_class(status)).observe(seconds)


def refused(limit: str) -> None:
    REFUSALS.labels(limit=limit).inc()


def model_stream_ended(
    model: str, *, ok: bool, seconds: float, first_token_s: float | None, tokens: int
) -> None:
    """One answer of ``model`` ended (``ok``: complete, or stopped early because it was)."""
    STREAM_SECONDS.labels(model=model, outcome="ok" if ok else "error").observe(seconds)
    if tokens:
        COMPLETION_TOKENS.labels(model=model).inc(tokens)
    if first_token_s is None:
        return
    FIRST_TOKEN_SECONDS.labels(model=model).observe(first_token_s)
    writing = seconds - first_token_s
    # One token or a fraction of a second says nothing about the engine's speed.
    if ok and tokens > 1 and writing >= 0.1:
        TOKENS_PER_SECOND.labels(model=model).observe((tokens - 1) / writing)


_TASK_OUTCOMES = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "retried"}


def task_ended(task: str, state: str | None, seconds: float | None) -> None:
    TASKS_FINISHED.labels(task=task, outcome=_TASK_OUTCOMES.get(state or "", "other")).inc()
    if seconds is not None:
        TASK_SECONDS.labels(task=task).observe(seconds)


# -- the directory, the scrape -------------------------------------------------------------------


_LIVE_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_the_dead(path: str) -> None:
    """What ``process_ended`` would have done for processes that were killed (the OOM killer, a
    SIGKILL): a viewer they held would otherwise count for ever. The directory is one host's,
    so its pids are of this host."""
    for name in os.listdir(path):
        match = _LIVE_FILE.fullmatch(name)
        if match and not _alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):  # another scrape got there first
                multiprocess.mark_process_dead(int(match.group(1)), path)


def _registry() -> CollectorRegistry:
    path = multiprocess_dir()
    if path is None:
        return REGISTRY
    _forget_the_dead(path)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path)
    return registry


def collect() -> bytes:
    """The exposition text of this process's figures, or of every process sharing the
    directory."""
    return generate_latest(_registry())


def process_ended(pid: int | None = None) -> None:
    """Say that a process (this one by default) has ended, as it ends: its gauges stop
    counting. Its counters and histograms stay, so that totals never go down."""
    path = multiprocess_dir()
    if path is not None and Path(path).is_dir():
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid, path)


class _ForTheScrape(Collector):
    """A collector that reads the directory anew at each scrape (``start_http_server`` is given
    one registry at its start, and the dead are looked for at each scrape)."""

    def collect(self) -> Iterable[Metric]:
        return _registry().collect()


def serve(port: int, host: str) -> Any:
    """Answer scrapes of these figures on ``host:port`` from a thread (a Celery worker, which
    has no web server); returns the server, whose ``shutdown()`` stops it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ForTheScrape())
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
