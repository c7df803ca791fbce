"""An "oracle" model server: OpenAI-compatible, streaming, and always right, because it answers
from the real execution (it runs the program in the sandbox) or from the known answers.

With it every method must score a full match, which proves that the plumbing (prompts, parsing,
streaming, storing, comparing) loses nothing; ``error_step`` makes it wrong at one step of a
trace on purpose, which the comparison must then report at exactly that step.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from playground import sandbox
from playground.compare import cwm
from playground.emulation import (
    coc,
    cwm_trace,
    input_prediction,
    output_prediction,
    probes,
    prompts,
    puzzle,
    stepping,
    tae,
)
from playground.emulation import trace as trace_method
from playground.llm.registry import ModelSpec
from playground.sandbox.inside.semantics import RULES

_BLOCK = r"\[{0}\]\n(.*?)\n\[/{0}\]"


def _last(tag: str, text: str) -> str:
    found = re.findall(_BLOCK.format(tag), text, re.DOTALL)
    return found[-1] if found else ""


def _rule(prompt: str) -> str | None:
    """The semantic rule the prompt states (by its sentence, as a model reads it), if any: the
    oracle then runs the program under it, as the real run did."""
    return next((name for name, rule in RULES.items() if rule.text in prompt), None)


@dataclass
class Oracle:
    """What the oracle knows beyond the programs it can run itself."""

    targets: dict[str, str] = field(default_factory=dict)  # task question -> answer
    solutions: dict[str, str] = field(default_factory=dict)  # puzzle sat source -> answer
    calls: dict[str, str] = field(default_factory=dict)  # program source -> a call (CRUXEval-I)
    knowledge: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None  # CoC lines
    error_step: int | None = None  # trace method: make step k (of the call) wrong
    probe_wrong: int | None = None  # probe methods: answer question n (from 1) wrong
    probe_unreadable: int | None = None  # probe methods: answer question n with no literal
    # After its answer, write this many chunks of filler (as a tiny model does after closing its
    # JSON), FILLER_DELAY apart, unless the client closes the stream first.
    filler: int = 0
    filler_delay: float = 0.002
    latency: float = 0.0  # seconds before each answer starts (a model's time to first token)
    chunk_delay: float = 0.0  # seconds between two chunks of an answer (a slow model's pace)
    seen: Counter[str] = field(default_factory=Counter)
    prompt_chars: Counter[str] = field(default_factory=Counter)
    closed_early: int = 0  # answers whose stream the client closed before the server was done
    refused: int = 0  # requests without the server's key (oracle_server's api_key)
    # probes' runs, by program, call and rule
    runs: dict[tuple[str, str, str | None], dict[str, Any]] = field(default_factory=dict)
    # Teacher-forced scoring, as vLLM's /tokenize and prompt_logprobs (``prompt_logprobs``):
    # one token per character; a character of a trace is certain (log-probability 0) where
    # the oracle's own trace (wrong at ``error_step``) has it too, else ``doubt_logprob``.
    prompt_logprobs: bool = False
    doubt_logprob: float = -3.0
    scored: int = 0  # completions asked for prompt log-probabilities

    def answer(self, prompt: str) -> str:
        kind, text = self._answer(prompt)
        self.seen[kind] += 1
        self.prompt_chars[kind] += len(prompt)
        return text

    def answers(self) -> dict[str, list[tuple[str, str, Callable[[str], str]]]]:
        """What the oracle can answer, by method module: the instructions each of the module's
        prompts opens with (read from the module, so a reworded prompt still finds its answer),
        the kind counted in ``seen``, and the answer. A registry method whose module is missing
        here has no oracle answer: tests/runs/test_methods_with_oracle.py names it."""
        return {
            output_prediction.__name__: [
                (prompts.DIRECT_INSTRUCTIONS, "output", self._output),
                (prompts.COT_INSTRUCTIONS, "output", self._output),
            ],
            input_prediction.__name__: [
                (prompts.INPUT_DIRECT_INSTRUCTIONS, "input", self._input),
                (prompts.INPUT_COT_INSTRUCTIONS, "input", self._input),
            ],
            trace_method.__name__: [(trace_method.INSTRUCTIONS, "trace", self._trace)],
            cwm_trace.__name__: [(cwm_trace.INSTRUCTIONS, "cwm-trace", self._cwm_trace)],
            coc.__name__: [
                (coc.LMULATOR_INSTRUCTIONS, "lmulator", self._lmulator),
                (coc.WRITE_INSTRUCTIONS, "write", self._write),
            ],
            tae.__name__: [
                (tae.THINK_INSTRUCTIONS, "think", self._think),
                (tae.EXECUTE_INSTRUCTIONS, "execute", self._execute),
            ],
            puzzle.__name__: [(puzzle.INSTRUCTIONS, "puzzle", self._puzzle)],
            probes.__name__: [(probes.INSTRUCTIONS, "probe", self._probe)],
            stepping.__name__: [(stepping.INSTRUCTIONS, "step", self._step)],
        }

    def _answer(self, prompt: str) -> tuple[str, str]:
        for known in self.answers().values():
            for instructions, kind, answer in known:
                if prompt.startswith(instructions.split("{", 1)[0]):  # up to a placeholder
                    return kind, answer(prompt)
        return "unknown", "I do not know."

    def _write(self, prompt: str) -> str:
        question = prompt.rsplit("Question: ", 1)[1].rsplit("\n[PROGRAM]", 1)[0]
        # Variables reach the model as bounded reprs, so the question goes by a short key.
        key = hashlib.sha256(question.encode()).hexdigest()[:16]
        program = f"key = {key!r}\nanswer = look_up_answer(key)\n"
        return f"[PROGRAM]\n{program}[/PROGRAM]"

    def _puzzle(self, prompt: str) -> str:
        sat = _last("PYTHON", prompt)
        return f"[ANSWER]\n{self.solutions.get(sat, 'None')}\n[/ANSWER]"

    def _output(self, prompt: str) -> str:
        """CRUXEval-O, direct or chain of thought: the assertion with the real value."""
        block = _last("PYTHON", prompt)
        source, _, assertion = block.rpartition("\nassert ")
        call = assertion.removesuffix(" == ??")
        real = sandbox.run(source, call=call, rule=_rule(prompt))
        return f"[ANSWER]\nassert {call} == {real['result']}\n[/ANSWER]"

    def _input(self, prompt: str) -> str:
        """CRUXEval-I, direct or chain of thought: the program's own call, when it is known."""
        block = _last("PYTHON", prompt)
        source, _, assertion = block.rpartition("\nassert ")
        output = assertion.split("(??) == ", 1)[1]
        call = self.calls.get(source.rstrip(), "None")
        return f"[ANSWER]\nassert {call} == {output}\n[/ANSWER]"

    def _trace(self, prompt: str, *, with_error: bool = True) -> str:
        source, call = _last("PYTHON", prompt), _last("CALL", prompt)
        rule = _rule(prompt)
        if (source, call, rule) not in self.runs:
            self.runs[source, call, rule] = sandbox.run(source, call=call, rule=rule)
        real = self.runs[source, call, rule]
        steps = [dict(s) for s in trace_method.call_steps(real["steps"])]
        if with_error and self.error_step is not None and self.error_step < len(steps):
            wrong = dict(steps[self.error_step])
            names = list(wrong.get("locals", {})) or ["oracle_error"]
            wrong["locals"] = {**wrong.get("locals", {}), names[0]: "'the oracle is wrong here'"}
            steps[self.error_step] = wrong
        return trace_method.render(steps) + "\n[/TRACE]"

    def logprobs_of(self, ids: list[int]) -> list[Any]:
        """vLLM's ``prompt_logprobs`` for a chat (``ASSISTANT`` ends its template) and the part
        of a trace after it: certain everywhere but where the real trace differs from the
        trace the oracle would write itself (its ``error_step``)."""
        self.scored += 1
        text = "".join(map(chr, ids))
        at = text.rfind(ASSISTANT)
        certain: list[bool] = []
        offset = 0
        if at >= 0:
            prompt = text[:at].removesuffix("\n")
            real, believed = self._trace(prompt, with_error=False), self._trace(prompt)
            certain = [False] * len(real)
            matcher = difflib.SequenceMatcher(None, real, believed, autojunk=False)
            for block in matcher.get_matching_blocks():
                certain[block.a : block.a + block.size] = [True] * block.size
            offset = real.find(text[at + 1 :])
        entries: list[Any] = [None]
        for k in range(1, len(ids)):
            where = offset + k - at - 1
            sure = at < 0 or k <= at or offset < 0 or where >= len(certain) or certain[where]
            lp = 0.0 if sure else self.doubt_logprob
            entries.append({str(ids[k]): {"logprob": lp, "rank": 1, "decoded_token": chr(ids[k])}})
        return entries

    def _cwm_trace(self, prompt: str) -> str:
        """The real trace in CWM's format, continuing the prompt's ``<|frame_sep|>``; with
        ``error_step`` k, frame k (step k of the call) is wrong."""
        question = prompt.rsplit(cwm.CONTEXT_START, 1)[1].split(cwm.FRAME_SEP, 1)[0]
        program, _, call = question.replace(cwm.MARKER, "").rstrip("\n").rpartition("\n\n")
        real = sandbox.run(program, call=call, rule=_rule(prompt))
        frames = cwm.frames_of(real, program, call=call)
        k = self.error_step
        if k is not None and k < len(frames):
            wrong = "'the oracle is wrong here'"
            frame = frames[k]
            if frame.locals is not None:
                name = next(iter(frame.locals), "oracle_error")
                frames[k] = cwm.Frame(frame.kind, frame.source, frame.line,
                                      {**frame.locals, name: wrong})  # fmt: skip
            else:
                frames[k] = cwm.Frame(frame.kind, frame.source, frame.line, None, wrong)
        return cwm.render(frames)

    def _probe(self, prompt: str) -> str:
        """Probes, all at once or the last one of a chain: each question read back into what it
        asks and answered from a real run of the program (``probes.truth`` on its trace)."""
        numbered = _last("PYTHON", prompt).splitlines()
        source = "\n".join(re.sub(r"^\s*\d+  ?", "", line, count=1) for line in numbered) + "\n"
        found = re.search(r"then the call `(.*)` is evaluated\.", prompt)
        call = found.group(1) if found else ""
        rule = _rule(prompt)
        if (source, call, rule) not in self.runs:
            self.runs[source, call, rule] = sandbox.run(source, call=call or None, rule=rule)
        run = probes.index(self.runs[source, call, rule], source, call=call)
        questions = re.findall(r"^(\d+)\. (.*)$", prompt, re.MULTILINE)
        if probes.ONE_AT_A_TIME in prompt:
            number, question = questions[-1]
            return f"[ANSWER]\n{self._probe_answer(int(number), question, run)}\n[/ANSWER]"
        lines = [f"{n}: {self._probe_answer(int(n), q, run)}" for n, q in questions]
        return "[ANSWERS]\n" + "\n".join(lines) + "\n[/ANSWERS]"

    def _probe_answer(self, number: int, question: str, run: probes.Run) -> str:
        where: dict[str, Any]
        if found := re.match(r"Is line (\d+) executed", question):
            kind, where = "coverage", {"line": int(found[1])}
        elif found := re.match(r"What is the value of `(.+?)` right after line (\d+) "
                               r"executes for the (\d+)", question):  # fmt: skip
            kind, where = "state", {"line": int(found[2]), "k": int(found[3]), "variable": found[1]}
        elif found := re.match(r"Which line executes right after line (\d+) executes for the "
                               r"(\d+)", question):  # fmt: skip
            kind, where = "path", {"line": int(found[1]), "k": int(found[2])}
        elif found := re.match(r"List (?:the first (\d+) of )?the line numbers", question):
            kind, where = "sequence", {"length": int(found[1] or len(run.lines_seq))}
        else:
            kind, where = "output", {}
        true = probes.truth(kind, run, **where)
        assert true is not None, f"the oracle cannot answer {question!r}"
        if number == self.probe_unreadable:
            return "I cannot say."
        if number != self.probe_wrong:
            return true[0]
        value = ast.literal_eval(true[0])
        if isinstance(value, bool):
            return repr(not value)
        if isinstance(value, int):
            return repr(value + 1)
        return "0" if value is None else "'the oracle is wrong here'"

    def _step(self, prompt: str) -> str:
        """The next step of a stepping prompt (as many as the steps it shows) from the real
        run; with ``error_step`` k, step k of the call is wrong (one of its values, or an
        extra one)."""
        source, call = _last("PYTHON", prompt), _last("CALL", prompt)
        rule = _rule(prompt)
        if (source, call, rule) not in self.runs:
            self.runs[source, call, rule] = sandbox.run(source, call=call, rule=rule)
        steps = trace_method.call_steps(self.runs[source, call, rule]["steps"])
        k = prompt.rsplit("[STEPS]\n", 1)[1].count("\n")
        step = dict(steps[k])
        if k == self.error_step:
            names = list(step.get("locals", {})) or ["oracle_error"]
            step["locals"] = {**step.get("locals", {}), names[0]: "'the oracle is wrong here'"}
        return trace_method.render_step(step) + "\n[/STEP]"

    def _lmulator(self, prompt: str) -> str:
        line = re.findall(r"^Line \d+: `(.*)` \(", prompt, re.MULTILINE)[-1]
        variables_text = re.findall(r"^Variables: (.*)$", prompt, re.MULTILINE)[-1]
        reprs = ast.literal_eval(variables_text)
        variables = {}
        for name, text in reprs.items():
            try:
                variables[name] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                variables[name] = text
        if "look_up_answer" in line:
            by_key = {
                hashlib.sha256(q.encode()).hexdigest()[:16]: t for q, t in self.targets.items()
            }
            return repr({"answer": by_key[variables["key"]]})
        assert self.knowledge is not None, f"the oracle cannot simulate {line!r}"
        return repr(self.knowledge(line, variables))

    def _think(self, prompt: str) -> str:
        source = _last("PYTHON", prompt)
        if source:  # a program: the "pseudocode" is the program itself (so called as the
            # instance calls it, it prints what the program prints), and a solver of the instance
            solver = "def solve(instance):\n    print('Final answer:', repr(eval(instance)))"
            code = f"{source}\n\n{solver}"
        else:
            code = (
                "def solve(instance):\n    answer = look_up(instance)\n"
                "    print('Final answer:', answer)"
            )
        return f"[ANALYSIS]\nThe oracle knows.\n[/ANALYSIS]\n[PSEUDOCODE]\n{code}\n[/PSEUDOCODE]"

    def _execute(self, prompt: str) -> str:
        instance = prompt.split("Instance:\n", 1)[1].rsplit("\n\nOutput:", 1)[0]
        if instance in self.targets:
            return f"Final answer: {self.targets[instance]}"
        pseudocode = _last("PSEUDOCODE", prompt)
        source = pseudocode.rsplit("\n\ndef solve(instance):", 1)[0]
        real = sandbox.run(source, call=instance, rule=_rule(prompt))
        printed = real["stdout"].rstrip("\n")
        return (printed + "\n" if printed else "") + f"Final answer: {real['result']}"


# Where a chat's template ends and the assistant's answer begins, in the oracle's tokenizer.
ASSISTANT = "\x01"


def _tokenize(body: dict[str, Any]) -> list[int]:
    """vLLM's /tokenize, one token per character: a chat's messages with the assistant's turn
    opened, or a plain prompt."""
    if "messages" in body:
        text = "".join(m["content"] + "\n" for m in body["messages"]) + ASSISTANT
    else:
        text = body["prompt"]
    return [ord(c) for c in text]


FILLER = "\nThis is a JSON object that represents the trace, formatted with indentation."


def _chunks(text: str, size: int = 40) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@contextmanager
def oracle_server(
    oracle: Oracle, *, host: str = "127.0.0.1", api_key: str = ""
) -> Iterator[ModelSpec]:
    """Serve ``oracle`` on a free port of ``host`` for as long as the block runs; yields its
    model spec. With ``api_key`` it answers only requests bearing it (``Authorization: Bearer``,
    as vLLM with VLLM_API_KEY) and counts the others in ``oracle.refused``."""

    class Handler(BaseHTTPRequestHandler):
        def _refused(self) -> bool:
            if not api_key or self.headers.get("Authorization") == f"Bearer {api_key}":
                return False
            oracle.refused += 1
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True

        def _json(self, answer: Any) -> None:
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if self._refused():
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            scoring = self.path == "/tokenize" or self.path.endswith("/v1/completions")
            if scoring and not oracle.prompt_logprobs:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/tokenize":
                self._json({"tokens": _tokenize(body)})
                return
            if self.path.endswith("/v1/completions"):
                choice = {"index": 0, "text": "x", "finish_reason": "length"}
                if body.get("prompt_logprobs") is not None:
                    choice["prompt_logprobs"] = oracle.logprobs_of(body["prompt"])
                self._json({"choices": [choice]})
                return
            prompt = body["messages"][-1]["content"]
            if len(body["messages"]) > 1:  # a retry (puzzle): the first question counts
                prompt = body["messages"][0]["content"]
            text = oracle.answer(prompt)
            time.sleep(oracle.latency)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            parts = _chunks(text) + [FILLER] * oracle.filler
            try:
                for index, part in enumerate(parts):
                    message = {"choices": [{"index": 0, "delta": {"content": part}}]}
                    self.wfile.write(b"data: " + json.dumps(message).encode() + b"\n\n")
                    if oracle.chunk_delay and index < len(parts) - oracle.filler:
                        self.wfile.flush()
                        time.sleep(oracle.chunk_delay)
                    if oracle.filler:
                        self.wfile.flush()
                        if index >= len(parts) - oracle.filler:
                            time.sleep(oracle.filler_delay)
                written = len(text) + len(FILLER) * oracle.filler
                usage = {"prompt_tokens": len(prompt) // 4, "completion_tokens": written // 4}
                finish = "length" if oracle.filler else "stop"  # filler runs to the limit
                end = {
                    "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
                    "usage": usage,
                }
                self.wfile.write(b"data: " + json.dumps(end).encode() + b"\n\ndata: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                oracle.closed_early += 1

        def do_GET(self) -> None:
            if self._refused():
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"data": [{"id": "oracle"}]}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ModelSpec(
            name="oracle",
            base_url=f"http://{host}:{server.server_address[1]}/v1",
            model="oracle",
            label="Oracle (answers from the real run)",
            max_concurrency=8,
            # Its prompt log-probabilities are vLLM's (llm/logprobs.py's OpenAIPromptLogprobs).
            tokenizer="vllm" if oracle.prompt_logprobs else "",
        )
    finally:
        server.shutdown()
        server.server_close()
