"""Register an LMS (an LTI 1.3 platform), list the registered ones, or rotate the tool's key.

    manage.py lti_platform add --name "Canvas" --issuer https://canvas.instructure.com \
        --client-id 10000000000001 --deployment 1:abc --auth-url https://.../authorize \
        --token-url https://.../token --jwks-url https://.../jwks
    manage.py lti_platform list
    manage.py lti_platform rotate-key
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from playground.lti import keys
from playground.lti.models import Platform


class Command(BaseCommand):
    help = "Register an LTI 1.3 platform (an LMS), list them, or rotate the tool's signing key."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser(
            "add", help="Register a platform (or update the one with this issuer and client id)."
        )
        add.add_argument("--name", required=True)
        add.add_argument("--issuer", required=True)
        add.add_argument("--client-id", required=True)
        add.add_argument(
            "--deployment",
            action="append",
            default=[],
            help="A deployment id (repeat for several).",
        )
        add.add_argument("--auth-url", required=True, help="The platform's OIDC auth endpoint.")
        add.add_argument("--token-url", required=True, help="The platform's OAuth2 token URL.")
        add.add_argument("--jwks-url", required=True, help="The platform's public key set.")
        add.add_argument(
            "--frame-origin",
            action="append",
            default=[],
            help="Who may frame the tool (default: the auth URL's origin).",
        )
        sub.add_parser("list", help="The registered platforms.")
        sub.add_parser(
            "rotate-key", help="A new signing key; the old one stays published for two days."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "add":
            self._add(options)
        elif action == "list":
            for p in Platform.objects.order_by("pk"):
                state = "" if p.active else " (inactive)"
                deployments = ",".join(p.deployment_ids)
                self.stdout.write(
                    f"{p.pk}: {p.name}{state} iss={p.issuer} client_id={p.client_id} "
                    f"deployments={deployments}"
                )
        else:
            key = keys.rotate()
            self.stdout.write(
                f"New signing key {key.kid}; the old ones stay published for {keys.RETIRE_AFTER}."
            )

    def _add(self, o: dict[str, Any]) -> None:
        if not o["deployment"]:
            raise CommandError("Give at least one --deployment.")
        platform = Platform.objects.filter(
            issuer=o["issuer"], client_id=o["client_id"]
        ).first() or Platform(issuer=o["issuer"], client_id=o["client_id"])
        platform.name = o["name"]
        platform.deployment_ids = sorted(set(o["deployment"]))
        platform.auth_login_url = o["auth_url"]
        platform.auth_token_url = o["token_url"]
        platform.jwks_url = o["jwks_url"]
        platform.frame_origins = " ".join(o["frame_origin"])
        try:
            platform.full_clean()
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from None
        platform.save()
        keys.signing_key()
        self.stdout.write(f"Platform {platform.pk} registered: {platform}.")
        self.stdout.write("Give the LMS these (relative to this site's address):")
        for what, name in (
            ("OIDC login initiation URL", "lti:login"),
            ("Target link / redirect URI", "lti:launch"),
            ("Public keyset URL", "lti:jwks"),
        ):
            self.stdout.write(f"  {what}: {reverse(name)}")
