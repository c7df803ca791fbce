"""``probe`` and ``probe-chain``: questions about one run of a program, asked of the model and
graded against the real trace (REval's four tasks and CoCoNUT's executed-lines sequence).

The questions are generated from a real trace and the program's source, deterministically from
a seed (the run's, else 0):

- **coverage**: is line L executed? Candidates are the lines where a statement starts (the
  source's executable lines; a function's docstring, ``global`` and ``nonlocal`` are left out:
  no line event marks them), executed or not.
- **state**: the value of variable v right after line L executes for the k-th time. A trace's
  ``line`` step at L is Python about to run L, and a step's ``locals`` are what changed in its
  frame since the frame was last seen; so the state "right after line L's k-th execution" is
  the frame's variables as of the next step *of the same frame* (the same call of the function;
  steps in functions that L calls come between). Executions that raise (that next step is an
  ``exception``, or there is none) are never asked about. The answer is a Python literal: its
  type and its value are graded (``1`` is not ``1.0`` nor ``True``), as REval grades both.
  Only values whose repr is a whole literal (no cut containers, no objects) are asked about.
- **path**: which line executes right after line L's k-th execution: the line of the next
  ``line`` step anywhere in the trace (a call from L goes into the callee, whose first line is
  next; a return goes back to the caller's next line), or None when no line runs after it.
- **output**: what the call returns (a literal), or, without a call, what the program prints.
- **sequence** (CoCoNUT): the line numbers of every ``line`` step, in order: module-level lines
  (a ``def`` executing), then each line as it runs, a called function's lines inline right
  after the line that calls it, a loop header each time it is evaluated, a comprehension's line
  each time its frame steps; capped at the first ``MAX_SEQUENCE`` lines.

Each probe keeps its question, its true answer (Python literal source), the trace step it
points at (for the viewer) and its kind. The model answers every question in one prompt
(``probe``), or one question per call, each call seeing the earlier questions with their TRUE
answers (``probe-chain``, sharing one prompt prefix). Answers are read as literals only
(``ast.literal_eval`` on a capped, shallow string); nothing the model wrote is ever run.

Grading happens twice: here against the method's own run of the program (what the questions
came from), and in judging against the run's real trace (``judge``), which is what is stored.
"""

from __future__ import annotations

import ast
import dataclasses
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from playground.emulation import prompts
from playground.emulation.base import Emulation, Item, Session, block_closed
from playground.emulation.literals import NotALiteral, literal_source, same_value

KINDS = ("coverage", "state", "path", "output", "sequence")
# REval's chain, in order: an item is incrementally consistent when no task is right after a
# task before it went wrong.
CHAIN = ("coverage", "state", "path", "output")
MAX_PER_KIND = 20  # a configuration asks for at most this many probes of one kind
MAX_SEQUENCE = 200  # lines of the executed-lines sequence asked for (the first ones)
MAX_VALUE = 300  # characters of a variable's repr worth a question
MAX_ANSWER = 4_000  # characters of one answer read at all
MAX_DEPTH = 12  # brackets deep an answer may nest before it is refused unread

INSTRUCTIONS = (
    "You are given a Python program with numbered lines and how it is run. Answer questions "
    "about that run as if you were the Python interpreter executing it, line by line. Answer "
    "every question with a Python literal only (True, False, None, a number, a string, a list, "
    "a tuple, a dict or a set): no expressions, no explanations on the answer lines."
)
ALL_AT_ONCE = (
    "Give every answer on its own line, numbered like its question, between [ANSWERS] and "
    "[/ANSWERS] tags, for example:\n[ANSWERS]\n1: True\n2: [3, 'a']\n3: None\n[/ANSWERS]"
)
ONE_AT_A_TIME = (
    "The questions come one at a time; earlier questions are shown with their correct answers. "
    "Answer the last question only, between [ANSWER] and [/ANSWER] tags, for example:\n"
    "[ANSWER]\n[3, 'a']\n[/ANSWER]"
)


@dataclass(frozen=True)
class Config:
    """How many probes of each kind to ask (each capped at ``MAX_PER_KIND``)."""

    coverage: int = 4
    state: int = 3
    path: int = 3
    output: int = 1
    sequence: int = 1

    def count(self, kind: str) -> int:
        return max(0, min(MAX_PER_KIND, int(getattr(self, kind))))


# What a run asks when it names no counts.
DEFAULT = Config()


class BadConfig(ValueError):
    """A probe configuration a run may not ask for; the message says why, for the requester."""


def config_of(counts: Iterable[tuple[str, object]] | Mapping[str, object] | None) -> Config:
    """The configuration of these (kind, count) pairs, the other kinds at their default; each
    count a whole number from 0 to ``MAX_PER_KIND``, at least one probe in all. Raises
    ``BadConfig`` (an unknown kind, a count out of range)."""
    pairs = list(counts.items() if isinstance(counts, Mapping) else counts or ())
    values: dict[str, int] = {}
    for kind, count in pairs:
        if kind not in KINDS:
            raise BadConfig(
                f"Unknown probe kind {str(kind)[:40]!r}; the kinds are: {', '.join(KINDS)}."
            )
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_PER_KIND:
            raise BadConfig(
                f"The number of {kind} probes must be a whole number from 0 to {MAX_PER_KIND}."
            )
        values[kind] = count
    config = dataclasses.replace(DEFAULT, **values)
    if not any(config.count(kind) for kind in KINDS):
        raise BadConfig("Ask at least one probe.")
    return config


@dataclass(frozen=True)
class Probe:
    """One question about the run, with its true answer and where it belongs in the trace."""

    kind: str
    question: str
    truth: str  # the true answer, Python literal source
    step: int | None  # the index of the trace step it points at
    line: int | None = None
    k: int | None = None  # the k-th execution of ``line``
    variable: str | None = None
    length: int | None = None  # sequence: how many lines are asked for
    chain: int | None = None  # the IC item it belongs to (coverage, state, path of one (L, k))

    def as_dict(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


# -- the run, indexed ------------------------------------------------------------------------


@dataclass
class Execution:
    """One ``line`` step: line L run for the k-th time, in a frame."""

    step: int
    line: int
    k: int
    frame: int
    after: int | None = None  # the next step of the same frame, once seen
    raised: bool = False  # that next step is an exception: the line did not finish
    state: dict[str, str] = field(default_factory=dict)  # candidates: name -> repr, after it
    next_line: int | None = None
    next_step: int | None = None


@dataclass
class Run:
    """What probes are asked and graded from: a trace, read once."""

    status: str
    complete: bool  # every step recorded: nothing cut, not stopped by a limit
    executions: list[Execution]
    by_line: dict[tuple[int, int], Execution]  # (line, k) -> execution
    executed: set[int]
    statement_lines: list[int]
    result: str | None
    stdout: str
    has_call: bool
    lines_seq: list[int]
    seq_steps: list[int]


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def statement_lines(source: str) -> list[int]:
    """The lines where a statement starts that Python marks with a line event when it runs."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    lines: set[int] = set()
    docstrings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first))
        skipped = isinstance(node, (ast.Global, ast.Nonlocal)) or id(node) in docstrings
        if isinstance(node, ast.stmt) and not skipped:
            lines.add(node.lineno)
    return sorted(lines)


def index(trace: dict[str, Any], source: str, *, call: str = "") -> Run:
    """Read a trace (schema v3) into what the probes need."""
    steps = trace.get("steps") or []
    source_lines = source.splitlines()
    stack: list[int] = []
    frame_vars: dict[int, dict[str, str]] = {}
    pending: dict[int, Execution] = {}
    counts: dict[int, int] = {}
    executions: list[Execution] = []
    lines_seq: list[int] = []
    seq_steps: list[int] = []
    last_line: Execution | None = None
    for index_, step in enumerate(steps):
        event = step.get("event", "line")
        if event == "call" or not stack:
            stack.append(index_)
            frame_vars[index_] = {}
        frame = stack[-1]
        changed = step.get("locals") or {}
        known = frame_vars.setdefault(frame, {})
        known.update({str(k): str(v) for k, v in changed.items()})
        before = pending.pop(frame, None)
        if before is not None and event != "call":
            before.after = index_
            before.raised = event == "exception"
            text = source_lines[before.line - 1] if 0 < before.line <= len(source_lines) else ""
            names = set(changed) | set(_NAME.findall(text))
            before.state = {
                n: known[n]
                for n in sorted(names)
                if n in known and n.isidentifier() and not n.startswith("__")
            }
        if event == "line":
            line = int(step.get("line", 0))
            counts[line] = counts.get(line, 0) + 1
            execution = Execution(step=index_, line=line, k=counts[line], frame=frame)
            if last_line is not None:
                last_line.next_line, last_line.next_step = line, index_
            last_line = execution
            executions.append(execution)
            pending[frame] = execution
            lines_seq.append(line)
            seq_steps.append(index_)
        if event in ("return", "unwind"):
            stack.pop()
            pending.pop(frame, None)
    stats = trace.get("stats") or {}
    status = str(trace.get("status", ""))
    complete = (
        status in ("ok", "exception") and not stats.get("capped") and not stats.get("truncated")
    )
    return Run(
        status=status,
        complete=complete,
        executions=executions,
        by_line={(e.line, e.k): e for e in executions},
        executed=set(lines_seq),
        statement_lines=statement_lines(source),
        result=trace.get("result") if status == "ok" else None,
        stdout=str(trace.get("stdout") or ""),
        has_call=bool(call.strip()),
        lines_seq=lines_seq,
        seq_steps=seq_steps,
    )


# -- true answers ----------------------------------------------------------------------------


def _whole_literal(text: str, limit: int = MAX_VALUE) -> Any:
    """The value of a repr that is a whole literal, or raise NotALiteral (a cut container reads
    back with ``...`` in it; objects and nan do not read back at all)."""
    if len(text) > limit:
        raise NotALiteral("too long")
    value = parse_answer(text)
    if _has_ellipsis(value):
        raise NotALiteral("cut")
    return value


def _has_ellipsis(value: Any) -> bool:
    if value is Ellipsis:
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_ellipsis(v) for v in value)
    if isinstance(value, dict):
        return any(_has_ellipsis(k) or _has_ellipsis(v) for k, v in value.items())
    return False


def _ordinal(k: int) -> str:
    if 10 <= k % 100 <= 20:
        return f"{k}th"
    return f"{k}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th') }"


def truth(
    kind: str,
    run: Run,
    *,
    line: int | None = None,
    k: int | None = None,
    variable: str | None = None,
    length: int | None = None,
) -> tuple[str, int | None] | None:
    """The true answer to a probe of this kind in ``run`` (literal source) and the step it
    points at; None when the run does not answer it (the line never ran k times, the value
    is not a literal...)."""
    if kind == "coverage" and line is not None:
        if line not in run.executed and not run.complete:
            return None  # a cut trace cannot say a line never runs
        first = next((e.step for e in run.executions if e.line == line), None)
        return repr(line in run.executed), first
    if kind in ("state", "path") and line is not None and k is not None:
        execution = run.by_line.get((line, k))
        if execution is None:
            return None
        if kind == "path":
            if execution.next_line is None and not run.complete:
                return None
            return repr(execution.next_line), execution.step
        if execution.after is None or execution.raised or variable not in execution.state:
            return None
        try:
            value = _whole_literal(execution.state[variable])
        except NotALiteral:
            return None
        return literal_source(value), execution.after
    if kind == "output":
        if run.has_call:
            if run.result is None:
                return None
            try:
                value = _whole_literal(str(run.result), MAX_ANSWER)
            except NotALiteral:
                return None
            return literal_source(value), run.executions[-1].step if run.executions else None
        if run.status != "ok" or len(run.stdout) > MAX_ANSWER:
            return None
        return repr(run.stdout), run.executions[-1].step if run.executions else None
    if kind == "sequence" and length:
        if len(run.lines_seq) < length or (len(run.lines_seq) == length and not run.complete):
            return None
        return repr(run.lines_seq[:length]), run.seq_steps[0] if run.seq_steps else None
    return None


def _question(
    kind: str,
    run: Run,
    call: str,
    *,
    line: int | None = None,
    k: int | None = None,
    variable: str | None = None,
    length: int | None = None,
) -> str:
    if kind == "coverage":
        return f"Is line {line} executed during this run? Answer True or False (or Yes or No)."
    if kind == "state":
        return (
            f"What is the value of `{variable}` right after line {line} executes for the "
            f"{_ordinal(k or 1)} time (in that same call, once the line has finished)? Its type "
            "counts too: answer with a Python literal of the right type."
        )
    if kind == "path":
        return (
            f"Which line executes right after line {line} executes for the {_ordinal(k or 1)} "
            "time (a call goes into the called function; None if no other line runs)? Answer "
            "with a line number."
        )
    if kind == "output":
        if run.has_call:
            return f"What value does `{call.strip()}` return? Answer with a Python literal."
        return "What does the program print, in all? Answer with one Python string literal."
    limit = "" if length == len(run.lines_seq) else f"the first {length} of "
    return (
        f"List {limit}the line numbers executed, in order, from the start of the run: every "
        "line each time it runs (a loop header each time it is evaluated, a called function's "
        "lines right after the line that calls it). Answer with a Python list of integers."
    )


def make(kind: str, run: Run, call: str, *, chain: int | None = None, **where: Any) -> Probe | None:
    """A probe of ``kind`` at ``where`` (line, k, variable, length), or None if ``run`` does
    not answer it."""
    found = truth(kind, run, **where)
    if found is None:
        return None
    answer, step = found
    question = _question(kind, run, call, **where)
    return Probe(kind, question, answer, step, chain=chain, **where)


# -- generation ------------------------------------------------------------------------------


def generate(
    trace: dict[str, Any],
    source: str,
    *,
    call: str = "",
    seed: int = 0,
    config: Config | None = None,
) -> list[Probe]:
    """The probes of one run, the same for the same trace, source, call, seed and config:
    chains of (coverage, state, path) on one execution first, then more coverage (lines that
    never run among them), the output and the executed-lines sequence."""
    config = config or Config()
    run = index(trace, source, call=call)
    rng = random.Random(seed)  # noqa: S311 (questions, not secrets)
    statements = set(run.statement_lines)
    # Executions worth a state question: finished, at a statement's line, with a variable.
    stateful: dict[int, list[tuple[Execution, str]]] = {}
    for execution in run.executions:
        if execution.line in statements and execution.after is not None and not execution.raised:
            for name in execution.state:
                stateful.setdefault(execution.line, []).append((execution, name))
    chosen: list[tuple[Execution, str]] = []
    taken: set[tuple[int, str]] = set()
    lines = sorted(stateful)
    rng.shuffle(lines)
    while len(chosen) < config.count("state") and lines:
        for line in list(lines):  # distinct lines first, then again, until enough
            if len(chosen) >= config.count("state"):
                break
            options = stateful[line]
            # Drawn at random until one has a whole literal (checked only as drawn).
            while options:
                execution, name = options.pop(rng.randrange(len(options)))
                if (execution.step, name) in taken:
                    continue
                if truth("state", run, line=line, k=execution.k, variable=name) is not None:
                    chosen.append((execution, name))
                    taken.add((execution.step, name))
                    break
            if not options:
                lines.remove(line)
    probes: list[Probe] = []
    chains = min(len(chosen), config.count("coverage"), config.count("path"))
    covered: list[int] = []
    paths: list[Execution] = []
    for number, (execution, name) in enumerate(chosen):
        chain = number if number < chains else None
        where = {"line": execution.line, "k": execution.k}
        state = make("state", run, call, chain=chain, variable=name, **where)
        if chain is not None:
            coverage = make("coverage", run, call, chain=chain, line=execution.line)
            path = make("path", run, call, chain=chain, **where)
            if coverage is not None and path is not None and state is not None:
                probes += [coverage, state, path]
                covered.append(execution.line)
                paths.append(execution)
                continue
        if state is not None:
            probes.append(state)
    # More paths, on other executions of statements.
    others = [e for e in run.executions if e.line in statements and e not in paths]
    while len(paths) < config.count("path") and others:
        execution = others.pop(rng.randrange(len(others)))
        path = make("path", run, call, line=execution.line, k=execution.k)
        if path is not None:
            probes.append(path)
            paths.append(execution)
    # More coverage: lines that never run, and others that do, in turn.
    never = [line for line in run.statement_lines if line not in run.executed]
    ran = [line for line in run.statement_lines if line in run.executed and line not in covered]
    rng.shuffle(never)
    rng.shuffle(ran)
    while len(covered) < config.count("coverage") and (never or ran):
        pool = never if (never and (len(covered) % 2 == 0 or not ran)) else ran
        line = pool.pop()
        coverage = make("coverage", run, call, line=line)
        if coverage is not None:
            probes.append(coverage)
            covered.append(line)
    if config.count("output"):
        output = make("output", run, call)
        if output is not None:
            probes.append(output)
    if config.count("sequence") and run.lines_seq:
        sequence = make("sequence", run, call, length=min(MAX_SEQUENCE, len(run.lines_seq)))
        if sequence is not None:
            probes.append(sequence)
    return probes


# -- answers ---------------------------------------------------------------------------------


def parse_answer(text: str) -> Any:
    """An answer as a Python literal, read without running anything: at most ``MAX_ANSWER``
    characters and ``MAX_DEPTH`` brackets deep, else NotALiteral (never handed to the parser)."""
    text = text.strip()
    if not text:
        raise NotALiteral("the answer is empty")
    if len(text) > MAX_ANSWER:
        raise NotALiteral(f"the answer is longer than {MAX_ANSWER:,} characters")
    depth = deepest = 0
    for char in text:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    if deepest > MAX_DEPTH:
        raise NotALiteral(f"the answer nests more than {MAX_DEPTH} brackets deep")
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
        raise NotALiteral(f"{text[:80]!r} is not a Python literal ({type(exc).__name__})") from None


def right(kind: str, answer: Any, true: Any) -> bool:
    """Whether a read answer is the true one: a state's type counts (REval grades type and
    value), coverage wants a bool, a sequence any list or tuple of the right ints."""
    if kind == "coverage":
        return isinstance(answer, bool) and answer is true
    if kind == "state":
        return type(answer) is type(true) and same_value(answer, true)
    if kind == "path":
        return (answer is None and true is None) or (
            type(answer) is int and same_value(answer, true)
        )
    if kind == "sequence":
        return (
            isinstance(answer, (list, tuple))
            and all(type(a) is int for a in answer)
            and (list(answer) == true)
        )
    return same_value(answer, true)


def grade(probe: Probe, answer: str | None) -> dict[str, Any]:
    """One probe's mark: ``correct``, ``wrong`` or ``unparsable`` (with why), and what was
    read. The model's text is shown capped, never run."""
    mark: dict[str, Any] = {**probe.as_dict(), "answer": None if answer is None else answer[:300]}
    if answer is None:
        return {**mark, "status": "unparsable", "why": "no answer to this question"}
    try:
        read = parse_answer(answer)
    except NotALiteral as exc:
        read = _yes_no(answer) if probe.kind == "coverage" else None
        if read is None:
            return {**mark, "status": "unparsable", "why": str(exc)}
    true = ast.literal_eval(probe.truth)
    return {**mark, "status": "correct" if right(probe.kind, read, true) else "wrong"}


_YES_NO = re.compile(r"^[\s*_`'\"]*(yes|no|true|false)\b", re.IGNORECASE)


def _yes_no(answer: str) -> bool | None:
    """A coverage answer that is not a literal but starts with Yes, No, True or False (any
    case, after quotes or emphasis): REval asks coverage as a yes/no question, and models answer
    "Yes, line 5 runs ...". Only the first word counts; anything else stays unreadable."""
    match = _YES_NO.match(answer)
    return None if match is None else match.group(1).lower() in ("yes", "true")


_NUMBERED = re.compile(r"^\s*(?:A|Q|Answer\s*)?(\d+)\s*[:.)]\s?(.*)$", re.IGNORECASE)
_ANSWERS = re.compile(r"\[ANSWERS\](.*?)(?:\[/ANSWERS\]|$)", re.DOTALL)
_ANSWER = re.compile(r"\[ANSWER\](.*?)(?:\[/ANSWER\]|$)", re.DOTALL)


def read_answers(text: str, count: int) -> list[str | None]:
    """The numbered answers of the last [ANSWERS] block (or of the whole text without one):
    answer n of ``count``, or None where there is none; the last line numbered n wins."""
    blocks = [b for b in _ANSWERS.findall(text) if b.strip()]
    body = blocks[-1] if blocks else text
    answers: list[str | None] = [None] * count
    for raw in body.splitlines():
        match = _NUMBERED.match(raw)
        if match and 1 <= int(match.group(1)) <= count:
            answers[int(match.group(1)) - 1] = match.group(2).strip()
    return answers


def read_one(text: str) -> str | None:
    """The answer in the last non-empty [ANSWER] block, or the text's last non-empty line."""
    blocks = [b for b in _ANSWER.findall(text) if b.strip()]
    if blocks:
        return blocks[-1].strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else None


# -- scores ----------------------------------------------------------------------------------


def scores(marks: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per kind: probes asked, right, wrong, unparsable."""
    table: dict[str, dict[str, int]] = {}
    for mark in marks:
        if mark["status"] == "unknown":  # the real run does not answer it: not asked
            continue
        row = table.setdefault(
            mark["kind"], {"asked": 0, "correct": 0, "wrong": 0, "unparsable": 0}
        )
        row["asked"] += 1
        row[mark["status"] if mark["status"] in row else "unparsable"] += 1
    return table


def item_scores(marks: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """Each item's (correct prefix as a fraction of its chain, IC score); see ``consistency``."""
    output = next((m for m in marks if m["kind"] == "output" and m["status"] != "unknown"), None)
    items: dict[int, dict[str, bool]] = {}
    for mark in marks:
        if mark.get("chain") is not None and mark["status"] != "unknown":
            items.setdefault(mark["chain"], {})[mark["kind"]] = mark["status"] == "correct"
    found: list[tuple[float, float]] = []
    for results in items.values():
        if output is not None:
            results = {**results, "output": output["status"] == "correct"}
        chain = [results[kind] for kind in CHAIN if kind in results]
        k = 0
        while k < len(chain) and chain[k]:
            k += 1
        consistent = not any(chain[k:])
        found.append((k / len(chain), 1 / 2 ** (len(chain) - k) if consistent and k else 0.0))
    return found


def consistency(marks: list[dict[str, Any]]) -> dict[str, Any]:
    """Incremental consistency over the run's items (REval: Chen et al., "Reasoning Runtime
    Behavior of a Program with LLM: How Far Are We?", ICSE 2025, arXiv:2403.16437).

    An item is one execution (line L, k-th time) with its coverage, state and path probes,
    plus the run's output probe: REval's chain coverage -> state -> path -> output, asked
    about one statement (REval, too, asks its four tasks about one statement of one run).
    ``prefix``: the mean over items of the longest correct prefix, as a fraction of the chain.
    ``ic``: REval's IC score as its authors' example states it (we could not read the paper's
    formula itself): an item whose results are 1..1 0..0 (no task right after a wrong one) with
    k right out of n scores 1/2^(n-k), so {1,1,0,0} scores 1/2^2 = 0.25; an item with none
    right, or not incrementally consistent, scores 0; averaged over items."""
    found = item_scores(marks)
    if not found:
        return {"items": 0, "prefix": None, "ic": None}
    return {
        "items": len(found),
        "prefix": round(sum(p for p, _ in found) / len(found), 4),
        "ic": round(sum(i for _, i in found) / len(found), 4),
    }


# -- asking ----------------------------------------------------------------------------------


def numbered(source: str) -> str:
    """The source with its line numbers, as the questions name lines."""
    lines = source.rstrip().splitlines()
    width = len(str(len(lines)))
    return "\n".join(f"{n:>{width}}  {text}" for n, text in enumerate(lines, 1))


def context(item: Item) -> str:
    """The part every prompt of a run shares: the program, numbered, and how it runs."""
    how = (
        f"The program runs, then the call `{item.call.strip()}` is evaluated."
        if item.call.strip()
        else "The program runs from its first line."
    )
    if item.stdin:
        how += f" Its standard input is {item.stdin[:2000]!r}."
    return f"{prompts.rule_note(item.rule)}[PYTHON]\n{numbered(item.source)}\n[/PYTHON]\n{how}"


def all_at_once(item: Item, probes: list[Probe]) -> list[dict[str, str]]:
    """One prompt with every question."""
    questions = "\n".join(f"{n}. {p.question}" for n, p in enumerate(probes, 1))
    prompt = f"{INSTRUCTIONS}\n{ALL_AT_ONCE}\n\n{context(item)}\n\nQuestions:\n{questions}\n"
    return [{"role": "user", "content": prompt}]


def one_at_a_time(item: Item, probes: list[Probe], n: int) -> list[dict[str, str]]:
    """The prompt for question ``n`` (0-based): the shared prefix, the earlier questions with
    their true answers, and question n."""
    shown = "".join(
        f"{i}. {p.question}\nCorrect answer: {p.truth}\n\n" for i, p in enumerate(probes[:n], 1)
    )
    prompt = (
        f"{INSTRUCTIONS}\n{ONE_AT_A_TIME}\n\n{context(item)}\n\n{shown}"
        f"{n + 1}. {probes[n].question}\n"
    )
    return [{"role": "user", "content": prompt}]


def summary(marks: list[dict[str, Any]]) -> dict[str, Any]:
    """The verdict of a probe run: every probe right is ``correct``; none readable is
    ``unparsable``; else ``wrong``; with the scores per kind and the consistency."""
    table = scores(marks)
    graded = [m for m in marks if m["status"] != "unknown"]
    right_ = sum(1 for m in graded if m["status"] == "correct")
    readable = sum(1 for m in graded if m["status"] in ("correct", "wrong"))
    if not graded:
        status, text = "unknown", "No probe could be asked of this run."
    elif right_ == len(graded):
        status, text = "correct", f"All {len(graded)} probes answered right."
    elif not readable:
        status, text = "unparsable", f"None of the {len(graded)} answers could be read."
    else:
        status, text = "wrong", f"{right_} of {len(graded)} probes answered right."
    parts = [f"{kind} {row['correct']}/{row['asked']}" for kind, row in table.items()]
    ic = consistency(marks)
    if parts:
        text += " " + ", ".join(parts) + "."
    if ic["items"]:
        text += f" Incremental consistency {ic['ic']:.2f} over {ic['items']} item(s)."
    return {
        "status": status,
        "explanation": text,
        "leakage": False,
        "probes": marks,
        "scores": table,
        "consistency": ic,
        "path": path_verdict(graded),
    }


PATH_KINDS = ("coverage", "path", "sequence")  # what the run went through, not its values


def path_verdict(marks: list[dict[str, Any]]) -> dict[str, Any]:
    """The path verdict of a probe run (``compare.path``'s statuses): ``diverges`` when a
    coverage, path or sequence probe was answered wrong (at the first such probe's step),
    ``agrees`` when all of them were answered right, else ``unknown``."""
    asked = [m for m in marks if m["kind"] in PATH_KINDS]
    wrong = [m for m in asked if m["status"] == "wrong"]
    if wrong:
        first = wrong[0]
        return {
            "status": "diverges",
            "real_step": first.get("step"),
            "explanation": f"{len(wrong)} of the {len(asked)} questions about the path "
            f"(coverage, next line, executed lines) answered wrong, the first: "
            f"{str(first.get('question', first['kind']))[:120]}",
        }
    if asked and all(m["status"] == "correct" for m in asked):
        return {
            "status": "agrees",
            "explanation": f"All {len(asked)} questions about the path answered right.",
        }
    return {"status": "unknown", "explanation": "No question about the path was answered."}


def _emulate(chained: bool, item: Item, session: Session) -> Emulation:
    session.emit("status", text="Running the program to make the questions…")
    own = session.run(item.source, call=item.call or None, stdin=item.stdin, rule=item.rule)
    seed = session.params.seed or 0
    probes = generate(own, item.source, call=item.call, seed=seed, config=config_of(item.probes))
    if not probes:
        why = f"the run ended with {own.get('status')}" if own.get("status") != "ok" else ""
        return Emulation(
            problem="No probe could be made from this run" + (f": {why}." if why else ".")
        )
    answers: list[str | None]
    if chained:
        answers = []
        for n, probe in enumerate(probes):
            reply = session.chat(
                one_at_a_time(item, probes, n),
                heading=f"Question {n + 1} of {len(probes)} ({probe.kind})",
                done=block_closed("[ANSWER]", "[/ANSWER]"),
            )
            answers.append(read_one(reply.text))
    else:
        count = len(probes)

        def complete(text: str) -> bool:
            blocks = _ANSWERS.findall(text)
            return (
                "[/ANSWERS]" in text
                and bool(blocks)
                and all(a is not None for a in read_answers(text, count))
            )

        reply = session.chat(all_at_once(item, probes), done=complete)
        answers = read_answers(reply.text, count)
    marks = [grade(p, a) for p, a in zip(probes, answers, strict=True)]
    output = next((a for p, a in zip(probes, answers, strict=True) if p.kind == "output"), None)
    return Emulation(
        prediction=output,
        verdict=summary(marks),
        details={
            "probes": [p.as_dict() for p in probes],
            "answers": [None if a is None else a[:MAX_ANSWER] for a in answers],
            "probe_seed": seed,
        },
    )


def emulate(item: Item, session: Session) -> Emulation:
    """Every question in one prompt."""
    return _emulate(False, item, session)


def emulate_chain(item: Item, session: Session) -> Emulation:
    """One question per call, each seeing the earlier ones with their true answers."""
    return _emulate(True, item, session)


def judge(
    real: dict[str, Any], details: dict[str, Any], *, source: str, call: str
) -> dict[str, Any]:
    """The verdict against the run's real trace: each asked probe's true answer taken again
    from ``real`` (the method's own run made the questions; a program that runs differently the
    second time is graded on the run the page shows), then graded."""
    asked = details.get("probes") if isinstance(details, dict) else None
    answers = details.get("answers") if isinstance(details, dict) else None
    if not isinstance(asked, list) or not isinstance(answers, list) or len(asked) != len(answers):
        return {"status": "unparsable", "explanation": "No probes were answered.", "leakage": False}
    run = index(real, source, call=call)
    marks: list[dict[str, Any]] = []
    for data, answer in zip(asked, answers, strict=True):
        where = {k: data.get(k) for k in ("line", "k", "variable", "length") if k in data}
        found = truth(str(data.get("kind")), run, **where)
        if found is None:
            unknown = {k: v for k, v in data.items() if k not in ("truth", "step")}
            why = "the real run does not answer this question"
            marks.append({**unknown, "answer": answer, "status": "unknown", "why": why})
            continue
        probe = Probe(
            str(data["kind"]),
            str(data.get("question", "")),
            found[0],
            found[1],
            chain=data.get("chain"),
            **where,
        )
        marks.append(grade(probe, answer if isinstance(answer, str) else None))
    return summary(marks)
