"""``/metrics``: the site's state for Prometheus, the same from whichever web process answers.

Every figure is read at scrape time from what all processes share (PostgreSQL, the broker, the
leases in Redis), so one scrape of any web pod sees the whole site, and nothing depends on which
process served the requests: the Celery queues' lengths (the broker's lists), runs in progress
and the oldest of them, runs finished lately by status and method with their durations, items of
running evaluations, and each model replica's health and streams in flight. Then what only the
processes of this host know (lib/process_metrics.py: request latencies by route, rate-limit
refusals, websocket viewers; under `make run`, the workers' tasks, sandboxes and model streams
too), added up over every process that shares its directory, never cached: the site's figures
once, whichever process answers, and this host's processes each once.

Who may read it: a request from an address in ``PLAYGROUND_METRICS_ALLOW`` (loopback by default,
so `make run`'s own page works), or one bearing ``PLAYGROUND_METRICS_TOKEN``
(``Authorization: Bearer ...``); anyone else gets a 404, as if there were nothing here. What it
costs: a handful of indexed queries and one Redis round trip per queue, computed at most once
every ``CACHE_S`` seconds per site (Django's cache), however often it is asked.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from playground.benchmarks.models import Evaluation, Result
from playground.lib import broker, process_metrics
from playground.llm.registry import RegistryError, load_models
from playground.llm.replicas import Balancer
from playground.runs.models import Run

CACHE_S = 5
RECENT_S = 300
QUEUES = ("sandbox", "llm", "batch", "default")
_CACHE_KEY = "playground:metrics:text"


def may_read(request: HttpRequest) -> bool:
    """From an allowed address, or with the metrics token."""
    token = settings.PLAYGROUND_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(str(request.META.get("REMOTE_ADDR") or ""))
    except ValueError:
        return False
    return any(address in network for network in settings.PLAYGROUND_METRICS_ALLOW)


class SiteCollector(Collector):
    """The site's figures, read from PostgreSQL and Redis when collected."""

    def collect(self) -> Iterator[Metric]:
        yield from self._queues()
        yield from self._runs()
        yield from self._evaluations()
        yield from self._models()

    def _queues(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "playground_queue_length", "Tasks waiting in a Celery queue (not yet taken).",
            labels=["queue"],
        )  # fmt: skip
        for queue, length in broker.lengths(QUEUES).items():
            family.add_metric([queue], length)
        yield family

    def _runs(self) -> Iterator[Metric]:
        now = timezone.now()
        in_progress = GaugeMetricFamily(
            "playground_runs_in_progress", "Runs queued or running.", labels=["status"]
        )
        counts = dict(
            Run.objects.filter(status__in=[Run.Status.QUEUED, Run.Status.RUNNING])
            .values_list("status")
            .annotate(n=Count("pk"))
        )
        for status in (Run.Status.QUEUED, Run.Status.RUNNING):
            in_progress.add_metric([str(status)], counts.get(status, 0))
        yield in_progress
        oldest = (
            Run.objects.filter(status__in=[Run.Status.QUEUED, Run.Status.RUNNING])
            .order_by("created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        yield GaugeMetricFamily(
            "playground_runs_oldest_in_progress_seconds",
            "Age of the oldest run still queued or running (0: none).",
            value=(now - oldest).total_seconds() if oldest else 0.0,
        )
        since = now - timedelta(seconds=RECENT_S)
        recent = Run.objects.filter(finished_at__gte=since)
        finished = GaugeMetricFamily(
            "playground_runs_finished_recently",
            f"Runs that ended in the last {RECENT_S} seconds, by status and method.",
            labels=["status", "method"],
        )
        for status, method, n in recent.values_list("status", "method").annotate(n=Count("pk")):
            finished.add_metric([status, method], n)
        yield finished
        durations = sorted(
            (end - start).total_seconds()
            for start, end in recent.filter(status=Run.Status.DONE)
            .values_list("created_at", "finished_at")
            .order_by("-finished_at")[:2000]
            if end is not None
        )
        summary = GaugeMetricFamily(
            "playground_run_seconds_recent",
            f"From a run's creation to its end, for the runs done in the last {RECENT_S} s.",
            labels=["quantile"],
        )
        for quantile in (0.5, 0.95, 0.99):
            index = min(len(durations) - 1, int(quantile * len(durations)))
            summary.add_metric([str(quantile)], durations[index] if durations else 0.0)
        yield summary
        tokens = recent.aggregate(total=Sum("completion_tokens"))["total"]
        yield GaugeMetricFamily(
            "playground_model_tokens_recently",
            f"Tokens the models wrote for the runs that ended in the last {RECENT_S} s.",
            value=float(tokens or 0),
        )

    def _evaluations(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "playground_evaluation_items",
            "Items of the evaluations queued or running, by state.",
            labels=["status"],
        )
        running = Evaluation.objects.filter(
            status__in=[Evaluation.Status.QUEUED, Evaluation.Status.RUNNING]
        )
        counts = dict(
            Result.objects.filter(evaluation__in=running)
            .values_list("status")
            .annotate(n=Count("pk"))
        )
        for status in (Result.Status.PENDING, Result.Status.RUNNING, Result.Status.DONE):
            family.add_metric([str(status)], counts.get(status, 0))
        yield family

    def _models(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "playground_model_replica_up",
            "1 while a model replica is not marked down by the site's clients.",
            labels=["model", "replica"],
        )
        streams = GaugeMetricFamily(
            "playground_model_replica_streams",
            "Answers streaming from a model replica now, across every worker.",
            labels=["model", "replica"],
        )
        try:
            models = load_models()
        except RegistryError:
            models = []
        for model in models:
            for index, health in enumerate(Balancer(model).health()):
                labels = [model.name, str(index)]  # the replica's place, not its address
                up.add_metric(labels, 0.0 if health.down_s > 0 else 1.0)
                streams.add_metric(labels, float(health.in_flight))
        yield up
        yield streams


def render() -> bytes:
    """The exposition text: the site's figures (shared by every web process for ``CACHE_S``
    seconds), then this host's processes' own."""
    return site_figures() + process_metrics.collect()


def site_figures() -> bytes:
    cached = cache.get(_CACHE_KEY)
    if isinstance(cached, bytes):
        return cached
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SiteCollector())
    t0 = time.monotonic()
    text = generate_latest(registry)
    took = time.monotonic() - t0
    text += (
        b"# HELP playground_metrics_collect_seconds Seconds the last collection took.\n"
        b"# TYPE playground_metrics_collect_seconds gauge\n"
        + f"playground_metrics_collect_seconds {took:.6f}\n".encode()
    )
    cache.set(_CACHE_KEY, text, CACHE_S)
    return text


class MetricsMiddleware:
    """Answers ``/metrics`` before anything reads the request's host: a scraper (Prometheus, a
    pod's annotation) asks by the pod's address, which is not one of the site's host names, and
    Django would refuse it (400) in the host check. The answer holds no link or host name, so
    the host does not matter to it; who may read it still does (``may_read``).

    First of the middleware, it also times every other request, under the name of the route
    it resolved to (``runs:detail``), never its path: paths are the sender's choice, and each
    distinct label value is one more series for Prometheus to keep."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == "/metrics":
            try:
                return metrics(request)
            except Http404:
                return HttpResponse("Not found.", status=404, content_type="text/plain")
        started = time.monotonic()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.view_name if match is not None else "unmatched"
        process_metrics.request_served(route, response.status_code, time.monotonic() - started)
        return response


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not may_read(request):
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD"})
    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)
