"""Benchmark: click-to-verdict time and tokens of a model run on CRUXEval sample_3 with the
embedded model, with and without early stopping (the answer's end read by the method, the
stream closed there, and llama-cpp-python's JSON grammar really held).

    .venv/bin/python -m playground.launcher exec -- \
        .venv/bin/python bench/early_stopping.py [ROUNDS [ONLY]]

Needs the database and Redis (the launcher's exec starts them). Starts its own embedded model
server (llama.cpp, SmolLM2-135M, 2 threads) on a free port. Each run takes the real path: a run
row made by ``start_run`` (as the run button does), then the run pipeline's two steps as
the workers run them, at once in two threads (``pipeline.execute_real`` in the sandbox,
``pipeline.execute_emulation`` with the model); the time is from ``start_run`` until the run is
done with its verdict (the web request and the broker's hop, a few ms, are not in it). "Before"
is the same code with ``Params(stop_early=False)``, which turns every part of early stopping
off: the behaviour of 5ec893d. Before and after alternate, ROUNDS times (default 1; ONLY, e.g.
``trace-json``, keeps the rows whose method and dialect start so), after one untimed
request that puts the prompt in the server's cache. Rows:

- ``trace``: the model writes the trace, JSON-schema constrained (``json_schema: json_object``,
  as the embedded model is configured); the method's default budget (2,048 tokens, so the end
  of the 2,048-token context comes first).
- ``trace, no JSON constraint``: the same model configured without ``json_schema`` (a server
  that cannot constrain output): the prompt's one-object-per-line format.
- ``tae``: Think-and-Execute on the same program; its stored plan is deleted before each run so
  that every run thinks again.

The runs and plans it makes are deleted at the end.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import AnonymousUser  # noqa: E402
from django.core.management import call_command  # noqa: E402

from playground.emulation import tae, trace  # noqa: E402
from playground.emulation.base import Params  # noqa: E402
from playground.emulation.registry import max_tokens_for  # noqa: E402
from playground.llm import client  # noqa: E402
from playground.llm.client import Timeouts, stream_chat  # noqa: E402
from playground.llm.embedded import serving  # noqa: E402
from playground.llm.registry import embedded_model  # noqa: E402
from playground.programs.library import import_library  # noqa: E402
from playground.programs.models import Program  # noqa: E402
from playground.runs import pipeline  # noqa: E402
from playground.runs.emulation_items import item_for_run  # noqa: E402
from playground.runs.models import Plan, Run  # noqa: E402
from playground.runs.services import start_run  # noqa: E402

OWNER = "bench-early-stopping"  # the anonymous owner of the runs it makes, to delete them
CASES = [("trace", "json_object"), ("trace", ""), ("tae", "json_object")]


@dataclass
class Result:
    seconds: float
    tokens: int
    endings: list[str]
    verdict: str


def one_run(program: Program, method: str, model: str, *, early: bool) -> Result:
    Plan.objects.filter(model=model).delete()  # Think-and-Execute thinks again every time
    params = Params if early else functools.partial(Params, stop_early=False)
    # On a busy machine "before" can pass the client's 300 s limit; the time is what is measured.
    timeouts = functools.partial(Timeouts, total=3600.0)
    with (
        mock.patch.object(pipeline, "Params", params),
        mock.patch.object(client, "Timeouts", timeouts),
    ):
        t0 = time.perf_counter()
        run = start_run(
            program=program, user=AnonymousUser(), anon_token=OWNER,
            method=method, model=model, max_tokens=max_tokens_for(method), enqueue=False,
        )  # fmt: skip
        real = threading.Thread(target=pipeline.execute_real, args=[run.pk])
        real.start()
        pipeline.execute_emulation(run.pk)
        real.join()
        seconds = time.perf_counter() - t0
    run.refresh_from_db()
    assert run.status == Run.Status.DONE, (run.status, run.error)
    explanation = str(run.verdict.get("explanation", ""))
    return Result(
        seconds,
        run.completion_tokens or 0,
        list(run.details.get("endings", [])),
        f"{run.verdict.get('status')}: {explanation[:90]}",
    )


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    only = sys.argv[2] if len(sys.argv) > 2 else ""  # e.g. "trace": only the rows it starts
    call_command("migrate", verbosity=0)
    import_library()
    program = Program.objects.get(title="CRUXEval sample_3")
    names: list[str] = []
    try:
        with serving(threads=2) as url:
            base = embedded_model()
            rows = [
                "| method | early stopping | runs | click to verdict, median s | tokens, median "
                "| tokens/s | how the answers ended | time ratio | verdict |",
                "|---|---|---|---|---|---|---|---|---|",
            ]
            for method, dialect in CASES:
                if only and not f"{method}-{dialect}".startswith(only):
                    continue
                name = f"bench-{method}-{dialect or 'free'}"
                names.append(name)
                entry = {"name": name, "base_url": url, "model": base.model, "json_schema": dialect}
                os.environ["PLAYGROUND_MODELS"] = json.dumps([entry])
                spec = replace(base, name=name, base_url=url, json_schema=dialect)
                item = item_for_run(Run(program=program, source=program.source, call=program.call))
                prompt = (
                    trace.messages(program.source, program.call)
                    if method == "trace"
                    else tae.think_messages(item)
                )
                with stream_chat(spec, prompt, max_tokens=1) as stream:  # the prompt, cached
                    list(stream)
                results: dict[bool, list[Result]] = {False: [], True: []}
                for _ in range(rounds):
                    for early in (False, True):
                        result = one_run(program, method, name, early=early)
                        results[early].append(result)
                        print(f"{name} early={early}: {result}", flush=True)
                before = statistics.median(r.seconds for r in results[False])
                for early in (False, True):
                    rs = results[early]
                    seconds = statistics.median(r.seconds for r in rs)
                    rows.append(
                        f"| {method}{'' if dialect else ', no JSON constraint'} | "
                        f"{'on' if early else 'off (before)'} | {len(rs)} | {seconds:.1f} | "
                        f"{statistics.median(r.tokens for r in rs):.0f} | "
                        f"{statistics.median(r.tokens / r.seconds for r in rs):.1f} | "
                        f"{', '.join(sorted({'+'.join(r.endings) for r in rs}))} | "
                        f"{seconds / before:.2f} | {rs[-1].verdict} |"
                    )
            print("\n".join(rows))
    finally:
        Run.objects.filter(anon_owner=OWNER).delete()
        Plan.objects.filter(model__in=names).delete()


if __name__ == "__main__":
    main()
