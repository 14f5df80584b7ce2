"""Calls come and go without leaving anything behind: tasks, peer connections, threads, file descriptors."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from aiortc import RTCPeerConnection

from tests.webrtc.conftest import Broker, make_app
from tests.webrtc.peers import MIC_RATE, Caller, ToneModel, tone
from voicebot.config import Settings
from voicebot.server.routes_calls import CALLS


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def live_peer_connections() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection))


def non_pool_threads() -> set[str]:
    # The loop's default executor keeps its idle workers; every other thread (aiortc decoders) must go.
    return {
        t.name for t in threading.enumerate() if not t.name.startswith(("asyncio_", "ThreadPoolExecutor"))
    }


async def one_call(broker: Broker, *, speak: bool) -> None:
    caller = Caller(broker.http, broker.base)
    try:
        await caller.connect()
        await caller.wait_connected()
        port = broker.calls.all()[0].port
        if speak:
            caller.mic.speak(tone(0.1, MIC_RATE, amp=0.5))
        await wait_settled(lambda: len(caller.heard) >= 5, timeout=5)  # media flows both ways
        assert caller.heard, "no media reached the caller"
        async with broker.http.delete(f"{broker.base}api/calls/{caller.call_id}") as r:
            assert r.status == 204
        # the server side is gone before the caller closes anything
        assert port.pc.connectionState == "closed"
        assert port.track.readyState == "ended"
        assert len(broker.calls) == 0
    finally:
        await caller.close()


async def wait_settled(predicate: object, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        gc.collect()
        if callable(predicate) and predicate():
            return
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_ten_calls_in_a_loop_leave_nothing_behind(broker: Broker) -> None:
    await one_call(broker, speak=False)  # warm-up: lazily created pools and caches
    await asyncio.sleep(0.1)
    tasks_before = {t for t in asyncio.all_tasks() if not t.done()}
    fds_before = open_fds()
    threads_before = non_pool_threads()
    assert live_peer_connections() == 0

    for i in range(10):
        await one_call(broker, speak=i % 2 == 0)

    def settled() -> bool:
        tasks_now = {t for t in asyncio.all_tasks() if not t.done()}
        return tasks_now <= tasks_before and open_fds() <= fds_before

    await wait_settled(settled)
    leaked_tasks = {t for t in asyncio.all_tasks() if not t.done()} - tasks_before
    assert not leaked_tasks, f"tasks left behind: {leaked_tasks}"
    assert live_peer_connections() == 0
    assert len(broker.calls) == 0
    assert all(m.closed for m in broker.models) and len(broker.models) == 11
    leaked_fds = open_fds() - fds_before
    assert not leaked_fds, (
        f"file descriptors left behind: {[os.readlink(f'/proc/self/fd/{fd}') for fd in leaked_fds]}"
    )
    assert non_pool_threads() <= threads_before


async def test_a_call_whose_media_never_connects_is_hung_up() -> None:
    models: list[ToneModel] = []
    settings = Settings(ice_host_addresses=["127.0.0.1"], max_calls=4, webrtc_connect_timeout_s=0.5)
    app = make_app(settings, models, {})
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as http:
            caller = Caller(http, str(server.make_url("/")))
            try:
                body = await caller.offer()
                async with http.post(server.make_url("/api/calls"), json=body) as r:
                    assert (
                        r.status == 201
                    )  # answered, but the answer is never applied: no ICE from the caller
                assert len(app[CALLS]) == 1
                await wait_settled(lambda: len(app[CALLS]) == 0, timeout=5)
                assert len(app[CALLS]) == 0
                assert models[0].closed
                assert live_peer_connections() == 1  # only the caller's own
            finally:
                await caller.close()
    finally:
        await server.close()


async def test_shutdown_hangs_up_every_call() -> None:
    models: list[ToneModel] = []
    settings = Settings(ice_host_addresses=["127.0.0.1"], max_calls=4)
    app = make_app(settings, models, {"greeting_s": 5.0})
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    callers: list[Caller] = []
    try:
        async with ClientSession() as http:
            for _ in range(2):
                c = Caller(http, str(server.make_url("/")))
                callers.append(c)
                await c.connect()
                await c.wait_connected()
        registry = app[CALLS]
        assert len(registry) == 2
        await server.close()  # app cleanup: every call ends
        assert len(registry) == 0
        assert all(m.closed for m in models)
        for c in callers:
            await c.wait_event("ended", timeout=2, reason="server shutting down")
    finally:
        for c in callers:
            await c.close()
        await server.close()
