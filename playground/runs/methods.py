"""The ways a run can be made: the real execution alone, or with a model emulating it."""

from __future__ import annotations

from playground.emulation.registry import METHODS as EMULATION_METHODS

METHODS = {"real": "Real execution only", **EMULATION_METHODS}
