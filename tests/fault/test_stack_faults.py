"""The fault suite on the whole product (`make run`'s launcher: web, the workers, the scheduler),
with a model served from this test through a TCP proxy that can stall or cut its connections.
Each fault is applied in the middle of real work; afterwards every run reaches a final state
within a stated time, a viewer that stays connected sees every event once, and the run says
what happened. Recovery timings are short here (a 4 s lease, a sweep every 2 s); the figures
with the defaults are in docs/RELIABILITY.md.

`make test` runs the scheduler, llm worker, web, stall and pool-child cases; `make test-full`
adds the model server's deaths and the Redis and PostgreSQL restarts. Faults, in order on one
stack: the scheduler killed (started again; the reaper goes on), the
llm worker killed mid-emulation (the run is sent again and finishes), and killed mid-answer
(the model starts again, and so do its viewers' texts), the web process killed
under a live event stream (the viewer reconnects and misses nothing), the model server
stalling (the run fails with a timeout that says so) and cutting its streams (the run fails
with a message, never a half answer taken as whole), Redis and PostgreSQL restarted while a
run waits for its model (the run finishes).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from playground.local_services import EmbeddedPostgres, EmbeddedRedis
from tests.oracle import Oracle, oracle_server
from tests.stack import (
    Stack,
    children_of,
    free_port,
    model_text,
    processes_mentioning,
    running_stack,
)

pytestmark = [pytest.mark.slow, pytest.mark.fault]

MAKE_TOKEN = """
from django.contrib.auth import get_user_model
from playground.accounts.tokens import create_token
user = get_user_model().objects.create_user("faults", password="not used here")
print(create_token(user=user, name="faults", scope="run")[1])
"""
SLOW_PORT = free_port()
# A cut answer stops after this many bytes: the response's headers and part of its first event.
CUT_AT = 200
PROGRAM = "def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n"


class Proxy:
    """A TCP proxy to the model server that forwards, holds every byte (``stall``), or cuts
    each connection after the first bytes of an answer (``cut``)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = free_port()
        self.stall = threading.Event()
        self.cut = threading.Event()
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
        self._pipe(upstream, client, True)

    def _pipe(self, source: socket.socket, sink: socket.socket, answer: bool) -> None:
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while self.stall.is_set():  # holds the bytes: the server seems to hang
                    time.sleep(0.05)
                if answer and self.cut.is_set() and sent + len(data) > CUT_AT:
                    sink.sendall(data[: max(0, CUT_AT - sent)])
                    sink.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    break  # the server dies mid-answer: the connection is reset
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.close()


# A model server of its own process, that the test can SIGKILL: it answers slowly, a few
# characters every 0.3 s, and never stops on its own.
SLOW_SERVER = """
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        while True:
            chunk = {"choices": [{"index": 0, "delta": {"content": "The value "}}]}
            self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\\n\\n")
            self.wfile.flush()
            time.sleep(0.3)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[Stack, Oracle, Proxy, str]]:
    oracle = Oracle(latency=3.0, filler=0)
    with oracle_server(oracle) as model, running_stack() as stack:
        proxy = Proxy(int(model.base_url.split(":")[-1].split("/")[0]))
        spec = {
            "name": "oracle", "base_url": f"http://127.0.0.1:{proxy.port}/v1",
            "model": "oracle", "first_token_s": 6, "total_s": 30, "max_concurrency": 8,
        }  # fmt: skip
        slow = {"name": "slow", "base_url": f"http://127.0.0.1:{SLOW_PORT}/v1", "model": "slow",
                "first_token_s": 6, "total_s": 60}  # fmt: skip
        stack.env = {
            "PLAYGROUND_LEASE_S": "4",
            "PLAYGROUND_REAP_EVERY_S": "2",
            "PLAYGROUND_EMBEDDED_LLM": "off",
            "PLAYGROUND_MODELS": json.dumps([spec, slow]),
        }
        stack.start()
        for worker in ("sandbox", "llm", "batch"):
            stack.wait_for(rf"{worker}@\S+ ready\.")
        token = stack.manage(MAKE_TOKEN).strip().splitlines()[-1]
        yield stack, oracle, proxy, token
        # Killed, not stopped: a graceful stop is the launcher test's; here it would wait on
        # workers whose Redis or database was swapped under them.
        stack.kill()


def _start_run(
    stack: Stack, token: str, program: str = PROGRAM, model: str = "oracle",
    call: str = "f([1, 2, 3])", method: str = "direct",
) -> dict[str, Any]:  # fmt: skip
    with httpx.Client(base_url=f"http://127.0.0.1:{stack.port}", timeout=30) as api:
        response = api.post(
            "/api/runs", headers={"Authorization": f"Bearer {token}"},
            json={"source": program, "call": call, "method": method, "model": model},
        )  # fmt: skip
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


def _status(stack: Stack, run_id: int) -> dict[str, Any]:
    rows = stack.sql("SELECT status, error, resends, verdict FROM runs_run WHERE id = %s", run_id)
    status, error, resends, verdict = rows[0]
    return {"status": status, "error": error, "resends": resends, "verdict": verdict}


def _wait(stack: Stack, run_id: int, seconds: float) -> tuple[dict[str, Any], float]:
    t0 = time.monotonic()
    while True:
        state = _status(stack, run_id)
        if state["status"] in ("done", "failed", "cancelled"):
            return state, time.monotonic() - t0
        assert time.monotonic() - t0 < seconds, (state, stack.output[-30:])
        time.sleep(0.2)


def _until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_killed_scheduler_and_llm_worker_cost_one_resend(
    site: tuple[Stack, Oracle, Proxy, str],
) -> None:
    stack, _, _, token = site
    # The scheduler first: started again, and its reaper is what brings the run back below.
    mark = len(stack.output)
    os.kill(stack.pid_of("beat"), signal.SIGKILL)
    stack.wait_for(r"beat died \(killed by SIGKILL\)", 30, after=mark)
    stack.wait_for(r"beat: Starting", 60, after=mark)

    run = _start_run(stack, token)
    claimed = "SELECT 1 FROM runs_run WHERE id = %s AND emulation_claimed_at IS NOT NULL"
    _until(lambda: stack.sql(claimed, run["id"]), 30, "the llm worker never took the run")
    time.sleep(0.5)  # it is waiting for the model's answer (3 s)
    mark = len(stack.output)
    os.kill(stack.pid_of("worker-llm"), signal.SIGKILL)
    stack.wait_for(r"worker-llm died \(killed by SIGKILL\)", 30, after=mark)
    state, seconds = _wait(stack, run["id"], 60)
    print(f"the run of the killed llm worker finished {seconds:.1f} s after the kill")
    assert state["status"] == "done", state
    assert state["verdict"]["status"] == "correct"
    assert state["resends"] == 1
    assert seconds < 40


# A loop: its trace is long, so the model's answer streams for several seconds.
LOOP = (
    "def f(n):\n    total = 0\n    for i in range(n):\n        total += i * i\n    return total\n"
)


def test_an_llm_worker_killed_mid_answer_starts_the_model_again_and_its_viewers_with_it(
    site: tuple[Stack, Oracle, Proxy, str],
) -> None:
    """Its worker dies while the model's answer streams: the run is sent again and the model
    answers again from the start. Viewers are told (a ``restarted`` event) and drop the half
    answer, so the text an API client and the page show is the stored one, not half an answer
    followed by a whole one."""
    stack, oracle, _, token = site
    oracle.chunk_delay = 0.08
    try:
        run = _start_run(stack, token, program=LOOP, call="f(10)", method="trace")["id"]
        share = stack.manage(
            "from playground.sharing.models import ShareLink\n"
            f"print(ShareLink.objects.create(run_id={run}).token)"
        ).split()[-1]
        seen: list[tuple[int, str, dict[str, Any]]] = []
        streaming = threading.Event()

        def follow() -> None:
            for event in stack.events(run, token, seconds=120):
                seen.append(event)
                if sum(kind == "token" for _, kind, _ in seen) >= 8:
                    streaming.set()

        shown: list[str] = []
        viewers = [
            threading.Thread(target=follow),
            threading.Thread(target=stack.watch_page, args=(run, share, shown)),
        ]
        for viewer in viewers:
            viewer.start()
        assert streaming.wait(60), ("the model never streamed", seen, stack.output[-30:])
        mark = len(stack.output)
        os.kill(stack.pid_of("worker-llm"), signal.SIGKILL)
        stack.wait_for(r"worker-llm died \(killed by SIGKILL\)", 30, after=mark)
        state, seconds = _wait(stack, run, 90)
        for viewer in viewers:
            viewer.join(60)
    finally:
        oracle.chunk_delay = 0.0
    print(f"the run whose llm worker died mid-answer finished {seconds:.1f} s after the kill")
    assert state["status"] == "done", state
    assert state["verdict"]["status"] == "correct"
    assert state["resends"] == 1
    numbers = [seq for seq, _, _ in seen]
    assert numbers == list(range(1, len(numbers) + 1)), numbers  # every event, once, in order
    stored = stack.sql("SELECT emulated_text FROM runs_run WHERE id = %s", run)[0][0]
    assert shown == [stored]  # the page: not half an answer followed by a whole one
    assert model_text(seen) == stored  # an API client
    kinds = [kind for _, kind, _ in seen]
    assert kinds.count("restarted") == 1, kinds
    assert kinds.index("restarted") > kinds.index("token")  # after the half answer


def test_a_viewer_misses_no_event_when_the_web_process_is_killed(
    site: tuple[Stack, Oracle, Proxy, str],
) -> None:
    stack, _, _, token = site
    run = _start_run(stack, token)
    seen: list[int] = []
    kinds: list[str] = []
    killed = False
    for event_id, kind, _ in stack.events(run["id"], token, seconds=90):
        seen.append(event_id)
        kinds.append(kind)
        if not killed and kind == "trace":
            # The run is half done (its real run arrived, the model is still thinking): the
            # web process dies under this stream.
            killed = True
            os.kill(stack.pid_of("web"), signal.SIGKILL)
    assert kinds[-1:] == ["done"], (seen, kinds)  # within 90 s
    assert killed
    assert seen == list(range(seen[0], seen[0] + len(seen))), seen  # every event, once, in order
    stack.wait_for(r"web died \(killed by SIGKILL\)", 10)  # and started again: it served


def test_a_stalled_model_server_ends_the_run_with_a_timeout_that_says_so(
    site: tuple[Stack, Oracle, Proxy, str],
) -> None:
    stack, _, proxy, token = site
    proxy.stall.set()
    try:
        run = _start_run(stack, token)
        state, seconds = _wait(stack, run["id"], 60)
    finally:
        proxy.stall.clear()
    assert state["status"] == "failed", state
    assert state["error"] == (
        "The model could not answer: The model server for oracle sent no answer within 6 s."
    )
    assert seconds < 30


@pytest.mark.full_only  # `make test-full`: the fast cases stay in `make test`
def test_a_model_server_that_dies_mid_answer_fails_the_run_with_a_message(
    site: tuple[Stack, Oracle, Proxy, str],
) -> None:
    stack, _, proxy, token = site
    proxy.cut.set()
    try:
        run = _start_run(stack, token)
        state, seconds = _wait(stack, run["id"], 60)
    finally:
        proxy.cut.clear()
    assert state["status"] == "failed", state
    assert state["error"].startswith("The model could not answer: "), state
    assert seconds < 30


def _pid_of_service(stack: Stack, name: str) -> int:
    if name == "postgres":
        pidfile = stack.var_dir / "pg" / "data" / "postmaster.pid"
        return int(pidfile.read_text().split()[0])
    found = [line for line in processes_mentioning(str(stack.var_dir)) if "redis-server" in line]
    assert len(found) == 1, found
    return int(found[0].split(":")[0])


def _restart(stack: Stack, name: str, signum: int) -> None:
    """Stop the stack's embedded server as an operator would (it saves its data), start it
    again; the new one is this test's child (the stack's teardown kills it)."""
    pid = _pid_of_service(stack, name)
    os.kill(pid, signum)
    _until(lambda: not _alive(pid), 30, f"{name} did not stop")
    service = EmbeddedRedis(stack.var_dir) if name == "redis" else EmbeddedPostgres(stack.var_dir)
    service.start()


def _alive(pid: int) -> bool:
    """Running (the launcher that started it does not reap it at once: a zombie is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.full_only  # `make test-full`: the fast cases stay in `make test`
@pytest.mark.parametrize(("service", "signum"), [("redis", signal.SIGTERM),
                                                 ("postgres", signal.SIGINT)])  # fmt: skip
def test_a_restarted_redis_or_postgresql_costs_no_run(
    site: tuple[Stack, Oracle, Proxy, str], service: str, signum: int
) -> None:
    stack, _, _, token = site
    run = _start_run(stack, token)
    claimed = "SELECT 1 FROM runs_run WHERE id = %s AND emulation_claimed_at IS NOT NULL"
    _until(lambda: stack.sql(claimed, run["id"]), 30, "the llm worker never took the run")
    t0 = time.monotonic()
    _restart(stack, service, signum)  # while the model is thinking (3 s)
    down = time.monotonic() - t0

    def status() -> dict[str, Any] | None:
        try:
            return _status(stack, run["id"])
        except psycopg.OperationalError:
            return None

    while (state := status()) is None or state["status"] not in ("done", "failed"):
        assert time.monotonic() - t0 < 90, (state, stack.output[-30:])
        time.sleep(0.3)
    took = time.monotonic() - t0
    print(f"{service} restarted in {down:.1f} s; the run finished {took:.1f} s after the stop, "
          f"sent again {state['resends']} time(s)")  # fmt: skip
    assert state["status"] == "done", state
    assert state["verdict"]["status"] == "correct"
    # The site serves again.
    assert httpx.get(f"http://127.0.0.1:{stack.port}/healthz", timeout=10).status_code == 200


def test_a_killed_pool_child_costs_its_run_a_lease(site: tuple[Stack, Oracle, Proxy, str]) -> None:
    """The sandbox worker's pool child (not its main process) killed while it runs a program:
    Celery hands the task out again at once; that copy finds the dead child's lease, looks again
    once it has lapsed, and runs the program."""
    stack, _, _, token = site
    slow = "import time\n\ndef f(xs):\n    time.sleep(1.5)\n    return sum(xs)\n"
    run = _start_run(stack, token, program=slow)
    claimed = "SELECT 1 FROM runs_run WHERE id = %s AND real_claimed_at IS NOT NULL"
    _until(lambda: stack.sql(claimed, run["id"]), 30, "the sandbox worker never took the run")
    children = children_of(stack.pid_of("worker-sandbox"))
    assert len(children) == 1, children  # one pool process (PLAYGROUND_SANDBOX_WORKERS=1)
    t0 = time.monotonic()
    os.kill(children[0], signal.SIGKILL)
    state, seconds = _wait(stack, run["id"], 60)
    print(f"the run of the killed pool child finished {time.monotonic() - t0:.1f} s after")
    assert state["status"] == "done", state
    assert state["verdict"]["status"] == "correct"
    traces = "SELECT count(*) FROM runs_trace WHERE run_id = %s AND kind = 'real'"
    assert stack.sql(traces, run["id"]) == [(1,)]
    assert seconds < 30


@pytest.mark.full_only  # `make test-full`: the fast cases stay in `make test`
def test_a_model_server_killed_mid_answer_fails_the_run_and_the_next_one_works(
    site: tuple[Stack, Oracle, Proxy, str],
) -> None:
    """The model server's own process SIGKILLed while it streams an answer: the run fails with
    a message (no half answer taken as whole); started again, the next run gets its answer."""
    stack, _, _, token = site
    server = subprocess.Popen([sys.executable, "-c", SLOW_SERVER, str(SLOW_PORT)])
    try:
        _until(lambda: _listening(SLOW_PORT), 10, "the model server did not start")
        run = _start_run(stack, token, model="slow")
        streaming = "SELECT 1 FROM runs_run WHERE id = %s AND emulated_text <> ''"
        _until(lambda: stack.sql(streaming, run["id"]), 30, "the model never started answering")
        server.send_signal(signal.SIGKILL)
        server.wait()
        state, seconds = _wait(stack, run["id"], 30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert state["status"] == "failed", state
    assert state["error"].startswith("The model could not answer: "), state
    print(f"the run of the killed model server failed {seconds:.1f} s after the kill: "
          f"{state['error']}")  # fmt: skip
    assert seconds < 15
    # The oracle (another server) still answers: one dead model server costs only its runs.
    state, _ = _wait(stack, _start_run(stack, token)["id"], 30)
    assert state["status"] == "done", state


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False
