"""Benchmark: ``manage.py trace --jsonl`` over the 800 CRUXEval programs, as a ratio against
starting 800 bare interpreters one after another.

    .venv/bin/python bench/trace_batch.py

No database. Writes the 800 programs (call ``f(input)``) as a JSON-lines file in a temporary
folder, then times, wall-clock, the whole command ``manage.py trace --jsonl IN --out OUT`` as a
subprocess (Django's start-up included; default --workers, one per core) and checks its output:
800 lines, each a trace with status ok. Baseline, measured in the same run and alternated with
the batch: starting ``/usr/bin/python3 -I -S -c pass`` (the sandbox's interpreter) 800 times in a
row with ``subprocess.run``. Medians of REPEATS of each. Target in the issue: the batch takes at
most half as long as the 800 bare starts.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "playground/programs/datasets/cruxeval/cruxeval.jsonl"
BARE = ["/usr/bin/python3", "-I", "-S", "-c", "pass"]
REPEATS = 3
TARGET_RATIO = 0.5


def write_input(path: Path) -> int:
    count = 0
    with DATASET.open(encoding="utf-8") as lines, path.open("w", encoding="utf-8") as out:
        for line in lines:
            item = json.loads(line)
            record = {"id": item["id"], "code": item["code"], "call": f"f({item['input']})"}
            out.write(json.dumps(record) + "\n")
            count += 1
    return count


def timed_batch(infile: Path, outfile: Path, count: int) -> float:
    outfile.unlink(missing_ok=True)
    command = [sys.executable, str(ROOT / "manage.py"), "trace", "--jsonl", str(infile)]
    t0 = time.perf_counter()
    subprocess.run([*command, "--out", str(outfile)], check=True, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    lines = outfile.read_text(encoding="utf-8").splitlines()
    statuses = [json.loads(line).get("trace", {}).get("status") for line in lines]
    if len(lines) != count or statuses.count("ok") != count:
        bad = len(lines) - statuses.count("ok")
        raise RuntimeError(f"{len(lines)} output lines for {count} programs, {bad} not ok")
    return elapsed


def timed_bare(count: int) -> float:
    t0 = time.perf_counter()
    for _ in range(count):
        subprocess.run(BARE, check=True)
    return time.perf_counter() - t0


def main() -> None:
    batches: list[float] = []
    bares: list[float] = []
    with tempfile.TemporaryDirectory(prefix="trace-batch-") as folder:
        infile, outfile = Path(folder) / "in.jsonl", Path(folder) / "out.jsonl"
        count = write_input(infile)
        for _ in range(REPEATS):
            bares.append(timed_bare(count))
            batches.append(timed_batch(infile, outfile, count))
    bare, batch = statistics.median(bares), statistics.median(batches)
    print(f"{'':<52} {'time':>8} {'per program':>12} {'vs baseline':>12}")
    for label, seconds in (
        (f"baseline: {count} bare python3 -I -S -c pass, in a row", bare),
        (f"manage.py trace --jsonl, {count} CRUXEval programs", batch),
    ):
        per = seconds / count * 1000
        print(f"{label:<52} {seconds:6.2f} s {per:9.1f} ms {seconds / bare:11.2f}x")
    ratio = batch / bare
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"medians of {REPEATS}; {os.cpu_count()} cores; every output line checked (status ok).")
    print(f"Target: batch at most {TARGET_RATIO:g}x the bare starts -> {ratio:.2f}x: {verdict}")


if __name__ == "__main__":
    main()
