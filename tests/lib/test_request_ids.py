"""Every HTTP request and websocket connection has an id: the client's X-Request-ID when it is a
short safe token, else a new one; it is answered back and put on every record logged while the
request is served (playground/lib/logcontext.py)."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.http import HttpRequest, HttpResponse
from django.test import Client
from django.urls import path

from playground.asgi import application
from playground.lib.logcontext import IdsFilter
from playground.runs.models import Run
from playground.streaming import consumers
from tests.factories import ProgramFactory, UserFactory

GENERATED = re.compile(r"[0-9a-f]{32}")
HOSTILE = [
    "abc\nERROR django.request: forged line",
    "abc\r\nSet-Cookie: x=1",
    "a" * 10_240,
    "abc def",
    '{"level": "ERROR"}',
    "",
]


class _Records(logging.Handler):
    """What reaches the console handler: the records, after the ids filter."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(IdsFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)


@pytest.mark.django_db
def test_a_request_gets_an_id_and_a_sane_one_is_kept(client: Client) -> None:
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]
    assert GENERATED.fullmatch(first)
    assert GENERATED.fullmatch(second)
    assert first != second
    for sent in [
        "3f2c9a54-5b1e-4c1a-9d8e-1f0b6f2a7c11",
        "Root=1-67891233-abcdef012345678912345678",
    ]:
        assert client.get("/healthz", headers={"X-Request-ID": sent})["X-Request-ID"] == sent


@pytest.mark.django_db
def test_a_hostile_request_id_is_replaced_never_echoed_or_logged(
    client: Client, records: list[logging.LogRecord]
) -> None:
    for sent in HOSTILE:
        records.clear()
        response = client.get("/no-such-page/", headers={"X-Request-ID": sent})
        assert response.status_code == 404
        answered = response["X-Request-ID"]
        assert GENERATED.fullmatch(answered), (sent[:40], answered[:40])
        # Django's "Not Found" record carries the new id, not the sent one.
        logged = [r for r in records if r.name == "django.request"]
        assert logged
        assert all(r.request_id == answered for r in logged)  # type: ignore[attr-defined]


def _view_that_logs(request: HttpRequest) -> HttpResponse:
    logging.getLogger("playground.views").warning("serving %s", request.path)
    return HttpResponse("ok")


# This module is the URL conf of the test below (pytest.mark.urls).
urlpatterns = [path("logs/", _view_that_logs)]


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_records_logged_while_a_view_runs_carry_its_id(
    client: Client, records: list[logging.LogRecord]
) -> None:
    response = client.get("/logs/", headers={"X-Request-ID": "click-42"})
    assert response["X-Request-ID"] == "click-42"
    mine = [r for r in records if r.getMessage() == "serving /logs/"]
    assert [r.request_id for r in mine] == ["click-42"]  # type: ignore[attr-defined]
    # After the request nothing is bound any more.
    logging.getLogger("playground.views").warning("between requests")
    assert not hasattr(records[-1], "request_id")


@pytest_asyncio.fixture
async def _close_thread_connections() -> AsyncIterator[None]:
    yield
    await sync_to_async(connections.close_all)()


def _owned_run() -> tuple[Run, Client]:
    user = UserFactory()
    client = Client()
    client.force_login(user)
    program = ProgramFactory(owner=user)
    run = Run.objects.create(
        program=program, source=program.source, call=program.call, owner=user, method="direct"
    )
    return run, client


async def _handshake(run: Run, client: Client, request_id: bytes) -> dict[str, bytes]:
    """Open the run's websocket sending ``request_id``; the accept message's headers."""
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    headers = [(b"cookie", cookie), (b"origin", b"http://127.0.0.1")]
    communicator = WebsocketCommunicator(
        application, f"/ws/runs/{run.pk}/", headers=[*headers, (b"x-request-id", request_id)]
    )
    await communicator.send_input({"type": "websocket.connect"})
    accepted = await communicator.receive_output(timeout=10)
    await communicator.disconnect()
    assert accepted["type"] == "websocket.accept", accepted
    return {k.decode().lower(): v for k, v in accepted.get("headers", [])}


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
@pytest.mark.usefixtures("_close_thread_connections")
async def test_a_websocket_connection_gets_an_id_too(
    records: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    run, client = await sync_to_async(_owned_run)()
    original = consumers.watchable

    async def watchable(*args: object, **kwargs: object) -> object:
        logging.getLogger("playground.streaming").warning("viewer checked")
        return await original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(consumers, "watchable", watchable)
    kept = await _handshake(run, client, b"ws-click-7")
    assert kept["x-request-id"] == b"ws-click-7"
    replaced = await _handshake(run, client, b"a\nb" * 4000)
    assert GENERATED.fullmatch(replaced["x-request-id"].decode())
    checked = [r for r in records if r.getMessage() == "viewer checked"]
    assert [r.request_id for r in checked] == [  # type: ignore[attr-defined]
        "ws-click-7",
        replaced["x-request-id"].decode(),
    ]
