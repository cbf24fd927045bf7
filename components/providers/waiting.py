"""Bounded waits for the dynamic providers: poll with exponential backoff until a check passes.

Azure applies some grants with a delay (a role assignment takes minutes to reach the service
that checks it) and some resources answer only once they run (a function app's host keys exist
once its host has started). ``pulumi up`` must neither race them nor wait for ever: every wait
here has a deadline, and its error says what it waited for, for how long, and what it saw last.

Only helpers live here, no provider class: the providers that use them are pickled by module
path into stack state (see ``components/providers/__init__.py``); this module may change freely.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


class WaitTimeout(RuntimeError):
    """A bounded wait ran out; the message names what was awaited, the limit and the last answer."""


@dataclass(frozen=True)
class Backoff:
    first: float = 2.0  # seconds before the second attempt
    factor: float = 2.0
    cap: float = 30.0  # no single pause is longer

    def delay(self, attempt: int) -> float:
        return min(self.first * self.factor**attempt, self.cap)


def wait_until(
    what: str,
    check: Callable[[], tuple[bool, str]],
    *,
    timeout_s: float,
    backoff: Backoff | None = None,
    hint: str = "",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Call ``check`` until it returns ``(True, _)``; the number of attempts it took.

    ``check`` returns ``(done, detail)``: ``detail`` describes the last answer (status, body)
    and goes into the error when ``timeout_s`` passes first. A check that raises is not retried:
    it is a failure that waiting cannot fix.
    """
    pause = backoff or Backoff()
    started = clock()
    attempt = 0
    while True:
        done, detail = check()
        attempt += 1
        if done:
            return attempt
        elapsed = clock() - started
        remaining = timeout_s - elapsed
        if remaining <= 0:
            raise WaitTimeout(
                f"gave up waiting for {what} after {elapsed:.0f} s (limit {timeout_s:.0f} s, "
                f"{attempt} attempts); last answer: {detail}" + (f". {hint}" if hint else "")
            )
        sleep(min(pause.delay(attempt - 1), remaining))
