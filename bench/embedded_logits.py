"""Benchmark: the embedded model's server with llama-cpp-python's default ``logits_all=True``
against ``--logits_all False``, on the prompts our methods send.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/embedded_logits.py [--rounds 6] [--tokens 48]

llama-cpp-python's server keeps the logits of every position it evaluates unless told
otherwise (``ModelSettings.logits_all`` defaults to True): a float32 row of the whole vocabulary
(49,152 for SmolLM2) per prompt token, and a buffer of ``n_ctx`` such rows. Nothing the site
asks of that server needs them: methods read the generated text, and surprise scores the
embedded model in the worker's own process (``LlamaCppLogprobs``), not through the server.

Both servers run at once (same threads, same GGUF file), and each round sends the same new
prompt to one then the other, alternating which goes first, so the machine's load falls on both
alike. Each prompt is the ``trace`` method's prompt for a CRUXEval program (about 900 tokens,
new to the server each round: no prompt cache helps), answered with ``--tokens`` tokens at
temperature 0. Prints each round's wall times, the median ratio (off / on), each server's
resident memory after the rounds, and whether both answered the same text (they must: the
setting changes what is kept, not what is computed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from playground.emulation import trace as trace_method  # noqa: E402
from playground.llm import embedded  # noqa: E402

DATASET = ROOT / "playground" / "programs" / "datasets" / "cruxeval" / "cruxeval.jsonl"


def programs(n: int) -> list[tuple[str, str]]:
    """The first ``n`` CRUXEval programs with their calls (the data set's ``input``)."""
    found: list[tuple[str, str]] = []
    with DATASET.open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            found.append((row["code"], f"f({row['input']})"))
            if len(found) == n:
                break
    return found


def rss_mib(port: int) -> float:
    """The resident memory of the process listening on ``port`` (from /proc, Linux only)."""
    out = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    pid = out.split("pid=")[1].split(",")[0] if "pid=" in out else ""
    if not pid:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ask(base: str, messages: list[dict[str, str]], tokens: int) -> tuple[float, str, int]:
    started = time.perf_counter()
    answer = httpx.post(
        f"{base}/chat/completions",
        json={"messages": messages, "max_tokens": tokens, "temperature": 0},
        timeout=600,
    ).json()
    took = time.perf_counter() - started
    return took, answer["choices"][0]["message"]["content"], answer["usage"]["prompt_tokens"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"commit {commit}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with contextlib.ExitStack() as stack:
        on = stack.enter_context(embedded.serving(threads=args.threads))
        off = stack.enter_context(
            embedded.serving(threads=args.threads, extra=["--logits_all", "False"])
        )
        servers = {"logits_all=True (default)": on, "logits_all=False": off}
        times: dict[str, list[float]] = {name: [] for name in servers}
        same = 0
        for i, (source, call) in enumerate(programs(args.rounds)):
            messages = trace_method.messages(source, call)
            order = list(servers.items()) if i % 2 == 0 else list(servers.items())[::-1]
            texts = {}
            for name, base in order:
                took, text, n_prompt = ask(base, messages, args.tokens)
                times[name].append(took)
                texts[name] = text
            same += len(set(texts.values())) == 1
            print(
                f"round {i + 1}: {n_prompt} prompt tokens; "
                + ", ".join(f"{name} {times[name][-1]:.2f} s" for name in servers)
            )
        medians = {name: statistics.median(values) for name, values in times.items()}
        for name, base in servers.items():
            port = int(base.rsplit(":", 1)[1].split("/")[0])
            print(f"{name}: median {medians[name]:.2f} s, resident {rss_mib(port):.0f} MiB")
        ratio = medians["logits_all=False"] / medians["logits_all=True (default)"]
        print(f"ratio, logits_all=False / default (median wall time): {ratio:.2f}")
        print(f"the same answer from both in {same} of {args.rounds} rounds")


if __name__ == "__main__":
    main()
