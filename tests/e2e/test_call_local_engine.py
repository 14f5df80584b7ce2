"""A whole call, for real: FileAudioPort (speech made by the engine's own TTS) → Call → RealtimeModelSession →
the local engine over a real WebSocket on 127.0.0.1 → spoken answer back to the port. Tools run through the
ToolRunner; faults are injected into the engine's Realtime endpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from voicebot.audio.chunk import PcmChunk
from voicebot.call import Call
from voicebot.config import Settings
from voicebot.events import ModelEvent, Notice, ToolCall
from voicebot.fileport import FileAudioPort
from voicebot.local import keys
from voicebot.local.app import create_engine_app
from voicebot.local.faults import RealtimeFaults
from voicebot.local.speech import SpeechStack
from voicebot.realtime.client import ConnectOptions, RealtimeModelSession
from voicebot.realtime.wire import SessionConfig
from voicebot.tools import ToolRunner, load_agent

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stack() -> AsyncIterator[SpeechStack]:
    s = await SpeechStack.create()
    yield s
    await s.close()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine(stack: SpeechStack) -> AsyncIterator[tuple[int, RealtimeFaults]]:
    app = create_engine_app(Settings(openai_api_key=None))
    app[keys.SPEECH] = stack
    faults = RealtimeFaults()
    app[keys.FAULTS] = faults
    root = web.Application()
    root.add_subapp("/v1", app)
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1], faults
    await runner.cleanup()


async def speech(stack: SpeechStack, text: str) -> PcmChunk:
    chunks = [c async for c in stack.synthesize(text)]
    return PcmChunk.concat(chunks, rate=24000)


def session(port: int, runner: ToolRunner) -> RealtimeModelSession:
    pieces = runner.session_config()
    config = SessionConfig(instructions=pieces["instructions"], tools=tuple(pieces["tools"]))
    return RealtimeModelSession(
        ConnectOptions(f"ws://127.0.0.1:{port}/v1", "sk-test"),
        config,
        reconnect_attempts=3,
        reconnect_backoff_s=0.05,
    )


async def test_weather_question_runs_the_users_tool_and_speaks_the_result(
    engine: tuple[int, RealtimeFaults], stack: SpeechStack
) -> None:
    port, _ = engine
    agent = load_agent(f"{EXAMPLES / 'weather_agent.py'}:agent")
    runner = ToolRunner(agent)
    audio = await speech(stack, "What is the weather like in Paris?")
    file_port = FileAudioPort(audio, lead_silence_ms=300, hangup_when_idle_s=1.5, max_s=30, speed=2.0)
    seen: list[ModelEvent] = []
    call = Call(file_port, session(port, runner), tools=runner)
    call.add_listener(seen.append)
    stats = await asyncio.wait_for(call.run(), 40)

    calls = [e for e in seen if isinstance(e, ToolCall)]
    assert [c.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].arguments)["city"].lower() == "paris"
    user = " ".join(t.text.lower() for t in call.transcript if t.role == "user")
    assistant = " ".join(t.text.lower() for t in call.transcript if t.role == "assistant")
    assert "weather" in user and "paris" in user
    assert "paris" in assistant
    heard = file_port.received()
    assert heard.duration_ms > 500 and heard.rms() > 300
    assert stats.tool_calls == 1
    assert stats.turn_latencies_ms, "the first answer audio was timed"


async def test_upstream_drop_mid_response_the_call_survives_and_the_next_turn_works(
    engine: tuple[int, RealtimeFaults], stack: SpeechStack
) -> None:
    port, faults = engine
    faults.drop_after_audio_deltas = 2
    faults.drops = 1
    runner = ToolRunner(load_agent(f"{EXAMPLES / 'weather_agent.py'}:agent"))
    first = await speech(stack, "Hello, how are you today?")
    second = await speech(stack, "Thank you very much.")
    file_port = FileAudioPort(first, lead_silence_ms=300, hangup_when_idle_s=None, max_s=40, speed=2.0)
    model = session(port, runner)
    seen: list[ModelEvent] = []
    call = Call(file_port, model, tools=runner)
    call.add_listener(seen.append)
    task = asyncio.create_task(call.run())

    async with asyncio.timeout(25):
        while not any(isinstance(e, Notice) and e.kind == "reconnected" for e in seen):
            await asyncio.sleep(0.05)
    assert faults.drops == 0
    assert model.connections == 2
    before = sum(1 for t in call.transcript if t.role == "assistant")
    file_port.inject(PcmChunk.silence(500, 24000))
    file_port.inject(second)
    async with asyncio.timeout(25):
        while sum(1 for t in call.transcript if t.role == "assistant") <= before:
            await asyncio.sleep(0.05)
    file_port.hang_up()
    stats = await asyncio.wait_for(task, 10)

    assert stats.end_reason == "caller hung up"
    user = [t.text.lower() for t in call.transcript if t.role == "user"]
    assert any("thank" in u for u in user), user
    assert file_port.received().rms() > 300


async def test_triage_agent_hands_a_spanish_caller_to_the_spanish_agent(
    engine: tuple[int, RealtimeFaults],
) -> None:
    port, _ = engine
    runner = ToolRunner(load_agent(f"{EXAMPLES / 'triage_agent.py'}:triage_agent"))
    file_port = FileAudioPort(PcmChunk.silence(200, 24000), hangup_when_idle_s=None, max_s=30, speed=2.0)
    model = session(port, runner)
    seen: list[ModelEvent] = []
    call = Call(file_port, model, tools=runner)
    call.add_listener(seen.append)
    task = asyncio.create_task(call.run())

    def assistant_lines() -> list[str]:
        return [t.text for t in call.transcript if t.role == "assistant"]

    async with asyncio.timeout(20):
        while not model.core.ready:
            await asyncio.sleep(0.02)
    await model.send_text("Hola, necesito ayuda por favor")
    async with asyncio.timeout(20):
        while "¡Hola! ¿En qué puedo ayudarle?" not in assistant_lines():
            await asyncio.sleep(0.05)
    handoffs = [e.name for e in seen if isinstance(e, ToolCall)]
    assert handoffs == ["transfer_to_spanish_agent"]
    assert runner.agent.name == "Spanish agent"
    tools = sorted(t["name"] for t in model.core.config.tools)
    assert tools == ["end_call", "get_current_time", "transfer_to_triage_agent"]
    assert model.core.config.instructions is not None and "Spanish" in model.core.config.instructions

    await model.send_text("Gracias por todo")
    async with asyncio.timeout(20):
        while "¡De nada!" not in assistant_lines():
            await asyncio.sleep(0.05)
    file_port.hang_up()
    await asyncio.wait_for(task, 10)
    assert file_port.received().rms() > 300  # the answers were spoken, not only written
