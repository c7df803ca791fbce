"""ASGI entry point: Django over HTTP, and the run pages' websockets."""

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "playground.settings")
# The web process serves ASGI, where Django wants a connection pool rather than persistent
# connections (settings.py, "Connections"): a pool of WEB_DB_POOL_MAX unless the operator chose
# (PLAYGROUND_DB_POOL_MAX, 0 for none) or kept persistent connections for it.
WEB_DB_POOL_MAX = 8
if os.environ.get("PLAYGROUND_DB_CONN_MAX_AGE", "0").strip() in ("", "0"):
    os.environ.setdefault("PLAYGROUND_DB_POOL_MAX", str(WEB_DB_POOL_MAX))
django_asgi_app = get_asgi_application()

# Imported after Django is set up.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from playground import sandbox  # noqa: E402
from playground.lib import process_metrics  # noqa: E402
from playground.lib.logcontext import WebsocketIds  # noqa: E402
from playground.lib.uploads import BodyLimit  # noqa: E402
from playground.streaming.routing import websocket_urlpatterns  # noqa: E402

router = ProtocolTypeRouter(
    {
        # Bodies over the size limit are never read (playground/lib/uploads.py).
        "http": BodyLimit(django_asgi_app),
        # Each connection's id on what it logs and in its handshake's answer (X-Request-ID),
        # the refusals of the origin check included.
        "websocket": WebsocketIds(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)


async def _lifespan(receive: Any, send: Any) -> None:
    """The ASGI lifespan of the server process (uvicorn sends it as it starts): from then on
    this process refuses to start a sandbox; what a request starts runs on the sandbox queue.
    It refuses to start at all when told it signs nothing (PLAYGROUND_SECRET_KEY_UNUSED).
    (Imported without a server, as the tests do, the module forbids nothing.)"""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            from django.conf import settings

            if settings.PLAYGROUND_SECRET_KEY_UNUSED:
                # A key of its own would sign sessions no other web process accepts.
                await send({"type": "lifespan.startup.failed", "message": (
                    "PLAYGROUND_SECRET_KEY_UNUSED is set, but a web process signs sessions "
                    "and links: give it the site's PLAYGROUND_SECRET_KEY instead."
                )})  # fmt: skip
                return
            sandbox.forbid("the web process")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            # Its websocket viewers stop counting in the host's /metrics (lib/process_metrics.py).
            process_metrics.process_ended()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    else:
        await router(scope, receive, send)
