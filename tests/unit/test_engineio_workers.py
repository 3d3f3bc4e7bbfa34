"""The reusable task pool: concurrency as with a task per job, reuse, bounds, errors."""

from __future__ import annotations

import logging

import anyio
import pytest
from anyio.abc import TaskGroup

from realtime.engineio.workers import Workers

pytestmark = pytest.mark.anyio


def pool(tg: TaskGroup, max_idle: int = 1024) -> Workers:
    return Workers(tg.start_soon, anyio.Event, max_idle=max_idle)


async def test_jobs_run_concurrently() -> None:
    # Each job waits for the other: with one task at a time this would never end.
    first, second = anyio.Event(), anyio.Event()
    done: list[str] = []

    async def job(name: str, mine: anyio.Event, other: anyio.Event) -> None:
        mine.set()
        await other.wait()
        done.append(name)

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            workers = pool(tg)
            workers.submit(job, "a", first, second)
            workers.submit(job, "b", second, first)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert sorted(done) == ["a", "b"]


async def test_an_idle_task_is_reused() -> None:
    spawned = 0
    ran: list[int] = []

    async def job(n: int) -> None:
        ran.append(n)

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:

            def counting_start_soon(*args: object) -> None:
                nonlocal spawned
                spawned += 1
                tg.start_soon(*args)  # type: ignore[arg-type]

            workers = Workers(counting_start_soon, anyio.Event)
            for n in range(5):
                workers.submit(job, n)
                await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert ran == [0, 1, 2, 3, 4]
    assert spawned == 1


async def test_no_more_than_max_idle_tasks_wait() -> None:
    gate = anyio.Event()

    async def job() -> None:
        await gate.wait()

    with anyio.fail_after(2):
        async with anyio.create_task_group() as tg:
            workers = pool(tg, max_idle=2)
            for _ in range(5):
                workers.submit(job)
            await anyio.wait_all_tasks_blocked()
            gate.set()
            await anyio.wait_all_tasks_blocked()
            assert len(workers._idle) == 2
            tg.cancel_scope.cancel()


async def test_an_error_is_logged_and_the_task_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    async def broken() -> None:
        raise ValueError("boom")

    async def fine() -> None:
        ran.append("fine")

    with anyio.fail_after(2), caplog.at_level(logging.ERROR, logger="realtime.engineio"):
        async with anyio.create_task_group() as tg:
            workers = pool(tg)
            workers.submit(broken)
            await anyio.wait_all_tasks_blocked()
            workers.submit(fine)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
    assert ran == ["fine"]
    assert "boom" in caplog.text
