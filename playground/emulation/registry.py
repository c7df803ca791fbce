"""The emulation methods, one ``Method`` record each: every fact about a method lives here.

A new method is one module in this package, one record here and one test file (the steps are in
docs/ARCHITECTURE.md, "Emulation methods"). Pages, tasks, services and commands read a method's
facts from its record and never compare its name with a literal
(tests/emulation/test_method_literals.py checks that).
Entries are resolved lazily, so listing the methods imports none of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playground.emulation.base import Emulation, Item, Session

# The token budget of a run whose method has none (a real-only run, an unknown name).
DEFAULT_TOKENS = 512


@dataclass(frozen=True)
class Method:
    """What the site knows about one emulation method; the defaults are what most methods do."""

    name: str
    label: str
    target: str  # "module:function"
    kinds: frozenset[str]  # the kinds of item it accepts: program, puzzle, task
    # The token budget of one model answer (a form may lower it, never raise it): a written
    # trace or a Think-and-Execute simulation needs room; a direct prediction does not.
    max_tokens: int = DEFAULT_TOKENS
    # The result is a trace to compare step by step with the real one (else: the value only).
    compares_steps: bool = False
    # The model writes the step trace itself, as text: a readable trace without a result is
    # "unfinished", not "unreadable".
    writes_trace: bool = False
    # The format of the trace it writes: "json" (one JSON object per step, the trace method's)
    # or "cwm" (CWM's frames, compare/cwm.py): why an unfinished one gives no value is told in
    # its own terms.
    trace_format: str = "json"
    # On a program it predicts the value of the call, so a run without a call is refused.
    needs_call: bool = False
    # Its trace starts at the call (the model traces only the call): the real trace, when the
    # program has a call, is compared from the call on.
    compares_from_call: bool = False
    # It emits steps while the model writes: the run page shows them live.
    live_steps: bool = False
    # Python runs the lines it can and the model simulates the rest: the steps the model
    # simulated carry "lm", the page marks their lines, and a run where Python ran every line
    # never asked the model (its verdict says so instead of judging the model).
    lm_lines: bool = False
    # The benchmark tasks it answers: "output" prediction (what a call returns / a task's
    # answer), "input" prediction (a call that returns the given output: its answer is a call,
    # run in the sandbox, and judged by the value it returns) or "puzzle" solving (an answer
    # that sat accepts).
    tasks: frozenset[str] = frozenset({"output"})
    # It can emulate a program under a semantic rule (sandbox/inside/semantics.py): its prompts
    # state the rule and whatever it runs itself runs under it. If not, ``why_no_rule`` says why
    # (a run asking for both is refused with it).
    changed_semantics: bool = True
    why_no_rule: str = ""
    # The verdict grades each step, not only the final value (``emulation/stepping.py``: the
    # model predicts every next step, graded against the real one); other methods get a
    # step-by-step comparison, when there is one, beside a verdict on the value.
    graded_per_step: bool = False
    # How a BIG-Bench Hard output labelled with this method is read when imported (published
    # outputs, benchmarks/official.py): "after-reasoning" (a chain of thought closed by "So the
    # answer is ..."), "alone" (the answer only), or "" (no such outputs are imported).
    task_answer: str = ""
    # Its answers are probes about the run (coverage, state, path, output, executed lines;
    # ``emulation/probes.py``): the verdict grades each probe against the real trace, with
    # scores per kind and incremental consistency, and the run page lists each probe's mark.
    asks_probes: bool = False
    # Its plan's pseudocode prints the state step by step (Think-and-Execute): on a program the
    # pseudocode is run for real on the call and its prints give the path verdict
    # (``tae.plan_path``).
    checks_plan: bool = False

    @property
    def judges_path(self) -> bool:
        """It gets a path verdict beside the verdict on its result (issue 20): its own steps,
        its probes, its plan's prints, or its graded steps."""
        return self.compares_steps or self.asks_probes or self.checks_plan or self.graded_per_step

    @property
    def predicts_input(self) -> bool:
        """Its answer is a call (CRUXEval-I): judged by what that call returns when run."""
        return "input" in self.tasks

    @property
    def emulate(self) -> Callable[[Item, Session], Emulation]:
        return _resolve(self.target)


_P, _T, _Z = "program", "task", "puzzle"
REGISTRY: dict[str, Method] = {
    m.name: m
    for m in [
        Method("direct", "Direct output prediction (CRUXEval-O)",
               "playground.emulation.output_prediction:emulate_direct", frozenset({_P}),
               max_tokens=256, needs_call=True, task_answer="alone"),
        Method("cot", "Chain of thought, then the output (CRUXEval-O CoT)",
               "playground.emulation.output_prediction:emulate_cot", frozenset({_P}),
               max_tokens=1024, needs_call=True, task_answer="after-reasoning"),
        Method("input-direct", "Direct input prediction (CRUXEval-I)",
               "playground.emulation.input_prediction:emulate_direct", frozenset({_P}),
               max_tokens=256, needs_call=True, tasks=frozenset({"input"})),
        Method("input-cot", "Chain of thought, then an input (CRUXEval-I CoT)",
               "playground.emulation.input_prediction:emulate_cot", frozenset({_P}),
               max_tokens=1024, needs_call=True, tasks=frozenset({"input"})),
        Method("trace", "Model-written step trace",
               "playground.emulation.trace:emulate", frozenset({_P}),
               max_tokens=2048, compares_steps=True, writes_trace=True, needs_call=True,
               compares_from_call=True, live_steps=True),
        Method("cwm-trace", "Step trace in CWM's trace-prediction format",
               "playground.emulation.cwm_trace:emulate", frozenset({_P}),
               max_tokens=4096, compares_steps=True, writes_trace=True, trace_format="cwm",
               needs_call=True, compares_from_call=True, live_steps=True),
        Method("coc", "Chain of Code: Python runs what it can, the model the rest",
               "playground.emulation.coc:emulate", frozenset({_P, _T}),
               max_tokens=512, compares_steps=True, live_steps=True, lm_lines=True),
        Method("tae", "Think-and-Execute: task-level pseudocode, simulated",
               "playground.emulation.tae:emulate", frozenset({_P, _T}),
               max_tokens=1024, live_steps=True, checks_plan=True),
        Method("puzzle", "Solve the puzzle (answer checked by sat in the sandbox)",
               "playground.emulation.puzzle:emulate", frozenset({_Z}),
               max_tokens=768, tasks=frozenset({"puzzle"}), changed_semantics=False,
               why_no_rule="a puzzle is not a program run."),
        Method("probe", "Probes of the run: coverage, state, path, output, lines (REval)",
               "playground.emulation.probes:emulate", frozenset({_P}),
               max_tokens=1536, asks_probes=True),
        Method("probe-chain", "Probes one at a time, each after the true answers before it",
               "playground.emulation.probes:emulate_chain", frozenset({_P}),
               max_tokens=1024, asks_probes=True),
        Method("step", "Step by step: each next step predicted, then the real one given back",
               "playground.emulation.stepping:emulate", frozenset({_P}),
               max_tokens=256, needs_call=True, graded_per_step=True),
        Method("step-free", "Step by step from its own steps, re-synced at each divergence",
               "playground.emulation.stepping:emulate_free", frozenset({_P}),
               max_tokens=256, needs_call=True, graded_per_step=True),
    ]
}  # fmt: skip

# The classroom's key run when an item names no method: a spot-the-divergence item needs a
# step trace to compare; any other model item asks for the value.
DEFAULT_METHOD = "direct"
DEFAULT_STEP_METHOD = "trace"


def max_tokens_for(name: str) -> int:
    """The token budget of one model answer for a run of this method."""
    method = REGISTRY.get(name)
    return method.max_tokens if method is not None else DEFAULT_TOKENS


def methods_for(kind: str) -> dict[str, str]:
    """The methods that accept an item of this kind, name -> label."""
    return {name: m.label for name, m in REGISTRY.items() if kind in m.kinds}


@cache
def method_digest(name: str, rule: str = "") -> str:
    """A digest of what makes the method answer as it does: its record (budget, facts), its
    module's source (prompts, how answers are read) and the shared prompts', and the semantic
    rule its prompts state (``rule``: a name; "" for standard Python). An evaluation keeps it
    with its configuration, so two evaluations made under different prompts are never taken for
    the same setting. Read from the files, nothing imported."""
    method = REGISTRY[name]
    h = hashlib.sha256(repr(method).encode())
    if rule:
        from playground.sandbox.inside.semantics import check

        h.update(b"\0rule\0" + rule.encode() + b"\0" + check(rule).text.encode())
    for module in (method.target.partition(":")[0], "playground.emulation.prompts"):
        spec = find_spec(module)
        origin = spec.origin if spec is not None else None
        h.update(b"\0" + module.encode() + b"\0")
        if origin:
            h.update(Path(origin).read_bytes())
    return h.hexdigest()


@cache
def _resolve(target: str) -> Callable[..., Emulation]:
    module, _, function = target.partition(":")
    return getattr(import_module(module), function)
