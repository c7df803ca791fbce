"""A model served by several replicas: streams spread over them within the model's cap, a replica
that dies or says "not now" (429, 503) costs no stream, its mark is shared and lapses, a stream
that has begun is never sent twice, and a routing key keeps one replica while it is up."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command

from playground.lib import leases
from playground.llm import replicas
from playground.llm.client import (
    ModelProtocolError,
    ModelUnavailable,
    Timeouts,
    slot_key,
    stream_chat,
)
from playground.llm.registry import ModelSpec
from playground.llm.replicas import Balancer, by_key, routing_key
from tests.llm.fake_server import chunk, sse_headers

pytestmark = pytest.mark.django_db  # the lease and mark keys are named after the test database
MESSAGES = [{"role": "user", "content": "hi"}]
QUICK = Timeouts(connect=2, first_token=5, total=20)
ANSWER = "ok done"


class Replica:
    """A scripted OpenAI-compatible server that can be killed and started again on its port.
    ``queue_s``: the wait before the answer's headers (an engine's queue and prefill); a kill
    drops the requests still waiting there, as a dying engine does; ``status``: answer that
    status (with ``retry_after``) instead, ``times`` times (None: always)."""

    def __init__(self, seen: dict[str, int], lock: threading.Lock, stream_s: float = 0.2) -> None:
        self.seen, self.lock = seen, lock  # the in-flight count over every replica
        self.stream_s = stream_s
        self.queue_s = 0.0
        self.status: int | None = None
        self.retry_after: str | None = None
        self.times: int | None = None
        self.truncate = False  # send one token, then end the stream without finishing
        self.requests = 0
        self.served = 0
        self.keys: list[str | None] = []
        self.killed = threading.Event()
        self.port = 0
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Replica:
        replica = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with replica.lock:
                    replica.requests += 1
                    replica.keys.append(self.headers.get("X-Session-ID"))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    replica.answer(self)

            def log_message(self, *args: object) -> None:
                pass

        self.killed.clear()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def kill(self) -> None:
        """Stop listening (new connections are refused) and drop the requests not yet answered."""
        self.killed.set()
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        if self.status is not None and (self.times is None or self.times > 0):
            if self.times is not None:
                self.times -= 1
            handler.send_response(self.status)
            if self.retry_after is not None:
                handler.send_header("Retry-After", self.retry_after)
            handler.send_header("Content-Type", "application/json")
            handler.end_headers()
            handler.wfile.write(b'{"error": "overloaded at http://10.9.9.9:8000"}')
            return
        if self.killed.wait(self.queue_s):
            handler.connection.shutdown(socket.SHUT_RDWR)  # died before answering
            return
        with self.lock:
            self.seen["now"] += 1
            self.seen["most"] = max(self.seen["most"], self.seen["now"])
        try:
            sse_headers(handler)
            handler.wfile.write(chunk("ok "))
            handler.wfile.flush()
            time.sleep(self.stream_s)
            if self.truncate:
                return
            # Counted before the last chunk goes out: a client that has read it may look at
            # ``served`` at once, before this thread would run again.
            with self.lock:
                self.served += 1
            handler.wfile.write(chunk("done", finish="stop") + b"data: [DONE]\n\n")
        finally:
            with self.lock:
                self.seen["now"] -= 1


Cluster = Callable[..., tuple[ModelSpec, list[Replica], dict[str, int]]]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """``cluster(n, cap)``: n replicas of one model whose concurrency cap is ``cap``, with a
    name of its own (its leases and marks start empty)."""
    started: list[Replica] = []
    models: list[ModelSpec] = []

    def make(
        n: int = 3, cap: int = 4, routing_header: str = "X-Session-ID"
    ) -> tuple[ModelSpec, list[Replica], dict[str, int]]:
        seen = {"now": 0, "most": 0}
        lock = threading.Lock()
        servers = [Replica(seen, lock).start() for _ in range(n)]
        started.extend(servers)
        model = ModelSpec(
            name=f"replicated-{os.getpid()}-{len(models)}",
            base_url=servers[0].url,
            more_base_urls=tuple(s.url for s in servers[1:]),
            model="fake",
            label="Fake model",
            max_concurrency=cap,
            routing_header=routing_header,
        )
        models.append(model)
        return model, servers, seen

    yield make
    for server in started:
        if not server.killed.is_set():
            server.kill()
    keys = [slot_key(m) for m in models]
    for model in models:
        for url in model.base_urls:
            keys += [replicas.streams_key(model, url), replicas.down_key(model, url)]
    if keys:
        leases.redis_client().delete(*keys)


def _collect(model: ModelSpec, key: str = "", timeouts: Timeouts = QUICK) -> str:
    with stream_chat(model, MESSAGES, timeouts=timeouts, routing_key=key) as stream:
        return "".join(stream)


def _in_parallel(jobs: list[Callable[[], str]]) -> list[str]:
    results: list[str] = [""] * len(jobs)

    def run(i: int) -> None:
        try:
            results[i] = jobs[i]()
        except Exception as exc:
            results[i] = f"{exc.__class__.__name__}: {exc}"

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def _key_for(target: str, urls: tuple[str, ...]) -> str:
    """A routing key whose first replica is ``target``."""
    return next(k for k in (f"key-{i}" for i in range(1000)) if by_key(k, urls)[0] == target)


def _down(model: ModelSpec) -> dict[str, float]:
    return {h.url: h.down_s for h in Balancer(model).health()}


def test_streams_spread_over_the_replicas_within_the_models_cap(cluster: Cluster) -> None:
    model, servers, seen = cluster(3, cap=4)
    results = _in_parallel([lambda: _collect(model)] * 12)
    assert results == [ANSWER] * 12
    # Never more than the model's cap at once over all its replicas, and the cap was used.
    assert seen["most"] == 4, seen
    # The fewest in flight gets the next stream: each replica carried its share.
    assert all(s.served >= 2 for s in servers), [s.served for s in servers]
    assert sum(s.served for s in servers) == 12
    for url in model.base_urls:  # every place given back
        assert leases.live(replicas.streams_key(model, url)) == 0
    assert leases.live(slot_key(model)) == 0


def test_a_replica_killed_during_a_batch_costs_no_stream_and_comes_back(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replicas, "DOWN_S", 3.0)
    model, servers, _ = cluster(3, cap=6)
    victim = servers[1]
    for server in servers:
        server.queue_s = 0.3  # streams wait in the engines' queues when the victim dies
    jobs = [lambda: _collect(model)] * 12

    def kill_once_asked() -> None:  # dies with streams in its queue, however slow the start
        deadline = time.monotonic() + 10
        while not victim.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        victim.kill()

    killer = threading.Thread(target=kill_once_asked)
    killer.start()
    results = _in_parallel(jobs)
    killer.join()
    assert results == [ANSWER] * 12  # every stream finished on the others
    assert victim.requests >= 1
    assert victim.served == 0
    assert _down(model)[victim.url] > 0  # marked down for every process
    # While it is down, streams keep away from it: even the key that prefers it.
    prefers_victim = _key_for(victim.url, model.base_urls)
    asked = victim.requests
    assert _collect(model, prefers_victim) == ANSWER
    assert victim.requests == asked
    # Restarted on its port: once its mark lapses it has its streams again.
    victim.start()
    deadline = time.monotonic() + 4
    while _down(model)[victim.url] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _down(model)[victim.url] == 0
    assert _collect(model, prefers_victim) == ANSWER
    assert victim.served == 1


def test_429_with_retry_after_goes_to_another_replica_and_is_honoured(cluster: Cluster) -> None:
    model, (busy, other), _ = cluster(2)
    busy.status, busy.retry_after = 429, "5"
    key = _key_for(busy.url, model.base_urls)
    t0 = time.monotonic()
    assert _collect(model, key) == ANSWER
    assert (busy.requests, other.served) == (1, 1)
    health = {h.url: h for h in Balancer(model).health()}
    # Its own Retry-After (5 s, not DOWN_S), for every process, less the time gone since.
    assert 5.0 - (time.monotonic() - t0) - 0.1 < health[busy.url].down_s <= 5.0
    assert health[busy.url].retry_after
    assert _collect(model, key) == ANSWER  # not asked again before its time
    assert (busy.requests, other.served) == (1, 2)


def test_503_goes_to_another_replica_before_the_first_token(cluster: Cluster) -> None:
    model, (failing, other), _ = cluster(2)
    failing.status = 503
    key = _key_for(failing.url, model.base_urls)
    assert _collect(model, key) == ANSWER
    assert (failing.requests, other.served) == (1, 1)
    assert _down(model)[failing.url] > 0


def test_the_only_replica_is_asked_again_after_its_retry_after(cluster: Cluster) -> None:
    model, (only,), _ = cluster(1)
    only.status, only.retry_after, only.times = 429, "1", 1
    t0 = time.monotonic()
    assert _collect(model) == ANSWER
    assert only.requests == 2
    assert 0.9 < time.monotonic() - t0 < 3


def test_a_replica_that_keeps_saying_busy_fails_with_a_message_for_users(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    model, servers, _ = cluster(2)
    for server in servers:
        server.status = 503
    with pytest.raises(ModelUnavailable) as exc:
        _collect(model, timeouts=Timeouts(connect=2, first_token=2, total=5))
    assert str(exc.value) == (
        "The model server for Fake model is busy or unavailable (HTTP 503). Try again in a minute."
    )
    assert "10.9.9.9" in exc.value.detail
    assert "10.9.9.9" in caplog.text
    assert 2 <= sum(s.requests for s in servers) <= replicas.max_attempts(model)


def test_a_stream_that_has_begun_is_never_sent_again(cluster: Cluster) -> None:
    model, (breaking, other), _ = cluster(2)
    breaking.truncate = True
    key = _key_for(breaking.url, model.base_urls)
    received: list[str] = []
    with (
        pytest.raises(ModelProtocolError) as exc,
        stream_chat(model, MESSAGES, timeouts=QUICK, routing_key=key) as stream,
    ):
        received.extend(stream)
    assert received == ["ok "]
    assert "closed the stream before the answer was complete" in str(exc.value)
    assert (breaking.requests, other.requests) == (1, 0)


def test_the_routing_header_keeps_a_key_on_one_replica_while_it_is_up(cluster: Cluster) -> None:
    model, servers, _ = cluster(3)
    key = routing_key("plan", "some digest")
    for _ in range(4):
        assert _collect(model, key) == ANSWER
    (first,) = [s for s in servers if s.requests]
    assert first.keys == [key] * 4  # the header arrives, the same every time
    assert first.url == by_key(key, model.base_urls)[0]
    first.kill()
    for _ in range(3):
        assert _collect(model, key) == ANSWER
    (second,) = [s for s in servers if s is not first and s.served]  # its next choice alone
    assert second.keys == [key] * 3
    assert second.url == by_key(key, model.base_urls)[1]
    # Without a key, no header.
    assert _collect(model) == ANSWER
    assert None in [k for s in servers for k in s.keys]


def test_routing_keys_are_opaque_and_stable() -> None:
    key = routing_key("user", 42)
    assert key == routing_key("user", 42)
    assert key != routing_key("user", 43)
    assert len(key) == 32
    assert "user" not in key
    assert key == routing_key("user", "42")  # what the caller passes is only formatted


def test_keys_spread_over_replicas_and_a_lost_one_moves_only_its_own() -> None:
    urls = [f"http://gpu{i}:8000/v1" for i in range(4)]
    keys = [routing_key("user", i) for i in range(400)]
    first = {k: by_key(k, urls)[0] for k in keys}
    shares = [list(first.values()).count(url) for url in urls]
    assert min(shares) > 60, shares  # about 100 each
    without = {k: by_key(k, urls[1:])[0] for k in keys}
    moved = [k for k in keys if first[k] != without[k]]
    assert {first[k] for k in moved} == {urls[0]}  # only the lost replica's keys move


def test_a_model_with_another_routing_header(cluster: Cluster) -> None:
    model, (server,), _ = cluster(1, routing_header="")
    assert _collect(model, "k") == ANSWER
    assert server.keys == [None]  # "" sends none


def test_retry_after_values() -> None:
    assert replicas.retry_after_s("3") == 3
    assert replicas.retry_after_s("86400") == replicas.RETRY_AFTER_CAP_S
    assert replicas.retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0  # in the past
    assert replicas.retry_after_s("soon") is None
    assert replicas.retry_after_s(None) is None


def test_llm_check_reports_each_replica(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    model, (up, down), _ = cluster(2)
    down.kill()
    entry = {"name": model.name, "base_urls": list(model.base_urls), "model": "fake"}
    monkeypatch.setenv("PLAYGROUND_MODELS", json.dumps([entry]))
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 2 replicas down"):
        call_command("llm", "check", "--timeout", "5", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"UP    {model.name}")
    assert up.url in lines[0]
    assert lines[1].startswith(f"DOWN  {model.name}")
    assert down.url in lines[1]
    assert "did not answer" in lines[1]
    assert _down(model)[down.url] > 0  # the check's finding is the site's


@pytest.mark.slow
def test_the_embedded_model_and_a_scripted_replica(
    embedded_llm: ModelSpec, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real llama.cpp server as one replica, a scripted one that answers 503 as the other: a
    key that prefers the scripted one is answered by the embedded one."""
    # The 503 steers streams away for DOWN_S (5 s): longer than the real model may take to
    # answer on a loaded machine, after which the mark would be gone before it is read.
    monkeypatch.setattr(replicas, "DOWN_S", 120.0)
    scripted_model, (scripted,), _ = cluster(1)
    scripted.status = 503
    model = dataclasses.replace(
        embedded_llm,
        name=scripted_model.name,  # the cluster fixture cleans its keys
        more_base_urls=(scripted.url,),
    )
    key = _key_for(scripted.url, model.base_urls)
    with stream_chat(
        model, [{"role": "user", "content": "Say OK."}], max_tokens=8, routing_key=key,
        timeouts=Timeouts(connect=2, first_token=30, total=60),
    ) as stream:  # fmt: skip
        text = "".join(stream)
    assert text.strip()
    assert stream.url == embedded_llm.base_url
    assert scripted.requests == 1
    assert _down(model)[scripted.url] > 0


def test_without_leases_a_process_keeps_its_own_marks_and_counts(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A script without Django (no Redis): the same balancing, with what this process saw."""
    model, (dead, alive), _ = cluster(2)
    dead.kill()
    key = _key_for(dead.url, model.base_urls)
    with monkeypatch.context() as patch:
        patch.setattr(leases, "_CONFIG", {})
        assert not leases.configured()
        assert _collect(model, key) == ANSWER
        assert _down(model)[dead.url] > 0
        assert _collect(model, key) == ANSWER
        assert [h.in_flight for h in Balancer(model).health()] == [0, 0]
    assert alive.served == 2
    assert _down(model)[dead.url] == 0  # the site's Redis never heard of it
