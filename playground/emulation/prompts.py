"""CRUXEval-O style prompts (Gu et al., 2024): the function, an assertion with ``??`` for the
output, two worked examples, and the answer between [ANSWER] tags."""

from __future__ import annotations

DIRECT_INSTRUCTIONS = (
    "You are given a Python function and an assertion containing an input to the function. "
    "Complete the assertion with a literal (no unsimplified expressions, no function calls) "
    "containing the output when executing the provided code on the given input, even if the "
    "function is incorrect or incomplete. Do NOT output any extra information. Provide the full "
    "assertion with the correct output in [ANSWER] and [/ANSWER] tags, following the examples."
)

COT_INSTRUCTIONS = (
    "You are given a Python function and an assertion containing an input to the function. "
    "Complete the assertion with a literal (no unsimplified expressions, no function calls) "
    "containing the output when executing the provided code on the given input, even if the "
    "function is incorrect or incomplete. Execute the program step by step before arriving at an "
    "answer, and provide the full assertion with the correct output in [ANSWER] and [/ANSWER] "
    "tags, following the examples."
)

_EXAMPLE_CODE = "def f(s):\n    return s + 'a'"
_EXAMPLE_CALL = "f('x9j')"

DIRECT_EXAMPLE = (
    f"[PYTHON]\n{_EXAMPLE_CODE}\nassert {_EXAMPLE_CALL} == ??\n[/PYTHON]\n"
    f"[ANSWER]\nassert {_EXAMPLE_CALL} == 'x9ja'\n[/ANSWER]"
)

COT_EXAMPLE = (
    f"[PYTHON]\n{_EXAMPLE_CODE}\nassert {_EXAMPLE_CALL} == ??\n[/PYTHON]\n"
    "[THOUGHT]\nLet's execute the code step by step:\n\n"
    "1. The function f is defined, which takes a single argument s.\n"
    '2. The function is called with the argument "x9j", so within the function, s is '
    'initially "x9j".\n'
    '3. Inside the function, s is concatenated with "a", giving "x9ja".\n'
    '4. The function then returns "x9ja".\n'
    "[/THOUGHT]\n"
    f"[ANSWER]\nassert {_EXAMPLE_CALL} == 'x9ja'\n[/ANSWER]"
)


def question(source: str, call: str) -> str:
    return f"[PYTHON]\n{source.rstrip()}\nassert {call.strip()} == ??\n[/PYTHON]"
