"""``manage.py llm check``: is every configured model up, and how fast is its first token?"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from playground.llm.client import LLMError, Timeouts, stream_chat
from playground.llm.registry import RegistryError, load_models


class Command(BaseCommand):
    help = "Check the configured language models (up/down, time to first token)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("check", help="ask every model for a few tokens")
        check.add_argument("--timeout", type=float, default=30.0, help="seconds per model")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            models = load_models()
        except RegistryError as exc:
            raise CommandError(str(exc)) from None
        if not models:
            raise CommandError(
                "No model is configured (PLAYGROUND_MODELS / PLAYGROUND_MODELS_FILE)."
            )
        timeouts = Timeouts(connect=5, first_token=options["timeout"], total=options["timeout"])
        down = 0
        for model in models:
            t0 = time.monotonic()
            try:
                with stream_chat(
                    model, [{"role": "user", "content": "Say OK."}], max_tokens=4, timeouts=timeouts
                ) as stream:
                    for _ in stream:
                        pass
            except LLMError as exc:
                down += 1
                line = f"DOWN  {model.name:<24} {model.base_url}  {exc}"
                if exc.detail != str(exc):  # what the server said: for the operator, not users
                    line += f" [{exc.detail}]"
                self.stdout.write(line)
                continue
            ttft = f"{stream.ttft_s * 1000:.0f} ms" if stream.ttft_s is not None else "no tokens"
            total = (time.monotonic() - t0) * 1000
            where = f"{model.name:<24} {model.base_url}"
            self.stdout.write(f"UP    {where}  first token {ttft}, {total:.0f} ms in all")
        if down:
            raise CommandError(f"{down} of {len(models)} model(s) down.")
