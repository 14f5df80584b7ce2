"""Shared fixtures for the fallback tests: one speech stack and one local engine on 127.0.0.1:0 per package,
with fault injection on its Realtime route (``RealtimeFaults``) and its HTTP routes (``HttpFaults``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio
from aiohttp import web
from openai import AsyncOpenAI

from voicebot.audio.chunk import PcmChunk
from voicebot.config import Settings
from voicebot.fallback.openai_http import make_client
from voicebot.local import keys
from voicebot.local.app import create_engine_app
from voicebot.local.faults import HttpFaults, RealtimeFaults
from voicebot.local.http_errors import HTTP_FAULTS
from voicebot.local.speech import SpeechStack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Engine:
    port: int
    realtime_faults: RealtimeFaults
    http_faults: HttpFaults
    stack: SpeechStack

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def ws_base_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1"

    def client(self, *, max_retries: int = 2, timeout_s: float = 20.0) -> AsyncOpenAI:
        return make_client(self.base_url, "sk-test", max_retries=max_retries, timeout_s=timeout_s)

    def reset_faults(self) -> None:
        f = self.realtime_faults
        f.refuse_connections, f.drops, f.drop_after_audio_deltas, f.quota_errors = 0, 0, None, 0
        self.http_faults.pending.clear()
        self.http_faults.seen.clear()

    async def speech(self, text: str) -> PcmChunk:
        chunks = [c async for c in self.stack.synthesize(text)]
        return PcmChunk.concat(chunks, rate=24000)


@pytest_asyncio.fixture(loop_scope="package", scope="package")
async def stack() -> AsyncIterator[SpeechStack]:
    s = await SpeechStack.create()
    yield s
    await s.close()


@pytest_asyncio.fixture(loop_scope="package", scope="package")
async def engine_server(stack: SpeechStack) -> AsyncIterator[Engine]:
    app = create_engine_app(Settings(openai_api_key=None))
    app[keys.SPEECH] = stack
    realtime_faults = RealtimeFaults()
    http_faults = HttpFaults()
    app[keys.FAULTS] = realtime_faults
    app[HTTP_FAULTS] = http_faults
    root = web.Application()
    root.add_subapp("/v1", app)
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield Engine(runner.addresses[0][1], realtime_faults, http_faults, stack)
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="package")
async def engine(engine_server: Engine) -> AsyncIterator[Engine]:
    """The shared engine with no faults armed (and none left behind)."""
    engine_server.reset_faults()
    yield engine_server
    engine_server.reset_faults()
