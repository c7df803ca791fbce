"""A real Celery worker's heartbeat file (playground/celery.py), what an orchestrator's liveness
probe reads: fresh while the worker is connected to its broker, stale while the broker is gone
(the probe would restart it), fresh again once the broker is back, removed when it stops. The
broker is a Redis server of the test's own (Debian's redis-server), which it kills and restarts."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection

from playground.celery import alive_file
from playground.lib import paths
from tests.stack import free_port, stop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
BEAT_S = 0.5


def _redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ping = ["redis-cli", "-p", str(port), "ping"]
    answers = lambda: subprocess.run(ping, capture_output=True, check=False).stdout  # noqa: E731
    _until(lambda: answers().strip() == b"PONG", 10, "no Redis")
    return proc


def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _age(path: Path) -> float:
    return time.time() - path.stat().st_mtime


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[Path, int, list[subprocess.Popen[bytes]]]]:
    """A worker on a queue of its own, with a Redis of its own as every Redis role; yields its
    heartbeat file, the Redis port and the Redis process (in a list the test may replace)."""
    port = free_port()
    servers = [_redis(port)]
    node = f"beat-test-{uuid.uuid4().hex[:8]}@test"
    env = {
        **os.environ,
        "DATABASE_URL": paths.database_url(connection.settings_dict),
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "PLAYGROUND_VAR_DIR": str(tmp_path),
        "PLAYGROUND_WORKER_HEARTBEAT_S": str(BEAT_S),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "playground", "worker", "-Q", node.split("@")[0],
         "--pool", "threads", "--concurrency", "1", "--without-mingle", "--without-gossip",
         "-n", node, "--loglevel", "WARNING"],
        cwd=paths.REPO_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    path = tmp_path / alive_file(node).relative_to(paths.var_dir())
    try:
        yield path, port, servers
    finally:
        stop(proc, grace=20)
        for server in servers:
            server.kill()
            server.wait()
        assert proc.returncode is not None
        if proc.returncode == 0:
            assert not path.exists()  # a worker that stops removes its heartbeat


def test_the_heartbeat_is_fresh_only_while_the_worker_has_its_broker(
    worker: tuple[Path, int, list[subprocess.Popen[bytes]]],
) -> None:
    path, port, servers = worker
    _until(path.exists, 60, "the worker never wrote its heartbeat")
    first = path.stat().st_mtime
    _until(lambda: path.stat().st_mtime > first, 5, "the heartbeat is not kept fresh")

    servers[0].kill()  # the broker is gone: the consumer stops its steps and reconnects
    servers[0].wait()
    time.sleep(BEAT_S * 4)
    stopped = path.stat().st_mtime
    time.sleep(BEAT_S * 6)
    assert path.stat().st_mtime == stopped, "a worker without its broker still says it is alive"
    assert _age(path) >= BEAT_S * 6

    servers.append(_redis(port))  # back: the consumer reconnects and beats again
    _until(lambda: _age(path) < BEAT_S * 3, 60, "the heartbeat did not come back with Redis")
