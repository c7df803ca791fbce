"""Each process's own figures (playground/lib/process_metrics.py), read the way Prometheus reads
them: from a real web server of two uvicorn processes started as the container starts it
(`launcher serve web`, which gives them one multiprocess directory), whose one scrape adds up
both processes' requests, counts a refused request and follows a websocket viewer; and from a
real prefork Celery worker's own metrics port, which shows the tasks its pool process ran."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.db import connection
from prometheus_client import multiprocess
from websockets.sync.client import connect
from websockets.typing import Origin

from playground import sandbox
from playground.celery import app
from playground.lib import paths, process_metrics
from playground.llm.client import ModelProtocolError, stream_chat
from playground.runs.models import Run
from playground.sharing.models import ShareLink
from tests.factories import ProgramFactory
from tests.llm.fake_server import chunk, fake_server, streaming
from tests.stack import free_port, stop, web_process

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
REQUESTS = 40


def value(text: str, name: str, **labels: str) -> float:
    """The sample of ``name`` with exactly these labels (0 when there is none yet)."""
    for line in text.splitlines():
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or "")) if match else None
        if match and match.group(1) == name and found == labels:
            return float(match.group(3))
    return 0.0


def until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture(scope="module")
def web(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    """Two uvicorn processes behind one port, as `serve web` starts them; yields the base URL
    and their shared directory."""
    where = tmp_path_factory.mktemp("web-metrics")
    (where / "left-by-an-earlier-start.db").write_bytes(b"\0" * 8)  # the launcher empties it
    env = {"PLAYGROUND_WEB_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(where),
           "PLAYGROUND_LIMITS": "runs.anon=1/m", "PLAYGROUND_EMBEDDED_LLM": "off"}  # fmt: skip
    with (
        django_db_blocker.unblock(),
        web_process(env, via_launcher=True, log=where / "log") as (
            port,
            _pid,
        ),
    ):
        yield f"http://127.0.0.1:{port}", where


def scrape(base: str) -> str:
    response = httpx.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def _healthz_by_pid(where: Path) -> dict[int, float]:
    """What each process wrote for /healthz in its own file (the test's view, not the scrape's)."""
    found: dict[int, float] = {}
    for path in where.glob("histogram_*.db"):
        pid = int(path.stem.rpartition("_")[2])
        for metric in multiprocess.MultiProcessCollector.merge([str(path)]):
            for sample in metric.samples:
                if sample.name.endswith("_count") and sample.labels.get("route") == "healthz":
                    found[pid] = found.get(pid, 0) + sample.value
    return found


def test_one_scrape_adds_up_the_requests_of_both_web_processes(web: tuple[str, Path]) -> None:
    base, where = web
    assert not (where / "left-by-an-earlier-start.db").exists()
    name = "playground_http_request_duration_seconds_count"
    before = value(scrape(base), name, route="healthz", status="2xx")
    sent = 0
    # New connections, several at once: the kernel hands them to either process. Both must
    # have served some for the sum to mean anything; a few more rounds if one took them all.
    with ThreadPoolExecutor(8) as pool:
        for _ in range(5):
            codes = list(pool.map(lambda _: httpx.get(f"{base}/healthz").status_code,
                                  range(REQUESTS)))  # fmt: skip
            assert codes == [200] * REQUESTS
            sent += REQUESTS
            if len([n for n in _healthz_by_pid(where).values() if n > 0]) >= 2:
                break
    assert len(_healthz_by_pid(where)) == 2, _healthz_by_pid(where)
    text = scrape(base)
    assert value(text, name, route="healthz", status="2xx") == before + sent
    assert 'route="/' not in text  # a route by its name, never by its path
    httpx.get(f"{base}/no/such/page/{uuid.uuid4().hex}")
    assert value(scrape(base), name, route="unmatched", status="4xx") >= 1


def test_a_refused_request_is_counted_by_its_limit(web: tuple[str, Path]) -> None:
    base, _ = web
    name = "playground_rate_limit_refusals_total"
    before = value(scrape(base), name, limit="runs.anon")
    # A fresh loopback address: its own bucket, whatever an earlier run of the test left.
    me = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"  # noqa: S311
    with httpx.Client(transport=httpx.HTTPTransport(local_address=me), timeout=10) as client:
        codes = [client.post(f"{base}/api/runs", json={"method": "real"}).status_code
                 for _ in range(3)]  # fmt: skip
    assert codes == [422, 429, 429], codes  # the first counted (and invalid), then refused
    assert value(scrape(base), name, limit="runs.anon") == before + 2


def test_a_websocket_viewer_is_counted_while_connected(web: tuple[str, Path]) -> None:
    base, _ = web
    program = ProgramFactory()
    run = Run.objects.create(program=program, source=program.source, call=program.call,
                             status=Run.Status.QUEUED, method="real")  # fmt: skip
    link = ShareLink.objects.create(run=run)
    viewers = lambda: value(scrape(base), "playground_websocket_viewers")  # noqa: E731
    assert viewers() == 0
    url = f"{base.replace('http', 'ws')}/ws/runs/{run.pk}/?share={link.token}"
    with connect(url, origin=Origin(base)) as socket_:
        # The run's state (nothing yet: an empty message), sent once it is counted.
        assert isinstance(socket_.recv(timeout=10), str)
        assert viewers() == 1
    until(lambda: viewers() == 0, 10, "the viewer still counts after it left")


def test_a_killed_process_stops_counting_its_viewers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One that cannot say it ends (SIGKILL, the OOM killer) is found by its pid at the scrape."""
    code = ("from playground.lib import process_metrics as m; m.VIEWERS.inc(); "
            "print('up', flush=True); import time; time.sleep(60)")  # fmt: skip
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    child = subprocess.Popen([sys.executable, "-c", code], cwd=paths.REPO_DIR, env=env,
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "up\n"
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        assert value(process_metrics.collect().decode(), "playground_websocket_viewers") == 1
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert value(process_metrics.collect().decode(), "playground_websocket_viewers") == 0


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A prefork worker (as the sandbox queue's) on a queue of its own, with its metrics port;
    yields the queue and the metrics URL."""
    queue, port = f"metrics-test-{uuid.uuid4().hex[:8]}", free_port()
    where = tmp_path / "metrics"
    where.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": paths.database_url(connection.settings_dict),
        "PROMETHEUS_MULTIPROC_DIR": str(where),
        "PLAYGROUND_WORKER_METRICS_PORT": str(port),
    }
    with (tmp_path / "worker.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "playground", "worker", "-Q", queue,
             "--pool", "prefork", "--concurrency", "1", "--without-mingle", "--without-gossip",
             "-n", f"{queue}@test", "--loglevel", "INFO"],
            cwd=paths.REPO_DIR, env=env, stdout=log, stderr=log,
        )  # fmt: skip
    try:
        yield queue, f"http://127.0.0.1:{port}/metrics"
    finally:
        stop(proc, grace=20)


def test_a_worker_shows_its_pool_tasks_on_its_own_port(worker: tuple[str, str]) -> None:
    queue, url = worker
    task = "playground.runs.tasks.execute_real_run"
    app.send_task(task, args=(2**31 - 1,), queue=queue)  # no such run: it ends quietly
    app.send_task(task, args=(), queue=queue)  # no run id: it fails

    def scraped() -> str:
        try:
            return httpx.get(url, timeout=5).text
        except httpx.HTTPError:
            return ""  # not listening yet

    finished = "playground_tasks_finished_total"
    until(lambda: value(scraped(), finished, task=task, outcome="failed") == 1, 60,
          "the worker's port never showed the failed task")  # fmt: skip
    text = scraped()
    assert value(text, "playground_tasks_started_total", task=task) == 2
    assert value(text, finished, task=task, outcome="succeeded") == 1
    assert value(text, "playground_task_duration_seconds_count", task=task) == 2
    assert 0 < value(text, "playground_task_duration_seconds_sum", task=task) < 30
    assert "playground_queue_length" not in text  # the site's figures are the web's alone
    # Loopback, and only that address of it, unless told otherwise.
    with pytest.raises(httpx.ConnectError):
        httpx.get(url.replace("127.0.0.1", "127.0.0.2"), timeout=5)


def test_a_model_answer_and_a_sandbox_run_are_timed() -> None:
    """The model client and the sandbox count where they end (in-process here: the figures of
    this process, without a directory)."""
    sample = process_metrics.REGISTRY.get_sample_value

    def figures(model: str) -> list[float | None]:
        return [
            sample("playground_model_stream_seconds_count", {"model": model, "outcome": "ok"}),
            sample("playground_model_stream_seconds_count", {"model": model, "outcome": "error"}),
            sample("playground_model_completion_tokens_total", {"model": model}),
            sample("playground_model_tokens_per_second_count", {"model": model}),
            sample("playground_model_tokens_per_second_sum", {"model": model}),
        ]

    parts = [chunk(f"t{i} ") for i in range(5)] + [chunk("end", "stop"), b"data: [DONE]\n\n"]
    with fake_server(streaming(parts, delay=0.05)) as (model, _):
        before = figures(model.name)
        with stream_chat(model, [{"role": "user", "content": "hi"}]) as stream:
            assert "".join(stream).endswith("end")
    ok, error, tokens, rates, rate_sum = figures(model.name)
    assert (ok or 0) - (before[0] or 0) == 1
    assert error == before[1]
    assert (tokens or 0) - (before[2] or 0) == 6
    assert (rates or 0) - (before[3] or 0) == 1
    assert 1 < (rate_sum or 0) - (before[4] or 0) < 60  # 5 tokens in about 0.3 s
    with (
        fake_server(streaming([chunk("cut ")])) as (model, _),  # ends before it is complete
        pytest.raises(ModelProtocolError),
        stream_chat(model, [{"role": "user", "content": "hi"}]) as stream,
    ):
        list(stream)
    assert (figures(model.name)[1] or 0) - (before[1] or 0) == 1

    runs = lambda: sample("playground_sandbox_run_seconds_count", {"status": "ok"}) or 0  # noqa: E731
    earlier = runs()
    assert sandbox.run("x = 1")["status"] == "ok"
    assert runs() == earlier + 1
