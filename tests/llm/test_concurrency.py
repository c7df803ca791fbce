"""A model's ``max_concurrency`` holds across processes (every worker on every host shares it,
through leases in Redis), a waiting stream gets the next free place, one that waits too long is
told the model is busy, and a process that dies without closing its streams frees their places
once their leases lapse."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
from django.db import connection

from playground.lib import leases, paths
from playground.llm.client import ModelTimeout, Timeouts, slot_key, stream_chat
from playground.llm.registry import ModelSpec
from tests.llm.fake_server import chunk, fake_server, sse_headers

pytestmark = pytest.mark.django_db  # the lease keys are named after the (test) database
MESSAGES = [{"role": "user", "content": "hi"}]
STREAM_S = 0.6

# Streams in another process (another worker), against the same model and Redis.
OTHER = textwrap.dedent(
    """
    import json, os, sys, threading
    import django
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
    django.setup()
    from playground.llm.client import Timeouts, stream_chat
    from playground.llm.registry import ModelSpec

    model = ModelSpec(**json.loads(sys.argv[1]))
    texts = []

    def one():
        with stream_chat(model, [{"role": "user", "content": "hi"}],
                         timeouts=Timeouts(connect=2, first_token=5, total=30)) as stream:
            texts.append("".join(stream))

    threads = [threading.Thread(target=one) for _ in range(int(sys.argv[2]))]
    for t in threads: t.start()
    for t in threads: t.join()
    print(json.dumps(texts))
    """
)


@pytest.fixture
def counted() -> Iterator[tuple[ModelSpec, dict[str, int]]]:
    """A model whose server counts the streams open at once (and the most ever)."""
    lock = threading.Lock()
    seen = {"now": 0, "most": 0}

    def script(handler: BaseHTTPRequestHandler) -> None:
        with lock:
            seen["now"] += 1
            seen["most"] = max(seen["most"], seen["now"])
        try:
            sse_headers(handler)
            handler.wfile.write(chunk("ok"))
            handler.wfile.flush()
            time.sleep(STREAM_S)
            handler.wfile.write(chunk("", finish="stop") + b"data: [DONE]\n\n")
        finally:
            with lock:
                seen["now"] -= 1

    with fake_server(script) as (model, _):
        model = dataclasses.replace(model, name=f"counted-{os.getpid()}", max_concurrency=2)
        leases.redis_client().delete(slot_key(model))
        yield model, seen
        leases.redis_client().delete(slot_key(model))


def _stream(model: ModelSpec, results: list[str], total: float = 30) -> None:
    timeouts = Timeouts(connect=2, first_token=5, total=total)
    try:
        with stream_chat(model, MESSAGES, timeouts=timeouts) as stream:
            results.append("".join(stream))
    except ModelTimeout as exc:
        results.append(str(exc))


def _other_process(model: ModelSpec, streams: int) -> subprocess.Popen[str]:
    spec = {k: v for k, v in dataclasses.asdict(model).items() if k != "api_key"}
    env = {**os.environ, "DATABASE_URL": paths.database_url(connection.settings_dict)}
    return subprocess.Popen(
        [sys.executable, "-c", OTHER, json.dumps(spec), str(streams)],
        cwd=paths.REPO_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_the_limit_holds_across_two_processes(counted: tuple[ModelSpec, dict[str, int]]) -> None:
    model, seen = counted
    other = _other_process(model, 3)
    results: list[str] = []
    threads = [threading.Thread(target=_stream, args=(model, results)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    out, err = other.communicate(timeout=60)
    assert other.returncode == 0, err[-2000:]
    assert results == ["ok"] * 3
    assert json.loads(out) == ["ok"] * 3
    # Six streams from two processes, two at a time: never three (a per-process limit of two
    # would have let four through at once).
    assert seen["most"] == 2, seen
    assert leases.live(slot_key(model)) == 0  # every place given back


def test_a_stream_that_waits_too_long_is_told_the_model_is_busy(
    counted: tuple[ModelSpec, dict[str, int]],
) -> None:
    model, _ = counted
    holders: list[str] = []
    threads = [threading.Thread(target=_stream, args=(model, holders)) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)  # both places taken
    waited: list[str] = []
    _stream(model, waited, total=0.3)
    for thread in threads:
        thread.join(30)
    assert waited == [f"The model {model.label} is busy: no free slot in time."]
    assert holders == ["ok", "ok"]


def test_a_killed_process_frees_its_places_when_its_leases_lapse(
    counted: tuple[ModelSpec, dict[str, int]],
) -> None:
    model, _ = counted
    key = slot_key(model)
    # Two places held by a process that dies without closing anything.
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            f"""
            import os, time, django
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
            django.setup()
            from playground.lib import leases
            for _ in range(2):
                leases.Held([{key!r}], [2], 2).take()
            print("held", flush=True)
            time.sleep(600)
            """
        )],
        cwd=paths.REPO_DIR, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "DATABASE_URL": paths.database_url(connection.settings_dict)},
    )  # fmt: skip
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "held"
    assert leases.live(key) == 2
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    t0 = time.monotonic()
    results: list[str] = []
    _stream(model, results, total=10)
    assert results == ["ok"]
    assert 0.5 < time.monotonic() - t0 < 6  # waited for the dead process's leases (2 s) to lapse
