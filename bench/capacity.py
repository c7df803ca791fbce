"""Capacity model: a discrete-event simulation (simpy) of a class pressing "run", fed with the
service times the load harness measured, checked against the harness, then asked how many sandbox
workers, web processes and model replicas N students need, and how long an evaluation takes.

    .venv/bin/python bench/load_test.py --json /tmp/load.json   # measure (see that file)
    .venv/bin/python bench/capacity.py /tmp/load.json            # calibrate, check, size

What one student's pass costs, per part (CPU seconds: the slope of each step's per-process CPU
over its passes, per round; the intercept is the site's background; the median over rounds):

- web: the login (one password check: PBKDF2, measured apart), the item page, the run's request,
  its event stream and the answer. Django runs each request's synchronous code in a thread of its
  own and PBKDF2 releases the GIL, so one web process used both cores here; in the sizing, a web
  process is one core (a pod of one core each);
- sandbox: the real run, in one of S sandbox processes (prefork: one program at a time each);
- llm: the llm worker's share (the model's answer itself takes LATENCY_S of wall time, elsewhere);
- rest: PostgreSQL, Redis, the scheduler and the launcher;
- harness: the load generator and the scripted model (on the same cores, here only).

The simulation runs the harness's own schedule (students arriving evenly spaced at the rate for
the step's length, one pass each, an open loop) on C cores shared by every part (processor
sharing in 2 ms slices), with the web process and the sandbox processes as limited servers, and a
fixed latency F per run (queues, polling, the comparison: the unloaded run-to-verdict time less
the work on its path). The web process two ways: its work on any core, or its Python under one
GIL with only the password check outside it. Printed: predicted against measured p95 (the median
of the rounds) at each rate, and the rate at which p95 passes 5 s (the knee); docs/BENCHMARKS.md
says where they agree within 20% (the knee, and below saturation) and where not (past it).

Then, for sizing (parts on cores of their own, as in a cluster; the harness left out): N students
pressing run spread over M seconds, and the smallest sandbox workers, web processes and model
replicas whose p95 stays under 5 s; and how long K evaluation items take on R replicas and W
batch workers (``evaluation_seconds``; bench/evaluation_fanout.py checks it against measured
evaluations).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import statistics
from collections.abc import Generator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import simpy

SLICE_S = 0.002
KNEE_S = 5.0
LATENCY_S = 0.5  # the scripted model's time to answer, in bench/load_test.py
LOGIN_CPU_S = 0.40  # one Django password check (PBKDF2, 1,000,000 rounds) on this machine
BATCH_THREADS = 8  # a batch worker's threads (PLAYGROUND_BATCH_WORKERS, playground/launcher.py)
MAX_CONCURRENCY = 64  # an evaluation's most "requests at once" (playground/benchmarks/forms.py)


@dataclass(frozen=True)
class Demand:
    """CPU seconds per pass, per part, and the fixed latency of a run."""

    web: float
    sandbox: float
    llm: float
    rest: float
    harness: float
    fixed_s: float
    model_s: float = LATENCY_S
    background_cores: float = 0.0  # CPU the site uses with no one on it (workers, beat, viewers)


@dataclass(frozen=True)
class Site:
    cores: float  # shared by every part (this machine), or math.inf (parts on their own)
    web: int  # web processes
    sandbox: int  # sandbox processes
    replicas: int = 1  # model replicas
    streams_per_replica: int = 10_000  # concurrent answers one replica serves at model_s each
    with_harness: bool = True
    # The web process's Python runs under one GIL (one core at most), but the password check
    # (hashlib's PBKDF2) releases it and runs in the request's own thread, on any core: True
    # models that; False lets every web task use any of ``web`` cores.
    web_gil: bool = False


class Machine:
    """Cores shared in small slices (processor sharing), and the limited servers."""

    def __init__(self, env: simpy.Environment, site: Site) -> None:
        self.env = env
        self.unlimited = math.isinf(site.cores)
        self.cores = simpy.Resource(env, capacity=10**6 if math.isinf(site.cores) else
                                    max(1, int(site.cores)))  # fmt: skip
        self.web = [simpy.Resource(env, capacity=1) for _ in range(site.web)]
        self.sandbox = simpy.Resource(env, capacity=site.sandbox)
        self.model = simpy.Resource(env, capacity=site.replicas * site.streams_per_replica)
        self.next_web = 0

    def cpu(self, seconds: float) -> Generator[Any, Any, None]:
        if self.unlimited:  # a part on cores of its own: its servers are the limit
            yield self.env.timeout(seconds)
            return
        left = seconds
        while left > 1e-9:
            with self.cores.request() as turn:
                yield turn
                step = min(SLICE_S, left)
                yield self.env.timeout(step)
                left -= step

    def on_web(self, seconds: float) -> Generator[Any, Any, None]:
        """Work of one web process (round robin over them): one core at most each."""
        server = self.web[self.next_web % len(self.web)]
        self.next_web += 1
        left = seconds
        while left > 1e-9:
            with server.request() as turn:
                yield turn
                step = min(SLICE_S * 5, left)
                yield from self.cpu(step)
                left -= step


def student_pass(env: simpy.Environment, m: Machine, d: Demand, site: Site,
                 out: list[float]) -> Generator[Any, Any, None]:  # fmt: skip
    web_rest = max(0.0, d.web - LOGIN_CPU_S)
    if site.with_harness:
        env.process(m.cpu(d.harness))
    if site.web_gil:
        yield from m.cpu(LOGIN_CPU_S)  # the password check, outside the GIL
        yield from m.on_web(web_rest / 4)  # the rest of signing in, the item page
    else:
        yield from m.on_web(LOGIN_CPU_S + web_rest / 4)  # sign in, the item page
    started = env.now
    yield from m.on_web(web_rest / 4)  # the run's request

    def sandbox() -> Generator[Any, Any, None]:
        with m.sandbox.request() as slot:
            yield slot
            yield from m.cpu(d.sandbox)

    def model() -> Generator[Any, Any, None]:
        with m.model.request() as stream:
            yield stream
            yield env.timeout(d.model_s)
        yield from m.cpu(d.llm)

    yield env.all_of([env.process(sandbox()), env.process(model())])
    yield from m.cpu(d.rest)
    yield from m.on_web(web_rest / 4)  # the verdict on the event stream
    out.append(env.now - started + d.fixed_s)
    yield from m.on_web(web_rest / 4)  # the answer


def simulate_step(d: Demand, site: Site, rate: float, step_s: float) -> list[float]:
    """The harness's step at ``rate``: students arriving evenly spaced for ``step_s`` seconds,
    one pass each (an open loop); the run-to-verdict times."""
    env = simpy.Environment()
    m = Machine(env, site)
    out: list[float] = []
    count = max(1, round(rate * step_s))

    def one(at: float) -> Generator[Any, Any, None]:
        yield env.timeout(at)
        yield env.process(student_pass(env, m, d, site, out))

    def background() -> Generator[Any, Any, None]:
        while len(out) < count:
            yield env.process(m.cpu(d.background_cores * 0.1))
            yield env.timeout(0.1 * (1 - min(0.9, d.background_cores)))

    if d.background_cores and site.with_harness:
        env.process(background())
    for i in range(count):
        env.process(one(i / rate))
    env.run(until=step_s + 600)
    return out


def simulate_burst(
    d: Demand, site: Site, students: int, over_s: float, seed: int = 1
) -> list[float]:
    """``students`` passes arriving at random over ``over_s`` seconds (a class told "go")."""
    env = simpy.Environment()
    m = Machine(env, site)
    out: list[float] = []
    rng = random.Random(seed)  # noqa: S311 (a simulation, not a secret)

    def one(at: float) -> Generator[Any, Any, None]:
        yield env.timeout(at)
        yield env.process(student_pass(env, m, d, site, out))

    for _ in range(students):
        env.process(one(rng.uniform(0, over_s)))
    env.run()
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else math.nan


def knee(points: list[tuple[float, float]]) -> float | None:
    for (r0, q0), (r1, q1) in itertools.pairwise(points):
        if q0 <= KNEE_S < q1:
            return r0 + (r1 - r0) * (KNEE_S - q0) / (q1 - q0)
    return None


def _slope(steps: list[dict[str, Any]], part: str) -> tuple[float, float]:
    """CPU seconds per pass of ``part`` and its CPU per step besides (least squares of each
    step's CPU over its passes: what the site does whether or not students come)."""
    xs = [s["passes"] for s in steps]
    ys = [s["cpu"][part] * s["passes"] for s in steps]
    if len(steps) < 2 or len(set(xs)) < 2:
        return ys[0] / max(1, xs[0]), 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )
    return max(0.0, slope), max(0.0, my - slope * mx)


def calibrate(round_steps: list[dict[str, Any]], step_s: float) -> Demand:
    """A round's demand: per pass from the slope over its steps, the background from the
    intercept, the fixed latency from its lowest rate's median."""
    parts = {part: _slope(round_steps, part) for part in
             ("web", "worker-sandbox", "worker-llm", "rest", "harness")}  # fmt: skip
    background = sum(b for _, b in parts.values()) / step_s
    web, sandbox, llm, rest = (parts[p][0] for p in ("web", "worker-sandbox", "worker-llm", "rest"))
    low = round_steps[0]
    on_path = sandbox + rest + (web - LOGIN_CPU_S) / 2
    fixed = max(0.0, low["p50"] - LATENCY_S - llm - on_path)
    return Demand(web=web, sandbox=sandbox, llm=llm, rest=rest, harness=parts["harness"][0],
                  fixed_s=fixed, background_cores=background)  # fmt: skip


def check(measured: dict[str, list[list[dict[str, Any]]]], step_s: float) -> dict[str, Demand]:
    """Per sandbox count: the demand (the median of the rounds' calibrations), then at each
    rate the median measured p95 over the rounds against the simulated one, and the knees."""
    demands = {}
    fields = ("web", "sandbox", "llm", "rest", "harness", "fixed_s", "background_cores")
    for sandbox, rounds in measured.items():
        per_round = [calibrate(steps, step_s) for steps in rounds]
        d = demands[sandbox] = Demand(
            **{f: statistics.median(getattr(one, f) for one in per_round) for f in fields}
        )
        # One web process. Django gives each request's synchronous code a thread of its own,
        # and PBKDF2 releases the GIL: two ways to model it, both shown.
        any_core = Site(cores=2, web=2, sandbox=int(sandbox))
        gil = Site(cores=2, web=1, sandbox=int(sandbox), web_gil=True)
        print(f"\n{sandbox} sandbox process(es); per pass: web {d.web * 1000:.0f} ms, sandbox "
              f"{d.sandbox * 1000:.0f} ms, llm worker {d.llm * 1000:.0f} ms, rest "
              f"{d.rest * 1000:.0f} ms, harness {d.harness * 1000:.0f} ms; background "
              f"{d.background_cores:.2f} cores; fixed {d.fixed_s * 1000:.0f} ms")  # fmt: skip
        print("| arrivals/s | measured p95 (median, min-max) | web on any core | error | "
              "web under one GIL | error |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        points: dict[str, list[tuple[float, float]]] = {"measured": [], "any": [], "gil": []}
        for index, first in enumerate(rounds[0]):
            seen = [steps[index]["p95"] for steps in rounds if len(steps) > index]
            measured_p95 = statistics.median(seen)
            rate = first["rate"]
            a = p95(simulate_step(d, any_core, rate, step_s))
            g = p95(simulate_step(d, gil, rate, step_s))
            points["measured"].append((rate, measured_p95))
            points["any"].append((rate, a))
            points["gil"].append((rate, g))
            print(f"| {rate:g} | {measured_p95:.2f} s ({min(seen):.2f}-{max(seen):.2f}) | "
                  f"{a:.2f} s | {a / measured_p95 - 1:+.0%} | {g:.2f} s | "
                  f"{g / measured_p95 - 1:+.0%} |")  # fmt: skip
        shown = {
            name: f"{k:.2f}/s" if (k := knee(found)) is not None else "not reached"
            for name, found in points.items()
        }
        print(f"knee (p95 > {KNEE_S:g} s): measured {shown['measured']}, predicted "
              f"{shown['any']} (web on any core), {shown['gil']} (under one GIL)")  # fmt: skip
    return demands


def size(d: Demand, students: int, over_s: float, model_s: float, per_replica: int) -> Site:
    """The smallest site (web, then sandbox, then replicas grown in turn) with p95 <= 5 s."""
    d = replace(d, model_s=model_s)
    site = Site(cores=math.inf, web=1, sandbox=1, replicas=1,
                streams_per_replica=per_replica, with_harness=False)  # fmt: skip
    for _ in range(200):
        out = simulate_burst(d, site, students, over_s)
        if p95(out) <= KNEE_S:
            return site
        # Grow the part whose servers are busiest: the one with the largest offered load.
        web_load = students * d.web / over_s / site.web
        sandbox_load = students * d.sandbox / over_s / site.sandbox
        model_load = students * model_s / over_s / (site.replicas * per_replica)
        busiest = max(("web", web_load), ("sandbox", sandbox_load),
                      ("replicas", model_load), key=lambda x: x[1])[0]  # fmt: skip
        site = replace(site, **{busiest: getattr(site, busiest) + 1})
    return site


def evaluation_seconds(
    items: int,
    *,
    in_flight: int,
    model_slots: int,
    model_s: float,
    sandbox_slots: int,
    sandbox_s: float,
    other_s: float = 0.0,
    cores: float = math.inf,
    cpu_s: float = 0.0,
) -> float:
    """How long K items of one evaluation take, as the site runs them
    (playground/benchmarks/execution.py): each item holds one of ``in_flight`` places (a batch
    worker's thread, within the evaluation's own "requests at once") from its start to its
    score, and in it waits for its real run (a sandbox process for ``sandbox_s``), the model's
    answer (one of ``model_slots``: replicas x the answers each serves at once, ``model_s``),
    the scoring run (the sandbox again), and ``other_s`` of its own (sending to the sandbox queue
    and waiting for the answer, the database). On ``cores`` shared by every part, each item
    costing ``cpu_s`` of CPU in all: no faster than the cores allow (the utilization law,
    items x cpu_s / cores), the simulation's time otherwise."""
    env = simpy.Environment()
    places = simpy.Resource(env, capacity=in_flight)
    streams = simpy.Resource(env, capacity=model_slots)
    slots = simpy.Resource(env, capacity=sandbox_slots)

    def sandboxed() -> Generator[Any, Any, None]:
        with slots.request() as slot:
            yield slot
            yield env.timeout(sandbox_s)

    def item() -> Generator[Any, Any, None]:
        with places.request() as place:
            yield place
            yield env.process(sandboxed())
            with streams.request() as stream:
                yield stream
                yield env.timeout(model_s)
            yield env.process(sandboxed())
            yield env.timeout(other_s)

    for _ in range(items):
        env.process(item())
    env.run()
    return max(float(env.now), items * cpu_s / cores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("measured", type=Path, help="bench/load_test.py --json output")
    parser.add_argument("--step-s", type=float, default=40.0, help="the harness's step length")
    parser.add_argument(
        "--model-s",
        type=float,
        default=2.0,
        help="a production model's answer time (GPU: an assumption until measured)",
    )
    parser.add_argument(
        "--per-replica",
        type=int,
        default=32,
        help="concurrent answers one replica serves at --model-s",
    )
    args = parser.parse_args()
    demands = check(json.loads(args.measured.read_text()), args.step_s)
    d = demands[min(demands)]
    print(
        f"\nSizing: parts on their own cores, model answers {args.model_s:g} s, "
        f"{args.per_replica} at once per replica; p95 run-to-verdict <= {KNEE_S:g} s"
    )
    print("| students | over | web processes | sandbox workers | model replicas | p95 |")
    print("|---|---|---|---|---|---|")
    for students, over in ((30, 60), (300, 60), (3000, 60), (300, 10)):
        site = size(d, students, over, args.model_s, args.per_replica)
        got = p95(simulate_burst(replace(d, model_s=args.model_s), site, students, over))
        print(
            f"| {students} | {over} s | {site.web} | {site.sandbox} | {site.replicas} | "
            f"{got:.1f} s |"
        )
    print(
        "\nEvaluation of 10,000 items, model answers 10 s, 32 at once per replica, "
        f"sandbox run {d.sandbox * 1000:.0f} ms, 4 sandbox processes, 0.1 s more per item; "
        f"batch workers of {BATCH_THREADS} threads, the evaluation at {MAX_CONCURRENCY} "
        "requests at once (its highest):"
    )
    print("| model replicas | batch workers | items in flight | hours |")
    print("|---|---|---|---|")
    for replicas in (1, 2, 4, 8):
        enough = math.ceil(min(replicas * 32, MAX_CONCURRENCY) / BATCH_THREADS)
        for workers in sorted({1, enough}):
            in_flight = min(MAX_CONCURRENCY, workers * BATCH_THREADS)
            seconds = evaluation_seconds(
                10_000, in_flight=in_flight, model_slots=replicas * 32, model_s=10.0,
                sandbox_slots=4, sandbox_s=d.sandbox, other_s=0.1,
            )  # fmt: skip
            print(f"| {replicas} | {workers} | {in_flight} | {seconds / 3600:.2f} |")


if __name__ == "__main__":
    main()
