"""Benchmark: what re-synced stepping (``step``, issue 22) costs in model calls and prompt tokens,
with its shared-prefix prompts against re-prompting from scratch each step.

    .venv/bin/python bench/stepping_calls.py [programs] [--llama]

No database. The model is the oracle server of the tests (tests/oracle.py: always right, and it
reports prompt tokens as characters / 4, the estimate used on both sides of each ratio); the
programs (the first CRUXEval items of the library, 6 unless told) run in the real sandbox.

Each run makes one model call per graded step (at most 40). Every prompt is the one before it
plus one step, so an engine with a prefix cache (vLLM's automatic prefix caching, llama.cpp's
cache_prompt) computes only the new tail of each; re-prompting from scratch each step computes
every prompt whole. Per program, in the same run: the prompt tokens sent, those an engine with
a prefix cache would not compute again (each prompt's common prefix with the one before it, from
the run's stored prompt sizes, ``details.stepping.prompt_chars``, checked against the prompts
the oracle received; and, as a floor, the fixed prefix alone, ``prefix_chars``), and ratio =
computed with the cache / computed from scratch. For scale, the ``trace`` method asks for the
whole trace in one call.

With ``--llama``, the prompts the oracle received are sent again to the embedded model's server
(llama.cpp through llama-cpp-python, SmolLM2-135M on the CPU; one token answered, so the time is
the prompt's): in order, where each prompt extends the one before and the server reuses the
evaluated prefix, and from scratch, each prompt opened by a line naming its step (a prompt that
shares no prefix with the one before, as a naive per-step prompt would). Wall time of each pass,
and the server's own prompt tokens.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

import httpx  # noqa: E402

from playground.emulation import stepping, trace  # noqa: E402
from playground.emulation.base import Item, Session  # noqa: E402
from tests.oracle import Oracle, oracle_server  # noqa: E402

CRUXEVAL = ROOT / "playground/programs/datasets/cruxeval/cruxeval.jsonl"


class Recording(Oracle):
    """The oracle, keeping every stepping prompt it was sent (in order)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prompts: list[str] = []

    def _step(self, prompt: str) -> str:
        self.prompts.append(prompt)
        return super()._step(prompt)


def tokens(chars: int) -> int:
    return chars // 4  # the oracle's estimate (tests/oracle.py)


def items(count: int) -> list[tuple[str, Item]]:
    out = []
    with CRUXEVAL.open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            out.append((row["id"], Item(kind="program", source=row["code"],
                                        call=f"f({row['input']})")))  # fmt: skip
            if len(out) == count:
                break
    return out


def replay(prompts: list[list[str]]) -> list[str]:
    """Each run's prompts sent to the embedded model's server, in order and from scratch: the
    table rows (wall time, the server's prompt tokens)."""
    from playground.llm.embedded import serving

    def send(client: httpx.Client, base: str, text: str) -> int:
        body = {"messages": [{"role": "user", "content": text}], "max_tokens": 1,
                "temperature": 0.0}  # fmt: skip
        answer = client.post(f"{base}/chat/completions", json=body, timeout=600)
        if answer.status_code != 200:
            raise RuntimeError(f"{answer.status_code}: {answer.text[:300]}")
        return int(answer.json()["usage"]["prompt_tokens"])

    rows = ["| pass | prompts | server's prompt tokens | wall time |", "|---|---|---|---|"]
    with serving(extra=("--n_ctx", "4096")) as base, httpx.Client() as client:
        send(client, base, "warm up")
        timed = {}
        for name in ("each prompt extends the last (prefix reused)", "from scratch each step"):
            t0, counted = time.monotonic(), 0
            for run in prompts:
                for step, text in enumerate(run):
                    if name.startswith("from scratch"):
                        text = f"Step {step + 1} of the call.\n{text}"
                    counted += send(client, base, text)
            timed[name] = time.monotonic() - t0
            rows.append(f"| {name} | {sum(map(len, prompts))} | {counted:,} | "
                        f"{timed[name]:.1f} s |")  # fmt: skip
        cached, scratch = timed.values()
        rows.append(f"| **ratio** | | | **{cached / scratch:.2f}** |")
    return rows


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    count = int(args[0]) if args else 6
    recorded: list[list[str]] = []
    rows = [
        "| program | steps | graded (calls) | prompt tokens sent | not recomputed, fixed prefix "
        "only | not recomputed, each prompt's prefix | computed with a prefix cache | computed "
        "from scratch | ratio | trace method: calls, prompt tokens |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ratios: list[float] = []
    totals = {"calls": 0, "sent": 0, "cached": 0}
    for name, item in items(count):
        oracle = Recording()
        with oracle_server(oracle) as model:
            session = Session(model)
            emulation = stepping.emulate(item, session)
            whole = Session(model)
            trace.emulate(item, whole)
        # (The trace method's answer ends the stream early, before the server's usage: its
        # prompt is counted here, by the same estimate.)
        asked = trace.messages(item.source, item.call)
        whole_tokens = tokens(sum(len(m["content"]) for m in asked))
        verdict = emulation.verdict or {}
        assert verdict.get("status") == "correct", (name, verdict.get("explanation"))
        prompts = oracle.prompts
        assert len(prompts) == session.calls
        recorded.append(prompts)
        # From the run's stored sizes (details.stepping.prompt_chars, what the run page shows),
        # checked against the prompts the oracle received: each starts with the one before it.
        sizes = emulation.details["stepping"]["prompt_chars"]
        assert sizes == [len(p) for p in prompts]
        assert all(b.startswith(a) for a, b in itertools.pairwise(prompts))
        sent = sum(tokens(n) for n in sizes)
        reused = sum(tokens(n) for n in sizes[:-1])
        # The floor: every call after the first finds the fixed prefix (instructions, program,
        # call) cached, whatever the steps after it.
        floor = tokens(emulation.details["stepping"]["prefix_chars"]) * (len(sizes) - 1)
        computed = sent - reused
        ratio = computed / sent
        ratios.append(ratio)
        totals["calls"] += session.calls
        totals["sent"] += sent
        totals["cached"] += computed
        figures = verdict["figures"]
        rows.append(
            f"| {name} | {figures['total']} | {session.calls} | {sent:,} | {floor:,} | "
            f"{reused:,} | {computed:,} | {sent:,} | {ratio:.2f} | {whole.calls}, "
            f"{whole_tokens:,} |"
        )
    rows.append(
        f"| **all {count}** | | {totals['calls']} | {totals['sent']:,} | | | "
        f"{totals['cached']:,} | {totals['sent']:,} | **{totals['cached'] / totals['sent']:.2f}** "
        f"(median {statistics.median(ratios):.2f}) | |"
    )
    print(f"Re-synced stepping on the first {count} CRUXEval programs, the oracle model\n")
    print("\n".join(rows))
    if "--llama" in sys.argv:
        # A timeout's SIGTERM leaves through the server's context manager, which stops it.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        print("\nThe same prompts, prompt processing on the embedded model's server\n")
        print("\n".join(replay(recorded)))


if __name__ == "__main__":
    main()
