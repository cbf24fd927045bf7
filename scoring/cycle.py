"""uvicorn's request-response cycle with a cheaper response head, and a whole answer in one write.

The head is held until the body's first message and sent with it (one write, one ``send()``
per response); the direct path (:mod:`scoring.direct`) writes a whole answer with
:meth:`ScoringCycle.reply`. It overrides uvicorn's module-level ``RequestResponseCycle``
(:mod:`scoring.guard` installs it): recheck it when uvicorn is upgraded.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    RequestResponseCycle,
)


class ScoringCycle(RequestResponseCycle):
    """uvicorn's request-response cycle with a cheaper response head: its header names and
    values are checked in one scan each (uvicorn scans each header twice; the patterns are
    character classes, so one scan of the joined bytes finds the same), and the head is held
    until the body's first message and sent with it: one write, one ``send()``, per response."""

    _held = b""
    direct = False  # a direct-path request (scoring.direct), answered through reply()

    def reply(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes, plain: bool = False
    ) -> None:
        """A whole response in one write: what send() does for a start and a whole body.

        ``plain``: the host's own header names only (lower case, with a content-length, no
        connection or transfer-encoding): the head is joined without uvicorn's per-header
        checks; the values, some echoed from the request, are still checked."""
        if self.disconnected:
            return
        if plain:
            self.response_started = True
            lines = self.default_headers + headers
            if not self.keep_alive:  # a graceful shutdown began during the call
                lines.append((b"connection", b"close"))
            self.chunked_encoding = False
            if HEADER_VALUE_RE.search(b"".join([v for _, v in lines])):
                raise RuntimeError("Invalid HTTP header value.")
            head = b"\r\n".join([STATUS_LINE[status][:-2], *[n + b": " + v for n, v in lines]])
            self.transport.write(head + b"\r\n\r\n" + body)
        else:
            self.transport.write(self._head({"status": status, "headers": headers}) + body)
        self.expected_content_length = 0
        self._complete()

    async def send(self, message: Any) -> None:
        if message["type"] == "http.response.start" and not self.response_started:
            if self.flow.write_paused and not self.disconnected:
                await self.flow.drain()  # pragma: no cover - a slow reader
            if not self.disconnected:
                self._held = self._head(message)
            return
        held = self._held
        if held:
            self._held = b""
            if not self.disconnected:
                if message["type"] == "http.response.body" and self._whole(message):
                    self.transport.write(held + message.get("body", b""))
                    self.expected_content_length = 0
                    self._complete()
                    return
                self.transport.write(held)
        await super().send(message)

    def _whole(self, message: Any) -> bool:
        """The body message is the whole body, of the declared length."""
        return (
            not message.get("more_body", False)
            and self.chunked_encoding is False
            and self.scope["method"] != "HEAD"
            and len(message.get("body", b"")) == self.expected_content_length
        )

    def _complete(self) -> None:
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()

    def _head(self, message: Any) -> bytes:
        """uvicorn's response head for this message (same checks, same bookkeeping)."""
        self.response_started = True
        self.waiting_for_100_continue = False
        status_code = message["status"]
        headers = self.default_headers + list(message.get("headers", []))
        if self.access_log:  # pragma: no cover - the host turns uvicorn's access log off
            self.access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                self.scope.get("client"),
                self.scope["method"],
                self.scope["path"],
                self.scope["http_version"],
                status_code,
            )
        if HEADER_RE.search(b"".join([n for n, _ in headers])):
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(b"".join([v for _, v in headers])):
            raise RuntimeError("Invalid HTTP header value.")
        content = [STATUS_LINE[status_code]]
        has_connection_close = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection":
                connection = [token.lower().strip() for token in value.split(b",")]
                if b"close" in connection:
                    self.keep_alive = False
                    has_connection_close = True
            content.extend((name, b": ", value, b"\r\n"))
        if not self.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and status_code not in (204, 304)
        ):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        return b"".join(content)
