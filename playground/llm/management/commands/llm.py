"""``manage.py llm check``: is every configured model up, each of its replicas, and how fast is
its first token?"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from playground.llm.client import LLMError, Timeouts, stream_chat
from playground.llm.registry import ModelSpec, RegistryError, load_models
from playground.llm.replicas import Balancer


class Command(BaseCommand):
    help = "Check the configured language models and their replicas (up/down, first token)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("check", help="ask every model for a few tokens")
        check.add_argument("--timeout", type=float, default=30.0, help="seconds per replica")

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
        down_models = down_replicas = replicas = 0
        for model in models:
            marked = {h.url: h.down_s for h in Balancer(model).health()}
            up = 0
            for url in model.base_urls:
                replicas += 1
                # The replica alone: a success clears the site's mark on it, a failure sets it.
                alone = dataclasses.replace(model, base_url=url, more_base_urls=())
                line = self._check(alone, timeouts)
                if marked.get(url):
                    line += f" (was marked down for {marked[url]:.0f} s more)"
                self.stdout.write(line)
                up += line.startswith("UP")
            down_replicas += len(model.base_urls) - up
            down_models += not up
        if down_models:
            raise CommandError(f"{down_models} of {len(models)} model(s) down.")
        if down_replicas:
            raise CommandError(
                f"{down_replicas} of {replicas} replicas down (every model still answers)."
            )

    def _check(self, model: ModelSpec, timeouts: Timeouts) -> str:
        """One replica's line: UP with its time to first token, or DOWN with why."""
        where = f"{model.name:<24} {model.base_url}"
        t0 = time.monotonic()
        try:
            with stream_chat(
                model, [{"role": "user", "content": "Say OK."}], max_tokens=4, timeouts=timeouts
            ) as stream:
                for _ in stream:
                    pass
        except LLMError as exc:
            line = f"DOWN  {where}  {exc}"
            if exc.detail != str(exc):  # what the server said: for the operator, not users
                line += f" [{exc.detail}]"
            return line
        ttft = f"{stream.ttft_s * 1000:.0f} ms" if stream.ttft_s is not None else "no tokens"
        total = (time.monotonic() - t0) * 1000
        return f"UP    {where}  first token {ttft}, {total:.0f} ms in all"
