"""Benchmark: a 200-item CRUXEval evaluation (method direct) against the embedded model with 1, 4
and 8 concurrent requests: items per minute, and the product's overhead around the model.

    .venv/bin/python -m playground.launcher exec -- \
        .venv/bin/python bench/evaluation_throughput.py [N]

Needs the database (the launcher's exec starts it). Starts its own embedded model server
(llama.cpp, SmolLM2-135M) on a free port. Baseline, measured in the same run: the same N
prompts sent straight to the model server one after another with the client (no sandbox, no
database, no scoring): the model's own throughput. Per item the evaluation records its wall time
and the time spent waiting for the model; overhead = wall - model (the real run in the sandbox,
the database, the scoring run of `assert f(x) == prediction` in the sandbox). The evaluations
this makes are deleted at the end.
"""

from __future__ import annotations

import os
import statistics
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

from playground.benchmarks import execution, services  # noqa: E402
from playground.benchmarks.models import Evaluation, Result  # noqa: E402
from playground.emulation import output_prediction  # noqa: E402
from playground.llm.client import stream_chat  # noqa: E402
from playground.llm.embedded import serving  # noqa: E402
from playground.llm.registry import embedded_model  # noqa: E402
from playground.programs.library import import_library  # noqa: E402
from playground.programs.models import Dataset, Program  # noqa: E402
from playground.runs.models import Run  # noqa: E402

MAX_TOKENS = 64


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    call_command("migrate", verbosity=0)
    import_library()
    with serving() as base_url:
        spec = replace(embedded_model(), base_url=base_url, max_concurrency=8)
        os.environ["PLAYGROUND_MODELS"] = (
            f'[{{"name": "{spec.name}", "base_url": "{spec.base_url}", "model": "{spec.model}",'
            ' "max_concurrency": 8}]'
        )
        programs = list(Program.objects.filter(dataset=Dataset.CRUXEVAL).order_by("id")[:n])
        t0 = time.perf_counter()
        for p in programs:
            with stream_chat(
                spec, output_prediction.messages("direct", p.source, p.call), max_tokens=MAX_TOKENS
            ) as stream:
                for _ in stream:
                    pass
        baseline = time.perf_counter() - t0
        rows = [
            "| what | items | wall s | items/min | ratio to the bare model | overhead per item, "
            "median ms | overhead share |",
            "|---|---|---|---|---|---|---|",
            f"| bare model, sequential (baseline) | {n} | {baseline:.1f} | "
            f"{n / baseline * 60:.1f} | 1.00 | | |",
        ]
        for concurrency in (1, 4, 8):
            evaluation = services.create_evaluation(
                dataset="cruxeval", method="direct", model=spec.name, limit=n,
                concurrency=concurrency, max_tokens=MAX_TOKENS, start=False,
                title=f"throughput benchmark, concurrency {concurrency}",
            )  # fmt: skip
            t0 = time.perf_counter()
            execution.execute(evaluation.pk)
            wall = time.perf_counter() - t0
            results = list(Result.objects.filter(evaluation=evaluation))
            assert all(r.status == "done" for r in results)
            overheads = [(r.wall_seconds or 0) - (r.model_seconds or 0) for r in results]
            share = sum(overheads) / sum(r.wall_seconds or 0 for r in results)
            rows.append(
                f"| evaluation, {concurrency} request(s) at once | {n} | {wall:.1f} | "
                f"{n / wall * 60:.1f} | {baseline / wall:.2f} | "
                f"{statistics.median(overheads) * 1000:.0f} | {share:.0%} |"
            )
            run_ids = [r.run_id for r in results if r.run_id]
            Evaluation.objects.filter(pk=evaluation.pk).delete()
            Run.objects.filter(pk__in=run_ids).delete()
        print("\n".join(rows))


if __name__ == "__main__":
    main()
