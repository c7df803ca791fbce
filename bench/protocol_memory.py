"""Benchmark: the worker's memory and time while it parses hostile output from the sandbox.

    .venv/bin/python bench/protocol_memory.py

No database, no sandbox: the real parsing path (``playground.sandbox.collect.Collector``, fed
in 64 KB chunks as a run's supervisor feeds it) on lines a hostile program can write on the
protocol descriptor. Each case runs in a fresh process.

Memory: peak RSS growth while the lines are parsed (the kernel's high-water mark, reset through
``/proc/self/clear_refs`` once the input is built, minus the RSS at that moment: the baseline,
measured in the same process), divided by the line cap (protocol.MAX_LINE_BYTES, 4 MiB); the
bound to meet is 4x. Each pattern twice: a line just under the cap (refused) and the largest line
of that pattern the parser still parses (the edge of its bound). The same lines through
``json.loads`` alone (what main did at 3103616: the whole line parsed before any check) are the
comparison.

Time: a stream of valid 3 MB lines, 6 MB then 24 MB (4x the input should take about 4x the time),
and 24 MB without a line break, each in 64 KB chunks; the comparison is 3103616's buffering
(``buffer += data`` then ``split`` of the whole buffer), timed here in the same run.
"""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playground.sandbox import protocol  # noqa: E402
from playground.sandbox.collect import Collector  # noqa: E402
from playground.sandbox.limits import Limits  # noqa: E402

CAP = protocol.MAX_LINE_BYTES
CHUNK = 1 << 16
# (opening, repeated unit, closing)
PATTERNS = {
    "empty dicts [{},{},...]": (b"[", b"{},", b"{}]"),
    "empty lists [[],[],...]": (b"[", b"[],", b"[]]"),
    'one-key dicts [{"a":1},...]': (b"[", b'{"a":1},', b"{}]"),
    'short strings ["ab",...]': (b"[", b'"ab",', b'""]'),
    "numbers [1000,...]": (b"[", b"1000,", b"0]"),
    "a string widened by one emoji": (b'{"fatal":"', b"a", b'\\ud83d\\ude00"}'),
    "commas inside a string": (b'{"fatal":"', b",,,,", b'"}'),
    "valid minimal steps": (b'{"steps":[', b'{"i":0,"line":1,"func":"f"},', b"]}"),
}


def line(name: str, count: int) -> bytes:
    opening, unit, closing = PATTERNS[name]
    if name == "valid minimal steps":
        body = b"".join(unit.replace(b'"i":0', b'"i":%d' % i) for i in range(count))
        return opening + body[:-1] + closing + b"\n"
    return opening + unit * count + closing + b"\n"


def largest_admitted(name: str) -> int:
    low, high = 1, CAP // len(PATTERNS[name][1])
    while low < high:
        mid = (low + high + 1) // 2
        text = line(name, mid).decode()
        if protocol.admits(text, 4 * CAP - 3 * len(text) - CHUNK):
            low = mid
        else:
            high = mid - 1
    return low


def at_cap(name: str) -> int:
    digits = 5 if name == "valid minimal steps" else 0
    return (CAP - 64) // (len(PATTERNS[name][1]) + digits)


def _status(field: str) -> int:
    for row in Path("/proc/self/status").read_text().splitlines():
        if row.startswith(field + ":"):
            return int(row.split()[1]) * 1024
    raise RuntimeError(field)


def child(path: str, how: str) -> None:
    """One case in this (fresh) process: the bytes in ``path`` (read in one allocation, so that
    nothing freed earlier is reused) through ``how``; prints {"growth": bytes, "outcome": ...}."""
    data = Path(path).read_bytes()
    collector = Collector(Limits(max_steps=100_000))
    view = memoryview(data)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the high-water mark starts again from here
    before = _status("VmRSS")
    if how == "ours":
        for offset in range(0, len(data), CHUNK):
            collector.feed(view[offset : offset + CHUNK])
            if collector.problem is not None:
                break
        outcome = collector.reason or f"parsed, {len(collector.steps):,} steps kept"
        if collector.count > len(collector.steps):
            outcome += f" of {collector.count:,}"
    else:
        try:
            value = json.loads(data)
            outcome = f"parsed ({type(value).__name__})"
        except ValueError as exc:
            outcome = type(exc).__name__
    growth = _status("VmHWM") - before
    print(json.dumps({"bytes": len(data), "growth": growth, "outcome": outcome}))


def run_child(data: bytes, how: str) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as f:
        f.write(data)
        f.flush()
        out = subprocess.run(
            [sys.executable, __file__, "--child", f.name, how],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def steps_stream(count: int, value: int) -> bytes:
    """A run's whole output of valid steps, in the runner's batches (200 steps a line)."""
    local = b'"locals":{"s":"' + b"x" * value + b'"},' if value else b""
    out = [b'{"started":true}\n']
    for first in range(0, count, 200):
        steps = (b'{"i":%d,"line":1,%s"func":"f"}' % (i, local) for i in range(first, first + 200))
        out.append(b'{"steps":[' + b",".join(steps) + b"]}\n")
    return b"".join(out)


def old_buffering(data: bytes) -> float:
    """3103616's Collector.feed buffering alone (no parsing): the whole buffer split per chunk."""
    t0 = time.perf_counter()
    buffer = b""
    for offset in range(0, len(data), CHUNK):
        buffer += data[offset : offset + CHUNK]
        *_lines, buffer = buffer.split(b"\n")
    return time.perf_counter() - t0


def ours(data: bytes) -> tuple[float, str]:
    collector = Collector(Limits())
    view = memoryview(data)
    t0 = time.perf_counter()
    for offset in range(0, len(data), CHUNK):
        collector.feed(view[offset : offset + CHUNK])
        if collector.problem is not None:
            break
    return time.perf_counter() - t0, collector.reason or "parsed"


def padded(total: int, size: int = 3_000_000) -> bytes:
    return (b'{"steps":[' + b" " * (size - 13) + b"]}\n") * (total // size)


def main() -> None:
    python = sys.version.split()[0]
    print(f"Line cap {CAP:,} bytes, bound 4x = {4 * CAP / 2**20:.0f} MiB; Python {python}\n")
    print("| line | bytes | ours: peak RSS growth | x cap | outcome | json.loads alone | x cap |")
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for name in PATTERNS:
        for size in ("cap", "admitted"):
            data = line(name, at_cap(name) if size == "cap" else largest_admitted(name))
            mine, alone = run_child(data, "ours"), run_child(data, "json")
            ratio = mine["growth"] / CAP
            worst = max(worst, ratio)
            label = f"{name}, {'just under the cap' if size == 'cap' else 'largest parsed'}"
            print(
                f"| {label} | {len(data):,} | {mine['growth'] / 2**20:.1f} MiB | {ratio:.2f}x "
                f"| {mine['outcome']} | {alone['growth'] / 2**20:.1f} MiB "
                f"| {alone['growth'] / CAP:.1f}x |"
            )
    print(f"\nWorst case, ours: {worst:.2f}x the line cap.\n")

    print("What a whole run keeps (valid steps, 100,000-step ceiling, 5 MB trace cap):\n")
    print("| output | bytes | peak RSS growth | x cap | outcome |")
    print("|---|---|---|---|---|")
    for label, data in (
        ("100,000 minimal steps", steps_stream(100_000, 0)),
        ("100,000 steps, a 300-character value each", steps_stream(100_000, 300)),
    ):
        mine = run_child(data, "ours")
        print(
            f"| {label} | {len(data):,} | {mine['growth'] / 2**20:.1f} MiB "
            f"| {mine['growth'] / CAP:.2f}x | {mine['outcome']} |"
        )
    print()

    print("| stream, 64 KB chunks | ours | 3103616's buffering alone |")
    print("|---|---|---|")
    timings = {}
    for label, data in (
        ("6 MB of 3 MB valid lines", padded(6_000_000)),
        ("24 MB of 3 MB valid lines", padded(24_000_000)),
        ("24 MB without a line break", b"x" * 24_000_000),
    ):
        best = min(ours(data)[0] for _ in range(3))
        outcome = ours(data)[1]
        old = min(old_buffering(data) for _ in range(3 if len(data) < 10**7 else 1))
        timings[label] = best
        print(f"| {label} | {best * 1000:.1f} ms ({outcome}) | {old * 1000:.1f} ms |")
    ratio = timings["24 MB of 3 MB valid lines"] / timings["6 MB of 3 MB valid lines"]
    print(f"\n4x the input took {ratio:.1f}x the time.")


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # every refused line is logged; not what is measured
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:4])
    else:
        main()
