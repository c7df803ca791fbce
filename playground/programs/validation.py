"""Checks on a submitted program before it is saved (pure functions, no Django).

Nothing here runs user code: ``compile`` parses and builds bytecode only, and CPython bounds the
constants it folds, so a hostile 100 KB source costs milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProgramError(Exception):
    """What is wrong with a submission, with the position when there is one (1-based)."""

    message: str
    line: int | None = None
    column: int | None = None
    text: str = ""

    def __str__(self) -> str:
        return self.message

    @property
    def caret(self) -> str:
        """A ``^`` under the offending column of ``text``."""
        return " " * max((self.column or 1) - 1, 0) + "^" if self.column else ""


BOM = "\ufeff"


def strip_bom(source: str) -> str:
    """The program as CPython reads it from a file: one UTF-8 byte-order mark at the very start
    (editors on Windows write one) is not part of it, and ``compile()`` of a string refuses it."""
    return source[1:] if source.startswith(BOM) else source


def decode_utf8(data: bytes, what: str) -> str:
    """Decode strictly; say where the first invalid byte is instead of replacing it."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        line = data.count(b"\n", 0, exc.start) + 1
        raise ProgramError(
            f"The {what} is not valid UTF-8: byte 0x{bad} on line {line} "
            f"(offset {exc.start}) cannot be decoded. Save it as UTF-8 and try again.",
            line=line,
        ) from None


def check_size(text: str, limit: int, what: str) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise ProgramError(
            f"The {what} is {size:,} bytes; the limit is {limit:,} bytes ({limit // 1000} KB)."
        )


def check_source(source: str, *, max_bytes: int) -> None:
    """Raise ProgramError for an empty, oversized or syntactically invalid program."""
    if not source.strip():
        raise ProgramError("The program is empty: write or paste some Python code.")
    check_size(source, max_bytes, "program")
    try:
        compile(source, "<program>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise _syntax_problem(exc, "Syntax error") from None
    except (ValueError, UnicodeError) as exc:  # e.g. a NUL byte, a lone surrogate
        raise ProgramError(f"The program cannot be parsed: {exc}.") from None
    except (RecursionError, MemoryError):
        raise ProgramError("The program is nested too deeply for the Python parser.") from None


def check_call(call: str, *, max_chars: int) -> None:
    """The call, when given, must be one Python expression (e.g. ``f([1, 2, 3])``)."""
    if not call.strip():
        return
    if len(call) > max_chars:
        raise ProgramError(f"The call is {len(call):,} characters; the limit is {max_chars:,}.")
    try:
        compile(call.strip(), "<call>", "eval", dont_inherit=True)
    except SyntaxError as exc:
        problem = _syntax_problem(exc, "The call is not a single Python expression")
        raise ProgramError(
            problem.message + ". Write one expression such as f([1, 2, 3]), not a statement.",
            line=problem.line,
            column=problem.column,
            text=problem.text,
        ) from None
    except (ValueError, UnicodeError, RecursionError, MemoryError) as exc:
        raise ProgramError(f"The call cannot be parsed: {exc}.") from None


def _syntax_problem(exc: SyntaxError, prefix: str) -> ProgramError:
    where = ""
    if exc.lineno:
        where = f" on line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
    return ProgramError(
        f"{prefix}{where}: {exc.msg}",
        line=exc.lineno,
        column=exc.offset,
        text=(exc.text or "").rstrip("\n"),
    )
