"""Reusable tasks for short jobs, such as running one event's handler.

Handing a job to an idle task is a wake-up; spawning a task per job costs a
task group entry, a cancel scope and an event on every call (anyio 4.14 and
later), which measured as the largest single cost of an echo. Jobs still run
concurrently, exactly as if each had its own task: a busy pool grows by
spawning, and at most ``max_idle`` tasks wait for work afterwards.

One difference from a task per job: context variables set by a job stay set
for the next job the same task runs. Reset what you set (``ContextVar.reset``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

logger = logging.getLogger("realtime.engineio")

Job = tuple[Callable[..., Coroutine[Any, Any, Any]], tuple[Any, ...]]


class _Worker:
    __slots__ = ("job", "wakeup")

    def __init__(self, wakeup: anyio.Event) -> None:
        self.wakeup = wakeup
        self.job: Job | None = None


class Workers:
    """A pool of idle tasks in one task group, grown on demand."""

    def __init__(
        self,
        start_soon: Callable[..., object],
        new_event: Callable[[], anyio.Event],
        max_idle: int = 1024,
    ) -> None:
        self._start_soon = start_soon
        self._new_event = new_event
        self._max_idle = max_idle
        self._idle: list[_Worker] = []

    def submit(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> None:
        """Run ``func(*args)`` soon, on an idle task if there is one."""
        if self._idle:
            worker = self._idle.pop()
            worker.job = (func, args)
            worker.wakeup.set()
        else:
            self._start_soon(self._work, (func, args))

    async def _work(self, job: Job) -> None:
        worker: _Worker | None = None
        while True:
            func, args = job
            try:
                await func(*args)
            except Exception:
                logger.exception("unhandled error in %r", func)
            # An idle task must not keep its last job's objects (a closed
            # connection, say) alive until it is reused.
            del job, func, args
            if len(self._idle) >= self._max_idle:
                return
            if worker is None:
                worker = _Worker(self._new_event())
            else:
                worker.wakeup = self._new_event()
            worker.job = None
            self._idle.append(worker)
            await worker.wakeup.wait()
            assert worker.job is not None
            job = worker.job

    def clear(self) -> None:
        """Forget idle tasks (their task group is being cancelled)."""
        self._idle.clear()
