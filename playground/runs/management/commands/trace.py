"""``manage.py trace``: run a program in the sandbox and print its trace.

    python manage.py trace prog.py --call "f([1, 2])"        # a readable step table
    python manage.py trace - --json < prog.py                 # the trace as JSON
    python manage.py trace --jsonl in.jsonl --out out.jsonl   # batch, spread over the cores
    python manage.py trace prog.py --call "f(3)" --rule swap-add-sub   # under a changed rule
    python manage.py trace prog.py --call "f(3)" --format cwm  # in CWM's trace format

Batch input lines: {"id": ..., "code": ..., "call": ...} (optional "stdin"); output lines:
{"id": ..., "trace": {...}} in input order. A line that is not valid gets {"id", "error"}.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from playground import sandbox
from playground.compare import cwm
from playground.programs.validation import strip_bom
from playground.runs.errors import describe_error
from playground.sandbox import BatchSandbox
from playground.sandbox.inside.semantics import RULES, offered


class Command(BaseCommand):
    help = "Run a Python program in the sandbox and print its execution trace."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="program file, or - for standard input")
        parser.add_argument("--call", help="expression to evaluate after the program, e.g. 'f(1)'")
        parser.add_argument("--stdin", default="", help="text given to the program as its input")
        parser.add_argument("--json", action="store_true", help="print the trace as JSON")
        parser.add_argument(
            "--format",
            choices=["table", "json", "cwm"],
            default="table",
            help="table (default), json (as --json), or cwm: Meta's CWM trace format",
        )
        parser.add_argument("--jsonl", metavar="IN", help="batch mode: a JSON-lines file, or -")
        parser.add_argument("--out", metavar="OUT", help="batch output file (default: stdout)")
        parser.add_argument(
            "--rule",
            default="",
            help="run under this changed rule of Python (one of: " + ", ".join(RULES) + ")",
        )
        # Twice the cores: while one sandbox computes, its parent thread waits on a pipe.
        parser.add_argument(
            "--workers",
            type=int,
            default=2 * (os.cpu_count() or 1),
            help="parallel sandboxes in batch mode (default: twice the cores)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rule = options["rule"]
        if rule and rule not in RULES:
            raise CommandError(f"Unknown rule {rule!r}; the rules are: {', '.join(RULES)}.")
        try:
            if options["jsonl"] and options["format"] == "cwm":
                raise CommandError("--format cwm is for one program; --jsonl writes JSON lines.")
            if options["jsonl"]:
                self._batch(options["jsonl"], options["out"], max(1, options["workers"]), rule)
                return
            if not options["file"]:
                raise CommandError("Give a program FILE (or -), or --jsonl IN for a batch.")
            source = _read_source(options["file"])
            if rule and (why := not_offered(rule, source)):
                raise CommandError(why)
            trace = sandbox.run(
                source, call=options["call"], stdin=options["stdin"], rule=rule or None
            )
        except sandbox.SandboxUnavailable as exc:
            raise CommandError(str(exc)) from None
        if options["format"] == "cwm":
            self.stdout.write(cwm.export(trace, source, call=options["call"] or ""))
        elif options["json"] or options["format"] == "json":
            self.stdout.write(json.dumps(trace, ensure_ascii=False, indent=1))
        else:
            if rule:
                self.stdout.write(f"Under the rule {rule}: {RULES[rule].text}\n\n")
            self.stdout.write(format_table(trace, source))
        if trace["status"] not in ("ok",):
            sys.exit(1)

    def _batch(self, path: str, out_path: str | None, workers: int, rule: str = "") -> None:
        infile: TextIO = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
        out: Any = open(out_path, "w", encoding="utf-8") if out_path else self.stdout  # noqa: SIM115
        # One batch sandbox per worker thread: its zygote pays the interpreter start once, and
        # each program still runs in a fresh process. All programs here belong to one owner.
        local = threading.local()
        sandboxes: list[BatchSandbox] = []

        def run_line(line: str) -> dict[str, Any]:
            if not hasattr(local, "sandbox"):
                local.sandbox = BatchSandbox()
                sandboxes.append(local.sandbox)
            return _run_line(line, local.sandbox, rule)

        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for record in pool.map(run_line, _lines(infile)):
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                for sandbox_ in sandboxes:
                    pool.submit(sandbox_.close)  # closed by the thread that started it
        finally:
            if infile is not sys.stdin:
                infile.close()
            if out_path:
                out.close()


def _read_source(path: str) -> str:
    try:
        data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()  # noqa: SIM115
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}") from None
    try:
        return strip_bom(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path} is not valid UTF-8 (byte offset {exc.start}).") from None


def _lines(infile: TextIO) -> Iterator[str]:
    for line in infile:
        if line.strip():
            yield line


def not_offered(rule: str, source: str) -> str:
    """Why ``rule`` is not run on ``source`` (it changes nothing there), naming the rules that
    do; "" when it is offered."""
    names = [r.name for r in offered(source)]
    if rule in names:
        return ""
    some = f"the rules that do: {', '.join(names)}" if names else "no rule changes it"
    return f"The rule {rule!r} changes nothing in this program; {some}."


def _run_line(line: str, batch: BatchSandbox, rule: str = "") -> dict[str, Any]:
    try:
        item = json.loads(line)
        if not isinstance(item, dict) or not isinstance(item.get("code"), str):
            raise ValueError("each line must be an object with a string 'code'")
        call = item.get("call")
        if call is not None and not isinstance(call, str):
            raise ValueError("'call' must be a string")
        stdin = item.get("stdin", "")
        code, stdin = strip_bom(item["code"]), stdin if isinstance(stdin, str) else ""
        limits = sandbox.Limits()
        if len(code.encode("utf-8", "surrogatepass")) > limits.max_source:
            raise ValueError(f"'code' is larger than {limits.max_source:,} bytes")
        if rule and (why := not_offered(rule, code)):
            raise ValueError(why)
        trace = batch.run(code, call, stdin, rule=rule or None)
        return {"id": item.get("id"), "trace": trace}
    except ValueError as exc:
        ident = None
        with contextlib.suppress(ValueError, AttributeError):
            ident = json.loads(line).get("id")
        return {"id": ident, "error": str(exc)}


def format_table(trace: dict[str, Any], source: str) -> str:
    """The trace as a table a person can read in a terminal."""
    lines = source.splitlines()
    rows = [f"{'step':>5} {'line':>5}  {'event':<9} {'function':<16} code / changes"]
    for step in trace["steps"]:
        code = lines[step["line"] - 1].strip() if 0 < step["line"] <= len(lines) else ""
        event = step.get("event", "line")
        rows.append(f"{step['i']:>5} {step['line']:>5}  {event:<9} {step['func'][:16]:<16} {code}")
        changes = ", ".join(f"{k} = {v}" for k, v in step.get("locals", {}).items())
        if changes:
            rows.append(f"{'':>36}{changes}")
        if event == "unwind":  # the exception leaves the frame: no value is returned
            to = f", back to {step['to']} line {step.get('to_line')}" if step.get("to") else ""
            rows.append(f"{'':>36}{step.get('exception', 'an exception')} leaves it{to}")
        elif step.get("exception"):
            rows.append(f"{'':>36}raises {step['exception']}")
        if step.get("stdout"):
            rows.append(f"{'':>36}prints {step['stdout']!r}")
    rows.append("")
    stats = trace["stats"]
    rows.append(f"status: {trace['status']}  ({stats['steps']} steps, {stats['wall_ms']} ms)")
    if trace.get("result") is not None:
        rows.append(f"result: {trace['result']}")
    if trace.get("error"):
        rows.append(f"error:  {describe_error(trace['error'])}")
    return "\n".join(rows) + "\n"
