"""Benchmark: the prompt Chain of Code sends per model call for a 100 KB program, with the whole
source (before issue 13) and with the window around the line (now).

    .venv/bin/python bench/coc_window.py

No database, no model server: the program (about 100 KB of plain functions, then one function
with 64 lines that call helpers that do not exist) runs once in the real sandbox in Chain of Code
mode with the signed-in limit of 64 model calls; the lmulator builds both prompts for every
line it is asked about and answers itself. Tokens are counted with the embedded model's own
tokenizer (SmolLM2's, from its GGUF file) when llama-cpp-python is installed, else estimated
as bytes / 2 (the bound the product uses without a tokenizer).
"""

from __future__ import annotations

import ast
import os
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")

from playground import sandbox  # noqa: E402
from playground.emulation import coc  # noqa: E402
from playground.sandbox.lmulator import LMRequest  # noqa: E402


def whole_program_messages(source: str, request: Any) -> list[dict[str, str]]:
    """The lmulator prompt as it was before issue 13 (the whole source every call)."""
    variables = dict(list(request.locals.items())[:50])
    want = "Reply with the variables this line sets or changes (total), e.g. {'x': 3}."
    prompt = (
        f"{coc.LMULATOR_INSTRUCTIONS}\n\n{coc.LMULATOR_EXAMPLE}\n\n[PYTHON]\n{source.rstrip()}\n"
        f"[/PYTHON]\nLine {request.line}: `{request.code}` ({request.error})\n"
        f"Variables: {variables!r}\n{want}\n"
    )
    return [{"role": "user", "content": prompt}]


def program(helpers: int = 64, size: int = 100_000) -> str:
    filler: list[str] = []
    i = 0
    while sum(len(line) + 1 for line in filler) < size - 2_500:
        body = "".join(
            f"    x = x * {j} + {i % 7}  # the {j}th step of plain_{i}\n" for j in range(8)
        )
        filler.append(f"def plain_{i}(x):\n{body}    return x\n\n")
        i += 1
    calls = "".join(f"    total += helper_{k}(total)\n" for k in range(helpers))
    return "".join(filler) + "def main():\n    total = 0\n" + calls + "    return total\n"


def counter() -> tuple[str, Any]:
    try:
        from llama_cpp import Llama

        from playground.llm.embedded import gguf_path

        llama = Llama(model_path=str(gguf_path()), vocab_only=True, verbose=False)
        return "SmolLM2 tokenizer", lambda text: len(llama.tokenize(text.encode(), special=True))
    except Exception:
        return "bytes / 2", lambda text: -(-len(text.encode()) // 2)


def main() -> None:
    source = program()
    how, count = counter()
    before: list[tuple[int, int]] = []
    after: list[tuple[int, int]] = []

    def lmulator(request: LMRequest) -> str:
        for messages, into in (
            (whole_program_messages(source, request), before),
            (coc.lmulator_messages(source, request), after),
        ):
            text = messages[0]["content"]
            into.append((len(text.encode()), count(text)))
        k = int(request.code.split("helper_")[1].split("(")[0])
        return repr({"total": ast.literal_eval(request.locals["total"]) + k})

    trace = sandbox.run(source, call="main()", lmulator=lmulator)
    if not after:
        raise SystemExit(f"the model was never asked: {trace['status']} {trace['error']}")
    print(f"program: {len(source.encode()):,} bytes, {source.count(chr(10)):,} lines; "
          f"{len(after)} model calls; tokens: {how}; result {trace['result']}")  # fmt: skip
    print("| prompt per call | bytes (median) | tokens (median) | tokens, all calls |")
    print("|---|---|---|---|")
    for name, rows in (("whole program (before)", before), ("window (now)", after)):
        print(
            f"| {name} | {statistics.median(b for b, _ in rows):,.0f} | "
            f"{statistics.median(t for _, t in rows):,.0f} | {sum(t for _, t in rows):,} |"
        )


if __name__ == "__main__":
    main()
