"""``manage.py privacy export USERNAME`` and ``manage.py privacy delete USERNAME``: the account
page's "Download my data" and "Delete my account" for an operator answering a request made
another way (a letter to the data-protection officer, an account without a password). The same
code as the pages (playground/privacy), so the same rules: the only instructor of a course is
refused, grades stay under a pseudonym (docs/PRIVACY.md)."""

from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from playground.privacy import deletion, export


class Command(BaseCommand):
    help = "Export (JSON to standard output) or delete one account's data (docs/PRIVACY.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["export", "delete"])
        parser.add_argument("username")
        parser.add_argument(
            "--yes", action="store_true", help="delete without asking (for scripts)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        user = users.objects.filter(**{users.USERNAME_FIELD: options["username"]}).first()
        if user is None:
            raise CommandError(f"No account is called {options['username']!r}.")
        if options["action"] == "export":
            sys.stdout.buffer.write(export.build(user))
            sys.stdout.buffer.write(b"\n")
            return
        why = deletion.refusal(user)
        if why:
            raise CommandError(why.replace("You are", f"{user.get_username()} is"))
        if not options["yes"]:
            answer = input(f"Delete the account {user.get_username()!r} for good? [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                raise CommandError("Nothing was deleted.")
        done = deletion.delete_account(user)
        kept = f"; {done.submissions_kept} submission(s) kept under {done.pseudonym!r}"
        self.stdout.write(
            f"Deleted {options['username']!r}: {done.runs} run(s), "
            f"{done.programs_kept} program(s) kept without owner"
            + (kept if done.submissions_kept else "")
        )
