"""The one table of limits (playground/lib/ratelimits.py): on by default, counted per account
or per address at the boundary, a 429 with Retry-After, the load-test profile, overrides."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.test import Client, RequestFactory
from pytest_django.fixtures import Settings

from playground.lib import ratelimits
from playground.lib.paths import REPO_DIR
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _request(address: str = "203.0.113.7", user: object = None) -> object:
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().post("/", REMOTE_ADDR=address)
    request.user = user or AnonymousUser()
    return request


def _fresh(prefix: str = "198.51.100") -> str:
    import secrets

    return f"{prefix}.{secrets.randbelow(250) + 1}"


def test_the_limits_are_on_by_default_in_a_fresh_process() -> None:
    """Not the tests' load-test table: what `make run` and a deployment get without settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_LIMITS")}
    env["DJANGO_SETTINGS_MODULE"] = "playground.settings"
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.PLAYGROUND_LIMITS_PROFILE, s.PLAYGROUND_LIMITS['runs.anon'], "
        "s.PLAYGROUND_LIMITS['signups.ip'], s.PLAYGROUND_LIMITS['streams.ip'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO_DIR, capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    assert out == ["public", "20/m", "5/h", "500"]
    assert ratelimits.table() == ratelimits.DEFAULTS


def test_the_load_test_profile_raises_every_limit_but_a_streams_lifetime() -> None:
    public, load = ratelimits.table("public"), ratelimits.table("load-test")
    for name, value in public.items():
        if name in ratelimits.UNSCALED:  # a stream's lifetime, a varied item's sizes
            assert load[name] == value
        elif isinstance(value, int):
            assert load[name] == value * ratelimits.LOAD_TEST_FACTOR
        else:
            count, _, period = value.partition("/")
            assert load[name] == f"{int(count) * ratelimits.LOAD_TEST_FACTOR}/{period}"


def test_overrides_are_checked_at_start_up() -> None:
    assert (
        ratelimits.table("public", ratelimits.parse_overrides("runs.anon=5/m, streams.user=3"))[
            "streams.user"
        ]
        == 3
    )
    for bad in ("runs.anon=5", "streams.user=lots", "nothing.here=1/m", "runs.anon"):
        with pytest.raises(ratelimits.LimitsError):
            ratelimits.table("public", ratelimits.parse_overrides(bad))
    with pytest.raises(ratelimits.LimitsError):
        ratelimits.table("unlimited")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="playground.settings", PLAYGROUND_LIMITS="runs=1")
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, cwd=REPO_DIR,
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0
    assert "no limit is called 'runs'" in done.stderr


def test_a_rate_is_counted_per_address_for_visitors_and_per_account_for_users(
    settings: Settings,
) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table(
        "public", {"runs.anon": "3/m", "runs.user": "2/m"}
    )
    address = _fresh()
    for _ in range(3):
        ratelimits.hit(_request(address), "runs")
    with pytest.raises(ratelimits.Refused) as refused:
        ratelimits.hit(_request(address), "runs")
    assert refused.value.limit == "runs.anon"
    assert refused.value.message.startswith("Too many runs started: at most 3 a minute.")
    assert 1 <= refused.value.retry_after <= 60
    ratelimits.hit(_request(_fresh("192.0.2")), "runs")  # another address is not counted with it

    user = UserFactory()
    for _ in range(2):  # a signed-in user from the exhausted address has their own budget
        ratelimits.hit(_request(address, user), "runs")
    with pytest.raises(ratelimits.Refused):
        ratelimits.hit(_request(_fresh("192.0.2"), user), "runs")  # and it follows them


def test_looking_does_not_count(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"signups.ip": "1/h"})
    address = _fresh()
    for _ in range(5):
        ratelimits.hit(_request(address), "signups.ip", count=False)
    ratelimits.hit(_request(address), "signups.ip")
    with pytest.raises(ratelimits.Refused) as refused:
        ratelimits.hit(_request(address), "signups.ip", count=False)
    assert "at most 1 an hour" in refused.value.message


def test_ipv6_visitors_are_counted_by_their_64() -> None:
    assert ratelimits.client_address(_request("2001:db8:1:2:aaaa::1")) == "2001:db8:1:2::/64"
    assert ratelimits.client_address(_request("2001:db8:1:2:bbbb::9")) == "2001:db8:1:2::/64"
    assert ratelimits.client_address(_request("::ffff:192.0.2.1")) == "192.0.2.1"
    assert ratelimits.client_address(_request("192.0.2.1")) == "192.0.2.1"


def test_a_refusal_is_a_429_page_with_retry_after(settings: Settings) -> None:
    from tests.factories import ProgramFactory

    settings.PLAYGROUND_LIMITS = ratelimits.table("public", {"runs.anon": "1/m"})
    program = ProgramFactory(is_public=True)
    client = Client(REMOTE_ADDR=_fresh())
    assert client.post(f"/programs/{program.pk}/run/").status_code == 302
    page = client.post(f"/programs/{program.pk}/run/")
    assert page.status_code == 429
    assert 1 <= int(page["Retry-After"]) <= 60
    text = page.content.decode()
    assert "Too many runs started: at most 1 a minute." in text
    assert "<h1>" in text


def test_the_wait_is_said_in_seconds_minutes_or_hours(settings: Settings) -> None:
    settings.PLAYGROUND_LIMITS = ratelimits.table("public")
    said = [
        ratelimits.refusal_message("programs.user", seconds).rpartition("Try again in ")[2]
        for seconds in (1, 119, 120, 7199, 7200, 86_399)
    ]
    assert said == [
        "1 second.",
        "119 seconds.",
        "2 minutes.",
        "120 minutes.",
        "2 hours.",
        "24 hours.",
    ]
