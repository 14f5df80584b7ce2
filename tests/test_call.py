"""The Call wires an AudioPort to a ModelSession. The model side here is a scripted stand-in (the real
Realtime session is exercised in tests/realtime and end to end against the local engine)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from voicebot.audio.chunk import PcmChunk
from voicebot.call import Call
from voicebot.events import AudioOut, ClearAudio, ModelEvent, ResponseDone, SessionEnded, ToolCall, Transcript
from voicebot.fileport import FileAudioPort


def tone(ms: int, rate: int, freq: float = 440.0, amp: int = 8000) -> PcmChunk:
    n = ms * rate // 1000
    t = np.arange(n) / rate
    return PcmChunk((amp * np.sin(2 * np.pi * freq * t)).astype(np.int16), rate)


class ScriptedModel:
    """A ModelSession whose events the test pushes; it records what the call sends it."""

    def __init__(self, rate: int = 24000) -> None:
        self.input_rate = rate
        self.output_rate = rate
        self.queue: asyncio.Queue[ModelEvent | None] = asyncio.Queue()
        self.audio_in: list[PcmChunk] = []
        self.tool_outputs: list[tuple[str, str]] = []
        self.truncates: list[tuple[str, int]] = []
        self.said: list[str] = []
        self.started = False
        self.closed = False

    async def start(self) -> None:
        self.started = True

    async def send_audio(self, chunk: PcmChunk) -> None:
        self.audio_in.append(chunk)

    async def events(self) -> AsyncIterator[ModelEvent]:
        while (ev := await self.queue.get()) is not None:
            yield ev

    async def submit_tool_output(self, call_id: str, output: str) -> None:
        self.tool_outputs.append((call_id, output))

    async def truncate(self, item_id: str, played_ms: int) -> None:
        self.truncates.append((item_id, played_ms))

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        pass

    async def update_session(self, **changes: Any) -> None:
        pass

    async def say(self, text: str) -> None:
        self.said.append(text)

    async def close(self) -> None:
        self.closed = True
        self.queue.put_nowait(None)


class Tools:
    def __init__(self) -> None:
        self.cancelled: list[str] = []

    async def run(self, call: ToolCall, control: Any) -> str:
        args = json.loads(call.arguments)
        if args.get("explode"):
            raise RuntimeError("boom")
        await asyncio.sleep(0.01)
        return json.dumps({"echo": args, "caller": control.caller})

    def cancel_cancellable(self, reason: str) -> None:
        self.cancelled.append(reason)


async def wait_until(pred: Any, limit_s: float = 3.0) -> None:
    async with asyncio.timeout(limit_s):
        while not pred():
            await asyncio.sleep(0.005)


async def test_audio_flows_both_ways_with_resampling() -> None:
    port = FileAudioPort(tone(400, 48000), output_rate=48000, hangup_when_idle_s=0.2, max_s=5)
    model = ScriptedModel()
    call = Call(port, model)
    task = asyncio.create_task(call.run())
    await model.queue.put(AudioOut("item_a", tone(300, 24000)))
    stats = await asyncio.wait_for(task, 5)

    assert model.started and model.closed
    sent = PcmChunk.concat(model.audio_in, rate=24000)
    # The 400 ms tone at 48 kHz reached the model at 24 kHz, followed by silence until the call ended.
    loud = np.flatnonzero(np.abs(sent.samples) > 500)
    assert abs((loud[-1] - loud[0]) - 24000 * 0.4) <= 48
    assert PcmChunk(sent.samples[loud[0] : loud[-1]], 24000).rms() > 3000
    heard = port.received()
    assert heard.rate == 48000
    assert abs(heard.num_samples - 48000 * 0.3) <= 960  # the last frame is padded to 20 ms
    assert heard.rms() > 3000
    assert port.played_ms("item_a") >= 280
    assert stats.end_reason == "caller hung up"


async def test_barge_in_drops_queued_audio_and_truncates_at_what_was_heard() -> None:
    port = FileAudioPort(PcmChunk.silence(100, 24000), hangup_when_idle_s=None, max_s=5)
    model = ScriptedModel()
    tools = Tools()
    call = Call(port, model, tools=tools)
    task = asyncio.create_task(call.run())
    await model.queue.put(AudioOut("item_long", tone(3000, 24000)))
    await wait_until(lambda: port.played_ms("item_long") >= 200)
    await model.queue.put(ClearAudio("item_long"))
    await wait_until(lambda: model.truncates)
    at_truncate = port.played_ms("item_long")
    await asyncio.sleep(0.1)
    after = port.played_ms("item_long")
    port.hang_up()
    await asyncio.wait_for(task, 5)

    item, ms = model.truncates[0]
    assert item == "item_long"
    assert 200 <= ms <= at_truncate <= 2000
    assert (
        after - at_truncate <= 20
    )  # nothing more of the interrupted item is sent (at most the frame in flight)
    assert tools.cancelled == ["caller interrupted"]
    assert call.stats.barge_ins == 1


async def test_tool_calls_run_concurrently_and_errors_become_outputs() -> None:
    port = FileAudioPort(PcmChunk.silence(100, 24000), hangup_when_idle_s=None, max_s=5)
    model = ScriptedModel()
    call = Call(port, model, tools=Tools(), caller="sip:+15550100@example.com")
    task = asyncio.create_task(call.run())
    await model.queue.put(ToolCall("call_1", "lookup", json.dumps({"q": "a"})))
    await model.queue.put(ToolCall("call_2", "lookup", json.dumps({"explode": True})))
    await wait_until(lambda: len(model.tool_outputs) == 2)
    port.hang_up()
    await asyncio.wait_for(task, 5)

    outputs = dict(model.tool_outputs)
    assert json.loads(outputs["call_1"]) == {"echo": {"q": "a"}, "caller": "sip:+15550100@example.com"}
    assert "boom" in json.loads(outputs["call_2"])["error"]
    assert call.stats.tool_calls == 2


async def test_model_session_end_ends_the_call_and_closes_the_port() -> None:
    port = FileAudioPort(PcmChunk.silence(100, 24000), hangup_when_idle_s=None, max_s=5)
    model = ScriptedModel()
    call = Call(port, model)
    task = asyncio.create_task(call.run())
    await model.queue.put(Transcript("user", "item_u", "hello there", final=True))
    await model.queue.put(SessionEnded("invalid_api_key"))
    stats = await asyncio.wait_for(task, 5)
    assert "invalid_api_key" in stats.end_reason
    assert [(t.role, t.text) for t in call.transcript] == [("user", "hello there")]
    # the port was closed: its frame loop has stopped
    assert port.queue.idle


async def test_maximum_duration_ends_the_call() -> None:
    port = FileAudioPort(PcmChunk.silence(100, 24000), hangup_when_idle_s=None, max_s=10)
    model = ScriptedModel()
    stats = await asyncio.wait_for(Call(port, model, max_duration_s=0.2).run(), 5)
    assert stats.end_reason == "maximum call duration reached"
    assert model.closed


async def test_a_call_leaves_no_tasks_behind() -> None:
    before = asyncio.all_tasks()
    for _ in range(3):
        port = FileAudioPort(tone(60, 24000), hangup_when_idle_s=0.05, max_s=5)
        model = ScriptedModel()
        call = Call(port, model, tools=Tools())
        task = asyncio.create_task(call.run())
        await model.queue.put(ToolCall("call_x", "lookup", json.dumps({"q": 1})))
        await model.queue.put(AudioOut("item_a", tone(100, 24000)))
        await asyncio.wait_for(task, 5)
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
async def test_port_and_model_rates_are_bridged(rate: int) -> None:
    port = FileAudioPort(tone(200, rate), output_rate=rate, hangup_when_idle_s=0.1, max_s=5)
    model = ScriptedModel(rate=24000)
    call = Call(port, model)
    task = asyncio.create_task(call.run())
    await model.queue.put(AudioOut("item_a", tone(200, 24000)))
    await asyncio.wait_for(task, 5)
    assert all(c.rate == 24000 for c in model.audio_in)
    assert port.received().rate == rate
    assert port.received().num_samples >= rate * 0.18


async def test_the_end_of_an_answer_is_played_without_waiting_for_the_next_one() -> None:
    port = FileAudioPort(PcmChunk.silence(100, 24000), output_rate=48000, hangup_when_idle_s=None, max_s=5)
    model = ScriptedModel()
    call = Call(port, model)
    task = asyncio.create_task(call.run())
    await model.queue.put(AudioOut("item_a", tone(310, 24000)))  # not a whole number of 20 ms frames
    await model.queue.put(ResponseDone("resp_1", "completed"))
    await wait_until(lambda: port.played_ms("item_a") >= 320)
    port.hang_up()
    await asyncio.wait_for(task, 5)
    heard = port.received()
    loud = np.flatnonzero(np.abs(heard.samples) > 500)
    # all 310 ms came out (the resampler's held-back samples and the padded last frame included)
    assert (loud[-1] - loud[0]) >= 48000 * 0.305
    assert port.played_ms("item_a") == 320


def test_tools_read_the_callers_keys_from_the_call() -> None:
    from voicebot.tools import ToolContext

    class KeypadPort(FileAudioPort):
        dtmf_received = "12#"

    browser = Call(FileAudioPort(PcmChunk.silence(20, 24000)), ScriptedModel())
    phone = Call(KeypadPort(PcmChunk.silence(20, 24000)), ScriptedModel())
    assert ToolContext(browser).dtmf_received == ""
    assert ToolContext(phone).dtmf_received == "12#"
