"""``tae``, Think-and-Execute (Chae et al., 2024, arXiv 2404.02575).

Think, once per task and model: from a few solved instances, an analysis of the task, then
task-level pseudocode in Python syntax whose ``print`` calls expose every intermediate step. The
plan is stored and reused for every later instance (the run says when it was). Execute, per
instance: the model simulates the pseudocode on the instance and writes what the prints would
print; those lines are the trace, and the final answer is read from the last ``Final answer:``.

A task is a BIG-Bench Hard task, or a library function (its calls are the instances).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from playground.compare import compare_prints
from playground.emulation import prompts
from playground.emulation.base import Emulation, Item, Session, block_closed
from playground.emulation.literals import NotALiteral, parse_literal
from playground.llm.registry import ModelSpec
from playground.llm.replicas import routing_key
from playground.sandbox import SandboxUnavailable
from playground.sandbox.schema import make_trace, storable

# A plan is shared by every later run of its task and model, so it is written with this budget
# and at temperature 0 whatever the run that happens to write it asked for (a visitor's
# max_tokens=16 must not leave a cut plan for everyone).
THINK_TOKENS = 1024
THINK_TEMPERATURE = 0.0
# Raise when the way plans are written changes in a way the prompts below do not show (how the
# answer is read, ...): older plans are then no longer found.
PLAN_FORMAT = 2
EXECUTE_TOKENS = 1024
MAX_LINES = 2000
_PSEUDOCODE = re.compile(r"\[PSEUDOCODE\](.*?)(?:\[/PSEUDOCODE\]|$)", re.DOTALL)
_ANALYSIS = re.compile(r"\[ANALYSIS\](.*?)(?:\[/ANALYSIS\]|\[PSEUDOCODE\]|$)", re.DOTALL)
_FENCE = re.compile(r"```(?:python)?\n(.*?)(?:```|$)", re.DOTALL)
_FINAL = re.compile(r"final answer\s*[:=]\s*(.+)", re.IGNORECASE)

THINK_INSTRUCTIONS = """\
You will plan how to solve every instance of a task, not one instance. First write an analysis \
of the task between [ANALYSIS] and [/ANALYSIS]: what an instance gives, what must be tracked, the \
steps that lead to the answer. Then write task-level pseudocode in Python syntax between \
[PSEUDOCODE] and [/PSEUDOCODE]: a function that takes one instance and solves it step by step. \
Use print() to show every intermediate result, and end with print("Final answer:", answer)."""

EXECUTE_INSTRUCTIONS = """\
Here is pseudocode that solves the task. Simulate it on the instance below, line by line, as an \
interpreter would, and write ONLY what its print() calls print, one per line, ending with the \
line "Final answer: ..."."""

_PROGRAM_TASK = """\
The task: given the Python function below and a call to it, find the value the call returns. \
The pseudocode must follow the function's logic and print the values it computes."""


def _task_description(item: Item) -> str:
    if item.kind == "task":
        shots = "\n\n".join(
            f"Instance:\n{question}\nAnswer: {target}" for question, target in item.examples
        )
        return f"The task: {item.task.replace('_', ' ')}.\n\nSolved instances:\n\n{shots}"
    note = prompts.rule_note(item.rule)
    return f"{_PROGRAM_TASK}\n\n{note}[PYTHON]\n{item.source.rstrip()}\n[/PYTHON]"


def plan_digest(item: Item, model: ModelSpec) -> str:
    """What a plan is stored under: a digest of everything that shaped it (the task, or the
    program's text; the model by name and by the engine's own model id; the Think prompt's
    wording, how many solved instances it shows, its budget and temperature; the format). A
    change to any of them asks for a new plan; which instances are shown does not (every
    instance of a task shows others: they share one plan)."""
    shaped_by = {
        "subject": item.plan_key,
        "model": model.name,
        "engine_model": model.model,
        "instructions": hashlib.sha256(
            (THINK_INSTRUCTIONS + "\n" + _PROGRAM_TASK).encode()
        ).hexdigest(),
        "tokens": THINK_TOKENS,
        "temperature": THINK_TEMPERATURE,
        "shots": len(item.examples),  # how many solved instances the Think prompt shows
        "format": PLAN_FORMAT,
    }
    return hashlib.sha256(json.dumps(shaped_by, sort_keys=True).encode()).hexdigest()


def think_messages(item: Item) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{THINK_INSTRUCTIONS}\n\n{_task_description(item)}\n"}]


def read_plan(text: str) -> dict[str, Any]:
    """The analysis and the pseudocode from the Think answer (the code fence or the whole text
    when the tags are missing)."""
    analysis = _ANALYSIS.search(text)
    code = _PSEUDOCODE.search(text)
    pseudocode = code.group(1) if code else ""
    fence = _FENCE.search(pseudocode or text)
    if fence:
        pseudocode = fence.group(1)
    if not pseudocode.strip():
        pseudocode = text
    return {
        "analysis": (analysis.group(1).strip() if analysis else "")[:20_000],
        "pseudocode": pseudocode.strip()[:20_000],
    }


def instance_text(item: Item) -> str:
    return item.question if item.kind == "task" else item.call


def execute_messages(item: Item, plan: dict[str, Any]) -> list[dict[str, str]]:
    prompt = (
        f"{EXECUTE_INSTRUCTIONS}\n\n{prompts.rule_note(item.rule)}"
        f"[PSEUDOCODE]\n{plan['pseudocode']}\n[/PSEUDOCODE]\n\n"
        f"Instance:\n{instance_text(item)}\n\nOutput:\n"
    )
    return [{"role": "user", "content": prompt}]


class LineParser:
    """Printed lines as they stream: each complete line becomes a step."""

    def __init__(self) -> None:
        self.pending = ""
        self.lines: list[str] = []

    def feed(self, delta: str) -> list[str]:
        self.pending += delta
        *done, self.pending = self.pending.split("\n")
        return self._take(done)

    def finish(self) -> list[str]:
        rest, self.pending = self.pending, ""
        return self._take([rest])

    def _take(self, lines: list[str]) -> list[str]:
        new = [line for line in lines if line.strip()][: MAX_LINES - len(self.lines)]
        self.lines.extend(new)
        return new


def _step(index: int, line: str) -> dict[str, Any]:
    return {
        "i": index,
        "line": 0,
        "func": "pseudocode",
        "stdout": storable(line[:2000]) + "\n",
        "by": "lm",
    }


def final_answer(lines: list[str]) -> str | None:
    for line in reversed(lines):
        match = _FINAL.search(line)
        if match:
            return match.group(1).strip().strip("`").strip()
    return None


def normalise(answer: str) -> str:
    """BIG-Bench Hard's exact match, forgiving only what the task format allows: case, outer
    whitespace, a trailing period, quotes, and an option written as ``(A)`` or ``A``."""
    text = " ".join(answer.strip().split()).rstrip(".").strip().strip("'\"`").strip()
    if re.fullmatch(r"\(?[A-R]\)?", text):
        return f"({text.strip('()')})"
    return text.lower()


def judge_task(answer: str | None, target: str) -> dict[str, Any]:
    if answer is None:
        return {"status": "unparsable", "explanation": "No line starting with 'Final answer:'."}
    if normalise(answer) == normalise(target):
        return {"status": "correct", "explanation": f"Answered {answer[:200]}, as expected."}
    return {
        "status": "wrong",
        "explanation": f"Answered {answer[:200]}, but the answer is {target[:200]}.",
    }


def _plan(item: Item, session: Session) -> tuple[dict[str, Any], bool]:
    """The stored plan for this task and model, or a new one (Think), which is stored only when
    it is whole: never a reply cut at its token limit, nor one without pseudocode."""
    key = plan_digest(item, session.model)
    plan = session.plans.get(key, session.model.name)
    if plan is not None:
        session.emit("plan", plan=plan, reused=True)
        session.append(f"── Think (reused the stored plan for {plan.get('title', key)}) ──\n")
        return plan, True
    # The plan is complete once a pseudocode block of some lines closes.
    reply = session.chat(
        think_messages(item),
        routing_key=routing_key("plan", key),
        heading="Think",
        max_tokens=THINK_TOKENS,
        fixed_tokens=True,
        temperature=THINK_TEMPERATURE,
        done=block_closed(
            "[PSEUDOCODE]", "[/PSEUDOCODE]", lambda code: len(code.strip().splitlines()) > 1
        ),
    )
    plan = read_plan(reply.text)
    plan["title"] = item.task or item.title or "this program"
    if reply.finish_reason == "length" and not reply.stopped_early:
        plan["not_stored"] = "the plan was cut at its token limit"
    elif not reply.text.strip() or not plan["pseudocode"]:
        plan["not_stored"] = "the plan is empty"
    if "not_stored" in plan:
        session.emit("plan", plan=plan, reused=False)
        return plan, False
    stored = session.plans.put(key, session.model.name, plan, subject=item.plan_key)
    session.emit("plan", plan=stored, reused=stored is not plan)
    return stored, stored is not plan


def plan_path(
    item: Item, plan: dict[str, Any], lines: list[str], session: Session
) -> dict[str, Any] | None:
    """Issue 20's path verdict for a program's instance: the plan's pseudocode run for real on
    the call, in the sandbox (it is model-written code: never here), under the item's rule as
    the model was told, and what it prints compared with the lines the model simulated
    (``compare.compare_prints``). None for a BIG-Bench Hard task, whose pseudocode takes its
    instance in words and cannot be called; "unknown", saying why, when the pseudocode does not
    run on the call (it names its function otherwise, it raises, a limit)."""
    if item.kind != "program" or not item.call or not plan.get("pseudocode"):
        return None
    session.emit("status", text="Running the plan's pseudocode to check the simulated prints…")
    try:
        ran = session.run(str(plan["pseudocode"]), call=item.call, rule=item.rule or "")
    except SandboxUnavailable as exc:
        return {"status": "unknown", "explanation": f"The plan could not be run: {exc}"[:300]}
    if ran.get("status") != "ok":
        error = ran.get("error")
        error = error if isinstance(error, dict) else {}
        what = f"{error.get('type') or ran.get('status')}: {error.get('message') or ''}".strip()
        return {
            "status": "unknown",
            "explanation": f"The plan's pseudocode does not run on {item.call[:80]} "
            f"({what[:160]}), so the lines it prints cannot be checked.",
        }
    stats = ran.get("stats")
    stats = stats if isinstance(stats, dict) else {}
    cut = bool(stats.get("truncated") or stats.get("capped"))
    return compare_prints(str(ran.get("stdout") or ""), lines, cut=cut)


def emulate(item: Item, session: Session) -> Emulation:
    plan, reused = _plan(item, session)
    parser = LineParser()
    steps: list[dict[str, Any]] = []

    def on_delta(delta: str) -> None:
        for line in parser.feed(delta):
            steps.append(_step(len(steps), line))
            session.emit("step", step=steps[-1])

    checked = 0

    def answered(_text: str) -> bool:
        """The simulation is complete with its first whole "Final answer: ..." line."""
        nonlocal checked
        new, checked = parser.lines[checked:], len(parser.lines)
        return any(_FINAL.search(line) for line in new)

    # Every instance of a task sends the same plan ahead of its own lines: one replica keeps
    # that prefix cached for all of them (a router's session affinity, or our own balancing).
    reply = session.chat(
        execute_messages(item, plan),
        routing_key=routing_key("plan", plan_digest(item, session.model)),
        heading="Execute",
        max_tokens=EXECUTE_TOKENS,
        on_delta=on_delta,
        done=answered,
    )
    for line in parser.finish():
        steps.append(_step(len(steps), line))
        session.emit("step", step=steps[-1])
    answer = final_answer(parser.lines)
    problem = None if answer is not None else "The simulated output has no 'Final answer:' line."
    if problem and reply.finish_reason == "length":
        problem += " The model reached its token limit."
    prediction = answer
    if answer is not None and item.kind == "program":
        try:  # the value of the call, as a literal, when the model wrote one
            prediction = repr(parse_literal(answer))
        except NotALiteral:
            prediction = answer
    trace = make_trace(
        status="parse_error" if problem else "ok",
        steps=steps,
        stdout="".join(s["stdout"] for s in steps),
        result=storable(prediction[:10_000]) if prediction is not None else None,
        error={"type": "ParseError", "message": problem, "line": None} if problem else None,
        source="emulated",
        method="tae",
    )
    details = {
        "plan": plan,
        "plan_reused": reused,
        "plan_key": item.plan_key,
        "plan_digest": plan_digest(item, session.model),
    }
    checked_path = plan_path(item, plan, parser.lines, session)
    if checked_path is not None:
        details["plan_path"] = checked_path
    verdict = judge_task(answer, item.target) if item.kind == "task" else None
    return Emulation(
        trace=trace, prediction=prediction, problem=problem, verdict=verdict, details=details
    )
