"""Benchmark: streaming overhead, from the model server sending a token to a websocket viewer
receiving it, against a client reading the model server's stream directly.

    python -m playground.launcher exec -- .venv/bin/python bench/streaming_latency.py
    (add --interval-ms 40 for a slower model: 25 tokens a second instead of 100)

Runs against a throw-away database (Django's test database) on the configured PostgreSQL server
and the configured Redis. Three processes besides the services, all on this machine (one clock):

- a scripted OpenAI-compatible model server (``tests/llm/fake_server.py``) that streams TOKENS
  deltas, INTERVAL_S apart, each carrying the ``time.time_ns()`` at which it was written;
- the web server as ``make run`` starts it (uvicorn serving ``playground.asgi:application``, one
  worker), on the test database;
- the viewers: K websocket clients (the ``websockets`` library) on ``/ws/runs/<id>/``, signed in
  with a session cookie, each noting when every token's fragment arrives.

The bench process itself runs what the Celery task runs (``pipeline.execute_emulation``: the model
stream read with ``stream_chat``, ``announce`` per delta, the database update every 0.5 s), with
``announce`` wrapped only to note when each delta reached the task and how long publishing took.
Baseline, in the same rounds: ``stream_chat`` in the bench process reading the model server
directly. Reported: p50 and p95 latency per token for the baseline, 1 viewer and 100 viewers
(every viewer's every token), the overhead added at the same percentile, where the time goes,
CPU use per process, and the memory per idle websocket (web-server RSS and Redis ``used_memory``
before and after IDLE idle connections).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playground.runs.events import EventKind

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

from tests.stack import web_process  # noqa: E402

TOKENS = 200
INTERVAL_S = 0.010
ROUNDS = 3
VIEWERS = (1, 100)
IDLE = 200
TARGET_MS = 15.0
STAMP = re.compile(r"t(\d{19})")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- small helpers -----------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def latencies_ms(text: str, received_ns: int) -> list[float]:
    return [(received_ns - int(sent)) / 1e6 for sent in STAMP.findall(text)]


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def ready_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"{proc.args!r} exited with {proc.wait()}")
    return line.strip()


# -- the model server (a child process) --------------------------------------------------------
def serve_model(tokens: int, interval: float) -> None:
    from tests.llm.fake_server import chunk, fake_server, sse_headers

    def script(handler: BaseHTTPRequestHandler) -> None:
        sse_headers(handler)
        for _ in range(tokens):
            handler.wfile.write(chunk(f"t{time.time_ns()} "))
            handler.wfile.flush()
            time.sleep(interval)
        handler.wfile.write(chunk("", finish="stop") + b"data: [DONE]\n\n")
        handler.wfile.flush()

    with fake_server(script) as (model, _):
        print(model.base_url, flush=True)
        sys.stdin.readline()  # until the parent closes our stdin


# -- the viewers (a child process) -------------------------------------------------------------
async def _open(url: str, headers: dict[str, str], count: int) -> list[Any]:
    from websockets.asyncio.client import connect

    async def one() -> Any:
        ws = await connect(url, additional_headers=headers, max_size=None)
        await ws.recv()  # the state message: joined the group
        return ws

    sockets: list[Any] = []
    for start in range(0, count, 25):
        sockets += await asyncio.gather(*(one() for _ in range(min(25, count - start))))
    return sockets


async def _collect(ws: Any, expect: int, deadline: float) -> list[float]:
    seen: list[float] = []
    while len(seen) < expect:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            message = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        now = time.time_ns()
        seen += latencies_ms(html.unescape(str(message)), now)
    return seen


async def watch(url: str, cookie: str, origin: str, count: int, expect: int, idle: bool) -> None:
    headers = {"Cookie": cookie, "Origin": origin}
    sockets = await _open(url, headers, count)
    print("ready", flush=True)
    if idle:
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        got: list[list[float]] = []
    else:
        deadline = time.monotonic() + 60
        got = list(await asyncio.gather(*(_collect(ws, expect, deadline) for ws in sockets)))
    await asyncio.gather(*(ws.close() for ws in sockets))
    print(json.dumps(got), flush=True)


# -- the bench process -------------------------------------------------------------------------
@dataclass
class Samples:
    label: str
    latency: list[float] = field(default_factory=list)  # sent -> received by the viewer
    in_task: list[float] = field(default_factory=list)  # sent -> delta reached announce()
    publish: list[float] = field(default_factory=list)  # announce() duration
    lost: int = 0
    wall_s: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)


def redis_info() -> dict[str, Any]:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        info: dict[str, Any] = client.info()
        return info
    finally:
        client.close()


def redis_cpu() -> float:
    info = redis_info()
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def baseline_round(model: Any, samples: Samples) -> None:
    from playground.llm.client import stream_chat

    t0 = time.monotonic()
    with stream_chat(model, [{"role": "user", "content": "go"}], max_tokens=512) as stream:
        for delta in stream:
            samples.latency += latencies_ms(delta, time.time_ns())
    samples.wall_s += time.monotonic() - t0


def viewer_round(
    make_run: Callable[[], int], port: int, pid: int, cookie: str, count: int, samples: Samples
) -> None:
    """One run of the real task with ``count`` viewers on it."""
    import playground.runs.pipeline as pipeline

    run_id = make_run()
    viewers = child(
        "--viewers",
        f"ws://127.0.0.1:{port}/ws/runs/{run_id}/",
        cookie,
        f"http://127.0.0.1:{port}",
        str(count),
    )
    ready_line(viewers)
    original = pipeline.announce

    def announce(key: str, kind: EventKind, **data: Any) -> None:
        t0 = time.time_ns()
        original(key, kind, **data)
        if kind == "token":
            samples.in_task += latencies_ms(str(data["text"]), t0)
            samples.publish.append((time.time_ns() - t0) / 1e6)

    pids = {"web": pid, "viewers": viewers.pid, "bench": os.getpid()}
    before = {name: cpu_s(p) for name, p in pids.items()} | {"redis": redis_cpu()}
    t0 = time.monotonic()
    pipeline.announce = announce
    try:
        assert pipeline.execute_emulation(run_id) == "ok"
    finally:
        pipeline.announce = original
    samples.wall_s += time.monotonic() - t0
    after = {name: cpu_s(p) for name, p in pids.items()} | {"redis": redis_cpu()}
    out, _ = viewers.communicate("", timeout=90)
    if viewers.returncode:
        raise RuntimeError(f"the viewers' process failed (exit {viewers.returncode}); see above")
    for name in after:
        samples.cpu[name] = samples.cpu.get(name, 0.0) + after[name] - before[name]
    for got in json.loads(out.strip().splitlines()[-1]):
        samples.latency += got
        samples.lost += TOKENS - len(got)


def idle_memory(port: int, pid: int, cookie: str, run_id: int) -> tuple[int, int]:
    """Bytes per idle websocket: web-server RSS, Redis used_memory."""
    url = f"ws://127.0.0.1:{port}/ws/runs/{run_id}/"
    origin = f"http://127.0.0.1:{port}"
    warm = child("--viewers", url, cookie, origin, "5", "--idle")  # warm the code paths
    ready_line(warm)
    warm.communicate("\n", timeout=30)
    time.sleep(1)
    rss0, redis0 = rss_bytes(pid), int(redis_info()["used_memory"])
    idle = child("--viewers", url, cookie, origin, str(IDLE), "--idle")
    ready_line(idle)
    time.sleep(1)
    rss1, redis1 = rss_bytes(pid), int(redis_info()["used_memory"])
    idle.communicate("\n", timeout=60)
    return (rss1 - rss0) // IDLE, (redis1 - redis0) // IDLE


def report(rounds: list[Samples], memory: tuple[int, int], interval_s: float) -> None:
    base = rounds[0]
    b50, b95 = pct(base.latency, 50), pct(base.latency, 95)
    print(f"{TOKENS} tokens {interval_s * 1000:g} ms apart, {ROUNDS} rounds; latency per token, ms")
    print(f"{'what':<34}{'n':>7}{'p50':>8}{'p95':>8}{'max':>8}{'+p50':>8}{'+p95':>8}{'lost':>6}")
    for s in rounds:
        p50, p95 = pct(s.latency, 50), pct(s.latency, 95)
        added = f"{p50 - b50:8.2f}{p95 - b95:8.2f}" if s is not base else f"{'':8}{'':8}"
        print(
            f"{s.label:<34}{len(s.latency):>7}{p50:8.2f}{p95:8.2f}{max(s.latency):8.2f}"
            f"{added}{s.lost:>6}"
        )
    print("\nwhere the time goes (ms, p50 / p95):")
    for s in rounds[1:]:
        print(
            f"  {s.label}: delta reaches the task {pct(s.in_task, 50):.2f} / "
            f"{pct(s.in_task, 95):.2f}; announce() {pct(s.publish, 50):.2f} / "
            f"{pct(s.publish, 95):.2f}"
        )
        share = ", ".join(f"{k} {v / s.wall_s:.0%}" for k, v in s.cpu.items())
        print(f"    CPU over the rounds' {s.wall_s:.1f} s (of one core): {share}")
    rss, redis_bytes = memory
    print(
        f"\nmemory per idle websocket ({IDLE} open): web server RSS {rss / 1024:.1f} KiB, "
        f"Redis used_memory {redis_bytes} B"
    )
    worst = rounds[-1]
    added95 = pct(worst.latency, 95) - b95
    verdict = "met" if added95 <= TARGET_MS else "MISSED"
    print(f"target: at most {TARGET_MS:g} ms added at p95 with {VIEWERS[-1]} viewers: {verdict}")


def main(interval_s: float) -> None:
    import django

    os.environ.setdefault("PLAYGROUND_EMBEDDED_LLM", "off")  # PLAYGROUND_MODELS names the model
    django.setup()

    from django.contrib.auth import get_user_model
    from django.db import connection, connections
    from django.test import Client

    from playground.llm.registry import ModelSpec
    from playground.programs.models import Program
    from playground.runs.models import Run

    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    model_server = child("--model-server", "--interval-ms", str(interval_s * 1000))
    try:
        base_url = ready_line(model_server)
        os.environ["PLAYGROUND_MODELS"] = json.dumps(
            [{"name": "fake", "base_url": base_url, "model": "fake", "label": "Fake model"}]
        )
        model = ModelSpec(name="fake", base_url=base_url, model="fake", label="Fake model")
        user = get_user_model().objects.create_user("bench-viewer")
        client = Client()
        client.force_login(user)
        cookie = f"sessionid={client.cookies['sessionid'].value}"
        program = Program.objects.create(
            title="bench", source="def f(x):\n    return x\n", call="f(1)", owner=user
        )

        def make_run() -> int:
            run = Run.objects.create(
                program=program,
                source=program.source,
                call=program.call,
                owner=user,
                method="direct",
                model="fake",
            )
            return run.pk

        with (
            tempfile.TemporaryDirectory() as tmp,
            web_process(
                {"PLAYGROUND_LIMITS_PROFILE": "load-test"},  # 100 sockets of one account
                log=Path(tmp) / "web.log",
            ) as web,
        ):
            port, pid = web
            memory = idle_memory(port, pid, cookie, make_run())
            rounds = [Samples("baseline: stream_chat, direct")]
            rounds += [Samples(f"websocket, {k} viewer{'s' * (k > 1)}") for k in VIEWERS]
            for _ in range(ROUNDS):
                baseline_round(model, rounds[0])
                for k, samples in zip(VIEWERS, rounds[1:], strict=True):
                    viewer_round(make_run, port, pid, cookie, k, samples)
        report(rounds, memory, interval_s)
    finally:
        if model_server.stdin is not None:
            model_server.stdin.close()
        model_server.wait(10)
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)


def entry() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--viewers", nargs=4, metavar="X", help=argparse.SUPPRESS)
    parser.add_argument("--idle", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--interval-ms",
        type=float,
        default=INTERVAL_S * 1000,
        help=f"time between two tokens of the model server (default {INTERVAL_S * 1000:g})",
    )
    args = parser.parse_args()
    if args.model_server:
        serve_model(TOKENS, args.interval_ms / 1000)
    elif args.viewers:
        url, cookie, origin, count = args.viewers
        asyncio.run(watch(url, cookie, origin, int(count), TOKENS, args.idle))
    else:
        main(args.interval_ms / 1000)


if __name__ == "__main__":
    entry()
