"""The runner's wire, seen from the parent: the request written to it (``encode_request``) and
its JSON lines read back, where none of them can be trusted.

The user's program shares the runner's process and can write anything on the protocol
descriptor. ``json.loads`` turns hostile input into many times its size (``{},{},...`` into 24
times: an empty dict is 64 bytes; a string that mixes ASCII with one escaped emoji into 6 times),
so a line is bounded before anything is built from it:

- ``LineBuffer`` splits the stream into lines, searching each byte for a line end once (never
  the whole buffer again per chunk) and refusing a line longer than ``MAX_LINE_BYTES``;
- ``load`` refuses a line that is not ASCII (the runner escapes everything else), then computes
  an upper bound of what ``json.loads`` would allocate for it from C-speed passes over its text
  (its values from the count of ``,:[{``, its strings' characters with the width their escapes
  force; for a line whose strings hold many such characters, the same with its strings
  replaced by ``""`` first) and refuses the line when that bound does not fit ``budget``. The
  bound's constants were measured with CPython 3.11 (bench/protocol_memory.py).

Together they keep the memory a line costs within 4x ``MAX_LINE_BYTES``. The tracer flushes its
batches at ``BATCH_CHARS`` characters, so a real trace never comes near either limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

from playground.sandbox.limits import Limits
from playground.sandbox.schema import TraceInvalid

MAX_LINE_BYTES = 4 * 1024 * 1024
# What one line may cost while it is parsed: the buffer holding it, its text, what json.loads
# builds. The caller's retained results (validated steps) are bounded by the trace cap instead.
MEMORY_FACTOR = 4

# A JSON string (escapes included); what is left when every one is replaced by "" is structure.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_ASTRAL = re.compile(r"\\u[dD][89abAB]")  # a surrogate escape: its string takes 4 bytes a char
_WIDE = re.compile(r"\\u(?!00)")  # past Latin-1: its string takes 2 bytes a character
# Measured worst cases (CPython 3.11, 64-bit; bench/protocol_memory.py): a value costs at most
# ~72 bytes (a one-key dict in a list; a key of a large dict, with json's key memo); a string's
# characters cost 1 byte each without escapes (a slice of the line) and, with escapes, through
# the decoder's growing buffer, 2.5 (Latin-1), 3.75 (2-byte) or 6.25 bytes (4-byte characters).
_VALUE_BYTES = 100
# Above this many quotes the exact count (a regex substitution, itself ~70 bytes a string) is
# not tried: such a line has at least half as many values.
_EXACT_MAX_QUOTES = 20_000


class LineRefused(TraceInvalid):
    """A line the parent will not parse; the message says why (never the line's content)."""


def _width(text: str, backslashes: int) -> float:
    if not backslashes:
        return 1.0
    return 6.25 if _ASTRAL.search(text) else 3.75 if _WIDE.search(text) else 2.5


def cost(text: str) -> int:
    """An upper bound of the bytes ``json.loads(text)`` allocates (``text`` is ASCII), in C-speed
    passes that allocate nothing: every ``,:[{`` counted as a value (inside strings too), every
    character as one of a string (an escape takes two bytes of the line or more)."""
    backslashes = text.count("\\")
    values = sum(map(text.count, ",:[{")) + 1
    chars = len(text) - backslashes // 2
    return _VALUE_BYTES * values + len(text) + int(_width(text, backslashes) * chars)


def exact_cost(text: str) -> int:
    """``cost`` without counting what is inside strings as structure (for a line whose strings
    hold many commas or brackets: a program's output, a list's repr)."""
    skeleton = _STRING.sub('""', text)
    if "\\" in skeleton:  # a backslash outside every string: not JSON
        raise LineRefused("not JSON")
    values = sum(map(skeleton.count, ",:[{")) + 1
    structure = len(skeleton)  # also bounds numbers: a long integer takes under a byte a digit
    del skeleton
    backslashes = text.count("\\")  # every one inside a string
    chars = len(text) - structure - backslashes // 2
    return _VALUE_BYTES * values + structure + int(_width(text, backslashes) * chars)


def load(buffer: bytearray, start: int, end: int, budget: int) -> Any:
    """``json.loads`` of ``buffer[start:end]``, or LineRefused when the line is not ASCII or
    parsing it could cost more than ``budget`` bytes on top of the line and its text."""
    with memoryview(buffer) as view, view[start:end] as line:
        try:
            text = str(line, "ascii")
        except UnicodeDecodeError:
            raise LineRefused("not ASCII") from None
    if not admits(text, budget - len(text)):
        raise LineRefused("a line that would take too much memory to read")
    return json.loads(text)


def admits(text: str, room: int) -> bool:
    """Whether ``json.loads(text)`` certainly allocates at most ``room`` bytes."""
    if cost(text) <= room:
        return True
    return text.count('"') <= _EXACT_MAX_QUOTES and exact_cost(text) <= room


class LineBuffer:
    """Bytes in, complete lines out; the bytes of an incomplete line wait for the next chunk.
    ``too_long`` is set, and no further line returned, once a line is longer than ``max_line``."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.data = bytearray()
        self.max_line = max_line
        self.done = 0
        self.too_long = False

    def feed(self, chunk: bytes | memoryview) -> list[tuple[int, int]]:
        """Append ``chunk``; the (start, end) offsets in ``data`` of the lines it completes,
        valid until ``consume``."""
        data = self.data
        searched = len(data)  # the bytes before this chunk hold no line end
        data += chunk
        lines: list[tuple[int, int]] = []
        start = 0
        while (end := data.find(b"\n", max(searched, start))) >= 0:
            if end - start > self.max_line:
                self.too_long = True
                break
            lines.append((start, end))
            start = end + 1
        else:
            self.too_long = len(data) - start > self.max_line
        self.done = start
        return lines

    def consume(self) -> None:
        """Drop the lines ``feed`` returned (their offsets are no longer valid)."""
        del self.data[: self.done]
        self.done = 0

    @property
    def budget(self) -> int:
        """What parsing one line may allocate: 4x the line cap, less the buffer itself."""
        return MEMORY_FACTOR * self.max_line - self.data.__sizeof__()


def encode_request(
    source: str,
    call: str | None,
    stdin: str,
    limits: Limits,
    isolated: bool,
    mode: str | None = "one",
    rule: str | None = None,
) -> bytes:
    """A request for the runner: length-prefixed fields (see inside/runner.py). The programs of
    a batch after its header go without the mode field (``mode=None``). ``rule``: a semantic
    rule's name (inside/semantics.py), already checked by the caller."""
    limits_text = ";".join(f"{k}={v}" for k, v in limits.for_runner().items())
    fields = [source, call or "", stdin, limits_text, "1" if isolated else "0", rule or ""]
    if mode is not None:
        fields.append(mode)
    out = bytearray()
    for field in fields:
        data = field.encode("utf-8", "surrogatepass")
        out += f"{len(data)}:".encode() + data
    return bytes(out)
