"""What every emulation method gets and gives back.

A method is a module with ``emulate(item, session) -> Emulation``; every fact about it (the kinds
of item it accepts among them) is its record in ``registry.REGISTRY``. It talks to the model and
the sandbox only through the ``Session``, so the same code serves the Celery task (which streams
to viewers and saves in batches), the command line and the tests. No Django here.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from playground import sandbox
from playground.llm.client import LLMError, Refused, fit_prompt, stream_chat
from playground.llm.registry import ModelSpec

# The live events a method emits through its session; the run adds its own around them, and
# every kind is listed once in ``playground.runs.events.EventKind``.
MethodEventKind = Literal["status", "token", "step", "plan", "program"]


@dataclass(frozen=True)
class Item:
    """What is emulated: a program and its call, a P3 puzzle, or an instance of a reasoning task."""

    kind: str  # "program" | "puzzle" | "task"
    source: str = ""
    call: str = ""
    stdin: str = ""
    title: str = ""
    # The call's value when the library knows it (a CRUXEval program with its own call): what
    # input prediction shows the model; empty, it runs the call to learn it.
    output: str = ""
    # A puzzle: ``source`` holds ``sat``; its answer type and description.
    ans_type: str = ""
    description: str = ""
    # A task instance (BIG-Bench Hard): the task, the question, the expected answer and a few
    # other solved instances of the same task for few-shot prompts.
    task: str = ""
    question: str = ""
    target: str = ""
    examples: tuple[tuple[str, str], ...] = ()
    # A program under a semantic rule (a name in sandbox/inside/semantics.RULES; "": standard
    # Python): every prompt states it (``prompts.rule_note``), whatever the method runs itself
    # runs under it, and the real trace it is judged against is the program run under it.
    rule: str = ""
    # What a probe method asks: (kind, count) pairs of emulation/probes.Config; (): its default.
    probes: tuple[tuple[str, int], ...] = ()

    @property
    def plan_key(self) -> str:
        """What a Think-and-Execute plan is reused for: the task, or the program's text (and
        its rule: a plan for standard Python is not one for a changed rule)."""
        if self.kind == "task":
            return f"task:{self.task}"
        import hashlib

        key = "program:" + hashlib.sha256(self.source.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{key}:{self.rule}" if self.rule else key


@dataclass
class Reply:
    """One finished model answer. ``finish_reason``: "length" only when the token limit ended
    it; ``stopped_early`` when it was complete and the model was stopped there."""

    text: str
    prompt_tokens: int | None
    completion_tokens: int
    finish_reason: str | None = None
    stopped_early: bool = False


@dataclass
class Emulation:
    """What a method produced. ``trace`` is an emulated trace (schema v2) where the method makes
    one; ``prediction`` the predicted value or answer as text; ``verdict`` is set by methods that
    can judge themselves (a puzzle's ``sat``, a task's target); program items are judged against
    the real run afterwards."""

    trace: dict[str, Any] | None = None
    prediction: str | None = None
    problem: str | None = None
    verdict: dict[str, Any] | None = None
    real_trace: dict[str, Any] | None = None  # a puzzle's sat(answer) run, for the viewer
    details: dict[str, Any] = field(default_factory=dict)


class PlanStore(Protocol):
    """Where Think-and-Execute keeps its task-level plans (the database, or memory)."""

    def get(self, key: str, model: str) -> dict[str, Any] | None: ...

    def put(
        self, key: str, model: str, plan: dict[str, Any], *, subject: str = ""
    ) -> dict[str, Any]:
        """Store ``plan`` under ``key`` (its digest) unless one exists already; return the
        stored one (first writer wins). ``subject``: the task or program (``Item.plan_key``),
        by which staff may purge plans."""
        ...


class MemoryPlans:
    """A plan store for one process (the command line without a database, tests)."""

    def __init__(self) -> None:
        self.plans: dict[tuple[str, str], dict[str, Any]] = {}
        self.lock = threading.Lock()

    def get(self, key: str, model: str) -> dict[str, Any] | None:
        return self.plans.get((key, model))

    def put(
        self, key: str, model: str, plan: dict[str, Any], *, subject: str = ""
    ) -> dict[str, Any]:
        with self.lock:
            return self.plans.setdefault((key, model), plan)


class Cancelled(Exception):
    """The run was cancelled while the method worked."""


class TokenBudget(Protocol):
    """The requester's allowance of model tokens, shared by every worker (Redis)."""

    def reserve(self, tokens: int) -> None:
        """Take ``tokens`` before a call, or raise ``Refused`` (the budget is spent)."""
        ...

    def settle(self, reserved: int, used: int) -> None:
        """The call used ``used`` tokens of the ``reserved``: give back or take the rest."""
        ...


@dataclass
class Params:
    temperature: float = 0.0
    seed: int | None = None
    max_tokens: int = 512
    # End every answer as soon as it is complete: close the stream once the method reads a
    # complete answer, and send what makes the engine really hold a JSON constraint. False only
    # to measure what that saves (bench/early_stopping.py).
    stop_early: bool = True


def block_closed(
    opening: str, closing: str, accept: Callable[[str], bool] | None = None
) -> Callable[[str], bool]:
    """A ``done`` test for answers that end with an ``opening ... closing`` block (the [ANSWER]
    tags): true once such a block has closed with content ``accept`` takes (by default any that
    is not blank), so that instructions echoed back ("in [ANSWER] and [/ANSWER] tags") do not
    end the answer. Looks only at new text each time."""
    searched = 0

    def done(text: str) -> bool:
        nonlocal searched
        end = text.find(closing, max(0, searched - len(closing)))
        searched = len(text)
        while end != -1:
            start = text.rfind(opening, 0, end)
            if start != -1:
                content = text[start + len(opening) : end]
                if content.strip() and (accept is None or accept(content)):
                    return True
            end = text.find(closing, end + 1)
        return False

    return done


class Session:
    """The model, the sandbox and the outside world, as a method sees them.

    ``emit(kind, **data)`` publishes live events (``MethodEventKind``: ``token``, ``step``, ...);
    a model's ``token`` events carry the counts so far, for the live meter. ``on_text(transcript)``
    is told the whole text so far (the caller saves it in batches); ``cancelled()`` is polled
    between tokens. Token counts and calls add up over the session; ``endings`` says how each
    answer ended ("complete": stopped once read complete, "stop", "length").
    """

    def __init__(
        self,
        model: ModelSpec,
        *,
        params: Params | None = None,
        plans: PlanStore | None = None,
        emit: Callable[..., None] | None = None,
        on_text: Callable[[str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
        limits: sandbox.Limits | None = None,
        budget: TokenBudget | None = None,
        sandbox_run: Callable[..., dict[str, Any]] | None = None,
        routing_key: str = "",
    ) -> None:
        self.model = model
        # Sent with every model call (``llm.replicas.routing_key``: opaque, stable), so that a
        # router or the client's own balancing keeps this requester's calls on one replica; a
        # method may give a call its own (Think-and-Execute: its plan's).
        self.routing_key = routing_key
        self.budget = budget
        # How code is run: ``sandbox.run`` here (the command line, the tests), or the run
        # pipeline's sender of sandbox jobs (runs/sandboxing.py) in a worker that may not start
        # a sandbox itself. The same arguments and trace either way.
        self._sandbox_run = sandbox_run or sandbox.run
        self.params = params or Params()
        self.plans: PlanStore = plans or MemoryPlans()
        self._emit = emit
        self._on_text = on_text
        self._cancelled = cancelled or (lambda: False)
        self.limits = limits or sandbox.Limits()
        self.transcript = ""
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.calls = 0
        self.endings: list[str] = []
        self.live_tokens = 0  # counted as they stream, over every answer so far
        self.cancel_event = threading.Event()
        # Why the method's last model call was not sent (a prompt over the context, a spent
        # budget): a method that catches errors of its calls (Chain of Code) re-raises it.
        self.refused: Refused | None = None

    def emit(self, kind: MethodEventKind, **data: Any) -> None:
        if self._emit is not None:
            self._emit(kind, **data)

    def append(self, text: str) -> None:
        """Add text of our own to the transcript (headings, notes), streamed like the model's."""
        self.transcript += text
        self.emit("token", text=text)

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        heading: str = "",
        max_tokens: int | None = None,
        json_schema: dict[str, Any] | None = None,
        on_delta: Callable[[str], None] | None = None,
        done: Callable[[str], bool] | None = None,
        fixed_tokens: bool = False,
        temperature: float | None = None,
        routing_key: str | None = None,
    ) -> Reply:
        """Ask the model, streaming its answer into the transcript (under ``heading`` when the
        method makes several calls). ``done(text)``: whether this answer's text so far is
        complete, asked after each delta (and after ``on_delta``); the stream is then closed, so
        the engine stops generating. (Stop strings would end an answer that starts by echoing
        its instructions, "... in [ANSWER] and [/ANSWER] tags", before it began.)
        ``fixed_tokens``: the answer gets ``max_tokens`` whatever the run's own limit (work that
        is stored for other runs, such as a plan); ``temperature`` replaces the run's and
        ``routing_key`` the session's (calls that share a prompt prefix meet one replica). Raises
        LLMError (``Refused`` when the prompt cannot fit the model's context or the token budget
        is spent: nothing is sent), or Cancelled."""
        if self._cancelled():
            raise Cancelled
        if heading:
            self.append(("\n\n" if self.transcript else "") + f"── {heading} ──\n")
        # The run's budget caps every answer; a method may ask for less for one of its calls.
        if fixed_tokens and max_tokens:
            limit = max_tokens
        else:
            limit = (
                min(max_tokens, self.params.max_tokens) if max_tokens else self.params.max_tokens
            )
        try:
            # The answer's limit may be lowered to the room the prompt leaves in the context.
            prompt, limit = fit_prompt(self.model, messages, limit)
            # The most this call can cost, taken before it is sent: workers running this
            # requester's other runs see it at once, so together they stay within the budget.
            if self.budget is not None:
                self.budget.reserve(prompt + limit)
        except Refused as exc:
            self.refused = exc
            raise
        reserved = prompt + limit if self.budget is not None else 0
        self.calls += 1
        early = self.params.stop_early
        last_check = time.monotonic()
        first_token: float | None = None
        count = 0
        opened: Any = None
        try:
            with stream_chat(
                self.model,
                messages,
                prompt_tokens=prompt,
                max_tokens=limit,
                temperature=self.params.temperature if temperature is None else temperature,
                seed=self.params.seed,
                json_schema=json_schema,
                strict_schema=early,
                cancel=self.cancel_event,
                routing_key=self.routing_key if routing_key is None else routing_key,
            ) as stream:
                opened = stream
                for delta in stream:
                    now = time.monotonic()
                    first_token = first_token or now
                    count += 1
                    self.live_tokens += 1
                    self.transcript += delta
                    # Tokens after the first over the time since it came: the engine's speed,
                    # not the wait for the prompt.
                    rate = (count - 1) / (now - first_token) if now > first_token else None
                    self.emit(
                        "token",
                        text=delta,
                        tokens=self.live_tokens,
                        answer_tokens=count,
                        limit=limit,
                        rate=round(rate, 1) if rate is not None else None,
                        calls=self.calls,
                    )
                    if on_delta is not None:
                        on_delta(delta)
                    if early and done is not None and done(stream.text):
                        stream.stop()
                    if time.monotonic() - last_check >= 0.5:
                        last_check = time.monotonic()
                        if self._on_text is not None:
                            self._on_text(self.transcript)
                        if self._cancelled():
                            self.cancel_event.set()
        except LLMError:
            if self.cancel_event.is_set():
                raise Cancelled from None
            raise
        finally:
            if self._on_text is not None:
                self._on_text(self.transcript)
            if self.budget is not None:
                spent = 0
                if opened is not None:  # the prompt was sent: it counts, with what came back
                    spent = (opened.prompt_tokens or prompt) + max(opened.completion_tokens, count)
                self.budget.settle(reserved, spent)
        self.prompt_tokens += stream.prompt_tokens or 0
        self.completion_tokens += stream.completion_tokens
        self.live_tokens = self.completion_tokens  # the server's own count, where it gave one
        self.endings.append("complete" if stream.stopped_early else stream.finish_reason or "")
        return Reply(
            stream.text,
            stream.prompt_tokens,
            stream.completion_tokens,
            stream.finish_reason,
            stream.stopped_early,
        )

    def run(
        self,
        source: str,
        *,
        call: str | None = None,
        stdin: str = "",
        lmulator: Any = None,
        keep_running: bool = False,
        rule: str = "",
    ) -> dict[str, Any]:
        """Run code in the sandbox (never in this process). ``keep_running``: record up to the
        step limit, then let the program finish untraced. ``rule``: under that semantic rule
        (an item's ``rule``; "" for standard Python). Raises SandboxUnavailable."""
        limits = dataclasses.replace(self.limits, keep_running=keep_running)
        extra: dict[str, Any] = {}
        if lmulator is not None:
            extra["lmulator"] = lmulator
        if rule:
            extra["rule"] = rule
        return self._sandbox_run(source, call=call, stdin=stdin, limits=limits, **extra)
