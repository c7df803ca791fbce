"""``manage.py bench``: evaluate a method and a model over a data set, with a progress bar.

    python manage.py bench cruxeval --method direct --model smollm2-135m --limit 20
    python manage.py bench bbh --task navigate --method tae --model coder --samples 1 --json
    python manage.py bench --resume 12          # continue an interrupted evaluation

It runs in this process (the model server still batches the concurrent requests) and stores
everything like an evaluation started from the site, which shows it at /evaluations/<id>/.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from playground.benchmarks import execution, services
from playground.benchmarks.models import Dataset, Evaluation, Result
from playground.benchmarks.summary import summarise
from playground.emulation.registry import REGISTRY, max_tokens_for
from playground.llm.registry import RegistryError, load_models


class Command(BaseCommand):
    help = "Evaluate a method and a model over a data set (CRUXEval-O, BIG-Bench Hard, P3)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", nargs="?", choices=[d.value for d in Dataset])
        parser.add_argument("--method", choices=sorted(REGISTRY))
        parser.add_argument("--model", help="registry name (default: the first configured)")
        parser.add_argument("--task", action="append", default=[], help="BBH task (repeatable)")
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
        parser.add_argument("--resume", type=int, metavar="ID", help="continue evaluation ID")
        parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["resume"]:
            evaluation = Evaluation.objects.filter(pk=options["resume"]).first()
            if evaluation is None:
                raise CommandError(f"No evaluation {options['resume']}.")
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
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=1))
            return
        low, high = summary["ci95"]
        self.stdout.write(
            f"{summary['dataset']} · {summary['method']} · {summary['model']}: "
            f"{summary['passed']}/{summary['n']} = {summary['accuracy']:.1%} "
            f"(95% CI {low:.1%} to {high:.1%})"
        )
        if summary["leakage"]:
            self.stdout.write(f"{summary['leakage']} prediction(s) only repeated the input.")
        for key, value in summary.items():
            if key.startswith("pass@"):
                self.stdout.write(f"{key}: {value['value']:.1%}")
        self.stdout.write(f"Results: evaluation #{evaluation.pk}, {summary['url']}")

    def _create(self, options: dict[str, Any]) -> Evaluation:
        if not options["dataset"] or not options["method"]:
            raise CommandError("Give a DATASET and --method (or --resume ID).")
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
                start=False,
            )  # fmt: skip
        except services.EvaluationError as exc:
            raise CommandError(str(exc)) from None
