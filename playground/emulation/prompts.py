"""CRUXEval style prompts (Gu et al., 2024): the function, an assertion with ``??`` for the
output (CRUXEval-O) or the input (CRUXEval-I), worked examples, and the answer between [ANSWER]
tags."""

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


# CRUXEval-I: predict an input from the code and the output. The benchmark's own two prompts,
# word for word (facebookresearch/cruxeval, prompts.py: make_direct_input_prompt and
# make_cot_input_prompt, MIT), so that a score here is a score on CRUXEval-I. The function's
# name is the program's (``f`` in CRUXEval) and the output is the real run's value.
INPUT_DIRECT_INSTRUCTIONS = (
    "You will be given a function f and an output in the form f(??) == output. Find any input "
    "such that executing f on the input leads to the given output. There may be multiple "
    "answers, but you should only output one. In [ANSWER] and [/ANSWER] tags, complete the "
    "assertion with one such input that will produce the output when executing the function."
)
INPUT_DIRECT_EXAMPLES = (
    "[PYTHON]\ndef f(my_list):\n    count = 0\n    for i in my_list:\n"
    "        if len(i) % 2 == 0:\n            count += 1\n    return count\n"
    "assert f(??) == 3\n[/PYTHON]\n"
    '[ANSWER]\nassert f(["mq", "px", "zy"]) == 3\n[/ANSWER]\n\n'
    '[PYTHON]\ndef f(s1, s2):\n    return s1 + s2\nassert f(??) == "banana"\n[/PYTHON]\n'
    '[ANSWER]\nassert f("ba", "nana") == "banana"\n[/ANSWER]'
)
INPUT_COT_INSTRUCTIONS = (
    "You will be given a function f and an output in the form f(??) == output. Your task is to "
    "find any input such that executing f on the input leads to the given output. There may be "
    "multiple answers, but only output one. First, think step by step. You MUST surround the "
    "answer with [ANSWER] and [/ANSWER] tags. Express your answer as a passing assertion "
    "containing the input and the given output."
)
INPUT_COT_EXAMPLE = (
    "[PYTHON]\ndef f(x):\n    return x + 1\nassert f(??) == 17\n[/PYTHON]\n"
    "[THOUGHT]\nTo find an input such that executing f on the input leads to the given output, "
    "we can work backwards from the given assertion. We know that f(??) == 17. \n\n"
    "Since the function f(x) returns x + 1, for f(??) to be equal to 17, the value of ?? should "
    "be 16. \n[/THOUGHT]\n[ANSWER]\nassert f(16) == 17\n[/ANSWER]"
)


def input_question(source: str, function: str, output: str) -> str:
    return f"[PYTHON]\n{source.rstrip()}\nassert {function}(??) == {output}\n[/PYTHON]"


# A program under a semantic rule (issue 21): what every method's prompt says, just before the
# program, in every prompt of the run. The examples a prompt shows keep standard Python; the
# note says so, so that a model cannot take them for the rule's.
RULE_NOTE = (
    "[RULE]\nIMPORTANT: the program below does not run under standard Python. One rule of the "
    "language is changed:\n{text}\nThis rule applies to the program's own code (not to the "
    "call's arguments, nor inside built-in functions such as sorted, sum or min); everything "
    "else is standard Python. Any examples above follow standard Python; answer for the program "
    "below as it runs under this rule.\n[/RULE]"
)


def rule_note(rule: str) -> str:
    """What a prompt says about the run's semantic rule, followed by a blank line; "" for
    standard Python. Raises UnknownRule (a ValueError) for a name not in the catalogue."""
    if not rule:
        return ""
    from playground.sandbox.inside.semantics import check

    return RULE_NOTE.format(text=check(rule).text) + "\n\n"
