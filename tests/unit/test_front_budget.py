"""The RSGI front's body budget (linkgen/web/front.py): large bodies wait for room, none leaks."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any

from linkgen.web.front import ByteBudget


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on a loop of its own thread: in a worker that already ran the browser
    tests, Playwright's sync API keeps an event loop running in the main thread, where
    asyncio.run() refuses to start."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=60)


def test_a_reservation_waits_until_room_is_given_back() -> None:
    async def scenario() -> list[str]:
        budget = ByteBudget(100)
        events: list[str] = []
        first = await budget.take(70)

        async def second() -> None:
            taken = await budget.take(50)
            events.append(f"second took {taken} with {budget.used} used")
            budget.give(taken)

        task = asyncio.create_task(second())
        await asyncio.sleep(0)
        events.append(f"second waiting: {not task.done()}")
        budget.give(first)
        await task
        events.append(f"at the end {budget.used} used, {len(budget.waiters)} waiting")
        return events

    assert run(scenario()) == [
        "second waiting: True",
        "second took 50 with 50 used",
        "at the end 0 used, 0 waiting",
    ]


def test_a_reservation_larger_than_the_budget_takes_all_of_it() -> None:
    async def scenario() -> tuple[int, int]:
        budget = ByteBudget(100)
        taken = await budget.take(10_000)
        used = budget.used
        budget.give(taken)
        return taken, used

    assert run(scenario()) == (100, 100)


def test_a_wait_cut_short_by_the_deadline_reserves_nothing() -> None:
    async def scenario() -> tuple[bool, int, int]:
        budget = ByteBudget(100)
        held = await budget.take(100)
        try:
            await asyncio.wait_for(budget.take(1), 0.01)
            timed_out = False
        except TimeoutError:
            timed_out = True
        budget.give(held)
        return timed_out, budget.used, len(budget.waiters)

    assert run(scenario()) == (True, 0, 0)
