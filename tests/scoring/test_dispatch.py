"""The run threads, tested in-process so that calls arrive in one loop iteration for certain.

Over HTTP (test_hostile.py) the same behaviour is shown end to end; here asyncio.gather puts
several requests into one batch, which a network client cannot arrange deterministically.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _scoring_support import SCRIPTS

from scoring.config import Settings
from scoring.service import ScoreRequest, ScoringService


def _service(
    script: str = "h_sleep.py", on_stuck: Callable[[int], None] | None = None, **env: str
) -> ScoringService:
    settings = Settings.from_env({"AZUREML_ENTRY_SCRIPT": str(SCRIPTS / script), **env})
    return ScoringService(settings, on_stuck=on_stuck or (lambda n: None))


def _request(body: dict[str, Any]) -> ScoreRequest:
    return ScoreRequest(
        method="POST",
        body=json.dumps(body).encode(),
        headers=[("content-type", "application/json")],
    )


def _run(test: Callable[[ScoringService], Awaitable[None]], service: ScoringService) -> None:
    async def main() -> None:
        await service.start()
        try:
            await test(service)
        finally:
            await service.close()

    asyncio.run(main())


def _spy(service: ScoringService) -> list[tuple[float, str]]:
    """Record each run() call: the seconds asked for and the thread it ran in."""
    calls: list[tuple[float, str]] = []
    original = service.script.run

    def spy(raw_data: str) -> Any:
        calls.append((json.loads(raw_data)["sleep"], threading.current_thread().name))
        return original(raw_data)

    service.script.run = spy
    return calls


def test_run_never_runs_on_the_event_loop_and_keeps_arrival_order() -> None:
    async def test(service: ScoringService) -> None:
        calls = _spy(service)
        values = [i / 1e6 for i in range(40)]
        for v in values[:10]:  # one at a time, "fast calls" that once moved to the loop
            assert (await service.score(_request({"sleep": v}))).json() == {"slept": v}
        replies = await asyncio.gather(*(service.score(_request({"sleep": v})) for v in values))
        assert [r.json() for r in replies] == [{"slept": v} for v in values]
        assert [v for v, _ in calls[10:]] == values  # one run thread: arrival order
        assert {name for _, name in calls} == {"run-1"}, calls

    _run(test, _service())


def test_a_batch_of_queued_calls_comes_back_in_one_hand_off() -> None:
    async def test(service: ScoringService) -> None:
        before = service.status()["run"]["hand_offs"]
        t0 = time.monotonic()
        replies = await asyncio.gather(*(service.score(_request({"spin": 50})) for _ in range(200)))
        elapsed = time.monotonic() - t0
        assert {r.status for r in replies} == {200}
        hand_offs = service.status()["run"]["hand_offs"] - before
        # Pure Python keeps the GIL: the loop gets it back once per switch interval (or when the
        # run thread waits), and then takes every answer done so far. So the loop wakes a few
        # times, not 200 times; a loaded machine stretches the run and adds a switch or two.
        switches = elapsed / sys.getswitchinterval()
        assert hand_offs <= 3 + 1.5 * switches, (hand_offs, f"{elapsed * 1000:.0f} ms")
        assert hand_offs <= 200 // 4, hand_offs

    _run(test, _service("h_sleep.py"))


def test_the_loop_keeps_turning_during_a_native_run() -> None:
    async def test(service: ScoringService) -> None:
        slow = asyncio.ensure_future(service.score(_request({"native": 1})))
        gaps: list[float] = []
        while not slow.done():  # what / and /ready need: a turn of the loop
            t0 = time.monotonic()
            await asyncio.sleep(0.005)
            gaps.append(time.monotonic() - t0)
        assert (await slow).json() == {"native": 1}
        # on the loop, the 1 s call would be one 1 s gap; a loaded machine adds a little
        assert len(gaps) > 10 and statistics.median(gaps) < 0.05, gaps
        assert max(gaps) < 0.25, f"the loop waited {max(gaps) * 1000:.0f} ms"

    _run(test, _service("h_sleep.py"))


def test_a_bad_request_in_a_batch_gets_its_own_4xx() -> None:
    async def test(service: ScoringService) -> None:
        bad = ScoreRequest(method="PUT", body=b"{}")
        replies = await asyncio.gather(
            service.score(_request({"sleep": 0})), service.score(bad), service.score(_request({}))
        )
        assert [r.status for r in replies] == [200, 405, 200]

    _run(test, _service())


def test_an_exception_in_run_is_a_500_for_that_request_only() -> None:
    async def test(service: ScoringService) -> None:
        original = service.script.run

        def flaky(raw_data: str) -> Any:
            if json.loads(raw_data)["sleep"] == 0.001:
                raise ValueError("boom")
            return original(raw_data)

        service.script.run = flaky
        replies = await asyncio.gather(
            *(service.score(_request({"sleep": v})) for v in (0, 0.001, 0))
        )
        assert [r.status for r in replies] == [200, 500, 200]
        assert replies[1].run_failed and "boom" not in replies[1].body.decode()

    _run(test, _service())


def test_a_native_hang_is_answered_at_the_timeout_and_its_thread_replaced() -> None:
    async def test(service: ScoringService) -> None:
        t0 = time.monotonic()
        stuck = asyncio.ensure_future(service.score(_request({"native": 2})))
        queued = asyncio.ensure_future(service.score(_request({"sleep": 0})))  # behind it
        r = await stuck
        assert 0.25 <= time.monotonic() - t0 < 0.8
        assert r.status == 500 and r.json() == {"message": "Scoring timeout after 300 ms"}
        assert (await queued).json() == {"slept": 0}  # ran in the fresh thread meanwhile
        assert time.monotonic() - t0 < 0.9
        status = service.status()["run"]
        assert status["timeouts"] == 1 and status["stuck_threads"] == 1 and status["threads"] == 1
        await asyncio.sleep(2.0)  # the native call returns: its thread ends, nothing is sent
        assert service.status()["run"]["stuck_threads"] == 0
        assert (await service.score(_request({"sleep": 0}))).status == 200

    _run(test, _service("h_sleep.py", SCORING_TIMEOUT_MS="300"))


def test_a_pure_python_hang_is_interrupted_and_its_thread_ends() -> None:
    async def test(service: ScoringService) -> None:
        r = await service.score(_request({"spin": 0}))  # never ends by itself
        assert r.status == 500
        await asyncio.sleep(0.2)
        assert service.status()["run"]["stuck_threads"] == 0  # the interrupt stopped it
        assert (await service.score(_request({"spin": 10}))).json() == {"total": 45}

    _run(test, _service("h_sleep.py", SCORING_TIMEOUT_MS="200"))


def test_more_stuck_threads_than_allowed_recycle_the_worker() -> None:
    recycled: list[int] = []

    async def test(service: ScoringService) -> None:
        replies = await asyncio.gather(*(service.score(_request({"native": 3})) for _ in range(2)))
        assert [r.status for r in replies] == [500, 500]
        assert recycled == [2]
        assert service.ready is False  # /ready 503 while the process is replaced
        r = await service.score(_request({"sleep": 0}))
        assert r.status == 503 and "recycled" in r.json()["message"]

    _run(
        test,
        _service(
            "h_sleep.py", recycled.append, SCORING_TIMEOUT_MS="200", SCORING_MAX_STUCK_RUNS="1"
        ),
    )
