"""Admission control for the whole server, browser and phone calls alike.

Two limits: a fixed cap (``Settings.max_calls``) and load shedding. A process that is out of CPU shows it first
as event-loop lag (every call's 20 ms audio ticks run late), so a ``LoopLagMonitor`` samples how late the loop
wakes up, and while the recent lag is above ``Settings.shed_load_lag_ms`` new calls are refused with 503 +
Retry-After instead of pushing every call in progress further behind.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from voicebot.errors import CapacityError

log = logging.getLogger("voicebot.server")


class LoopLagMonitor:
    """Measures how late the event loop wakes from a short sleep. ``lag_ms`` is the 75th percentile over the
    recent window: a saturated loop is late most of the time, while one garbage-collection pause is not."""

    def __init__(
        self, *, interval_s: float = 0.05, window_s: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._samples: deque[float] = deque(maxlen=max(1, round(window_s / interval_s)))

    @property
    def lag_ms(self) -> float:
        if not self._samples:
            return 0.0
        ordered = sorted(self._samples)
        return ordered[(len(ordered) * 3) // 4 if len(ordered) > 1 else 0] * 1000

    def record(self, lateness_s: float) -> None:
        self._samples.append(max(0.0, lateness_s))

    async def run(self) -> None:
        while True:
            start = self._clock()
            await asyncio.sleep(self.interval_s)
            self.record(self._clock() - start - self.interval_s)


class CallSlots:
    """Counts calls in progress; ``acquire`` refuses with ``CapacityError`` (HTTP 503 / SIP 503) when full or
    when the loop is overloaded."""

    def __init__(
        self, limit: int, *, monitor: LoopLagMonitor | None = None, max_lag_ms: float | None = None
    ) -> None:
        self.limit = limit
        self.in_use = 0
        self.monitor = monitor
        self.max_lag_ms = max_lag_ms
        self.shed = 0  # calls refused because of load

    def acquire(self) -> None:
        if self.in_use >= self.limit:
            raise CapacityError(f"the server is full ({self.limit} calls in progress); try again in a moment")
        if self.monitor is not None and self.max_lag_ms is not None and self.in_use > 0:
            lag = self.monitor.lag_ms
            if lag > self.max_lag_ms:
                self.shed += 1
                log.warning(
                    "refusing a call: event loop %.0f ms late with %d calls in progress", lag, self.in_use
                )
                raise CapacityError(
                    f"the server is overloaded ({self.in_use} calls in progress); try again in a moment",
                    retry_after_s=10,
                )
        self.in_use += 1

    def release(self) -> None:
        if self.in_use <= 0:
            raise RuntimeError("CallSlots.release without a matching acquire")
        self.in_use -= 1


CALL_SLOTS = web.AppKey("call_slots", CallSlots)


async def monitor_lifetime(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx entry: runs the slots' loop-lag monitor for the app's lifetime."""
    slots = app[CALL_SLOTS]
    task = None
    if slots.monitor is not None:
        task = asyncio.get_running_loop().create_task(slots.monitor.run(), name="loop-lag-monitor")
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def freeze_startup_heap(app: object) -> None:
    """Runs last at startup: collect once, then move every object alive now (modules, models, the app)
    into the collector's permanent generation.

    A full collection otherwise walks all of them: with 30 calls running, that was a 49 ms pause every few
    seconds, felt by every call at once as a late frame. What calls allocate later is still collected.
    """
    gc.collect()
    gc.freeze()
    log.debug("startup heap frozen: %d objects kept out of collections", gc.get_freeze_count())
