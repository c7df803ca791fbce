"""PLAYGROUND_SANDBOX=unsafe-local: one reader for the worker and the banner, refused on a site
that other machines can reach unless a second variable says the operator means it, and never
offered to users as a way around a missing sandbox."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from playground import sandbox
from playground.sandbox import jail
from playground.sandbox.setting import UNSAFE_ANY_HOST, is_loopback, read_setting
from playground.sandbox.warm_pool import pool

SPELLINGS = ["unsafe-local", "Unsafe-Local", " unsafe-local ", "UNSAFE_LOCAL", "unsafe local\n"]
BANNER = "programs run without isolation"
REFUSED = "Programs cannot run on this server"
EVERYWHERE = "0.0.0.0"  # noqa: S104 - the address a public server listens on


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_spelling_means_the_same_to_everyone(spelling: str) -> None:
    setting = read_setting({"PLAYGROUND_SANDBOX": spelling})
    assert (setting.mode, setting.unsafe, setting.refusal) == ("unsafe-local", True, None)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("[::1]", True),
        ("::1", True), (".localhost", True), ("app.localhost", True), (" LOCALHOST. ", True),
        (EVERYWHERE, False), ("::", False), ("*", False), ("play.example.org", False),
        ("192.168.1.10", False), ("localhost.example.org", False), ("[::ffff:10.0.0.1]", False),
    ],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    "environ",
    [
        {"PLAYGROUND_ALLOWED_HOSTS": "localhost,play.example.org"},
        {"PLAYGROUND_ALLOWED_HOSTS": "*"},
        {"PLAYGROUND_HOST": EVERYWHERE},
        {"PLAYGROUND_HOST": EVERYWHERE, UNSAFE_ANY_HOST: "no"},
    ],
)
def test_a_reachable_site_refuses_unsafe_local(environ: dict[str, str]) -> None:
    setting = read_setting({"PLAYGROUND_SANDBOX": "Unsafe-Local", **environ})
    assert setting.unsafe
    assert setting.refusal is not None
    assert UNSAFE_ANY_HOST in setting.refusal  # the operator learns the way out, in the log


def test_the_second_variable_accepts_it() -> None:
    environ = {"PLAYGROUND_SANDBOX": "unsafe-local", "PLAYGROUND_HOST": EVERYWHERE}
    assert read_setting({**environ, UNSAFE_ANY_HOST: " Yes "}).refusal is None


def test_an_unknown_value_is_refused_not_guessed() -> None:
    setting = read_setting({"PLAYGROUND_SANDBOX": "unsafe-locale"})
    assert setting.refusal is not None
    assert not setting.unsafe
    assert read_setting({"PLAYGROUND_SANDBOX": " BWRAP "}).refusal is None


def test_the_worker_refuses_it_on_a_reachable_site_and_says_why_in_its_log_only(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PLAYGROUND_SANDBOX", " Unsafe-Local ")
    monkeypatch.setenv("PLAYGROUND_ALLOWED_HOSTS", "play.example.org")
    monkeypatch.setattr(jail, "_logged_refusals", set())  # logged once per process
    pool.drain()
    with (
        caplog.at_level(logging.ERROR, logger="playground.sandbox.jail"),
        pytest.raises(sandbox.SandboxUnavailable) as refused,
    ):
        sandbox.run("print('ran without isolation')\n")
    assert "unsafe" not in str(refused.value).lower()  # what users read
    assert "play.example.org" in caplog.text  # what the operator reads
    assert UNSAFE_ANY_HOST in caplog.text


def test_the_worker_runs_it_when_the_operator_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_SANDBOX", "UNSAFE_LOCAL")
    monkeypatch.setenv("PLAYGROUND_ALLOWED_HOSTS", "play.example.org")
    monkeypatch.setenv(UNSAFE_ANY_HOST, "yes")
    pool.drain()
    assert sandbox.run("print('hi')\n")["stdout"] == "hi\n"
    pool.drain()


def test_a_missing_sandbox_never_suggests_running_without_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool.drain()
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(sandbox.SandboxUnavailable) as missing:
        sandbox.run("print(1)\n")
    assert "bubblewrap" in str(missing.value)
    assert "unsafe" not in str(missing.value).lower()


@pytest.mark.django_db
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_every_page_warns_in_any_spelling(
    client: Client, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    monkeypatch.setenv("PLAYGROUND_SANDBOX", spelling)
    page = client.get("/").content.decode()
    assert BANNER in page
    assert REFUSED not in page


@pytest.mark.django_db
def test_every_page_says_when_no_program_can_run(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_SANDBOX", "unsafe-local")
    monkeypatch.setenv("PLAYGROUND_HOST", EVERYWHERE)
    page = client.get("/").content.decode()
    assert "is set, and refused" in page
    monkeypatch.setenv("PLAYGROUND_SANDBOX", "bubblewrap")
    assert REFUSED in client.get("/").content.decode()
    monkeypatch.setenv("PLAYGROUND_SANDBOX", "bwrap")
    page = client.get("/").content.decode()
    assert BANNER not in page
    assert REFUSED not in page
