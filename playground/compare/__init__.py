"""Comparing an emulated trace with the real one (pure Python, no Django).

``compare_traces`` walks the two step lists aligned by ``align`` and reports the first
divergence, agreement scores and a status for every step; ``same_repr`` compares two value reprs
by meaning. See ``playground.compare.trace`` for the semantics.
"""

from playground.compare.align import align
from playground.compare.reprs import same_repr
from playground.compare.trace import Comparison, compare_traces

__all__ = ["Comparison", "align", "compare_traces", "same_repr"]
