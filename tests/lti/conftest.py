"""The LTI tests' world: the platform simulator (tests/lti/simulator.py), registered with the
live site as an admin would, and a browser-like client that follows a launch through."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import httpx
import pytest
from pytest_django.live_server_helper import LiveServer

from playground.lti.models import Platform
from tests.lti.simulator import Simulator


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    """One platform for the session (its keys take a while to make); ``sim`` resets it."""
    sim = Simulator()
    yield sim
    sim.close()


@pytest.fixture
def sim(simulator: Simulator, live_server: LiveServer) -> Simulator:
    simulator.reset()
    simulator.tool_jwks_url = live_server.url + "/lti/jwks/"
    return simulator


@pytest.fixture
def platform(sim: Simulator) -> Platform:
    return Platform.objects.create(**sim.registration())


def browser() -> httpx.Client:
    """One person's browser: its own cookies, redirects looked at one by one."""
    return httpx.Client(follow_redirects=False, timeout=30)


def launch(client: httpx.Client, sim: Simulator, hint: str, tool: str) -> httpx.Response:
    """The LMS's link clicked: login initiation at the tool, the platform's auth endpoint, the
    id_token posted back. Returns the tool's answer to that post (a redirect on success)."""
    start = client.get(tool + "/lti/login/?" + sim.login_query(hint, tool))
    if start.status_code != 302:
        return start
    auth = client.get(start.headers["location"])
    assert auth.status_code == 200, auth.text
    return post_form(client, auth.text)


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """The page's form that posts to another site (the LMS's or the tool's), and its fields."""
    action = html.unescape(re.search(r'<form[^>]*action="(https?://[^"]*)"', page)[1])  # type: ignore[index]
    fields = {
        html.unescape(n): html.unescape(v)
        for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)
    }
    return action, fields


def post_form(client: httpx.Client, page: str) -> httpx.Response:
    action, fields = form_of(page)
    return client.post(action, data=fields)
