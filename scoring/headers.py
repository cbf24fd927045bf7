"""Response headers azmlinfsrv sets around every answer: request ids and CORS.

:func:`request_ids` follows azmlinfsrv's request-id rules; :class:`Cors` does what its
``AML_CORS_ORIGINS`` (flask-cors) does on ``/``, ``/score`` and ``/swagger.json``.
"""

from __future__ import annotations

import os

from .messages import ScoreResponse, error_response

HEADER_LIMIT = 100


class _RandomIds:
    """Random (version 4) UUIDs cut from one ``os.urandom`` read per 256 ids: a read per request
    is a system call that costs as much as the rest of the request-id handling."""

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._reset)  # a forked worker must not repeat ids

    def _reset(self) -> None:
        self._pool, self._at = b"", 0

    def next(self) -> str:
        if self._at >= len(self._pool):
            self._pool, self._at = os.urandom(16 * 256), 0
        at = self._at
        self._at = at + 16
        h = self._pool[at : at + 16].hex()
        # RFC 4122 version 4: version nibble 4, variant bits 10
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


new_request_id = _RandomIds().next


def request_ids(hmap: dict[str, str]) -> tuple[list[tuple[bytes, bytes]], ScoreResponse | None]:
    """azmlinfsrv's request-id rules: echo or generate x-request-id, keep the client ids.

    Returns the response headers and, when an id is too long, the 431 to send. The 431 carries
    ``x-request-id`` too: the client's when only the ``x-ms-*`` ids are too long (as
    azmlinfsrv), a new one when ``x-request-id`` itself is (azmlinfsrv sends none, which
    leaves the failed request without an id to trace it by).
    """
    request_id = hmap.get("x-request-id") or new_request_id()
    if len(request_id) > HEADER_LIMIT:
        fresh = [(b"x-request-id", new_request_id().encode())]
        return fresh, error_response(431, f"x-request-id must not exceed {HEADER_LIMIT} characters")
    out = [(b"x-request-id", request_id.encode("latin-1"))]
    legacy = hmap.get("x-ms-request-id", "")
    client = hmap.get("x-ms-client-request-id", "")
    if legacy:
        client = client or legacy
    else:
        legacy = client or request_id
    if len(legacy) > HEADER_LIMIT or len(client) > HEADER_LIMIT:
        return out, error_response(
            431,
            f"x-ms-request-id and x-ms-client-request-id must not exceed {HEADER_LIMIT} characters",
        )
    out.append((b"x-ms-request-id", legacy.encode("latin-1")))
    if client:
        out.append((b"x-ms-client-request-id", client.encode("latin-1")))
    return out, None


CORS_PATHS = frozenset(("/", "/score", "/swagger.json"))


class Cors:
    """``AML_CORS_ORIGINS`` as azmlinfsrv applies it with flask-cors (methods GET and POST):

    * a request whose ``Origin`` is listed (case-insensitive; ``*`` lists every origin) gets
      ``Access-Control-Allow-Origin: <that origin>``; an unlisted one gets nothing;
    * a request without ``Origin`` gets the first listed origin (``*`` if listed);
    * a preflight (``OPTIONS`` with ``Access-Control-Request-Method: GET|POST``) also gets
      ``Access-Control-Allow-Methods: GET, POST`` and its requested headers allowed;
    * ``Vary: Origin`` when the answer depends on the origin.
    """

    METHODS = ("GET", "POST")

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.wildcard = "*" in origins
        self.origins = tuple(sorted(o for o in origins if o != "*"))
        self._lower = {o.lower() for o in self.origins}
        self._vary = len(origins) > 1 or self.wildcard

    def headers(self, method: str, hmap: dict[str, str]) -> list[tuple[bytes, bytes]]:
        origin = hmap.get("origin")
        if origin:
            if not (self.wildcard or origin.lower() in self._lower):
                return []
            allowed = origin
        else:
            allowed = "*" if self.wildcard else self.origins[0]
        out = [(b"access-control-allow-origin", allowed.encode("latin-1"))]
        requested = hmap.get("access-control-request-method", "").upper()
        if method == "OPTIONS" and requested in self.METHODS:
            wanted = hmap.get("access-control-request-headers", "")
            names = sorted(h.strip() for h in wanted.split(",") if h.strip())
            if names:
                out.append((b"access-control-allow-headers", ", ".join(names).encode("latin-1")))
            out.append((b"access-control-allow-methods", b"GET, POST"))
        if self._vary and allowed != "*":
            out.append((b"vary", b"Origin"))
        return out
