"""The emulation methods (a new method: one module and one line here).

Entries are resolved lazily, so listing the methods imports none of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playground.emulation.base import Emulation, Item, Session


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    target: str  # "module:function"
    kinds: frozenset[str]  # program, puzzle, task
    compares_steps: bool = False  # the result is a trace to compare step by step

    @property
    def emulate(self) -> Callable[[Item, Session], Emulation]:
        return _resolve(self.target)


_P, _T, _Z = "program", "task", "puzzle"
REGISTRY: dict[str, Method] = {
    m.name: m
    for m in [
        Method("direct", "Direct output prediction (CRUXEval-O)",
               "playground.emulation.output_prediction:emulate_direct", frozenset({_P})),
        Method("cot", "Chain of thought, then the output (CRUXEval-O CoT)",
               "playground.emulation.output_prediction:emulate_cot", frozenset({_P})),
        Method("trace", "Model-written step trace",
               "playground.emulation.trace:emulate", frozenset({_P}), compares_steps=True),
        Method("coc", "Chain of Code: Python runs what it can, the model the rest",
               "playground.emulation.coc:emulate", frozenset({_P, _T}), compares_steps=True),
        Method("tae", "Think-and-Execute: task-level pseudocode, simulated",
               "playground.emulation.tae:emulate", frozenset({_P, _T})),
        Method("puzzle", "Solve the puzzle (answer checked by sat in the sandbox)",
               "playground.emulation.puzzle:emulate", frozenset({_Z})),
    ]
}  # fmt: skip
METHODS: dict[str, str] = {name: m.label for name, m in REGISTRY.items()}


def methods_for(kind: str) -> dict[str, str]:
    """The methods that accept an item of this kind, name -> label."""
    return {name: m.label for name, m in REGISTRY.items() if kind in m.kinds}


@cache
def _resolve(target: str) -> Callable[..., Emulation]:
    module, _, function = target.partition(":")
    return getattr(import_module(module), function)
