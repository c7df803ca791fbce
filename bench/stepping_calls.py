"""Benchmark: what re-synced stepping (``step``, issue 22) costs in model calls and prompt tokens,
with its shared-prefix prompts against re-prompting from scratch each step.

    .venv/bin/python bench/stepping_calls.py [programs]

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
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

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


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 6
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


if __name__ == "__main__":
    main()
