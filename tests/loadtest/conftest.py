"""The load tester against a real server: ``create_app`` with the local engine on 127.0.0.1 (WebRTC and SIP),
inside a private network namespace with loopback-only ICE, exactly like tests/webrtc (see its netns.py).

One speech stack serves the whole session (lent to every server's engine); the callers' audio is the engine's
own TTS of a short question, written as a 24 kHz WAV so the load tester has to resample it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.web_urldispatcher import PrefixedSubAppResource

from tests.webrtc.netns import netns_unavailable_reason, private_netns
from voicebot.audio.chunk import PcmChunk
from voicebot.audio.wav import write_wav
from voicebot.config import Settings
from voicebot.local import keys
from voicebot.local.speech import SpeechStack
from voicebot.server.app import BASE_URL, create_app

PHRASE = "What time is it?"


@pytest.fixture
def loopback_only_netns() -> Iterator[str]:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(f"load tests need a private network namespace: {reason}")
    with private_netns() as ns:
        yield ns


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def speech() -> AsyncIterator[SpeechStack]:
    stack = await SpeechStack.create()
    yield stack
    await stack.close()


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def question_wav(speech: SpeechStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The question spoken by the engine's TTS (24 kHz) with 0.6 s of silence after it."""
    parts = [c async for c in speech.synthesize(PHRASE)]
    rate = parts[0].rate
    samples = np.concatenate([*(c.samples for c in parts), np.zeros(int(0.6 * rate), dtype=np.int16)])
    path = tmp_path_factory.mktemp("loadtest") / "question.wav"
    write_wav(path, PcmChunk(samples, rate))
    return path


@dataclass
class Server:
    runner: web.AppRunner
    url: str
    sip_port: int


ServerFactory = Callable[..., Awaitable[Server]]


@pytest_asyncio.fixture(loop_scope="session")
async def make_server(speech: SpeechStack) -> AsyncIterator[ServerFactory]:
    """``await make_server(max_calls=N)``: the voicebot app with the local engine (lent ``speech``) and SIP."""
    servers: list[Server] = []

    async def make(**overrides: object) -> Server:
        values: dict[str, object] = {
            "host": "127.0.0.1",
            "ice_host_addresses": ["127.0.0.1"],
            "max_calls": 4,
            "sip_port": 0,
            "sip_host": "127.0.0.1",
            "rtp_port_min": 42000,
            "rtp_port_max": 42999,
            "webrtc_connect_timeout_s": 10,
            # the load generator shares this event loop, so the loop's lag would measure the test, not the
            # server: no load shedding here (it has its own tests)
            "shed_load_lag_ms": None,
        }
        values.update(overrides)
        app = create_app(Settings(**values))  # type: ignore[arg-type]
        for resource in app.router.resources():
            if isinstance(resource, PrefixedSubAppResource):
                resource.get_info()["app"][keys.SPEECH] = speech  # lend the session's stack to the engine
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        app[BASE_URL] = url
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        from voicebot.server.sip import SIP_SERVICE

        server = Server(runner, url, app[SIP_SERVICE].sip.local_address[1])
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for s in servers:
            await s.runner.cleanup()
