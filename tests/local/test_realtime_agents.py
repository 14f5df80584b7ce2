"""The OpenAI Agents SDK (which validates every server event) runs a realtime agent with one function tool
against the local engine, unchanged, to completion."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner

from tests.local.realtime_helpers import Served, serve_engine
from voicebot.config import Settings
from voicebot.local.speech import SpeechStack

pytest_plugins = ["tests.local.http_fixtures"]
pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def rt(speech_stack: SpeechStack) -> AsyncIterator[Served]:
    served = await serve_engine(Settings(), speech_stack)
    yield served
    await served.runner.cleanup()


async def test_agents_sdk_function_tool_round_trip(rt: Served) -> None:
    cities: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city.

        Args:
            city: The city, for example Paris.
        """
        cities.append(city)
        return json.dumps({"temperature_c": 18, "conditions": "cloudy"})

    agent = RealtimeAgent(name="Assistant", instructions="Answer briefly.", tools=[get_weather])
    runner = RealtimeRunner(agent)
    session = await runner.run(
        model_config={"url": f"ws://127.0.0.1:{rt.port}/v1/realtime?model=gpt-realtime", "api_key": "sk-test"}
    )
    seen: list[str] = []
    errors: list[Any] = []
    transcripts: list[str] = []
    audio_bytes = 0
    async with session:
        await session.send_message("What is the weather like in Paris?")
        async with asyncio.timeout(30):
            async for event in session:
                seen.append(event.type)
                if event.type == "error":
                    errors.append(event.error)
                elif event.type == "audio":
                    audio_bytes += len(event.audio.data)
                elif event.type == "raw_model_event" and event.data.type == "raw_server_event":
                    raw = event.data.data
                    if raw.get("type") == "response.output_audio_transcript.done":
                        transcripts.append(raw["transcript"])
                if transcripts and "tool_end" in seen and event.type == "agent_end":
                    break
    assert errors == []  # the Agents SDK reports any frame that fails validation as an error event
    assert cities == ["Paris"]
    assert seen.index("tool_start") < seen.index("tool_end")
    assert "18" in transcripts[-1] and "cloudy" in transcripts[-1]
    assert audio_bytes > 24_000  # more than half a second of 24 kHz PCM16
