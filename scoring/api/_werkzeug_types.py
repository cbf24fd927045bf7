"""Request/response types with Azure ML's constructor signatures.

Flask's ``Request``/``Response`` when Flask is installed (it is in the scoring image), as in
azmlinfsrv, so scripts that check ``isinstance(x, flask.Response)`` or use Flask's extras work;
werkzeug's otherwise.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

try:
    from flask import Request, Response
except ImportError:  # pragma: no cover - Flask is in requirements.txt
    from werkzeug.wrappers import Request, Response  # type: ignore[assignment]


class AMLRequest(Request):
    """The raw HTTP request handed to a ``@rawhttp`` ``run()``."""

    @classmethod
    def from_parts(
        cls,
        *,
        method: str,
        path: str,
        query_string: bytes,
        headers: Iterable[tuple[str, str]],
        body: bytes,
        scheme: str = "http",
        server: tuple[str, int] | None = None,
        client: tuple[str, int] | None = None,
        root_path: str = "",
    ) -> AMLRequest:
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": root_path,
            "PATH_INFO": path,
            "QUERY_STRING": query_string.decode("latin-1"),
            "SERVER_NAME": server[0] if server else "localhost",
            "SERVER_PORT": str(server[1]) if server else "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": client[0] if client else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(),
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "CONTENT_LENGTH": str(len(body)),
        }
        for name, value in headers:
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
                continue
            if key == "CONTENT_LENGTH":
                continue
            key = "HTTP_" + key
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        environ["RAW_URI"] = quote(path) + (
            "?" + environ["QUERY_STRING"] if environ["QUERY_STRING"] else ""
        )
        return cls(environ)


class AMLResponse(Response):
    """A response returned as-is by a ``@rawhttp`` ``run()``.

    Same signature as Azure ML's: ``AMLResponse(message, status_code, response_headers={},
    json_str=False, run_function_failed=False)``.
    """

    def __init__(
        self,
        message: Any,
        status_code: int,
        response_headers: Mapping[str, str] | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ) -> None:
        response_headers = dict(response_headers or {})
        if message is None:
            super().__init__(json.dumps({}), status=status_code, mimetype="application/json")
        elif json_str:
            super().__init__(json.dumps(message), status=status_code, mimetype="application/json")
        else:
            super().__init__(message, status=status_code)
            if any(k.lower() == "content-type" for k in response_headers):
                self.headers.remove("Content-Type")
        self.headers["x-ms-run-function-failed"] = str(bool(run_function_failed))
        # Repeated header values are comma-separated, as in Azure ML's implementation.
        for header, value in response_headers.items():
            for v in str(value).split(","):
                self.headers.add_header(header, v.strip())
