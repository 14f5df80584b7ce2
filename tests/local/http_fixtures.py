"""Fixtures for the local engine's HTTP tests: one real speech stack for the whole session, and engine apps
served on 127.0.0.1 (port 0) that borrow it.

Test modules load this with ``pytest_plugins = ["tests.local.http_fixtures"]`` (and must not import it), so
that the fixtures exist once per session; importing them into each module would load one stack per module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest_asyncio
from openai import AsyncOpenAI
from pydantic import SecretStr

from tests.local.http_support import LOCAL_TOKEN, Engine, serve
from voicebot.config import Settings
from voicebot.local.speech import SpeechStack


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def speech_stack() -> AsyncIterator[SpeechStack]:
    stack = await SpeechStack.create()
    yield stack
    await stack.close()


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def engine(speech_stack: SpeechStack) -> AsyncIterator[Engine]:
    runner, eng = await serve(Settings(local_token=None), speech_stack)
    yield eng
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def token_engine(speech_stack: SpeechStack) -> AsyncIterator[Engine]:
    """An engine that requires ``LOCAL_TOKEN`` (or a client secret it issued)."""
    runner, eng = await serve(Settings(local_token=SecretStr(LOCAL_TOKEN)), speech_stack)
    yield eng
    await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def client(engine: Engine) -> AsyncIterator[AsyncOpenAI]:
    async with engine.client() as c:
        yield c


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client for looking at raw bytes (SSE framing, headers)."""
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer sk-test"}) as session:
        yield session
