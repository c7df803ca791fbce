"""Benchmark: what Chain of Code and Think-and-Execute cost in model calls and prompt tokens.

    .venv/bin/python bench/emulation_costs.py

No database. The model is the oracle server of the tests (tests/oracle.py: always right, and it
reports prompt tokens as characters / 4, the same estimate for both sides of each ratio); the
programs run in the real sandbox.

1. Chain of Code, on the same programs (each calls helpers that do not exist, so the model must
   simulate those lines): our one-pass interweaving, where a paused line is answered and the
   program continues, against the reference notebook's approach, which re-runs the whole
   program after each line the model simulated (answers are not cached, so the k-th run asks
   again for the k-1 lines before). Model calls and prompt tokens per program; ratio = ours /
   re-run.
2. Think-and-Execute over the instances of one BIG-Bench Hard task: prompt tokens per instance
   with the plan reused (Think once, then Execute per instance) against thinking again for every
   instance. Ratio = reuse / no reuse.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

from playground.emulation import coc, tae  # noqa: E402
from playground.emulation.base import Item, MemoryPlans, Session  # noqa: E402
from playground.sandbox.lmulator import LMRequest, LMulatorError  # noqa: E402
from tests.oracle import Oracle, oracle_server  # noqa: E402

FRUITS = {"apple", "pear", "banana", "plum", "cherry", "mango", "kiwi", "grape"}
SARCASTIC = {"oh great, another monday", "i just love waiting in line", "what a surprise"}

PROGRAMS = [
    (
        "fruit count",
        "words = ['apple', 'chair', 'pear', 'table', 'plum', 'lamp']\ncount = 0\n"
        "for w in words:\n    if is_fruit(w):\n        count += 1\nanswer = count\n",
    ),
    (
        "sarcasm labels",
        "lines = ['oh great, another monday', 'the sun is out', 'what a surprise', 'tea is hot']\n"
        "labels = []\nfor s in lines:\n    label = is_sarcastic(s)\n    labels.append(label)\n"
        "answer = sum(labels)\n",
    ),
    (
        "fruit basket",
        "basket = {'banana': 3, 'brick': 2, 'kiwi': 4, 'cherry': 1, 'spoon': 5, 'mango': 2}\n"
        "total = 0\nfor name, n in basket.items():\n    fruit = is_fruit(name)\n"
        "    if fruit:\n        total += n\nanswer = total\n",
    ),
    (
        "mixed",
        "items = ['grape', 'i just love waiting in line', 'desk', 'apple']\nfruits = 0\n"
        "sarcasm = 0\nfor x in items:\n    if is_fruit(x):\n        fruits += 1\n"
        "    elif is_sarcastic(x):\n        sarcasm += 1\nanswer = (fruits, sarcasm)\n",
    ),
]


def knowledge(line: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The truth the oracle answers with, for the helpers of the programs above."""
    subject = next(
        (variables[n] for n in ("w", "s", "name", "x") if isinstance(variables.get(n), str)), ""
    )
    if "is_fruit" in line and "=" in line.split("is_fruit")[0]:
        target = line.split("=")[0].strip()
        return {target: subject in FRUITS}
    if "is_sarcastic" in line and "=" in line.split("is_sarcastic")[0]:
        target = line.split("=")[0].strip()
        return {target: subject.lower() in SARCASTIC}
    if "is_fruit" in line:
        return {"__value__": subject in FRUITS}
    return {"__value__": subject.lower() in SARCASTIC}


def one_pass(source: str, session: Session) -> dict[str, Any]:
    emulation = coc.emulate(Item(kind="program", source=source), session)
    assert emulation.trace is not None
    assert emulation.trace["status"] == "ok", emulation.trace
    return emulation.trace


def rerun(source: str, session: Session) -> dict[str, Any]:
    """The reference approach: after each newly simulated line, run the program again from the
    start, asking the model again for every simulated line on the way."""
    state = {"known": 0, "asked": 0}

    def lmulator(request: LMRequest) -> str:
        state["asked"] += 1
        reply = session.chat(coc.lmulator_messages(source, request))
        found = coc.dict_literal(reply.text)
        if found is None:
            raise LMulatorError("no dict literal")
        if state["asked"] > state["known"]:  # a line not simulated before: start again
            raise LMulatorError("restart")
        return found

    while state["known"] <= 200:
        state["asked"] = 0
        trace = session.run(source, lmulator=lmulator)
        if trace["status"] == "ok":
            return trace
        state["known"] += 1
    raise RuntimeError("no progress")


def bench_coc(model: Any) -> list[str]:
    rows = ["| program | lines simulated | calls, one pass | calls, re-run | prompt tokens, "
            "one pass | prompt tokens, re-run | ratio (calls) | ratio (tokens) |",
            "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    ratios_calls, ratios_tokens = [], []
    for name, source in PROGRAMS:
        ours, theirs = Session(model), Session(model)
        trace_ours = one_pass(source, ours)
        trace_theirs = rerun(source, theirs)
        assert trace_ours["steps"][-1].get("locals") == trace_theirs["steps"][-1].get("locals")
        simulated = trace_ours["stats"].get("lm_calls", ours.calls)
        rc, rt = ours.calls / theirs.calls, ours.prompt_tokens / theirs.prompt_tokens
        ratios_calls.append(rc)
        ratios_tokens.append(rt)
        rows.append(
            f"| {name} | {simulated} | {ours.calls} | {theirs.calls} | {ours.prompt_tokens:,} | "
            f"{theirs.prompt_tokens:,} | {rc:.2f} | {rt:.2f} |"
        )
    rows.append(
        f"| **median** | | | | | | **{statistics.median(ratios_calls):.2f}** | "
        f"**{statistics.median(ratios_tokens):.2f}** |"
    )
    return rows


def bench_tae(model: Any, oracle: Oracle) -> list[str]:
    dataset = ROOT / "playground/programs/datasets/bbh/boolean_expressions.json"
    examples = json.loads(dataset.read_text())["examples"][:20]
    oracle.targets.update({e["input"]: e["target"] for e in examples})
    shots = tuple((e["input"], e["target"]) for e in examples[:3])

    def item(e: dict[str, str]) -> Item:
        return Item(
            kind="task",
            task="boolean_expressions",
            question=e["input"],
            target=e["target"],
            examples=shots,
        )

    reuse = MemoryPlans()
    with_reuse = [Session(model, plans=reuse) for _ in examples]
    without = [Session(model, plans=MemoryPlans()) for _ in examples]
    for e, a, b in zip(examples, with_reuse, without, strict=True):
        assert tae.emulate(item(e), a).verdict["status"] == "correct"  # type: ignore[index]
        assert tae.emulate(item(e), b).verdict["status"] == "correct"  # type: ignore[index]
    per_reuse = sum(s.prompt_tokens for s in with_reuse) / len(examples)
    per_without = sum(s.prompt_tokens for s in without) / len(examples)
    calls_reuse = sum(s.calls for s in with_reuse)
    calls_without = sum(s.calls for s in without)
    return [
        "| plan | instances | model calls | prompt tokens per instance | ratio |",
        "|---|---|---|---|---|",
        f"| thought again for every instance (baseline) | {len(examples)} | {calls_without} | "
        f"{per_without:,.0f} | 1.00 |",
        f"| thought once, reused | {len(examples)} | {calls_reuse} | {per_reuse:,.0f} | "
        f"**{per_reuse / per_without:.2f}** |",
    ]


def main() -> None:
    oracle = Oracle(knowledge=knowledge)
    with oracle_server(oracle) as model:
        print("Chain of Code: one pass against re-running the program per simulated line\n")
        print("\n".join(bench_coc(model)))
        print("\nThink-and-Execute over 20 instances of boolean_expressions\n")
        print("\n".join(bench_tae(model, oracle)))


if __name__ == "__main__":
    main()
