"""Benchmark: one evaluation fanned out over 1 and 2 batch workers, and a second worker added
midway: items per second; and the capacity model's prediction of each (bench/capacity.py,
``evaluation_seconds``), calibrated on the baseline.

    .venv/bin/python -m playground.launcher exec -- .venv/bin/python bench/evaluation_fanout.py [N]

Needs the database and Redis (the launcher's exec starts them). Starts, on queues of its own: a
sandbox worker (prefork, 2 processes) that runs every item's code, and batch workers (threads, 2
each) that run the items; and a model server in this process that answers every prompt after
LATENCY_S (a model's time to answer, the part of an item that more workers overlap). Each
evaluation is N CRUXEval items, method direct, concurrency 8 (more than one worker's threads,
so that a second worker has items to take). Baseline, measured in the same run: the same
evaluation on one batch worker. Workers are started and ready before each evaluation is sent;
the evaluations are deleted at the end.

The prediction takes from the baseline only: the model's answer as the items measured it
(``model_seconds``), a sandbox job's time in its worker (Celery's "succeeded in" lines), and the
rest of a place's time per item (sending to the sandbox and waiting, the database, the gap until
the window's next item is sent); then the two-worker evaluations are predicted with twice the
places, and compared with what they measured. The cores are shared here: the model also takes
the machine's CPU per item in the baseline (every process, from /proc/stat) and caps the rate at
what the cores allow; the share of the cores busy (and stolen by the host) is printed beside each
evaluation.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
TAG = uuid.uuid4().hex[:6]
BATCH, SANDBOX = f"bench-batch-{TAG}", f"bench-sandbox-{TAG}"
os.environ.update(PLAYGROUND_BATCH_QUEUE=BATCH, PLAYGROUND_SANDBOX_QUEUE=SANDBOX)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import django  # noqa: E402

django.setup()

import capacity  # noqa: E402
from django.core.management import call_command  # noqa: E402

from playground.benchmarks import services  # noqa: E402
from playground.benchmarks.models import Evaluation, Result  # noqa: E402
from playground.lib import paths  # noqa: E402
from playground.programs.library import import_library  # noqa: E402

LATENCY_S = 0.25
THREADS = 2
CONCURRENCY = 8


@contextmanager
def model_server() -> Iterator[str]:
    """An OpenAI-compatible server that answers every prompt after LATENCY_S."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(LATENCY_S)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for text in ["[ANSWER]\n", "0\n", "[/ANSWER]"]:
                chunk = {"choices": [{"index": 0, "delta": {"content": text}}]}
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.wfile.write(b"data: [DONE]\n\n")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()


def start_worker(queue: str, pool: str, log: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "playground", "worker", "-Q", queue,
         "--pool", pool, "--concurrency", str(THREADS), "--without-mingle",
         "--without-gossip", "-n", f"{queue}-{uuid.uuid4().hex[:4]}@%h", "--loglevel", "INFO"],
        cwd=ROOT, env=os.environ.copy(), stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while b" ready." not in log.read_bytes():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"the worker did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.wait(30)


SUCCEEDED = re.compile(r"succeeded in ([\d.]+)s")


def job_seconds(log: Path, since: int) -> list[float]:
    """How long each sandbox job written to the worker's log after byte ``since`` took in it."""
    return [float(x) for x in SUCCEEDED.findall(log.read_bytes()[since:].decode(errors="replace"))]


def item_times(pk: int) -> tuple[float, float]:
    """The mean wall time of an evaluation's items and of their model answers."""
    rows = Result.objects.filter(evaluation_id=pk).values_list("wall_seconds", "model_seconds")
    walls, models = zip(*rows, strict=True)
    return statistics.mean(walls), statistics.mean(models)


def busy() -> tuple[int, int, int]:
    """Jiffies of the machine's cores: busy here, taken by the host (steal: a virtual machine's
    cores running someone else), and all, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    steal = values[7]
    return sum(values) - values[3] - values[4] - steal, steal, sum(values)


def evaluate(
    n: int, on_half: object = None
) -> tuple[int, float, float, float, tuple[float, float]]:
    """The evaluation's id, seconds for all of it, items per second before and after half of
    it, and the share of the machine's cores busy meanwhile (every process) and stolen."""
    busy0, steal0, all0 = busy()
    evaluation = services.create_evaluation(
        dataset="cruxeval", method="direct", model="fake", limit=n, concurrency=CONCURRENCY,
        start=False,
    )  # fmt: skip
    t0 = time.monotonic()
    services.send(evaluation.pk, "run")
    half_at = None
    while Evaluation.objects.get(pk=evaluation.pk).status != "done":
        if (
            half_at is None
            and Result.objects.filter(evaluation=evaluation, status="done").count() >= n // 2
        ):
            half_at = time.monotonic() - t0
            if callable(on_half):
                on_half()
        time.sleep(0.05)
    total = time.monotonic() - t0
    errors = Result.objects.filter(evaluation=evaluation, score_status="error").count()
    if errors:
        raise RuntimeError(f"{errors} items could not be run")
    assert half_at is not None
    busy1, steal1, all1 = busy()
    spent = max(1, all1 - all0)
    share = ((busy1 - busy0) / spent, (steal1 - steal0) / spent)
    return evaluation.pk, total, (n // 2) / half_at, (n - n // 2) / (total - half_at), share


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    call_command("migrate", verbosity=0)
    import_library()
    logs = Path(tempfile.gettempdir()) / f"fanout-{TAG}"
    logs.mkdir()
    with model_server() as base_url:
        models = [{"name": "fake", "base_url": base_url, "model": "fake", "max_concurrency": 64}]
        os.environ["PLAYGROUND_MODELS"] = json.dumps(models)
        before = set(Evaluation.objects.values_list("pk", flat=True))
        sandbox = start_worker(SANDBOX, "prefork", logs / "sandbox.log")
        try:
            one = start_worker(BATCH, "threads", logs / "batch1.log")
            since = (logs / "sandbox.log").stat().st_size
            pk_one, t_one, _, _, busy_one = evaluate(n)
            jobs = job_seconds(logs / "sandbox.log", since)
            wall, model = item_times(pk_one)
            two = start_worker(BATCH, "threads", logs / "batch2.log")
            _, t_two, _, _, busy_two = evaluate(n)
            stop(two)
            added: list[subprocess.Popen[bytes]] = []

            def add() -> None:
                added.append(start_worker(BATCH, "threads", logs / "batch3.log"))

            _, t_added, first_half, second_half, busy_added = evaluate(n, on_half=add)
            stop(one, *added)
        finally:
            stop(sandbox)
            Evaluation.objects.exclude(pk__in=before).delete()
    print(f"{n} CRUXEval items, method direct, a model that answers in {LATENCY_S:g} s,")
    print(f"concurrency {CONCURRENCY}, batch workers of {THREADS} threads, one sandbox worker")
    print(f"{'batch workers':<40} {'seconds':>8} {'items/s':>8} {'vs one':>7}")
    print(f"{'one (baseline)':<40} {t_one:8.1f} {n / t_one:8.2f} {1.0:7.2f}")
    print(f"{'two':<40} {t_two:8.1f} {n / t_two:8.2f} {t_one / t_two:7.2f}")
    print(f"{'one, a second added at half':<40} {t_added:8.1f} {n / t_added:8.2f} "
          f"{t_one / t_added:7.2f}")  # fmt: skip
    print(f"  items/s before the second worker: {first_half:.2f}, after: {second_half:.2f} "
          f"({second_half / first_half:.2f}x)")  # fmt: skip
    sandbox_s = statistics.mean(jobs)
    cores = os.cpu_count() or 1
    # The machine's CPU per item in the baseline, every process counted (steal excluded).
    cpu_s = busy_one[0] * cores * t_one / n
    # A place's time per item in the baseline, less the parts named: the item's own overhead
    # and the gap before the place's next item (the window is topped up by another task).
    other_s = max(0.0, t_one * min(CONCURRENCY, THREADS) / n - model - 2 * sandbox_s)

    def predicted(items: int, workers: int) -> float:
        return capacity.evaluation_seconds(
            items, in_flight=min(CONCURRENCY, workers * THREADS), model_slots=64,
            model_s=model, sandbox_slots=2, sandbox_s=sandbox_s, other_s=other_s,
            cores=cores, cpu_s=cpu_s,
        )  # fmt: skip

    print(
        f"\ncapacity model, calibrated on the baseline: {len(jobs)} sandbox jobs of "
        f"{sandbox_s * 1000:.0f} ms, the model's answer {model * 1000:.0f} ms, "
        f"{other_s * 1000:.0f} ms more per item and place (an item's own wall time "
        f"{wall * 1000:.0f} ms); {cpu_s * 1000:.0f} ms of CPU per item on {cores} cores"
    )
    print(
        f"{'batch workers':<40} {'measured':>8} {'model':>8} {'error':>7} {'cores busy':>10} "
        f"{'stolen':>7}"
    )
    half = n // 2
    for label, measured, model_s, share in (
        ("one (baseline)", t_one, predicted(n, 1), busy_one),
        ("two", t_two, predicted(n, 2), busy_two),
        ("one, a second added at half", t_added, predicted(half, 1) + predicted(n - half, 2),
         busy_added),
    ):  # fmt: skip
        print(
            f"{label:<40} {measured:8.1f} {model_s:8.1f} {model_s / measured - 1:+7.0%} "
            f"{share[0]:10.0%} {share[1]:7.0%}"
        )
    print(f"(logs in {logs}; machine: {os.cpu_count()} cores; {paths.REPO_DIR})")


if __name__ == "__main__":
    main()
