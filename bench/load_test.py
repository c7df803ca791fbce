"""Load harness: a class of students and the viewers of a shared link, against the whole product as
`make run` starts it, at rising arrival rates; for 1 and 2 sandbox processes.

    .venv/bin/python bench/load_test.py                  # 1 and 2 sandbox processes, 3 repeats
    .venv/bin/python bench/load_test.py --sandbox 1 --repeats 1 --rates 0.5,1 --step-s 20

Each round starts the product (the launcher, in a scratch directory, with the load-test profile
of the limits table) with a scripted model (tests/oracle.py: always right, LATENCY_S before each
answer, as a model's time to answer) on loopback, makes a course with an assignment, an output
item and STUDENTS students, a shared run, and then runs locust (bench/load/locustfile.py) as a
library: at each arrival rate, students arrive evenly spaced for STEP_S seconds, each doing one
exercise pass in a session of its own (sign in, open the item, run a program, wait for the verdict,
answer), whether or not the ones before have finished (an open loop: past what the site can take,
the queue grows). Bounded: the step ends when its passes have (at most the verdict wait later).

Printed per step: passes per second achieved, p50/p95/p99 from pressing "run" to the verdict,
errors; the rate at which p95 passes 5 s (the knee); and what each pass cost in CPU per process
(web, sandbox worker, llm worker, the rest of the stack; the harness's own, with the scripted
model, counted apart), which bench/capacity.py is calibrated with. The median over the repeats,
with the spread (min-max), goes to docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# locust patches the standard library for gevent when imported: first.
import locust  # noqa: F401
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench" / "load"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import locustfile  # noqa: E402
from locust.env import Environment  # noqa: E402

from tests.stack import Stack, free_port, processes_mentioning  # noqa: E402

STUDENTS = 300
STEP_S = 40.0
LATENCY_S = 0.5
VIEWERS = 20
KNEE_S = 5.0
RATES = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
PROGRAM = "def f(xs):\n    best = xs[0]\n    for x in xs:\n        if x > best:\n            best = x\n    return best\n"  # noqa: E501
CALL = "f([3, 9, 4])"

SETUP = """
import json
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from playground.classroom.authoring import prepare_item
from playground.classroom.models import Membership, Role
from playground.programs.models import Dataset, Program
from playground.runs.services import start_run
from playground.sharing.models import ShareLink
from tests.classroom.staff_factories import ItemFactory, staffed_course
from tests.factories import ProgramFactory

User = get_user_model()
course, teacher = staffed_course(title="Load")
library = Program.objects.filter(dataset=Dataset.CRUXEVAL).order_by("pk").first()
item = ItemFactory(assignment__course=course, assignment__title="Go", program=library)
prepare_item(item, by=teacher)
password = "load-test-password"
hashed = make_password(password)
students = User.objects.bulk_create(
    [User(username=f"student{i:04d}", password=hashed) for i in range(%(students)d)]
)
Membership.objects.bulk_create(
    [Membership(course=course, user=u, role=Role.STUDENT) for u in students]
)
shown = ProgramFactory(owner=teacher, source=%(program)r, call=%(call)r)
run = start_run(program=shown, user=teacher, anon_token=None, method="direct", model="oracle")
link = ShareLink.objects.create(run=run, created_by=teacher)
print(json.dumps({
    "students": [u.username for u in students], "password": password,
    "item_url": item.get_absolute_url(), "key_run": item.key_run_id,
    "submit_url": item.get_absolute_url() + "submit/", "answer": "6",
    "shared_run": run.pk, "share_token": link.token,
}))
"""


# The scripted model in a process of its own (the harness's gevent would take its sandbox's
# child processes), answering each distinct question once from a real run, then from memory.
ORACLE = """
import sys, time
from tests.oracle import Oracle, oracle_server

class Cached(Oracle):
    def answer(self, prompt):
        cache = self.__dict__.setdefault("_cache", {})
        if prompt not in cache:
            cache[prompt] = super().answer(prompt)
        return cache[prompt]

with oracle_server(Cached(latency=float(sys.argv[1]))) as spec:
    print(spec.base_url, flush=True)
    while True:
        time.sleep(3600)
"""


@contextmanager
def scripted_model(latency_s: float) -> Iterator[tuple[str, psutil.Process]]:
    """The oracle model server's base URL, and its process (its CPU is the harness's)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ORACLE, str(latency_s)], cwd=REPO, stdout=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:"), base_url
        yield base_url, psutil.Process(proc.pid)
    finally:
        proc.kill()
        proc.wait()


HARNESS: list[psutil.Process] = []  # this process (locust) and the scripted model's


@dataclass
class Step:
    rate: float
    users: int
    passes: int = 0
    per_s: float = 0.0
    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    errors: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per pass, per process


def _cpu_of(proc: psutil.Process) -> float:
    try:
        t = proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system
    except psutil.Error:
        return 0.0


def _groups(stack: Stack) -> dict[str, list[psutil.Process]]:
    """The stack's processes by part: web, worker-sandbox (with its pool and sandboxes),
    worker-llm, and the rest (launcher, beat, batch worker, PostgreSQL, Redis)."""
    assert stack.proc is not None
    named = {name: stack.pid_of(name) for name in ("web", "worker-sandbox", "worker-llm")}
    groups: dict[str, list[psutil.Process]] = {name: [] for name in (*named, "rest")}
    root = psutil.Process(stack.proc.pid)
    for proc in [root, *root.children(recursive=True)]:
        owner = "rest"
        try:
            chain = [proc.pid, *(p.pid for p in proc.parents())]
        except psutil.Error:
            continue
        for name, pid in named.items():
            if pid in chain:
                owner = name
        groups[owner].append(proc)
    return groups


def _cpu(stack: Stack) -> dict[str, float]:
    used = {name: sum(_cpu_of(p) for p in procs) for name, procs in _groups(stack).items()}
    used["harness"] = sum(_cpu_of(p) for p in HARNESS)
    return used


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def run_step(stack: Stack, rate: float, step_s: float, viewers: int) -> Step:
    import gevent

    users = max(1, round(rate * step_s))  # students arriving in the step, one pass each
    step = Step(rate=rate, users=users)
    verdicts: list[float] = []
    errors = [0]

    def note(request_type: str, name: str, response_time: float, exception: Any,
             **_: Any) -> None:  # fmt: skip
        if name == "run→verdict":
            if exception is None:
                verdicts.append(response_time / 1000)
            else:
                errors[0] += 1
        elif exception is not None and request_type != "WS":
            errors[0] += 1

    classes: list[type[Any]] = [locustfile.Arrivals]
    if viewers:
        classes.append(locustfile.Viewer)
        locustfile.Viewer.fixed_count = viewers
    env = Environment(user_classes=classes, host=f"http://127.0.0.1:{stack.port}")
    env.events.request.add_listener(note)
    runner = env.create_local_runner()
    os.environ["LOAD_RATE"] = str(rate)
    os.environ["LOAD_STEP_S"] = str(step_s)
    locustfile.ARRIVED.clear()
    before = _cpu(stack)
    t0 = time.monotonic()
    runner.start(1 + viewers, spawn_rate=1 + viewers)
    # The arrivals take step_s; their passes then finish (at most the verdict wait and a minute).
    deadline = t0 + step_s + locustfile.VERDICT_WAIT_S + 60
    while not locustfile.ARRIVED.is_set() and time.monotonic() < deadline:
        gevent.sleep(0.2)
    locustfile.STOP.set()  # the viewers leave
    runner.quit()
    locustfile.STOP.clear()
    took = time.monotonic() - t0
    after = _cpu(stack)
    step.passes = len(verdicts)
    step.per_s = len(verdicts) / step_s
    step.p50, step.p95, step.p99 = (_percentile(verdicts, q) for q in (0.5, 0.95, 0.99))
    step.errors = errors[0]
    step.cpu = {k: (after[k] - before[k]) / max(1, step.passes) for k in after}
    print(
        f"  rate {rate:4.1f}/s ({users:3d} students): {step.passes:4d} verdicts in "
        f"{took:5.1f} s, p50 {step.p50:6.2f} s, p95 {step.p95:6.2f} s, p99 {step.p99:6.2f} s, "
        f"errors {step.errors}; CPU per pass: "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in step.cpu.items()),
        flush=True,
    )
    return step


def knee(steps: list[Step]) -> float | None:
    """The arrival rate at which p95 passes KNEE_S (linear between the two steps around it)."""
    for low, high in itertools.pairwise(steps):
        if low.p95 <= KNEE_S < high.p95:
            return low.rate + (high.rate - low.rate) * (KNEE_S - low.p95) / (high.p95 - low.p95)
    if steps and steps[0].p95 > KNEE_S:
        return steps[0].rate
    return None  # never reached in the rates tried


def one_round(sandbox: int, rates: list[float], step_s: float, viewers: int) -> list[Step]:
    with ExitStack() as stack_of:
        tmp = Path(stack_of.enter_context(tempfile.TemporaryDirectory(prefix="pgl-load-")))
        base_url, model_proc = stack_of.enter_context(scripted_model(LATENCY_S))
        HARNESS[:] = [psutil.Process(), model_proc]
        stack = Stack(tmp, free_port(), "load-test", sandbox_workers=sandbox, llm_workers=32)
        spec = {"name": "oracle", "base_url": base_url, "model": "oracle",
                "max_concurrency": 256, "first_token_s": 60, "total_s": 120}  # fmt: skip
        stack.env = {"PLAYGROUND_EMBEDDED_LLM": "off", "PLAYGROUND_MODELS": json.dumps([spec])}
        try:
            stack.start()
            for worker in ("sandbox", "llm"):
                stack.wait_for(rf"{worker}@\S+ ready\.")
            made = stack.manage(SETUP % {"students": STUDENTS, "program": PROGRAM, "call": CALL})
            plan = json.loads(made.strip().splitlines()[-1])
            plan.update(program=PROGRAM, call=CALL, method="direct", model="oracle")
            plan_file = tmp / "plan.json"
            plan_file.write_text(json.dumps(plan))
            os.environ["LOAD_PLAN"] = str(plan_file)
            os.environ["LOAD_VIEW_S"] = str(step_s)
            locustfile.PLAN.clear()
            deadline = time.monotonic() + 60
            done = "SELECT status FROM runs_run WHERE id = %s"
            while stack.sql(done, plan["key_run"])[0][0] not in ("done", "failed"):
                assert time.monotonic() < deadline, "the item's answer key never finished"
                time.sleep(0.3)
            steps = []
            for rate in rates:
                steps.append(run_step(stack, rate, step_s, viewers))
                if steps[-1].p95 > 3 * KNEE_S:  # far past the knee: higher rates say nothing
                    break
            return steps
        finally:
            # Everything the launcher started, whatever its process group (as tests/stack.py's
            # running_stack does): a round must not leave a stack idling under the next.
            stack.kill()
            for line in processes_mentioning(str(tmp)):
                with suppress(ProcessLookupError):
                    os.kill(int(line.split(":")[0]), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sandbox", default="1,2", help="sandbox processes, comma list")
    parser.add_argument("--rates", default=",".join(map(str, RATES)), help="arrivals per second")
    parser.add_argument("--step-s", type=float, default=STEP_S)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--viewers", type=int, default=VIEWERS)
    parser.add_argument("--json", type=Path, help="write every step here (bench/capacity.py)")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    results: dict[str, list[list[dict[str, Any]]]] = {}
    for sandbox in (int(s) for s in args.sandbox.split(",")):
        knees = []
        for repeat in range(args.repeats):
            print(f"{sandbox} sandbox process(es), round {repeat + 1} of {args.repeats}:")
            steps = one_round(sandbox, rates, args.step_s, args.viewers)
            results.setdefault(str(sandbox), []).append([asdict(s) for s in steps])
            knees.append(knee(steps))
            print(f"  knee (p95 > {KNEE_S:g} s): {knees[-1] if knees[-1] else 'not reached'}")
        found = [k for k in knees if k is not None]
        if found:
            print(f"{sandbox} sandbox process(es): knee median {statistics.median(found):.2f}/s "
                  f"(min {min(found):.2f}, max {max(found):.2f}; {len(found)} of {len(knees)} "
                  "rounds reached it)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
