"""Admission control: one cap for all calls, and load shedding when the event loop runs late."""

from __future__ import annotations

import asyncio
import time

import pytest

from voicebot.errors import CapacityError
from voicebot.server.capacity import CallSlots, LoopLagMonitor


def test_cap_counts_and_refuses() -> None:
    slots = CallSlots(2)
    slots.acquire()
    slots.acquire()
    with pytest.raises(CapacityError, match="full"):
        slots.acquire()
    slots.release()
    slots.acquire()
    assert slots.in_use == 2
    slots.release()
    slots.release()
    with pytest.raises(RuntimeError):
        slots.release()


def test_lag_is_the_75th_percentile_of_the_window() -> None:
    monitor = LoopLagMonitor(interval_s=0.05, window_s=0.4)  # 8 samples
    for s in (0.001,) * 6 + (0.5, 0.5):
        monitor.record(s)
    assert monitor.lag_ms == pytest.approx(500)  # two of eight late: the 75th percentile is one of them
    for _ in range(8):
        monitor.record(0.002)
    assert monitor.lag_ms == pytest.approx(2)


def test_a_late_loop_sheds_new_calls_but_never_the_first() -> None:
    monitor = LoopLagMonitor(interval_s=0.05, window_s=0.2)
    slots = CallSlots(100, monitor=monitor, max_lag_ms=30)
    for _ in range(4):
        monitor.record(0.08)
    slots.acquire()  # an idle server always takes a call
    with pytest.raises(CapacityError, match="overloaded") as info:
        slots.acquire()
    assert info.value.retry_after_s == 10 and slots.shed == 1
    for _ in range(4):
        monitor.record(0.001)
    slots.acquire()
    assert slots.in_use == 2


async def test_the_monitor_sees_a_blocked_loop() -> None:
    monitor = LoopLagMonitor(interval_s=0.01, window_s=0.08)
    task = asyncio.create_task(monitor.run())
    try:
        await asyncio.sleep(0.1)
        calm = monitor.lag_ms
        for _ in range(8):
            await asyncio.sleep(0)
            time.sleep(0.04)  # noqa: ASYNC251 - a CPU-bound stretch on the loop (what saturation looks like)
        busy = monitor.lag_ms
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert calm < 30 <= busy
