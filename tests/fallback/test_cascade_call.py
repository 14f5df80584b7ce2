"""A cascade-only call end to end: FileAudioPort (speech made by the engine's TTS) → Call →
CascadeModelSession → the local engine's /v1/audio/transcriptions, /v1/responses and /v1/audio/speech through
the official SDK → spoken answers back to the port."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.fallback.conftest import EXAMPLES, Engine
from tests.fallback.helpers import Driver, lines, until
from voicebot.audio.chunk import PcmChunk
from voicebot.call import Call
from voicebot.events import AudioOut, ClearAudio, ModelEvent, ToolCall
from voicebot.fallback.cascade import CascadeConfig, CascadeModelSession
from voicebot.fileport import FileAudioPort
from voicebot.tools import ToolRunner, load_agent

pytestmark = [pytest.mark.asyncio(loop_scope="package"), pytest.mark.slow]


def cascade_for(engine: Engine, runner: ToolRunner) -> CascadeModelSession:
    pieces = runner.session_config()
    config = CascadeConfig(instructions=pieces["instructions"], tools=tuple(pieces["tools"]))
    return CascadeModelSession(engine.client(), config)


async def test_three_turns_with_a_tool_call_in_the_middle(engine: Engine) -> None:
    runner = ToolRunner(load_agent(f"{EXAMPLES / 'weather_agent.py'}:agent"))
    model = cascade_for(engine, runner)
    port = FileAudioPort(PcmChunk.silence(200, 24000), hangup_when_idle_s=None, max_s=90, speed=2.0)
    call = Call(port, model, tools=runner)
    driver = Driver(call, port)
    seen = driver.seen
    task = asyncio.create_task(call.run())

    first = await driver.say_and_wait(await engine.speech("Hello, how are you today?"))
    second = await driver.say_and_wait(await engine.speech("What is the weather like in Paris?"))
    third = await driver.say_and_wait(await engine.speech("Thank you very much."))
    port.hang_up()
    stats = await asyncio.wait_for(task, 10)
    await model.client.close()

    calls = [e for e in seen if isinstance(e, ToolCall)]
    assert [c.name for c in calls] == ["get_weather"]
    assert json.loads(calls[0].arguments)["city"].lower() == "paris"
    user = [u.lower() for u in lines(call, "user")]
    assert (
        len(user) == 3
        and ("hello" in user[0] or "how are you" in user[0])
        and "paris" in user[1]
        and "thank" in user[2]
    )
    assert first and third
    assert "paris" in second.lower() and "18" in second  # the tool's made-up temperature for Paris
    # every answer was spoken: audio came for three distinct assistant items and reached the port
    spoken_items = {e.item_id for e in seen if isinstance(e, AudioOut)}
    assert len(spoken_items) == 3
    assert port.received().duration_ms > 1500 and port.received().rms() > 300
    assert stats.tool_calls == 1 and len(stats.turn_latencies_ms) == 3
    # each answer was heard to the end: no assistant message was cut by a truncate
    for item in {t.item_id for t in call.transcript if t.role == "assistant"}:
        assert len({t.text for t in call.transcript if t.item_id == item}) == 1
    # the last request carried the whole conversation: three user turns, the call and its output
    assert model.last_request is not None
    items = model.last_request["input"]
    kinds = [i.get("type") for i in items]
    assert kinds.count("function_call") == 1 and kinds.count("function_call_output") == 1
    users = [i["content"] for i in items if i.get("role") == "user"]
    assert len(users) == 3 and "paris" in users[1].lower()


async def test_barge_in_stops_the_answer_and_the_history_keeps_what_was_heard(engine: Engine) -> None:
    runner = ToolRunner(load_agent(f"{EXAMPLES / 'weather_agent.py'}:agent"))
    model = cascade_for(engine, runner)
    port = FileAudioPort(PcmChunk.silence(200, 24000), hangup_when_idle_s=None, max_s=60, speed=2.0)
    call = Call(port, model, tools=runner)
    driver = Driver(call, port)
    task = asyncio.create_task(call.run())

    await call.say("Welcome to the weather line.")  # say() speaks the text as given
    await until(lambda: bool(lines(call, "assistant")), 20, "the greeting")
    await driver.quiet(timeout=20)
    assert lines(call, "assistant") == ["Welcome to the weather line."]
    question = await engine.speech("What is the weather like in Paris?")
    interruption = await engine.speech("Stop, stop, stop.")
    await driver.inject(question)
    await until(lambda: any(t.role == "user" and "paris" in t.text.lower() for t in call.transcript), 20, "q")
    greeting = answer_item(driver.seen)
    await until(lambda: answer_item(driver.seen) != greeting, 20, "the answer's audio")
    answer = answer_item(driver.seen)
    await until(lambda: port.queue.played_ms(answer) > 800, 20, "the answer to play")
    port.inject(interruption)

    def cleared() -> list[ClearAudio]:
        return [e for e in driver.seen if isinstance(e, ClearAudio) and e.item_id == answer]

    await until(lambda: bool(cleared()), 10, "the barge-in")
    await until(lambda: any(t.role == "user" and "stop" in t.text.lower() for t in call.transcript), 20, "s")
    await driver.quiet()
    port.hang_up()
    stats = await asyncio.wait_for(task, 10)
    await model.client.close()

    item = answer
    assert len(cleared()) == 1 and stats.barge_ins >= 1
    full = next(t.text for t in call.transcript if t.item_id == item)
    heard = [t.text for t in call.transcript if t.item_id == item][-1]
    assert "paris" in full.lower() and "cloudy" in full.lower()
    assert heard and len(heard) < len(full) and full.startswith(heard)
    # the history sent with the next request holds the heard part only
    assert model.last_request is not None
    said = [i["content"] for i in model.last_request["input"] if i.get("role") == "assistant"]
    assert heard in said and full not in said
    assert "Welcome to the weather line." in said  # a greeting said with nothing pending is context


def answer_item(seen: list[ModelEvent]) -> str:
    audio = [e for e in seen if isinstance(e, AudioOut)]
    return audio[-1].item_id if audio else ""


async def test_a_phone_rate_cascade_hears_and_speaks_at_8_khz(engine: Engine) -> None:
    runner = ToolRunner(load_agent(f"{EXAMPLES / 'weather_agent.py'}:agent"))
    pieces = runner.session_config()
    config = CascadeConfig(
        instructions=pieces["instructions"], tools=tuple(pieces["tools"]), input_rate=8000, output_rate=8000
    )
    model = CascadeModelSession(engine.client(), config, close_client=True)
    port = FileAudioPort(PcmChunk.silence(200, 24000), hangup_when_idle_s=None, max_s=40, speed=2.0)
    call = Call(port, model, tools=runner)
    driver = Driver(call, port)
    task = asyncio.create_task(call.run())
    answer = await driver.say_and_wait(await engine.speech("What is the weather in London?"))
    port.hang_up()
    await asyncio.wait_for(task, 10)
    assert "london" in answer.lower() and "14" in answer
    chunks = [e.chunk for e in driver.seen if isinstance(e, AudioOut)]
    assert chunks and all(c.rate == 8000 for c in chunks)
    assert port.received().rms() > 300


async def test_a_handoff_updates_the_cascades_instructions_and_tools(engine: Engine) -> None:
    runner = ToolRunner(load_agent(f"{EXAMPLES / 'triage_agent.py'}:triage_agent"))
    model = cascade_for(engine, runner)
    port = FileAudioPort(PcmChunk.silence(200, 24000), hangup_when_idle_s=None, max_s=40, speed=2.0)
    call = Call(port, model, tools=runner)
    driver = Driver(call, port)
    task = asyncio.create_task(call.run())
    await model.send_text("Hola, necesito ayuda por favor")
    await until(lambda: "¡Hola! ¿En qué puedo ayudarle?" in lines(call, "assistant"), 20, "the Spanish agent")
    await driver.quiet()
    port.hang_up()
    await asyncio.wait_for(task, 10)
    await model.client.close()
    assert [e.name for e in driver.seen if isinstance(e, ToolCall)] == ["transfer_to_spanish_agent"]
    assert runner.agent.name == "Spanish agent"
    assert model.config.instructions is not None and "Spanish" in model.config.instructions
    assert model.last_request is not None
    sent_tools = sorted(t["name"] for t in model.last_request["tools"])
    assert sent_tools == ["end_call", "get_current_time", "transfer_to_triage_agent"]
    assert "Spanish" in model.last_request["instructions"]
