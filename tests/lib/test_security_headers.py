"""Finding L7: a Content-Security-Policy on every response, without inline script or style or
eval; no page may be framed but a share link's embed view, by the sites the operator names; HSTS
for a year behind TLS. (tests/e2e/test_csp.py shows in Chromium that every page works under it.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from playground.lib import paths
from playground.runs.models import Run
from playground.sharing.models import ShareLink
from tests.factories import ProgramFactory


def _policy(response: object) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]  # type: ignore[index]
    directives = {}
    for part in header.split(";"):
        name, *sources = part.split()
        directives[name] = sources
    return directives


def _link() -> ShareLink:
    program = ProgramFactory(is_public=False)
    run = Run.objects.create(
        program=program, source=program.source, status=Run.Status.DONE, method="direct"
    )
    return ShareLink.objects.create(run=run)


@pytest.mark.django_db
def test_every_page_forbids_inline_code_and_framing(user_client: Client) -> None:
    link = _link()
    pages = [
        (Client(), "/"),
        (Client(), "/library/"),
        (Client(), "/accounts/login/"),
        (Client(), link.get_absolute_url()),
        (Client(), "/no-such-page/"),  # Django's 404 page too
        (Client(), "/api/models"),
        (user_client, "/courses/"),
        (user_client, "/evaluations/"),
    ]
    for client, url in pages:
        response = client.get(url)
        policy = _policy(response)
        assert policy["default-src"] == ["'self'"], url
        assert policy["script-src"] == ["'self'"], url
        assert policy["style-src"] == ["'self'"], url
        assert policy["connect-src"] == ["'self'"], url
        assert policy["frame-ancestors"] == ["'none'"], url
        assert policy["object-src"] == ["'none'"], url
        assert policy["base-uri"] == ["'none'"], url
        header = response["Content-Security-Policy"]
        for weakening in ("unsafe-inline", "unsafe-eval", "unsafe-hashes", "sha256-", "nonce-"):
            assert weakening not in header, (url, header)


@pytest.mark.django_db
def test_the_embed_view_may_be_framed_by_the_configured_sites(settings: Settings) -> None:
    link = _link()
    url = reverse("sharing:embed", args=[link.token])
    embed = Client().get(url)
    policy = _policy(embed)
    assert policy["frame-ancestors"] == ["*"]  # the default: embeds go on any site
    assert policy["script-src"] == ["'none'"]  # it needs none: nothing to inject into
    assert policy["connect-src"] == ["'none'"]
    assert policy["form-action"] == ["'none'"]
    assert "X-Frame-Options" not in embed

    settings.PLAYGROUND_EMBED_FRAME_ANCESTORS = ["https://lms.example.edu", "'self'"]
    policy = _policy(Client().get(url))
    assert policy["frame-ancestors"] == ["https://lms.example.edu", "'self'"]
    # The page behind the same token is not framable.
    assert _policy(Client().get(link.get_absolute_url()))["frame-ancestors"] == ["'none'"]


def test_embed_ancestors_cannot_inject_a_directive() -> None:
    from playground.settings import _frame_ancestors

    assert _frame_ancestors(["https://a.example https://b.example", "'self'"]) == [
        "https://a.example",
        "https://b.example",
        "'self'",
    ]
    assert _frame_ancestors([]) == ["'none'"]
    for bad in ["https://a.example; script-src *", "https://a.example,script-src", "'nöne'"]:
        with pytest.raises(ImproperlyConfigured):
            _frame_ancestors([bad])


@pytest.mark.parametrize(("subdomains", "expected"), [("", ""), ("true", "; includeSubDomains")])
def test_hsts_lasts_a_year_behind_tls(subdomains: str, expected: str) -> None:
    """Settings are read once per process: a fresh one, as a server behind a TLS proxy starts."""
    env = {**os.environ, "PLAYGROUND_BEHIND_HTTPS_PROXY": "true"}
    if subdomains:
        env["PLAYGROUND_HSTS_INCLUDE_SUBDOMAINS"] = subdomains
    code = (
        "import django; django.setup()\n"
        "from django.test.utils import setup_test_environment; setup_test_environment()\n"
        "from django.test import Client\n"
        "c = Client()\n"
        "print(c.get('/accounts/login/', HTTP_X_FORWARDED_PROTO='https')"
        ".get('Strict-Transport-Security'))\n"
        "print(c.get('/accounts/login/').get('Strict-Transport-Security'))\n"
    )
    env.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=paths.REPO_DIR, capture_output=True,
        text=True, timeout=60, check=True,
    )  # fmt: skip
    over_tls, plain = result.stdout.split("\n")[:2]
    assert over_tls == "max-age=31536000" + expected
    assert plain == "None"  # never over plain HTTP, where it means nothing
