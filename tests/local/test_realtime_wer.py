"""Word error rate of voice turns through the Realtime emulation, end to end with the official SDK.

Ten fixed sentences, spoken by the engine's own TTS, go in as voice turns over one Realtime session
(``client.realtime.connect()``; server VAD; ``input_audio_buffer.append`` in 40 ms chunks). The engine's VAD
counts audio time, not wall time, so the audio is appended faster than real time. With
``audio.input.transcription`` set, the user transcripts come back as
``conversation.item.input_audio_transcription.completed``; their WER against the sentences (lower-cased,
punctuation stripped) must stay at or under 20% with the whisper tier, and every turn's answer must carry
audio. Every server frame is validated against the SDK's discriminated union by ``Events``.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import jiwer
import pytest

from tests.local.realtime_helpers import Events, append_audio, connect, serve_engine, silence, speak
from voicebot.audio.chunk import PcmChunk
from voicebot.config import Settings
from voicebot.local.speech import SpeechStack

pytest_plugins = ["tests.local.http_fixtures"]
pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow, pytest.mark.timeout(180)]

SENTENCES = [
    "what is the weather like in london",
    "please book a table for two people tonight",
    "can you tell me the opening hours of the museum",
    "i would like to cancel my appointment",
    "turn on the lights in the living room",
    "how much does a return ticket to berlin cost",
    "send an email to my manager about the report",
    "where is the nearest train station",
    "remind me to water the plants this evening",
    "thank you very much for your help",
]
CHUNK_MS = 40  # within the 20–100 ms a real client sends
MAX_WER = 0.20
VAD: Any = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 500,
    "create_response": True,
    "interrupt_response": True,
}


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


async def _turn(conn: Any, events: Events, speech: PcmChunk) -> tuple[str, int]:
    """One voice turn: the user transcript and the bytes of answer audio."""
    await append_audio(conn, PcmChunk.concat([silence(300), speech, silence(900)]), chunk_ms=CHUNK_MS)
    got = await events.until("response.done", wait_s=60)
    kinds = [e["type"] for e in got]
    assert kinds.count("input_audio_buffer.speech_started") == 1, kinds
    assert kinds.count("input_audio_buffer.committed") == 1, kinds
    user_id = next(e["item_id"] for e in got if e["type"] == "input_audio_buffer.committed")
    done = got[-1]["response"]
    assert done["status"] == "completed", done
    audio = sum(
        len(base64.b64decode(e["delta"]))
        for e in got
        if e["type"] == "response.output_audio.delta" and e["response_id"] == done["id"]
    )
    completed = [e for e in got if e["type"] == "conversation.item.input_audio_transcription.completed"]
    assert [e["item_id"] for e in completed] == [user_id], "one transcript per turn, for the committed item"
    return str(completed[0]["transcript"]), audio


async def test_voice_turns_transcribed_within_wer_limit_and_answered_with_audio(
    speech_stack: SpeechStack,
) -> None:
    if not speech_stack.info["stt"].startswith("faster-whisper"):
        pytest.skip(f"the WER limit is for the whisper tier; this machine loaded {speech_stack.info['stt']}")
    voices = [await speak(speech_stack, s.capitalize() + ".") for s in SENTENCES]
    served = await serve_engine(Settings(), speech_stack)
    heard: list[str] = []
    try:
        async with connect(served) as (conn, events):
            await events.until("session.created")
            await conn.session.update(
                session={
                    "type": "realtime",
                    "audio": {"input": {"transcription": {"model": "whisper-1"}, "turn_detection": VAD}},
                }
            )
            await events.until("session.updated")
            for voice in voices:
                transcript, audio_bytes = await _turn(conn, events, voice)
                heard.append(normalize(transcript))
                assert audio_bytes >= 24000 * 2 // 4, f"at least 0.25 s of answer audio for {transcript!r}"
    finally:
        await served.runner.cleanup()
    wer = jiwer.wer(SENTENCES, heard)
    print(f"realtime voice-turn WER {wer:.1%}: {list(zip(SENTENCES, heard, strict=True))}")
    assert wer <= MAX_WER, (wer, list(zip(SENTENCES, heard, strict=True)))
