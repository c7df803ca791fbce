"""The emulation methods a run can use (a new method: one module and one line here)."""

from __future__ import annotations

METHODS: dict[str, str] = {
    "direct": "Direct output prediction (CRUXEval-O)",
    "cot": "Chain of thought, then the output (CRUXEval-O CoT)",
}
