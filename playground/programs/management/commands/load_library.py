"""``manage.py load_library``: import the built-in data sets (safe to run again)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from playground.programs.library import import_library


class Command(BaseCommand):
    help = "Import CRUXEval, HumanEval, P3 and BIG-Bench Hard into the database (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        t0 = time.perf_counter()
        reports = import_library()
        for report in reports:
            self.stdout.write(f"  {report}")
        changed = sum(r.created + r.updated for r in reports)
        verdict = f"{changed} rows written" if changed else "already up to date"
        self.stdout.write(
            self.style.SUCCESS(f"Library: {verdict} in {time.perf_counter() - t0:.1f} s")
        )
