"""The bot under test: the voicebot app in this process with SIP on (port 0 → a free port on 127.0.0.1) and
the local engine mounted under /v1 as its model upstream. One speech stack serves the whole session; every
test gets a fresh app whose brain follows TEST_RULES and whose agent has end_call and record_digits."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
import soxr
from aiohttp import web

from tests.sip_e2e.sipp import SIPP
from voicebot.audio.g711 import alaw_encode, ulaw_encode
from voicebot.config import Settings
from voicebot.local import keys
from voicebot.local.app import create_engine_app
from voicebot.local.brain import Brain, RulesConfig
from voicebot.local.speech import SpeechStack
from voicebot.server.app import BASE_URL, SETTINGS
from voicebot.server.sessions import AGENT
from voicebot.server.sip import SIP_SERVICE, SipService, setup_sip
from voicebot.server.sip_webhook import setup_openai_sip
from voicebot.tools import Agent, ToolContext, tool
from voicebot.tools.builtin import end_call

TEST_RULES: dict[str, Any] = {
    "rules": [
        {"pattern": r"\bhang up\b|\bend the call\b", "tool": "end_call", "arguments": {"reason": "asked"}},
        {
            "pattern": r"caller pressed (?P<digits>[0-9*#A-D](?: [0-9*#A-D])*)",
            "tool": "record_digits",
            "arguments": {"digits_pressed": "{digits}"},
        },
        {"pattern": r"\bname\b", "reply": "My name is Robin, the phone robot of this test."},
    ]
}


def require_sipp() -> None:
    if SIPP is None:
        pytest.skip("sipp is not installed (Debian package sip-tester)")


@dataclass
class Bot:
    app: web.Application
    runner: web.AppRunner
    engine: web.Application  # the local engine, mounted under /v1
    digits: list[str] = field(default_factory=list)  # what record_digits was called with
    keypad: list[str] = field(default_factory=list)  # ctx.dtmf_received when record_digits ran

    @property
    def service(self) -> SipService:
        return self.app[SIP_SERVICE]

    @property
    def sip_address(self) -> tuple[str, int]:
        return self.service.sip.local_address

    @property
    def base_url(self) -> str:
        return self.app[BASE_URL]


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def speech() -> AsyncIterator[SpeechStack]:
    stack = await SpeechStack.create()
    yield stack
    await stack.close()


async def start_bot(speech: SpeechStack, settings: Settings) -> Bot:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    digits: list[str] = []
    keypad: list[str] = []

    @tool(filler=False)
    def record_digits(digits_pressed: str, ctx: ToolContext) -> dict[str, str]:
        """Record the keys the caller pressed on the phone keypad.

        Args:
            digits_pressed: The keys, separated by spaces.
        """
        digits.append(digits_pressed)
        keypad.append(ctx.dtmf_received)  # what the call itself heard, not what the model says
        return {"recorded": digits_pressed}

    app = web.Application()
    app[SETTINGS] = settings
    app[BASE_URL] = base
    app[AGENT] = Agent("phone-test", "You answer the phone.", tools=[end_call, record_digits])
    engine = create_engine_app(settings)
    engine[keys.SPEECH] = speech
    engine[keys.BRAIN] = Brain(RulesConfig.from_dict(TEST_RULES))
    app.add_subapp("/v1", engine)
    setup_sip(app)
    setup_openai_sip(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return Bot(app, runner, engine, digits, keypad)


def bot_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "sip_port": 0,
        "sip_host": "127.0.0.1",
        "rtp_port_min": 41000,
        "rtp_port_max": 41999,
        "max_calls": 8,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


BotFactory = Callable[..., Awaitable[Bot]]


@pytest_asyncio.fixture(loop_scope="session")
async def make_bot(speech: SpeechStack) -> AsyncIterator[BotFactory]:
    """``await make_bot(**settings_overrides)``; every bot is stopped after the test."""
    bots: list[Bot] = []

    async def make(**overrides: object) -> Bot:
        b = await start_bot(speech, bot_settings(**overrides))
        bots.append(b)
        return b

    try:
        yield make
    finally:
        for b in bots:
            await b.runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def bot(make_bot: BotFactory) -> Bot:
    require_sipp()
    return await make_bot()


async def speech_ulaw(speech: SpeechStack, text: str, path: Path, *, alaw: bool = False) -> Path:
    """The engine's TTS of ``text`` as raw 8 kHz mu-law (or A-law): what sipp's rtp_stream plays, without
    a header. A second of silence follows so the bot's VAD sees the end of the turn."""
    parts = [chunk async for chunk in speech.synthesize(text)]
    pcm24 = np.concatenate([c.samples for c in parts])
    pcm8 = soxr.resample(pcm24.astype(np.float32) / 32768.0, parts[0].rate, 8000)
    pcm8 = np.clip(pcm8 * 32768.0, -32768, 32767).astype(np.int16)
    pcm8 = np.concatenate([pcm8, np.zeros(8000, dtype=np.int16)])
    await asyncio.to_thread(path.write_bytes, (alaw_encode if alaw else ulaw_encode)(pcm8))
    return path
