"""Where run() runs, tested in-process so that calls arrive in one loop iteration for certain.

Over HTTP (test_host.py) the same behaviour is shown end to end; here asyncio.gather puts
several requests into one batch, which a network client cannot arrange deterministically.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _scoring_support import SCRIPTS

from scoring.config import Settings
from scoring.service import ScoreRequest, ScoringService

# A budget well above what a sleep(0) costs on a loaded machine: these tests are about where
# calls go, and a 1 ms budget would let scheduler noise send a fast call to the thread.
BUDGET_MS = "20"


def _service(**env: str) -> ScoringService:
    settings = Settings.from_env(
        {
            "AZUREML_ENTRY_SCRIPT": str(SCRIPTS / "slow.py"),
            "SCORING_INLINE_MAX_MS": BUDGET_MS,
            **env,
        }
    )
    service = ScoringService(settings)
    service.init_sync()
    return service


def _request(seconds: float) -> ScoreRequest:
    return ScoreRequest(
        method="POST",
        body=json.dumps({"sleep": seconds}).encode(),
        headers=[("content-type", "application/json")],
    )


def _spy(service: ScoringService) -> list[tuple[float, str]]:
    """Record each run() call: the seconds asked for and the thread it ran in."""
    calls: list[tuple[float, str]] = []
    original = service.script.run

    def spy(raw_data: str) -> Any:
        calls.append((json.loads(raw_data)["sleep"], threading.current_thread().name))
        return original(raw_data)

    service.script.run = spy
    return calls


async def _warm(service: ScoringService, calls: int = 12) -> None:
    for _ in range(calls):
        await service.score(_request(0))


def _with_warm_service(test: Callable[[ScoringService], Awaitable[None]], **env: str) -> None:
    """Run ``test`` on a service whose run() has been measured fast: calls go to the loop."""

    async def main() -> None:
        service = _service(**env)
        await _warm(service)
        try:
            await test(service)
        finally:
            await service.close()

    asyncio.run(main())


async def _together(service: ScoringService, values: list[float]) -> list[Any]:
    """Score one request per value, all arriving in the same loop iteration."""
    return list(await asyncio.gather(*(service.score(_request(v)) for v in values)))


def test_a_batch_runs_on_the_loop_in_arrival_order() -> None:
    async def test(service: ScoringService) -> None:
        calls = _spy(service)
        values = [0.0, 0.00001, 0.00002, 0.00003, 0.00004]  # all well under the budget
        replies = await _together(service, values)
        assert [r.json() for r in replies] == [{"slept": v} for v in values]
        assert calls == [(v, "MainThread") for v in values]
        assert service.status()["run"]["where"] == "event loop"

    _with_warm_service(test)


def test_a_slow_call_sends_the_rest_of_its_batch_to_the_run_thread() -> None:
    async def test(service: ScoringService) -> None:
        before = service.status()["run"]
        calls = _spy(service)
        values = [0.0, 0.2, 0.00001, 0.00002]  # the second is 10x the budget
        replies = await _together(service, values)
        assert [r.json() for r in replies] == [{"slept": v} for v in values]
        threads = dict(calls)
        # the first two ran on the loop (nothing said the second would be slow) ...
        assert threads[0.0] == threads[0.2] == "MainThread"
        # ... and its 200 ms sent the last two to the run thread
        assert threads[0.00001].startswith("run") and threads[0.00002].startswith("run"), calls
        after = service.status()["run"]
        assert after["inline_calls"] == before["inline_calls"] + 2
        assert after["thread_calls"] == before["thread_calls"] + 2

    _with_warm_service(test)


def test_a_bad_request_in_a_batch_gets_its_own_400() -> None:
    async def test(service: ScoringService) -> None:
        bad = ScoreRequest(
            method="POST", body=b"{not json", headers=[("content-type", "application/json")]
        )
        replies = await asyncio.gather(
            service.score(_request(0)), service.score(bad), service.score(_request(0))
        )
        assert [r.status for r in replies] == [200, 400, 200]

    _with_warm_service(test)


def test_an_exception_in_run_is_a_500_for_that_request_only() -> None:
    async def test(service: ScoringService) -> None:
        original = service.script.run

        def flaky(raw_data: str) -> Any:
            if json.loads(raw_data)["sleep"] == 0.001:
                raise ValueError("boom")
            return original(raw_data)

        service.script.run = flaky
        replies = await asyncio.gather(*(service.score(_request(v)) for v in (0, 0.001, 0)))
        assert [r.status for r in replies] == [200, 500, 200]
        assert replies[1].run_failed and "boom" not in replies[1].body.decode()

    _with_warm_service(test)


def test_a_long_batch_gives_the_loop_a_turn_every_budget() -> None:
    async def test(service: ScoringService) -> None:
        gaps: list[float] = []

        async def other_work(batch: asyncio.Future[Any]) -> None:
            # what /ready or a cache hit would be: something that needs the loop meanwhile
            while not batch.done():
                t0 = time.monotonic()
                await asyncio.sleep(0)
                gaps.append(time.monotonic() - t0)

        batch = asyncio.gather(*(service.score(_request(0.0003)) for _ in range(150)))  # >= 45 ms
        await other_work(batch)
        assert all(r.status == 200 for r in await batch)
        assert service.status()["run"]["inline_calls"] > 0
        # a turn every 5 ms budget (plus the call that crosses it), not after the whole batch
        assert max(gaps) < 0.025, f"the loop waited {max(gaps) * 1000:.1f} ms for a turn"

    _with_warm_service(test, SCORING_INLINE_MAX_MS="5")
