"""Settling a call's future from the loop that owns it or from another thread (the run threads,
the queue timer): shared by :mod:`scoring.dispatch` and :mod:`scoring.admission`."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Protocol


class Call(Protocol):
    """A call waiting for its answer: its future and the loop that owns it."""

    fut: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    """Its result (``ok``) or its exception, unless it is already done."""
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)


def settle_on(call: Call, ok: bool, value: Any) -> None:
    """:func:`settle` on the call's own loop, from any thread."""
    with contextlib.suppress(RuntimeError):  # its loop closed: nobody waits for it any more
        call.loop.call_soon_threadsafe(settle, call.fut, ok, value)
