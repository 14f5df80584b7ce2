"""Media through the broker, aiortc caller ↔ server: barge-in timing, page events, phone quality."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from tests.webrtc.conftest import Broker
from tests.webrtc.peers import MIC_RATE, Caller, Heard, tone
from voicebot.webrtc.tracks import inline_decoder

LOUD = 3000.0  # RMS (int16 units) above which a received 20 ms frame counts as the agent's tone


def loud_ms(heard: list[Heard]) -> float:
    return sum(h.ms for h in heard if h.rms > LOUD)


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
def model_kwargs() -> dict[str, Any]:
    return {"greeting_s": 4.0, "answer_s": 0.6}


@pytest.mark.slow
async def test_barge_in_stops_outbound_audio_at_once_and_truncates_exactly(broker: Broker) -> None:
    caller = Caller(broker.http, broker.base)
    try:
        await caller.connect()
        await caller.wait_connected()
        model = broker.models[0]
        port = broker.calls.all()[0].port
        changes: list[tuple[str | None, str | None, float]] = []
        port.on_item_change(lambda prev, new, now: changes.append((prev, new, now)))

        # the agent is talking: the caller hears its tone for a while, then speaks over it
        await wait_for(lambda: loud_ms(caller.heard) >= 600, 5, "the greeting to be heard")
        caller.mic.speak(tone(0.8, MIC_RATE, freq=1000, amp=0.5))
        await wait_for(lambda: model.truncates, 5, "the truncate")
        await asyncio.sleep(0.4)  # let every frame already on the wire arrive

        spoke_at = model.speech_started_at[0]
        stopped = [now for prev, new, now in changes if prev == "item_greet" and new != "item_greet"]
        assert stopped, f"outbound audio never left item_greet: {changes}"
        stop_delay_ms = (stopped[0] - spoke_at) * 1000
        assert 0 <= stop_delay_ms <= 60, f"outbound audio stopped {stop_delay_ms:.1f} ms after speech_started"

        item, audio_end_ms = model.truncates[0]
        assert item == "item_greet"
        heard_ms = loud_ms(caller.heard)
        assert 600 <= heard_ms < 4000
        assert abs(heard_ms - audio_end_ms) <= 40, (
            f"truncate at {audio_end_ms} ms, caller heard {heard_ms} ms"
        )
        # nothing of the greeting is sent after the barge-in
        assert port.played_ms("item_greet") == audio_end_ms
    finally:
        await caller.hang_up()


@pytest.mark.slow
async def test_page_events_transcripts_tools_state_and_latency(broker: Broker) -> None:
    broker.model_kwargs["greeting_s"] = 0.0
    caller = Caller(broker.http, broker.base)
    try:
        data = await caller.connect()
        await caller.wait_connected()
        call_ev = await caller.wait_event("call")
        assert call_ev == {
            "type": "call",
            "call_id": data["call_id"],
            "codec": "opus",
            "phone_quality": False,
        }
        caller.mic.speak(tone(0.5, MIC_RATE, freq=700, amp=0.5))

        user = await caller.wait_event("transcript", role="user", final=True)
        assert user["text"] == "hello there"
        tool = await caller.wait_event("tool_call")
        assert tool["name"] == "get_time" and tool["arguments"] == '{"zone": "UTC"}'
        result = await caller.wait_event("tool_result", call_id=tool["call_id"])
        assert "no tool named 'get_time'" in result["output"]
        latency = await caller.wait_event("latency")
        assert 0 < latency["ms"] < 1000 and latency["item_id"] == "item_answer_1"
        await caller.wait_event("transcript", role="assistant", final=True, text="Hi!")
        await caller.wait_event("state", state="speaking")
        await wait_for(
            lambda: [e["state"] for e in caller.events if e["type"] == "state"][-1:] == ["listening"],
            5,
            "listening after the answer",
        )
        states = [e["state"] for e in caller.events if e["type"] == "state"]
        assert states == ["listening", "thinking", "speaking", "listening"]
        # the answer tone (0.6 s) reaches the caller (its jitter buffer holds the last frames a little longer)
        await wait_for(lambda: loud_ms(caller.heard) >= 500, 3, "the answer to be heard")

        async with broker.http.delete(f"{broker.base}api/calls/{data['call_id']}") as r:
            assert r.status == 204
        ended = await caller.wait_event("ended", timeout=3)
        assert ended["reason"] == "hung up by the page"
    finally:
        await caller.close()


async def test_phone_quality_forces_pcmu_and_audio_still_flows(broker: Broker) -> None:
    broker.model_kwargs.update(greeting_s=1.0)
    caller = Caller(broker.http, broker.base)
    try:
        data = await caller.connect(phone_quality=True)
        audio_line = next(ln for ln in data["sdp"].splitlines() if ln.startswith("m=audio"))
        assert audio_line.split()[3:] == ["0"]  # PCMU only
        await caller.wait_connected()
        assert (await caller.wait_event("call"))["codec"] == "pcmu"
        await wait_for(lambda: loud_ms(caller.heard) >= 300, 5, "G.711 audio from the agent")
        caller.mic.speak(tone(0.3, MIC_RATE, freq=500, amp=0.5))
        await wait_for(lambda: broker.models[0].speech_started_at, 5, "the model to hear G.711 audio")
    finally:
        await caller.hang_up()


async def test_phone_quality_without_pcmu_in_the_offer_is_400(broker: Broker) -> None:
    caller = Caller(broker.http, broker.base, codecs=("opus",))
    try:
        body = {**(await caller.offer()), "phone_quality": True}
        async with broker.http.post(f"{broker.base}api/calls", json=body) as r:
            assert r.status == 400
            assert "PCMU" in (await r.json())["error"]["message"]
        assert broker.models[0].closed
        assert len(broker.calls) == 0
    finally:
        await caller.close()


async def test_the_page_learns_why_when_the_model_ends_the_call_at_once(broker: Broker) -> None:
    broker.model_kwargs.update(greeting_s=0.0, end_at_start="You exceeded your current quota.")
    caller = Caller(broker.http, broker.base)
    try:
        await caller.connect()
        error = await caller.wait_event("error", timeout=5)
        assert error["message"] == "You exceeded your current quota." and error["kind"] == "fatal"
        ended = await caller.wait_event("ended", timeout=5)
        assert "upstream refused the session" in ended["reason"]
        await wait_for(lambda: len(broker.calls) == 0, 5, "the call to end")
    finally:
        await caller.close()


@pytest.mark.parametrize("phone_quality", [False, True], ids=["opus", "pcmu"])
async def test_inbound_audio_is_decoded_on_the_loop_thread(broker: Broker, phone_quality: bool) -> None:
    broker.model_kwargs.update(greeting_s=0.0)
    caller = Caller(broker.http, broker.base)
    try:
        await caller.connect(phone_quality=phone_quality)
        await caller.wait_connected()
        port = broker.calls.all()[0].port
        receiver = port.pc.getTransceivers()[0].receiver
        caller.mic.speak(tone(0.5, MIC_RATE, freq=700, amp=0.5))
        await wait_for(lambda: broker.models[0].speech_started_at, 5, "the model to hear the caller")
        decoder = inline_decoder(receiver)
        assert decoder is not None, "the receiver still decodes on aiortc's thread"
        await wait_for(lambda: decoder.frames_decoded >= 25, 3, "half a second of decoded audio")
        assert decoder.decode_errors == 0
        assert [t for t in threading.enumerate() if t.name == "audio-decoder"]  # parked, not gone
    finally:
        await caller.hang_up()
    # stopping the receivers still ends aiortc's parked decoder threads (and with them the remote tracks)
    await wait_for(
        lambda: not [t for t in threading.enumerate() if t.name == "audio-decoder"], 5, "the decoder threads"
    )
