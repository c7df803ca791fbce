"""``manage.py surprise``: score runs' real traces under their models (their surprise), here or
on the llm queue, and print the figures.

    python manage.py surprise 12 13          # score runs 12 and 13 in this process
    python manage.py surprise 12 --queue     # send it to the llm workers instead
    python manage.py surprise --evaluation 4 # every run of evaluation 4 not yet scored

A run already scored (or whose engine cannot score) is left as it is; a failed one is scored
again. The operator's own work: no rate or token budget is counted.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from playground.runs import surprise
from playground.runs.models import Run, RunSurprise


class Command(BaseCommand):
    help = "Score runs' real traces under their models: how surprised each model is, per step."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("runs", nargs="*", type=int, help="run ids")
        parser.add_argument("--evaluation", type=int, help="the runs of this evaluation")
        parser.add_argument(
            "--queue", action="store_true", help="send each to the llm queue instead of here"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[int] = list(options["runs"])
        if options["evaluation"] is not None:
            from playground.benchmarks.models import Result

            ids += [
                pk
                for pk in Result.objects.filter(
                    evaluation_id=options["evaluation"], run__isnull=False
                )
                .order_by("index", "sample")
                .values_list("run_id", flat=True)
                if pk is not None
            ]
        if not ids:
            raise CommandError("Name runs, or an evaluation (--evaluation).")
        runs = {run.pk: run for run in Run.objects.filter(pk__in=ids)}
        for pk in ids:
            run = runs.get(pk)
            if run is None:
                self.stderr.write(f"run {pk}: no such run")
                continue
            if why := surprise.why_not(run):
                self.stdout.write(f"run {pk}: {why}")
                continue
            if not run.is_finished:
                self.stdout.write(f"run {pk}: not finished")
                continue
            if options["queue"]:
                row, sent = surprise.request(run)
                self.stdout.write(f"run {pk}: {'sent' if sent else row.get_state_display()}")
                continue
            row, _sent = surprise.request(run, send=False)
            if row.state == RunSurprise.State.PENDING:
                surprise.score(pk)
                row.refresh_from_db()
            self.stdout.write(self._line(row))

    @staticmethod
    def _line(row: RunSurprise) -> str:
        if row.state != RunSurprise.State.DONE:
            return f"run {row.run_id}: {row.get_state_display()}: {row.reason}"
        data = row.data
        return (
            f"run {row.run_id}: {data['total']:.2f} nats over {data['tokens']} tokens "
            f"({data['mean']:.4f} a token), the largest step {row.max_step or 0:.2f} nats, "
            f"{len(data['steps'])} step(s) [{row.engine}]"
        )
