"""Benchmark: one run watched by a large audience, today's websocket design against coalesced
frames, side by side in one run, on a 2-core machine.

    python -m playground.launcher exec -- .venv/bin/python bench/streaming_audience.py
    (--sizes 100,300,1000 --rounds 2 --designs today,immediate,frames,frames:50)

Reuses ``bench/streaming_latency.py``'s pieces: the scripted model server (200 tokens 10 ms
apart, each stamped with the time it was written), the real task (``execute_emulation``) in this
process, a throw-away database. One web process per design, started as ``make run`` starts it
(uvicorn, one worker) but serving ``bench/streaming_servers.py`` (``today``: the consumer before
frames, copied; ``frames``: the code as it is; ``frames:MS``: with frames of MS ms whatever the
audience; ``immediate``: with frames off), all pinned to core 0 (``taskset -c 0``); the viewers
(one asyncio process of websocket clients, uvloop) pinned to core 1. For each audience size and
round, each design in turn gets a fresh run and its viewers; the baseline (``stream_chat``
reading the model server directly) is measured in the same rounds.

Reported per design and size: web-process CPU per delivered event (its CPU seconds from the
first event until every viewer had the last, over events x viewers), CPU per connect, added p50
and p95 latency per token against the baseline, tokens lost, and ratios against ``today``
measured in the same run. Viewers per core at <= 25 ms added p95: the largest measured size
meeting it, and what CPU per delivered event alone would allow (1 / (CPU per event x events/s)).
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import streaming_latency as sl

from tests.stack import web_process

REPO = sl.REPO
WEB_CORE, VIEWER_CORE = 0, 1
TARGET_MS = 25.0
DONE = "bench: the end"  # a status event this bench publishes after the task


# -- the viewers (a child process) -------------------------------------------------------------
async def _watch(url: str, cookie: str, origin: str, count: int) -> None:
    sockets = await sl._open(url, {"Cookie": cookie, "Origin": origin}, count)
    print("ready", flush=True)
    deadline = time.monotonic() + 120

    async def collect(ws: Any) -> list[tuple[int, str]]:
        got: list[tuple[int, str]] = []  # parsed afterwards: receiving stays cheap
        while time.monotonic() < deadline:
            try:
                message = str(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
            except (TimeoutError, Exception):
                break
            got.append((time.time_ns(), message))
            if DONE in message:
                break
        return got

    received = await asyncio.gather(*(collect(ws) for ws in sockets))
    print("done", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    out = []
    for got in received:
        latencies: list[float] = []
        for at, message in got:
            latencies += sl.latencies_ms(html.unescape(message), at)
        out.append({"latencies": latencies, "messages": len(got)})
    print(json.dumps(out), flush=True)


def viewers_main(url: str, cookie: str, origin: str, count: int) -> None:
    import resource

    import uvloop

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.run(_watch(url, cookie, origin, count))


# -- the bench process -------------------------------------------------------------------------
@dataclass
class Design:
    name: str
    env: dict[str, str]
    port: int = 0
    pid: int = 0


@dataclass
class Result:
    latency: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # web process, from the first event to the last delivery
    deliveries: int = 0  # events x viewers
    connect_cpu_s: float = 0.0
    connects: int = 0
    messages: int = 0
    lost: int = 0
    wall_s: float = 0.0
    viewers_cpu_s: float = 0.0  # the viewers' process, same window


def cores_busy() -> list[tuple[int, int]]:
    """(busy, total) jiffies of each core, from /proc/stat."""
    out = []
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu") and line[3].isdigit():
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + values[4]
            out.append((sum(values) - idle, sum(values)))
    return out


@contextmanager
def web_server(design: Design, log: Path) -> Iterator[Design]:
    """uvicorn as the launcher starts it, serving the design's consumer, pinned to WEB_CORE."""
    env = {**design.env, "PLAYGROUND_LIMITS_PROFILE": "load-test"}  # 1,000 sockets, one account
    app = (REPO / "bench", "streaming_servers:application")
    with web_process(env, app=app, cpus=str(WEB_CORE), log=log) as (design.port, design.pid):
        yield design


def one_round(
    design: Design, make_run: Callable[[], int], cookie: str, count: int, result: Result
) -> None:
    import playground.runs.pipeline as pipeline
    from playground.runs.events import publish, published
    from playground.runs.models import Run

    run_id = make_run()
    cpu0 = sl.cpu_s(design.pid)
    viewers = subprocess.Popen(
        [
            "taskset", "-c", str(VIEWER_CORE), sys.executable, __file__, "--viewers",
            f"ws://127.0.0.1:{design.port}/ws/runs/{run_id}/", cookie,
            f"http://127.0.0.1:{design.port}", str(count),
        ],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert sl.ready_line(viewers) == "ready"
    cpu1, viewers_cpu1 = sl.cpu_s(design.pid), sl.cpu_s(viewers.pid)
    t0 = time.monotonic()
    assert pipeline.execute_emulation(run_id) == "ok"
    key = Run.objects.get(pk=run_id).events_key
    publish(key, "status", text=DONE)
    assert sl.ready_line(viewers) == "done"
    cpu2, viewers_cpu2 = sl.cpu_s(design.pid), sl.cpu_s(viewers.pid)
    result.wall_s += time.monotonic() - t0
    result.viewers_cpu_s += viewers_cpu2 - viewers_cpu1
    out, _ = viewers.communicate("\n", timeout=120)
    events = len(published(key))
    result.connect_cpu_s += cpu1 - cpu0
    result.connects += count
    result.cpu_s += cpu2 - cpu1
    result.deliveries += events * count
    for viewer in json.loads(out.strip().splitlines()[-1]):
        result.latency += viewer["latencies"]
        result.messages += viewer["messages"]
        result.lost += sl.TOKENS - len(viewer["latencies"])


def report(
    designs: list[Design],
    sizes: list[int],
    results: dict[tuple[str, int], Result],
    base: list[float],
    busy: list[float],
    rounds: int,
) -> None:
    b50, b95 = sl.pct(base, 50), sl.pct(base, 95)
    rate = sl.TOKENS / (sl.TOKENS * sl.INTERVAL_S)
    print(
        f"{sl.TOKENS} tokens {sl.INTERVAL_S * 1000:g} ms apart, {rounds} round(s) per size and "
        f"design; baseline stream_chat direct p50 {b50:.2f} ms, p95 {b95:.2f} ms"
    )
    print(
        "machine load during the rounds (share of each core busy, every process): "
        + ", ".join(f"core {i} {b:.0%}" for i, b in enumerate(busy))
    )
    head = (
        f"{'design':<12}{'viewers':>8}{'CPU/event':>11}{'vs today':>10}{'CPU/connect':>13}"
        f"{'msgs/viewer':>13}{'+p50 ms':>9}{'+p95 ms':>9}{'lost':>6}{'web CPU':>9}"
    )
    print(head)
    for size in sizes:
        today = results.get(("today", size))
        for design in designs:
            r = results[(design.name, size)]
            per_event = r.cpu_s / r.deliveries * 1e6
            ratio = ""
            if today is not None and design.name != "today":
                ratio = f"{today.cpu_s / today.deliveries / (r.cpu_s / r.deliveries):.1f}x"
            print(
                f"{design.name:<12}{size:>8}{per_event:>9.2f}us{ratio:>10}"
                f"{r.connect_cpu_s / r.connects * 1000:>11.2f}ms"
                f"{r.messages / r.connects:>13.1f}"
                f"{sl.pct(r.latency, 50) - b50:>9.1f}{sl.pct(r.latency, 95) - b95:>9.1f}"
                f"{r.lost:>6}{r.cpu_s / r.wall_s:>9.0%}{r.viewers_cpu_s / r.wall_s:>13.0%}"
            )
    print(f"\nviewers per core at <= {TARGET_MS:g} ms added p95 ({rate:g} events/s):")
    for design in designs:
        meeting = [
            s for s in sizes if sl.pct(results[(design.name, s)].latency, 95) - b95 <= TARGET_MS
        ]
        largest = results[(design.name, sizes[-1])]
        by_cpu = 1 / (largest.cpu_s / largest.deliveries * rate)
        print(
            f"  {design.name}: largest measured size meeting it: "
            f"{max(meeting) if meeting else 'none'}; CPU alone (at {sizes[-1]} viewers): "
            f"{by_cpu:,.0f} viewers per core"
        )


def main(sizes: list[int], rounds: int, names: list[str]) -> None:
    import django

    os.environ.setdefault("PLAYGROUND_EMBEDDED_LLM", "off")
    django.setup()

    from django.contrib.auth import get_user_model
    from django.db import connection, connections
    from django.test import Client

    from playground.llm.registry import ModelSpec
    from playground.programs.models import Program
    from playground.runs.models import Run

    catalogue = {
        "today": Design("today", {"BENCH_STREAMING_DESIGN": "today"}),
        "immediate": Design("immediate", {"BENCH_FRAMES_ABOVE": "never"}),
        "frames": Design("frames", {}),
    }
    for name in names:  # frames:MS, another frame
        if name.startswith("frames:"):
            catalogue[name] = Design(name, {"BENCH_FRAME_MS": name.split(":")[1]})
    designs = [catalogue[n] for n in names]
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    model_server = sl.child("--model-server", "--interval-ms", str(sl.INTERVAL_S * 1000))
    try:
        base_url = sl.ready_line(model_server)
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
                program=program, source=program.source, call=program.call, owner=user,
                method="direct", model="fake",
            )  # fmt: skip
            return run.pk

        results = {(d.name, s): Result() for d in designs for s in sizes}
        base = sl.Samples("baseline")
        with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
            for design in designs:
                stack.enter_context(web_server(design, Path(tmp) / f"{design.name}.log"))
            for design in designs:  # warm each web process up (imports, first connects)
                one_round(design, make_run, cookie, 5, Result())
            before = cores_busy()
            for size in sizes:
                for _ in range(rounds):
                    sl.baseline_round(model, base)
                    for design in designs:
                        one_round(design, make_run, cookie, size, results[(design.name, size)])
            after = cores_busy()
        busy = [(a - b) / max(1, t1 - t0) for (b, t0), (a, t1) in zip(before, after, strict=True)]
        report(designs, sizes, results, base.latency, busy, rounds)
    finally:
        if model_server.stdin is not None:
            model_server.stdin.close()
        model_server.wait(10)
        connections.close_all()
        connection.creation.destroy_test_db(old_name, verbosity=0)


def entry() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", nargs=4, metavar="X", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="100,300,1000", help="audiences (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per size (default 2)")
    parser.add_argument(
        "--designs",
        default="today,frames",
        help="of today, immediate, frames, frames:MS (today is the baseline of the ratios)",
    )
    args = parser.parse_args()
    if args.viewers:
        url, cookie, origin, count = args.viewers
        viewers_main(url, cookie, origin, int(count))
    else:
        sizes = [int(s) for s in args.sizes.split(",")]
        main(sizes, args.rounds, args.designs.split(","))


if __name__ == "__main__":
    entry()
