"""Helpers for the Realtime tests: serve the engine with chosen settings, and an SDK connection wrapper that
validates every server frame against the SDK's discriminated union (as the Agents SDK does)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from aiohttp import web
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import RealtimeServerEvent
from pydantic import Field, TypeAdapter

from voicebot.audio.chunk import PcmChunk
from voicebot.config import Settings
from voicebot.local import keys
from voicebot.local.app import create_engine_app
from voicebot.local.brain import Brain, RulesConfig
from voicebot.local.realtime.route import RECORD_DIR, REPLAY_PATH
from voicebot.local.speech import SpeechStack

SERVER_EVENT: TypeAdapter[Any] = TypeAdapter(Annotated[RealtimeServerEvent, Field(discriminator="type")])

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city, e.g. Paris"}},
        "required": ["city"],
    },
}
LONG_STORY = " ".join(f"This is sentence number {n} of a long story." for n in range(1, 31))
TEST_RULES = RulesConfig.from_dict({"rules": [{"pattern": r"\blong story\b", "reply": LONG_STORY}]})


@dataclass
class Served:
    runner: web.AppRunner
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self, api_key: str = "sk-test") -> AsyncOpenAI:
        return AsyncOpenAI(
            api_key=api_key,
            base_url=self.base_url,
            websocket_base_url=f"ws://127.0.0.1:{self.port}/v1",
            max_retries=0,
        )


async def serve_engine(
    settings: Settings,
    stack: SpeechStack | None,
    *,
    brain: Brain | None = None,
    record_dir: Path | None = None,
    replay: Path | None = None,
) -> Served:
    app = create_engine_app(settings)
    if stack is not None:
        app[keys.SPEECH] = stack
    if record_dir is not None:
        app[RECORD_DIR] = record_dir
    if replay is not None:
        app[REPLAY_PATH] = replay
    if brain is not None:
        app.on_startup.append(_set_brain(brain))
    root = web.Application()
    root.add_subapp("/v1", app)
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return Served(runner, runner.addresses[0][1])


def _set_brain(brain: Brain) -> Any:
    async def hook(app: web.Application) -> None:
        app[keys.BRAIN] = brain

    return hook


@dataclass
class Events:
    """Reads raw frames from an SDK connection; validates each; keeps them all."""

    conn: AsyncRealtimeConnection
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def next(self, wait_s: float = 20.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv_bytes(), wait_s)
        event = json.loads(raw)
        SERVER_EVENT.validate_python(event)  # raises on any shape the SDK types reject
        self.seen.append(event)
        return dict(event)

    async def until(self, kind: str, wait_s: float = 20.0) -> list[dict[str, Any]]:
        """Events up to and including the first of type ``kind``."""
        out: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            event = await self.next(max(0.01, deadline - loop.time()))
            out.append(event)
            if event["type"] == kind:
                return out

    def assert_unique_ids(self) -> None:
        ids = [e["event_id"] for e in self.seen]
        assert len(ids) == len(set(ids)), "every server event has a distinct event_id"
        assert all(i.startswith("event_") and len(i) == 27 for i in ids)


@asynccontextmanager
async def connect(served: Served, **kwargs: Any) -> AsyncIterator[tuple[AsyncRealtimeConnection, Events]]:
    client = served.client(kwargs.pop("api_key", "sk-test"))
    async with client.realtime.connect(model=kwargs.pop("model", "gpt-realtime"), **kwargs) as conn:
        events = Events(conn)
        yield conn, events
        events.assert_unique_ids()
    await client.close()


def b64(chunk: PcmChunk) -> str:
    return base64.b64encode(chunk.to_bytes()).decode("ascii")


def silence(ms: int, rate: int = 24000) -> PcmChunk:
    return PcmChunk(np.zeros(rate * ms // 1000, dtype=np.int16), rate)


async def speak(stack: SpeechStack, text: str) -> PcmChunk:
    """``text`` spoken by the engine's own TTS (24 kHz)."""
    chunks = [c async for c in stack.synthesize(text)]
    return PcmChunk.concat(chunks, 24000)


async def append_audio(conn: AsyncRealtimeConnection, audio: PcmChunk, chunk_ms: int = 100) -> None:
    for piece in audio.frames(chunk_ms):
        await conn.input_audio_buffer.append(audio=b64(piece))


def types_of(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]
