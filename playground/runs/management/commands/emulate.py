"""``manage.py emulate``: have a model emulate a program and compare it with the real run.

    python manage.py emulate prog.py --method trace --call "f([1, 2])"     # streams, then a report
    python manage.py emulate prog.py --method coc --call "f(1)" --json     # one JSON object
    python manage.py emulate --jsonl in.jsonl --method cot --out out.jsonl # many, progress bar
    python manage.py emulate puzzle.py --method puzzle --ans-type "List[int]"   # a P3 sat()
    python manage.py emulate prog.py --method cot --call "f(3)" --rule swap-lt-gt  # a changed rule

Batch input lines are those of ``trace --jsonl`` ({"id", "code", "call", "stdin"}); output lines
{"id", "emulated", "comparison"} in input order, where "comparison" carries at least
"result_match" and "first_divergence". Think-and-Execute plans are reused within one command.
"""

from __future__ import annotations

import contextlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from playground import sandbox
from playground.emulation.base import Cancelled, Item, MemoryPlans, Params, PlanStore, Session
from playground.emulation.judging import judge_program
from playground.emulation.registry import REGISTRY, max_tokens_for
from playground.llm.client import LLMError
from playground.llm.registry import RegistryError, get_model, load_models
from playground.runs.management.commands.trace import (
    _lines,
    _read_source,
    format_table,
    not_offered,
)
from playground.runs.requests import rule_refusal
from playground.sandbox.inside.semantics import RULES


class Command(BaseCommand):
    help = "Have a language model emulate a program with a method; compare with the real run."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", nargs="?", help="program file, or - for standard input")
        parser.add_argument("--method", required=True, choices=sorted(REGISTRY))
        parser.add_argument("--model", help="registry name (default: the first configured)")
        parser.add_argument("--call", help="expression to evaluate after the program")
        parser.add_argument("--stdin", default="", help="text given to the program as input")
        parser.add_argument("--ans-type", default="", help="a puzzle's answer type, e.g. int")
        parser.add_argument("--max-tokens", type=int, help="token budget of one model answer")
        parser.add_argument("--temperature", type=float, default=0.0)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--jsonl", metavar="IN", help="batch mode: a JSON-lines file, or -")
        parser.add_argument("--out", metavar="OUT", help="batch output file (default: stdout)")
        parser.add_argument(
            "--concurrency", type=int, default=4, help="model requests at once in batch mode"
        )
        parser.add_argument(
            "--rule",
            default="",
            help="the program runs under this changed rule of Python, and the model is told so "
            "(one of: " + ", ".join(RULES) + ")",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            models = load_models()
            name = options["model"] or (models[0].name if models else "")
            model = get_model(name)
        except (RegistryError, KeyError):
            raise CommandError(f"No model named {options['model']!r} is configured.") from None
        method = options["method"]
        rule = options["rule"]
        if rule and (why := rule_refusal(rule, kind="program", method=method, source=None)):
            raise CommandError(why)
        params = Params(
            temperature=options["temperature"],
            seed=options["seed"],
            max_tokens=options["max_tokens"] or max_tokens_for(method),
        )
        plans = MemoryPlans()
        runner = _Runner(model, method, params, plans, rule)
        if options["jsonl"]:
            self._batch(runner, options["jsonl"], options["out"], max(1, options["concurrency"]))
            return
        if not options["file"]:
            raise CommandError("Give a program FILE (or -), or --jsonl IN for a batch.")
        source = _read_source(options["file"])
        if "puzzle" in REGISTRY[method].kinds:
            item = Item(kind="puzzle", source=source, ans_type=options["ans_type"])
        else:
            if rule and (why := not_offered(rule, source)):
                raise CommandError(why)
            item = Item(
                kind="program",
                source=source,
                call=options["call"] or "",
                stdin=options["stdin"],
                rule=rule,
            )
        live = None if options["json"] else self._live
        record = runner.emulate(item, on_token=live)
        if options["json"]:
            self.stdout.write(json.dumps(record, ensure_ascii=False, indent=1))
        else:
            self.stdout.write("\n\n" + report(record, source))
        if record.get("error"):
            sys.exit(1)

    def _live(self, text: str) -> None:
        self.stdout.write(text, ending="")
        self.stdout.flush()

    def _batch(self, runner: _Runner, path: str, out_path: str | None, concurrency: int) -> None:
        infile: TextIO = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
        out: Any = open(out_path, "w", encoding="utf-8") if out_path else self.stdout  # noqa: SIM115
        lines = list(_lines(infile))
        try:
            with (
                ThreadPoolExecutor(max_workers=concurrency) as pool,
                tqdm(total=len(lines), unit="program", file=sys.stderr) as bar,
            ):
                for record in pool.map(runner.line, lines):
                    out.write(json.dumps(record, ensure_ascii=False) + "\n")
                    bar.update(1)
                    bar.set_postfix(match=runner.matches, refresh=False)
        finally:
            if infile is not sys.stdin:
                infile.close()
            if out_path:
                out.close()


class _Runner:
    """Emulates items with one model and method; safe to use from several threads."""

    def __init__(
        self, model: Any, method: str, params: Params, plans: PlanStore, rule: str = ""
    ) -> None:
        self.model, self.method, self.params, self.plans = model, method, params, plans
        self.rule = rule
        self.spec = REGISTRY[method]
        self.matches = 0

    def emulate(self, item: Item, on_token: Any = None) -> dict[str, Any]:
        if item.kind not in self.spec.kinds:
            raise CommandError(f"The method {self.method} does not apply to a {item.kind}.")

        def emit(kind: str, **data: Any) -> None:
            if kind == "token" and on_token is not None:
                on_token(data["text"])

        session = Session(self.model, params=self.params, plans=self.plans, emit=emit)
        real = standard = None
        try:
            if item.kind == "program":
                # The ground truth: under the item's rule, if any (and standard Python beside).
                real = session.run(
                    item.source, call=item.call or None, stdin=item.stdin, rule=item.rule
                )
                if item.rule:
                    standard = session.run(item.source, call=item.call or None, stdin=item.stdin)
            emulation = self.spec.emulate(item, session)
        except sandbox.SandboxUnavailable as exc:
            raise CommandError(str(exc)) from None
        except (LLMError, Cancelled) as exc:
            return {"error": f"The model could not answer: {exc}", "real": real}
        record: dict[str, Any] = {
            "method": self.method,
            "model": self.model.name,
            "rule": item.rule or None,
            "emulated": {
                "trace": emulation.trace,
                "prediction": emulation.prediction,
                "problem": emulation.problem,
                "text": session.transcript,
                "details": emulation.details,
                "model_calls": session.calls,
                "prompt_tokens": session.prompt_tokens,
                "completion_tokens": session.completion_tokens,
            },
        }
        if real is not None:
            verdict, comparison = judge_program(
                self.method,
                real,
                call=item.call,
                prediction=emulation.prediction,
                problem=emulation.problem,
                emulated=emulation.trace,
                model_calls=session.calls,
                text=session.transcript,
                hit_limit=session.calls == 1
                and session.completion_tokens >= self.params.max_tokens,
                max_tokens=self.params.max_tokens,
                details=emulation.details,
                source=item.source,
            )
            record.update(real=real, verdict=verdict, comparison=comparison)
            if standard is not None:
                record["standard"] = standard
        else:
            verdict = emulation.verdict or {"status": "unknown", "explanation": ""}
            passed = verdict.get("status") == "correct"
            record.update(
                real=emulation.real_trace,
                verdict=verdict,
                comparison={"result_match": passed, "first_divergence": None},
            )
        # A Chain of Code run that never asked the model is no match of the model's.
        no_model = (record.get("verdict") or {}).get("status") == "no_model"
        if record["comparison"].get("result_match") and not no_model:
            self.matches += 1
        return record

    def line(self, line: str) -> dict[str, Any]:
        """One batch line: the same input as ``trace --jsonl``."""
        ident = None
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or not isinstance(data.get("code"), str):
                raise ValueError("each line must be an object with a string 'code'")
            ident = data.get("id")
            call, stdin = data.get("call") or "", data.get("stdin") or ""
            if not isinstance(call, str) or not isinstance(stdin, str):
                raise ValueError("'call' and 'stdin' must be strings")
            kind = "puzzle" if "puzzle" in self.spec.kinds else "program"
            if self.rule and kind == "program" and (why := not_offered(self.rule, data["code"])):
                raise ValueError(why)
            item = Item(
                kind=kind,
                source=data["code"],
                call=call,
                stdin=stdin,
                ans_type=str(data.get("ans_type", "")),
                rule=self.rule if kind == "program" else "",
            )
            record = self.emulate(item)
        except ValueError as exc:
            with contextlib.suppress(ValueError, AttributeError):
                ident = json.loads(line).get("id")
            return {"id": ident, "error": str(exc)}
        except CommandError as exc:
            return {"id": ident, "error": str(exc)}
        out = {"id": ident, "emulated": record.get("emulated")}
        out["comparison"] = record.get("comparison")
        out["verdict"] = record.get("verdict")
        if record.get("error"):
            out["error"] = record["error"]
        return out


def report(record: dict[str, Any], source: str) -> str:
    """The emulated trace and the comparison, for a person at a terminal."""
    if record.get("error"):
        return f"error: {record['error']}\n"
    rows: list[str] = []
    emulated = record["emulated"]
    if emulated["trace"] and emulated["trace"]["steps"]:
        program = emulated["details"].get("program") or source
        rows.append("The model's trace:")
        rows.append(format_table(emulated["trace"], program))
    if record.get("rule"):
        rows.append(f"rule:    {record['rule']}: {RULES[record['rule']].text}")
    verdict = record.get("verdict") or {}
    rows.append(f"verdict: {verdict.get('status')}: {verdict.get('explanation', '')}")
    comparison = record.get("comparison") or {}
    if "compared_steps" in comparison:
        rows.append(
            f"steps:   {comparison['correct_prefix']} of {comparison['compared_steps']} right "
            f"before the first divergence; step agreement {comparison['step_agreement']:.0%}"
        )
    divergence = comparison.get("first_divergence")
    rows.append(f"first divergence: {divergence['message'] if divergence else 'none'}")
    rows.append(
        f"model:   {emulated['model_calls']} call(s), {emulated['prompt_tokens']} prompt and "
        f"{emulated['completion_tokens']} completion tokens"
    )
    return "\n".join(rows) + "\n"
