"""The second listener (``--health_port``, azmlinfsrv's ``HEALTH_PORT``): the same app."""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger("scoring")


async def health_listener(app: Any, settings: Settings) -> Any:
    """A second listener (``--health_port``) serving the same routes (``app``: the ASGI app,
    :class:`scoring.app.ScoringApp`), as azmlinfsrv binds its health port to the same app.
    Each worker binds it with SO_REUSEPORT."""
    import uvicorn

    try:  # the main listener's limits on header size, stalls and connections apply here too
        from .guard import GuardedHttpTools as http
    except ImportError:  # pragma: no cover
        http = "httptools"
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.host, settings.health_port))
    sock.listen(128)
    config = uvicorn.Config(
        app,
        http=http,
        lifespan="off",
        loop="asyncio",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_keep_alive=settings.keep_alive_seconds,
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # what Server.serve() sets before startup()
    await server.startup(sockets=[sock])
    log.info("health listener on %s:%d", settings.host, settings.health_port)
    return server
