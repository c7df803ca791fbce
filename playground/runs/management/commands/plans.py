"""Think-and-Execute plans: ``list`` them, or ``purge`` them (all, or those of a model, a task, a
program), for staff who find a bad plan being reused. The next run of a purged task writes a new
one. The admin (Runs > Plans) does the same from a browser."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import QuerySet

from playground.runs.models import Plan


class Command(BaseCommand):
    help = "List or purge stored Think-and-Execute plans."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        for name, text in (("list", "list plans"), ("purge", "delete plans")):
            action = sub.add_parser(name, help=text)
            action.add_argument("--model", help="only this model's plans (its registry name)")
            action.add_argument("--task", help="only this reasoning task's plans (its name)")
            action.add_argument(
                "--program", type=Path, help="only the plans of the program in this file"
            )
            if name == "purge":
                action.add_argument(
                    "--all", action="store_true", help="every plan (nothing else given)"
                )

    def handle(self, *args: Any, **options: Any) -> None:
        plans = self._selected(options)
        if options["action"] == "list":
            for plan in plans.order_by("subject", "model"):
                title = plan.data.get("title", "") if isinstance(plan.data, dict) else ""
                self.stdout.write(f"{plan.subject}\t{plan.model}\t{plan.uses} uses\t{title}")
            return
        deleted, _ = plans.delete()
        self.stdout.write(f"Purged {deleted} plan{'s' if deleted != 1 else ''}.")

    def _selected(self, options: dict[str, Any]) -> QuerySet[Plan]:
        plans = Plan.objects.all()
        narrowed = False
        if options.get("model"):
            plans, narrowed = plans.filter(model=options["model"]), True
        if options.get("task"):
            plans, narrowed = plans.filter(subject=f"task:{options['task']}"), True
        if options.get("program"):
            try:
                text = options["program"].read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read {options['program']}: {exc}") from None
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
            plans, narrowed = plans.filter(subject=f"program:{digest}"), True
        if options["action"] == "purge" and narrowed == bool(options.get("all")):
            raise CommandError("purge needs --all, or --model / --task / --program (not both)")
        return plans
