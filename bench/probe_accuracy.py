"""Benchmark: the embedded model on the `probe` method over CRUXEval items: accuracy per probe
kind and incremental consistency, the figures docs/BENCHMARKS.md sets beside REval's and
CoCoNUT's published ones.

    .venv/bin/python -m playground.launcher exec -- \
        .venv/bin/python bench/probe_accuracy.py [N]

Needs the database (the launcher's exec starts it). Starts its own embedded model server
(llama.cpp, SmolLM2-135M, 2 threads) on a free port and runs `manage.py bench cruxeval --method
probe --limit N` (the first N items in the library's order, the default questions of
probes.DEFAULT, seed 0) in this process, as a user would; then prints the evaluation's
figures. No baseline ratio: this measures accuracy, not speed (the wall time is printed).
The evaluation is kept (its page: /evaluations/<id>/).
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from playground.llm.embedded import serving  # noqa: E402
from playground.llm.registry import embedded_model  # noqa: E402
from playground.programs.library import import_library  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    call_command("migrate", verbosity=0)
    import_library()
    with serving(threads=2) as base_url:
        spec = replace(embedded_model(), base_url=base_url)
        os.environ["PLAYGROUND_MODELS"] = json.dumps(
            [{"name": spec.name, "base_url": spec.base_url, "model": spec.model}]
        )
        out = io.StringIO()
        started = time.perf_counter()
        call_command(
            "bench", "cruxeval", method="probe", model=spec.name, limit=n, json=True, stdout=out
        )
        wall = time.perf_counter() - started
    summary = json.loads(out.getvalue())
    probes = summary["probes"]
    print(f"{n} CRUXEval items, method probe, {spec.name}: {wall:.0f} s")
    print("| kind | asked | right | unreadable | accuracy % | 95% interval |")
    print("|---|---|---|---|---|---|")
    for row in probes["kinds"]:
        low, high = row["ci95"]
        print(f"| {row['kind']} | {row['asked']} | {row['correct']} | {row['unparsable']} | "
              f"{100 * row['accuracy']:.1f} | {100 * low:.1f}-{100 * high:.1f} |")  # fmt: skip
    ic, (low, high) = probes["ic"]["value"], probes["ic"]["ci95"]
    interval = f"{100 * low:.1f}-{100 * high:.1f}"
    print(f"| IC (REval) | {probes['items']} items | | | {100 * ic:.1f} | {interval} |")
    print(f"| mean correct prefix | | | | {100 * probes['prefix']:.1f} | |")
    print("evaluation:", json.dumps({k: v for k, v in summary.items() if k != "probes"})[:2000])


if __name__ == "__main__":
    main()
