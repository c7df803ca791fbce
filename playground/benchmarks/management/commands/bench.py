"""``manage.py bench``: evaluate a method and a model over a data set, with a progress bar.

    python manage.py bench cruxeval --method direct --model smollm2-135m --limit 20
    python manage.py bench cruxeval --task input --method input-cot --samples 10 --json
    python manage.py bench bbh --task navigate --method tae --model coder --samples 1 --json
    python manage.py bench cruxeval --method direct --rule swap-add-sub --limit 100
    python manage.py bench --resume 12          # continue an interrupted evaluation
    python manage.py bench import gens.json --dataset cruxeval --task output --model codellama-7b
    python manage.py bench import outputs/ --dataset bbh --method cot --model codex --json
    python manage.py bench import answers.jsonl --dataset p3 --model mine
    python manage.py bench rescore 12           # score again under the current rules

``import`` reads published (or any) outputs and scores them with the benchmark's own rules
(benchmarks/imports.py, official.py) without generating anything: CRUXEval's generations
format, BIG-Bench Hard's, or (a ``.jsonl`` file) the generic ``{"id", "predictions"}`` one for
CRUXEval, BIG-Bench Hard or P3.

Under ``--rule NAME`` every program runs under that semantic rule (issue 21) and the model is
told it; items whose program the rule changes nothing in are left out (and counted). Its summary
pairs it with its standard twin (the same command without ``--rule``), when there is one:
accuracy both ways, the difference with its interval, McNemar's exact p, and how many wrong
answers are what Python would normally return (``paired``).

It runs in this process (the model server still batches the concurrent requests) and stores
everything like an evaluation started from the site, which shows it at /evaluations/<id>/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from playground.benchmarks import execution, imports, paired, rescoring, services
from playground.benchmarks.models import Dataset, Evaluation, Result
from playground.benchmarks.summary import summarise
from playground.emulation.registry import REGISTRY, max_tokens_for
from playground.llm.registry import RegistryError, load_models
from playground.sandbox import RULES


class Command(BaseCommand):
    help = "Evaluate a method and a model over a data set (CRUXEval-O/-I, BIG-Bench Hard, P3)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "dataset", nargs="?", choices=[d.value for d in Dataset] + ["import", "rescore"]
        )
        parser.add_argument(
            "path", nargs="?",
            help="import: the file (or BBH folder) to read; rescore: the evaluation's id",
        )  # fmt: skip
        parser.add_argument(
            "--dataset",
            dest="import_dataset",
            choices=["cruxeval", "bbh", "p3"],
            help="import: of what (p3: a .jsonl file)",
        )
        parser.add_argument("--method", choices=sorted(REGISTRY))
        parser.add_argument(
            "--model", help="registry name (default: the first configured); import: a label"
        )
        parser.add_argument(
            "--task", action="append", default=[],
            help="BBH task (repeatable); CRUXEval: output (CRUXEval-O) or input (CRUXEval-I, "
            "with --method input-direct or input-cot)",
        )  # fmt: skip
        parser.add_argument(
            "--program", action="append", type=int, default=[], help="program id (repeatable)"
        )
        parser.add_argument("--limit", type=int, help="at most this many items")
        parser.add_argument("--random", action="store_true", help="a random sample (--seed)")
        parser.add_argument("--samples", type=int, default=1, help="samples per item (pass@k)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--temperature", type=float)
        parser.add_argument("--concurrency", type=int, default=4, help="model requests at once")
        parser.add_argument("--max-tokens", type=int)
        parser.add_argument(
            "--rule", choices=list(RULES), default="",
            help="run every program under this semantic rule (and tell the model)",
        )  # fmt: skip
        parser.add_argument("--resume", type=int, metavar="ID", help="continue evaluation ID")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["dataset"] == "import":
            self._import(options)
            return
        if options["dataset"] == "rescore":
            self._rescore(options)
            return
        if options["resume"]:
            evaluation = Evaluation.objects.filter(pk=options["resume"]).first()
            if evaluation is None:
                raise CommandError(f"No evaluation {options['resume']}.")
            if services.held_elsewhere(evaluation):
                raise CommandError(
                    f"Evaluation {evaluation.pk} is being worked on by a worker now; "
                    "it needs no resuming."
                )
            services.resume_interrupted_one(evaluation)
        else:
            evaluation = self._create(options)
        bar = tqdm(total=evaluation.total, unit="item", file=sys.stderr, disable=options["json"])
        done = Result.objects.filter(evaluation=evaluation, status=Result.Status.DONE).count()
        bar.update(done)

        def progress(done_now: int, total: int) -> None:
            bar.update(done_now - bar.n)

        try:
            execution.execute(evaluation.pk, on_progress=progress)
        except KeyboardInterrupt:
            bar.close()
            raise CommandError(
                f"Interrupted: continue with `manage.py bench --resume {evaluation.pk}`."
            ) from None
        bar.close()
        evaluation.refresh_from_db()
        summary = summarise(evaluation)
        summary["url"] = evaluation.get_absolute_url()
        # The command line is the operator's: every evaluation may be a twin.
        summary["paired"] = paired.figures(evaluation, Evaluation.objects.all())
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=1))
            return
        low, high = summary["ci95"]
        under = f" · under {summary['rule']}" if summary["rule"] else ""
        self.stdout.write(
            f"{summary['dataset']} · {summary['method']} · {summary['model']}{under}: "
            f"{summary['passed']}/{summary['n']} = {summary['accuracy']:.1%} "
            f"(95% CI {low:.1%} to {high:.1%})"
        )
        if summary["not_offered"]:
            self.stdout.write(
                f"{summary['not_offered']} item(s) left out: the rule changes nothing in them."
            )
        for row in summary["paired"]:
            self.stdout.write(_paired_line(row))
        if summary["leakage"]:
            self.stdout.write(f"{summary['leakage']} prediction(s) only repeated the input.")
        for key, value in summary.items():
            if key.startswith("pass@"):
                self.stdout.write(f"{key}: {value['value']:.1%}")
        self.stdout.write(f"Results: evaluation #{evaluation.pk}, {summary['url']}")

    def _rescore(self, options: dict[str, Any]) -> None:
        raw = str(options["path"] or "")
        if not (raw.isascii() and raw.isdigit()):
            raise CommandError("Give the id of the evaluation to score again: bench rescore ID.")
        try:
            outcome = rescoring.rescore(int(raw))
        except Evaluation.DoesNotExist:
            raise CommandError(f"No evaluation {raw}.") from None
        except rescoring.RescoreRefused as exc:
            raise CommandError(str(exc)) from None
        evaluation = Evaluation.objects.get(pk=outcome["id"])
        summary = {**summarise(evaluation), "rescored": outcome}
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=1))
            return
        before = outcome["accuracy_before"]
        self.stdout.write(
            f"Evaluation #{evaluation.pk} scored again under {outcome['rules']}: "
            f"{outcome['changed']} of {outcome['results']} results changed; accuracy "
            + (f"{before:.1%} -> " if before is not None else "")
            + f"{outcome['accuracy']:.1%}"
        )

    def _import(self, options: dict[str, Any]) -> None:
        path = Path(options["path"] or "")
        if not options["path"] or not path.exists():
            raise CommandError("Give the PATH of the file (or BBH folder) to import.")
        if not options["model"]:
            raise CommandError("Give --model: a label for the model whose outputs these are.")
        bar = tqdm(unit="check", file=sys.stderr, disable=options["json"])

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            if path.suffix == ".jsonl":
                dataset = options["import_dataset"]
                if dataset is None:
                    raise CommandError("Give --dataset cruxeval, bbh or p3.")
                tasks = options["task"] or ["output"]
                if len(tasks) != 1:
                    raise CommandError("Give one --task: output or input.")
                method = options["method"] or imports.default_method(dataset, tasks[0])
                evaluation = imports.import_jsonl(
                    path, dataset=dataset, task=tasks[0], method=method,
                    model=options["model"], on_progress=progress,
                )  # fmt: skip
            elif options["import_dataset"] == "cruxeval":
                tasks = options["task"] or ["output"]
                if len(tasks) != 1:
                    raise CommandError("Give one --task: output or input.")
                evaluation = imports.import_cruxeval(
                    path, task=tasks[0], model=options["model"],
                    method=options["method"] or imports.default_method("cruxeval", tasks[0]),
                    on_progress=progress,
                )  # fmt: skip
            elif options["import_dataset"] == "bbh":
                if not options["method"]:
                    raise CommandError("Give --method: how the BIG-Bench Hard outputs answer.")
                evaluation = imports.import_bbh(
                    path, method=options["method"], model=options["model"], on_progress=progress
                )
            else:
                raise CommandError("Give --dataset cruxeval or bbh.")
        except imports.ImportRefused as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        summary = summarise(evaluation)
        summary["url"] = evaluation.get_absolute_url()
        if evaluation.dataset == Dataset.BBH:
            summary["tasks"] = imports.bbh_tasks(evaluation)
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=1))
            return
        figures = [f"{k} {v['value']:.1%}" for k, v in summary.items() if k.startswith("pass@")]
        self.stdout.write(
            f"Imported {evaluation.dataset}"
            + (f" ({evaluation.task} prediction)" if evaluation.dataset == Dataset.CRUXEVAL else "")
            + f" · {evaluation.method} · {evaluation.model}: {summary['n']} items, "
            + f"{summary['passed']}/{summary['n']} = {summary['accuracy']:.1%} on the first sample"
            + (" · " + ", ".join(figures) if figures else "")
        )
        self.stdout.write(
            f"Scored with the rules {evaluation.rules}: "
            f"evaluation #{evaluation.pk}, {summary['url']}"
        )

    @staticmethod
    def _check_task(options: dict[str, Any]) -> None:
        """CRUXEval (or a list of programs): ``--task output`` (CRUXEval-O) or ``input``
        (CRUXEval-I). The method's answer decides the task, so a --task that is not the
        method's is refused; left out, it is the method's (output for every method but the
        input predictors)."""
        tasks = options["task"]
        if not tasks:
            return
        if len(tasks) != 1 or tasks[0] not in ("output", "input"):
            raise CommandError("Give one --task: output or input.")
        spec = REGISTRY[options["method"]]
        if (tasks[0] == "input") != spec.predicts_input:
            fitting = sorted(
                n
                for n, m in REGISTRY.items()
                if m.predicts_input == (tasks[0] == "input") and "program" in m.kinds
            )
            raise CommandError(
                f"The method {spec.name} does not do {tasks[0]} prediction; for --task "
                f"{tasks[0]} choose --method {' or '.join(fitting)}."
            )

    def _create(self, options: dict[str, Any]) -> Evaluation:
        if not options["dataset"] or not options["method"]:
            raise CommandError("Give a DATASET and --method (or --resume ID).")
        if options["dataset"] != Dataset.BBH:
            self._check_task(options)
        try:
            models = load_models()
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        names = [m.name for m in models]
        model = options["model"] or (names[0] if names else "")
        if model not in names:
            raise CommandError(f"No model named {model!r} is configured ({', '.join(names)}).")
        samples = max(1, options["samples"])
        temperature = options["temperature"]
        if temperature is None:
            temperature = 0.8 if samples > 1 else 0.0  # pass@k needs different samples
        subset = options["task"] if options["dataset"] == Dataset.BBH else options["program"]
        try:
            return services.create_evaluation(
                dataset=options["dataset"], method=options["method"], model=model,
                subset=subset, limit=options["limit"], sample_randomly=options["random"],
                samples=samples, seed=options["seed"], temperature=temperature,
                concurrency=options["concurrency"],
                max_tokens=options["max_tokens"] or max_tokens_for(options["method"]),
                start=False, rule=options["rule"],
            )  # fmt: skip
        except services.EvaluationError as exc:
            raise CommandError(str(exc)) from None


def _paired_line(row: dict[str, Any]) -> str:
    """One rule's paired figures, as the command prints them."""

    def figures(f: dict[str, Any]) -> str:
        low, high = f["difference"]["ci95"]
        prior = f["prior_following"]
        return (
            f"{f['standard']['accuracy']:.1%} -> {f['under_rule']['accuracy']:.1%}, difference "
            f"{f['difference']['value']:+.1%} (95% CI {low:+.1%} to {high:+.1%}); right only "
            f"standard {f['only_standard_right']}, only under the rule {f['only_rule_right']}; "
            f"McNemar exact p = {f['p']:.3g}; {prior['count']} of {prior['of']} wrong answers "
            "are what Python normally returns"
        )

    return (
        f"{row['rule']} vs standard (#{row['standard_id']} and #{row['rule_id']}), "
        f"{row['n']} items both scored: {figures(row)}\n"
        f"  on the {row['changed']['n']} whose outcome the rule changed: {figures(row['changed'])}"
        + ("" if row["complete"] else " (not all scored yet)")
    )
