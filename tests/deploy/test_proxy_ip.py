"""M5, for real: uvicorn started as `make run` starts it, behind a real nginx and a real Caddy
configured from the samples in deploy/README.md, on loopback addresses (the proxy listens on
127.0.0.2, each client has an address of its own). A client cannot choose the address it is
counted by: not through the proxy with a forged X-Forwarded-For, not by talking to uvicorn
directly with one; and two clients behind the proxy are not one.

What is counted is the anonymous run rate limit (`runs.anon` of PLAYGROUND_LIMITS, per
REMOTE_ADDR): a POST /api/runs that names no program is counted, then refused with 422 while
the address is within its rate, and 429 once it is over."""

from __future__ import annotations

import os
import random
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.db import connection

from playground.launcher import processes
from playground.lib import paths
from tests.stack import stop

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
NGINX = "/usr/sbin/nginx"
CADDY = "/usr/bin/caddy"
PROXY = "127.0.0.2"
HOST = "play.example.org"
RATE = 3
TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _wait_listening(host: str, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args!r} exited: {log.read_text()[-3000:]}")
        with suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.1)
    pytest.fail(f"nothing listens on {host}:{port}: {log.read_text()[-3000:]}")


@contextmanager
def _process(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            yield proc
        finally:
            stop(proc)


def _sample(language: str) -> str:
    found = re.search(rf"```{language}\n(.*?)```", (ROOT / "deploy/README.md").read_text(), re.S)
    assert found is not None, f"deploy/README.md has no {language} sample"
    return found.group(1)


def _edit(text: str, edits: list[tuple[str, str]]) -> str:
    for pattern, replacement in edits:
        text, n = re.subn(pattern, replacement, text)
        assert n == 1, f"the documented sample changed: no {pattern!r}"
    return text


def documented_trust(proxy_address: str) -> str:
    """FORWARDED_ALLOW_IPS as deploy/README.md sets it for a proxy, for this test's proxy: the
    documented value names the address the proxy's connections come from (the Compose network
    there, ``proxy_address`` here); a wildcard stays a wildcard."""
    found = re.search(r"^FORWARDED_ALLOW_IPS=(\S+)", (ROOT / "deploy/README.md").read_text(), re.M)
    assert found is not None, "deploy/README.md no longer sets FORWARDED_ALLOW_IPS for a proxy"
    return "*" if "*" in found.group(1) else proxy_address


def documented_nginx(listen: int, upstream: int, tmp: Path) -> list[str]:
    """nginx with the sample of deploy/README.md, made to listen on the proxy's loopback address
    without TLS, to pass to the test's uvicorn and to connect from the proxy's address."""
    server = _edit(
        _sample("nginx"),
        [
            (r"listen 443 ssl;", f"listen {PROXY}:{listen};"),
            (r"proxy_pass http://127\.0\.0\.1:8000;",
             f"proxy_pass http://127.0.0.1:{upstream};\n        proxy_bind {PROXY};"),
            (r"\n\s*# ssl_certificate[^\n]*", ""),
        ],
    )  # fmt: skip
    for kind in TEMP_DIRS:
        (tmp / kind).mkdir()
    temp = "\n".join(f"    {kind}_temp_path {tmp / kind};" for kind in TEMP_DIRS)
    # One foreground process as the invoking user: no daemon, no workers switching users.
    (tmp / "nginx.conf").write_text(
        f"daemon off;\nmaster_process off;\npid {tmp / 'nginx.pid'};\n"
        f"error_log {tmp / 'proxy.log'};\nevents {{}}\n"
        f"http {{\n    access_log off;\n{temp}\n{server}}}\n"
    )
    return [NGINX, "-p", str(tmp), "-e", str(tmp / "proxy.log"), "-c", str(tmp / "nginx.conf")]


def documented_caddy(listen: int, upstream: int, tmp: Path) -> list[str]:
    """Caddy with the sample of deploy/README.md, on plain HTTP on the proxy's loopback address.
    (Debian's Caddy 2.6 cannot choose its outgoing address: it connects from 127.0.0.1.)"""
    site = _edit(
        _sample("caddy"),
        [
            (r"^play\.example\.org \{", f"http://{HOST}:{listen} {{\n    bind {PROXY}"),
            (r"reverse_proxy 127\.0\.0\.1:8000", f"reverse_proxy 127.0.0.1:{upstream}"),
        ],
    )
    (tmp / "Caddyfile").write_text("{\n    admin off\n    auto_https off\n}\n" + site)
    return [CADDY, "run", "--adapter", "caddyfile", "--config", str(tmp / "Caddyfile")]


# name: (the program, how to start it, the address its connections to uvicorn come from)
PROXIES = {
    "nginx": (NGINX, documented_nginx, PROXY),
    "caddy": (CADDY, documented_caddy, "127.0.0.1"),
}


@dataclass
class Site:
    proxy: str
    proxy_url: str
    direct_url: str
    base: str  # a fresh 127.x.y. prefix: each run of the test gets rate-limit buckets of its own

    def start_run(self, client_ip: str, *, via_proxy: bool, forged: str | None = None) -> int:
        headers = {"Host": HOST}
        if forged is not None:
            headers["X-Forwarded-For"] = forged
        url = (self.proxy_url if via_proxy else self.direct_url) + "/api/runs"
        transport = httpx.HTTPTransport(local_address=client_ip)
        with httpx.Client(transport=transport, timeout=10) as client:
            return client.post(url, json={"method": "real"}, headers=headers).status_code


@pytest.fixture(params=sorted(PROXIES))
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    program, configure, outgoing = PROXIES[request.param]
    if not os.path.exists(program):
        pytest.fail(f"{program} is missing: `make test` installs it (Debian's package).")
    web_port, proxy_port = _free_port("127.0.0.1"), _free_port(PROXY)
    env = {
        **os.environ,
        "DATABASE_URL": paths.database_url(connection.settings_dict),
        "PLAYGROUND_ALLOWED_HOSTS": HOST,
        "PLAYGROUND_LIMITS": f"runs.anon={RATE}/m",
        "PLAYGROUND_EMBEDDED_LLM": "off",
        "FORWARDED_ALLOW_IPS": documented_trust(outgoing),
    }
    # The web process exactly as `make run` starts it (uvicorn --proxy-headers ...).
    web_argv = processes("127.0.0.1", web_port)["web"]
    proxy_argv = configure(proxy_port, web_port, tmp_path)
    # Caddy keeps its state under $HOME / XDG directories: the test's own.
    proxy_env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data"),
                 "XDG_CONFIG_HOME": str(tmp_path / "config")}  # fmt: skip
    with (
        _process(web_argv, tmp_path / "web.log", env) as web,
        _process(proxy_argv, tmp_path / "proxy.out", proxy_env) as proxy,
    ):
        _wait_listening("127.0.0.1", web_port, web, tmp_path / "web.log")
        _wait_listening(PROXY, proxy_port, proxy, tmp_path / "proxy.out")
        base = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}."  # noqa: S311
        yield Site(
            request.param, f"http://{PROXY}:{proxy_port}", f"http://127.0.0.1:{web_port}", base
        )


def test_a_client_behind_the_proxy_is_counted_by_its_own_address(site: Site) -> None:
    alice, bob = site.base + "3", site.base + "4"
    # Each request claims another address; the proxy's view of the client wins.
    forged = [f"203.0.113.{i}" for i in range(RATE + 1)]
    answers = [site.start_run(alice, via_proxy=True, forged=f) for f in forged]
    assert answers == [422] * RATE + [429], answers
    # Claiming to be someone else (a list, as if other proxies came before) changes nothing.
    assert site.start_run(alice, via_proxy=True, forged=f"{bob}, 198.51.100.7") == 429
    # Another visitor behind the same proxy has a rate of their own.
    assert [site.start_run(bob, via_proxy=True) for _ in range(RATE + 1)] == [422] * RATE + [429]


@pytest.mark.parametrize("site", ["nginx"], indirect=True)  # the proxy only serves dave here
def test_a_client_talking_to_uvicorn_directly_cannot_set_its_address(site: Site) -> None:
    carol, dave = site.base + "5", site.base + "6"
    answers = [
        site.start_run(carol, via_proxy=False, forged=f"198.51.100.{i}") for i in range(RATE + 1)
    ]
    assert answers == [422] * RATE + [429], answers
    # Nor can it pass for the proxy forwarding someone else.
    assert site.start_run(carol, via_proxy=False, forged=f"{dave}, {PROXY}") == 429
    assert site.start_run(dave, via_proxy=True) == 422


def test_the_requests_went_through_the_proxy(site: Site) -> None:
    transport = httpx.HTTPTransport(local_address=site.base + "7")
    with httpx.Client(transport=transport, timeout=10) as client:
        page = client.get(site.proxy_url + "/healthz", headers={"Host": HOST})
        direct = client.get(site.direct_url + "/healthz", headers={"Host": HOST})
    assert page.status_code == direct.status_code == 200
    # uvicorn runs with --no-server-header: the header comes from the proxy.
    assert page.headers["server"].lower().startswith(site.proxy)
    assert "server" not in direct.headers
