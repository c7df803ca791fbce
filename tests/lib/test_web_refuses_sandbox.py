"""The web process never runs untrusted code: once its server starts (the ASGI lifespan that
uvicorn sends), starting a sandbox there is refused; what a request starts runs on the sandbox
queue. Importing the application alone (as the tests do) forbids nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from playground import sandbox
from playground.asgi import application
from playground.sandbox import jail


def test_the_servers_start_forbids_the_sandbox_in_the_web_process() -> None:
    assert sandbox.forbidden() is None  # imported: nothing forbidden yet
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def serve() -> None:
        await inbox.put({"type": "lifespan.startup"})
        await inbox.put({"type": "lifespan.shutdown"})
        await application({"type": "lifespan"}, receive, send)

    try:
        asyncio.run(serve())
        assert [m["type"] for m in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        assert sandbox.forbidden() == "the web process"
        with pytest.raises(sandbox.SandboxRefused, match="the web process"):
            sandbox.run("x = 1\n")
    finally:
        jail._FORBIDDEN.clear()
