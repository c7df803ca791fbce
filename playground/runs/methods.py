"""The ways a run can be made: the real execution alone, or with a model emulating it."""

from __future__ import annotations

from playground.emulation.registry import METHODS as EMULATION_METHODS

METHODS = {"real": "Real execution only", **EMULATION_METHODS}

# Token budget of one model answer per method (a form may lower it): a written trace or a
# Think-and-Execute simulation needs room; a direct prediction does not.
METHOD_TOKENS = {"direct": 256, "cot": 1024, "trace": 2048, "coc": 512, "tae": 1024, "puzzle": 768}
