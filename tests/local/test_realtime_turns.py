"""Realtime turns against the local engine, driven by the official openai SDK over a real WebSocket.

Every server frame is validated with the SDK's discriminated union (``Events``), and the event order is
checked against the GA reference (voice turn, text turn, function-call turn, barge-in + truncate).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.local.realtime_helpers import (
    TEST_RULES,
    WEATHER_TOOL,
    Served,
    append_audio,
    connect,
    serve_engine,
    silence,
    speak,
    types_of,
)
from voicebot.audio.chunk import PcmChunk
from voicebot.audio.g711 import chunk_to_ulaw, ulaw_to_chunk
from voicebot.audio.resample import resample
from voicebot.config import Settings
from voicebot.local.brain import Brain
from voicebot.local.speech import SpeechStack

pytest_plugins = ["tests.local.http_fixtures"]
pytestmark = pytest.mark.asyncio(loop_scope="session")

VOICE_TAIL = [
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "conversation.item.done",
    "response.done",
]


@pytest_asyncio.fixture(loop_scope="session", scope="session")
async def rt(speech_stack: SpeechStack) -> AsyncIterator[Served]:
    served = await serve_engine(Settings(local_token=None), speech_stack, brain=Brain(TEST_RULES))
    yield served
    await served.runner.cleanup()


def _collapse(kinds: list[str]) -> list[str]:
    """Event types with runs of deltas folded into one entry."""
    out: list[str] = []
    for k in kinds:
        if k.endswith(".delta") and k in out[-3:]:
            continue
        out.append(k)
    return out


async def test_session_created_first_with_ga_defaults(rt: Served) -> None:
    async with connect(rt) as (_conn, events):
        created = await events.next()
        assert created["type"] == "session.created"
        s = created["session"]
        assert s["id"].startswith("sess_") and len(s["id"]) == 26
        assert s["type"] == "realtime" and s["object"] == "realtime.session"
        assert s["output_modalities"] == ["audio"] and s["tool_choice"] == "auto"
        assert s["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert s["audio"]["input"]["turn_detection"] == {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 200,
            "idle_timeout_ms": None,
            "create_response": True,
            "interrupt_response": True,
        }
        assert isinstance(s["expires_at"], int) and s["max_output_tokens"] == "inf"


async def test_text_turn(rt: Served) -> None:
    async with connect(rt) as (conn, events):
        await events.until("session.created")
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        updated = (await events.until("session.updated"))[-1]
        assert updated["session"]["output_modalities"] == ["text"]
        await conn.conversation.item.create(
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]}
        )
        added = await events.until("conversation.item.done")
        assert types_of(added) == ["conversation.item.added", "conversation.item.done"]
        user_id = added[0]["item"]["id"]
        await conn.response.create()
        got = await events.until("rate_limits.updated")
        assert _collapse(types_of(got)) == [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
            "rate_limits.updated",
        ]
        created, done = got[0]["response"], got[-2]["response"]
        assert created["usage"] is None and created["status"] == "in_progress"
        assert done["status"] == "completed" and done["usage"]["total_tokens"] > 0
        text = "".join(e["delta"] for e in got if e["type"] == "response.output_text.delta")
        assert text == "Hello! How can I help you today?"
        assert got[2]["previous_item_id"] == user_id
        assert done["output"][0]["content"] == [{"type": "output_text", "text": text}]


async def test_voice_turn_with_server_vad(rt: Served, speech_stack: SpeechStack) -> None:
    speech = await speak(speech_stack, "Hello, how are you today?")
    async with connect(rt) as (conn, events):
        await events.until("session.created")
        vad: Any = {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 600,
            "create_response": True,
            "interrupt_response": True,
        }
        await conn.session.update(
            session={
                "type": "realtime",
                "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": vad}},
            }
        )
        await events.until("session.updated")
        await append_audio(conn, PcmChunk.concat([silence(600), speech, silence(1000)]))
        got = await events.until("response.done", wait_s=30)
        kinds = types_of(got)
        assert kinds[:6] == [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done",
            "response.created",
        ]
        started, stopped = got[0], got[1]
        assert 0 < started["audio_start_ms"] <= 600
        assert stopped["audio_end_ms"] > started["audio_start_ms"] + speech.duration_ms * 0.7
        user_id = got[2]["item_id"]
        assert got[3]["item"]["content"] == [{"type": "input_audio", "transcript": None}]
        completed = next(e for e in got if e["type"].endswith("input_audio_transcription.completed"))
        assert completed["item_id"] == user_id
        assert "how are you" in completed["transcript"].lower()
        response_events = [k for k in kinds[5:] if "input_audio_transcription" not in k]
        assert _collapse(response_events)[:4] == [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.content_part.added",
        ]
        assert [k for k in response_events if not k.endswith(".delta")][-6:] == VOICE_TAIL
        audio = b"".join(
            base64.b64decode(e["delta"]) for e in got if e["type"] == "response.output_audio.delta"
        )
        reply = PcmChunk.from_bytes(audio, 24000)
        assert reply.duration_ms > 500 and reply.rms() > 100
        transcript = "".join(e["delta"] for e in got if e["type"] == "response.output_audio_transcript.delta")
        assert transcript == "I'm doing well, thanks for asking!"
        done = got[-1]["response"]
        assert done["output"][0]["content"][0] == {"type": "output_audio", "transcript": transcript}
        assert all("obfuscation" in e for e in got if e["type"] == "response.output_audio_transcript.delta")
        assert (await events.next())["type"] == "rate_limits.updated"


async def test_function_call_round_trip(rt: Served) -> None:
    async with connect(rt) as (conn, events):
        await events.until("session.created")
        await conn.session.update(
            session={"type": "realtime", "tools": [WEATHER_TOOL], "output_modalities": ["text"]}
        )
        await events.until("session.updated")
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What's the weather like in Paris?"}],
            }
        )
        await events.until("conversation.item.done")
        await conn.response.create()
        got = await events.until("response.done")
        assert _collapse(types_of(got)) == [
            "response.created",
            "response.output_item.added",
            "conversation.item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
        done_args = got[-4]
        assert done_args["name"] == "get_weather" and json.loads(done_args["arguments"]) == {"city": "Paris"}
        deltas = "".join(e["delta"] for e in got if e["type"] == "response.function_call_arguments.delta")
        assert deltas == done_args["arguments"]
        call_id = done_args["call_id"]
        assert call_id.startswith("call_") and got[1]["item"]["call_id"] == call_id
        await events.until("rate_limits.updated")
        await conn.conversation.item.create(
            item={
                "type": "function_call_output",
                "call_id": call_id,
                "output": json.dumps({"temperature_c": 21, "conditions": "sunny"}),
            }
        )
        await events.until("conversation.item.done")
        await conn.response.create()
        final = await events.until("response.done")
        text = next(e["text"] for e in final if e["type"] == "response.output_text.done")
        assert "21" in text and "sunny" in text


async def test_g711_in_and_out(rt: Served, speech_stack: SpeechStack) -> None:
    speech = await speak(speech_stack, "Thank you very much.")
    wire = chunk_to_ulaw(resample(PcmChunk.concat([silence(500), speech, silence(900)]), 8000))
    async with connect(rt) as (conn, events):
        await events.until("session.created")
        fmt: Any = {"type": "audio/pcmu"}
        await conn.session.update(
            session={"type": "realtime", "audio": {"input": {"format": fmt}, "output": {"format": fmt}}}
        )
        await events.until("session.updated")
        for i in range(0, len(wire), 800):
            await conn.input_audio_buffer.append(audio=base64.b64encode(wire[i : i + 800]).decode())
        got = await events.until("response.done", wait_s=30)
        assert got[-1]["response"]["audio"]["output"]["format"] == {"type": "audio/pcmu"}
        audio = b"".join(
            base64.b64decode(e["delta"]) for e in got if e["type"] == "response.output_audio.delta"
        )
        reply = ulaw_to_chunk(audio)
        assert reply.duration_ms > 300 and reply.rms() > 100
        transcript = next(e for e in got if e["type"] == "response.output_audio_transcript.done")[
            "transcript"
        ]
        assert transcript == "You're welcome!"


async def test_barge_in_cancels_then_truncate(rt: Served, speech_stack: SpeechStack) -> None:
    speech = await speak(speech_stack, "Stop please.")
    async with connect(rt) as (conn, events):
        await events.until("session.created")
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Tell me a long story"}],
            }
        )
        await events.until("conversation.item.done")
        await conn.response.create()
        first = await events.until("response.output_audio.delta")
        assistant_id = first[1]["item"]["id"]
        await append_audio(conn, PcmChunk.concat([speech, silence(800)]))
        got = await events.until("response.done", wait_s=30)
        kinds = [k for k in types_of(got) if not k.endswith(".delta")]
        assert kinds == ["input_audio_buffer.speech_started", *VOICE_TAIL]
        done = got[-1]["response"]
        assert done["status"] == "cancelled"
        assert done["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
        assert done["output"][0]["status"] == "incomplete"
        partial = next(e for e in got if e["type"] == "response.output_audio_transcript.done")["transcript"]
        assert partial and len(partial) < len(" ".join(TEST_RULES.rules[0].reply.split()))  # type: ignore[union-attr]
        sent = b"".join(
            base64.b64decode(e["delta"]) for e in first + got if e["type"] == "response.output_audio.delta"
        )
        sent_ms = len(sent) // 48
        # the client played 300 ms before the user spoke
        await conn.conversation.item.truncate(item_id=assistant_id, content_index=0, audio_end_ms=300)
        after = await events.until("conversation.item.truncated")
        assert after[-1] == {**after[-1], "item_id": assistant_id, "content_index": 0, "audio_end_ms": 300}
        await conn.conversation.item.retrieve(item_id=assistant_id)
        after += await events.until("conversation.item.retrieved")
        retrieved = after[-1]["item"]
        assert retrieved["content"][0]["transcript"] == ""
        assert len(base64.b64decode(retrieved["content"][0]["audio"])) == 300 * 48
        assert sent_ms > 300
        # the user's barge-in turn goes on: speech stopped, committed, then a new response
        after += await events.until("response.done", wait_s=30)
        kinds = types_of(after)
        assert kinds.index("input_audio_buffer.speech_stopped") < kinds.index("input_audio_buffer.committed")
        assert after[-1]["response"]["status"] == "completed"


async def test_truncate_past_end_errors_then_clamps(rt: Served) -> None:
    async with connect(rt) as (conn, events):
        await events.until("session.created")
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Thanks!"}],
            }
        )
        await conn.response.create()
        got = await events.until("response.done")
        item_id = got[-1]["response"]["output"][0]["id"]
        audio = b"".join(
            base64.b64decode(e["delta"]) for e in got if e["type"] == "response.output_audio.delta"
        )
        have = len(audio) // 48
        await conn.conversation.item.truncate(
            item_id=item_id, content_index=0, audio_end_ms=have + 5000, event_id="evt_trunc"
        )
        err = (await events.until("error"))[-1]["error"]
        assert err["message"] == f"Audio content of {have}ms is already shorter than {have + 5000}ms"
        assert err["event_id"] == "evt_trunc"
        truncated = (await events.until("conversation.item.truncated"))[-1]
        assert truncated["audio_end_ms"] == have
        await conn.conversation.item.retrieve(item_id=item_id)
        item = (await events.until("conversation.item.retrieved"))[-1]["item"]
        assert item["content"][0]["transcript"] == ""
