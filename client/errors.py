"""Errors a client of the scoring endpoints can meet, each with a message a person can act on."""

from __future__ import annotations


class ClientError(Exception):
    """Base of every error this package raises (the CLI prints it and exits 2)."""


class UnknownTargetError(ClientError):
    def __init__(self, target: str, available: list[str], switched_off: list[str]):
        self.target = target
        self.available = available
        msg = f"unknown target {target!r}; this stack has: {', '.join(available) or 'none'}"
        if switched_off:
            msg += f" (switched off here: {', '.join(switched_off)})"
        super().__init__(msg)


class TargetOffError(ClientError):
    def __init__(self, target: str, config_key: str, available: list[str]):
        self.target = target
        self.config_key = config_key
        super().__init__(
            f"target {target!r} is switched off in this stack ({config_key} is false); "
            f"enabled targets: {', '.join(available) or 'none'}"
        )


class HttpError(ClientError):
    """The endpoint answered with an error status."""

    def __init__(self, status: int, reason: str, url: str):
        self.status = status
        self.reason = reason
        self.url = url
        super().__init__(self.describe())

    def describe(self) -> str:
        return f"{self.url} answered {self.status}: {self.reason}"


class AuthRefusedError(HttpError):
    def describe(self) -> str:
        return (
            f"{self.url} refused the credentials ({self.status}): {self.reason}; check that the "
            "key in the outputs is current (keys rotate with `pulumi up`)"
        )


class BadPayloadError(HttpError):
    def describe(self) -> str:
        return f"{self.url} rejected the payload ({self.status}): {self.reason}"


class RetriesExhaustedError(HttpError):
    def __init__(self, status: int, reason: str, url: str, attempts: int):
        self.attempts = attempts
        super().__init__(status, reason, url)

    def describe(self) -> str:
        return (
            f"{self.url} still answered {self.status} after {self.attempts} attempts: {self.reason}"
        )


class NotJsonError(ClientError):
    def __init__(self, url: str, content_type: str, body: str):
        self.url = url
        self.content_type = content_type
        super().__init__(
            f"{url} answered 200 with {content_type or 'no content type'}, not JSON: {body[:200]!r}"
        )
