"""The pure Realtime core: turn detection with synthetic speech probabilities, barge-in, idle timeout, the
session cap and determinism, with time passed in (no sockets, no models). Every event validates against
the SDK's server-event union."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np

from tests.local.realtime_helpers import SERVER_EVENT
from voicebot.audio.chunk import PcmChunk
from voicebot.audio.g711 import chunk_to_alaw
from voicebot.local.brain import Brain, RulesConfig
from voicebot.local.realtime.actions import (
    CloseConnection,
    SendEvent,
    StopSynthesis,
    Synthesize,
    Transcribe,
)
from voicebot.local.realtime.ids import IdFactory
from voicebot.local.realtime.protocol import CAP_REASON, RealtimeCore

FRAME_MS = 32
FRAME_BYTES = 24 * FRAME_MS * 2  # 24 kHz PCM16
STORY = "One. Two. Three. Four. Five."


class Harness:
    def __init__(self, seed: int = 7, **kwargs: Any) -> None:
        self.core = RealtimeCore(
            model="gpt-realtime",
            now=0.0,
            unix_now=1_700_000_000.0,
            ids=IdFactory(seed),
            brain=Brain(RulesConfig.from_dict({"rules": [{"pattern": "story", "reply": STORY}]})),
            **kwargs,
        )
        self.events: list[dict[str, Any]] = []
        self.jobs: list[Any] = []
        self.frame_no = 0
        self.drain()

    def drain(self) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        for action in self.core.take_actions():
            if isinstance(action, SendEvent):
                SERVER_EVENT.validate_python(action.event)
                new.append(action.event)
            else:
                self.jobs.append(action)
        self.events += new
        return new

    def send(self, event: dict[str, Any], now: float = 0.0) -> list[dict[str, Any]]:
        self.core.receive_message(json.dumps(event), now)
        return self.drain()

    def audio(self, probs: list[float], now: float = 0.0) -> list[dict[str, Any]]:
        """Append one 32 ms frame of audio per probability; the VAD 'says' ``probs``."""
        out: list[dict[str, Any]] = []
        for p in probs:
            self.core.append_audio(bytes(FRAME_BYTES))
            frames = self.core.take_vad_frames()
            self.core.feed_vad([p] * len(frames), now)
            out += self.drain()
        return out

    def job(self, kind: type) -> Any:
        found = [j for j in self.jobs if isinstance(j, kind)]
        assert found, f"no {kind.__name__} job"
        self.jobs.remove(found[-1])
        return found[-1]


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def tts(h: Harness, ms: int = 400) -> None:
    job = h.job(Synthesize)
    h.core.synthesis_chunk(job.response_id, PcmChunk(np.full(24 * ms, 1000, dtype=np.int16), 24000), 0.0)
    h.drain()


def test_vad_turn_order_and_times() -> None:
    h = Harness()
    h.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "output_modalities": ["text"],
                "audio": {"input": {"transcription": {"model": "whisper-1"}}},
            },
        }
    )
    got = h.audio([0.0] * 20 + [0.9] * 20 + [0.1] * 10)
    assert kinds(got) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
    ]
    started, stopped = got[0], got[1]
    onset = started["audio_start_ms"] + 300
    assert abs(onset - 20 * FRAME_MS) <= FRAME_MS  # the resampler's lag may shift by a frame
    assert stopped["audio_end_ms"] - onset >= 20 * FRAME_MS + 200
    assert started["item_id"] == stopped["item_id"] == got[2]["item_id"]
    job = h.job(Transcribe)
    assert job.item_id == started["item_id"] and job.audio.rate == 16000
    assert abs(job.audio.duration_ms - (stopped["audio_end_ms"] - started["audio_start_ms"])) < 3 * FRAME_MS
    # the response waits for the transcript; then the input transcription events and the reply follow
    h.core.transcription_done(job.item_id, "hello there", 1.2, 0.0)
    got = h.drain()
    assert kinds(got)[:3] == [
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    ]
    assert got[2]["usage"] == {"type": "duration", "seconds": 1.2}
    assert kinds(got)[-2:] == ["response.done", "rate_limits.updated"]
    assert got[-2]["response"]["output"][0]["content"][0]["text"] == "Hello! How can I help you today?"


def test_no_transcription_events_unless_configured() -> None:
    h = Harness()
    h.audio([0.0] * 5 + [1.0] * 10 + [0.0] * 8)
    h.core.transcription_done(h.job(Transcribe).item_id, "hello", 0.5, 0.0)
    assert not [e for e in h.drain() if "input_audio_transcription" in e["type"]]
    h.send({"type": "conversation.item.retrieve", "item_id": h.events[2]["item_id"]})
    assert h.events[-1]["item"]["content"][0]["transcript"] is None


def test_create_response_false_keeps_vad_events_only() -> None:
    h = Harness()
    h.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {
                    "input": {
                        "turn_detection": {
                            "type": "server_vad",
                            "create_response": False,
                            "silence_duration_ms": 500,
                        }
                    }
                },
            },
        }
    )
    got = h.audio([1.0] * 5 + [0.0] * 12)
    assert "input_audio_buffer.speech_stopped" not in kinds(got)  # 12 × 32 ms < 500 ms of silence... not yet
    got += h.audio([0.0] * 5)
    assert kinds(got) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]


def test_semantic_vad_eagerness_sets_the_silence() -> None:
    h = Harness()
    h.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}},
            },
        }
    )
    got = h.audio([1.0] * 5 + [0.0] * 9)
    assert "input_audio_buffer.speech_stopped" not in kinds(got)  # 288 ms
    assert "input_audio_buffer.speech_stopped" in kinds(h.audio([0.0]))  # 320 ms ≥ 300 ms


def test_barge_in_cancels_the_active_response() -> None:
    h = Harness()
    h.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "tell me a story"}],
            },
        }
    )
    h.send({"type": "response.create"})
    tts(h)
    assistant = next(e for e in h.events if e["type"] == "response.output_item.added")["item"]["id"]
    got = h.audio([1.0] * 3)
    assert kinds(got) == [
        "input_audio_buffer.speech_started",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert isinstance(h.jobs[-1], StopSynthesis)
    assert got[2]["transcript"] == "One."
    assert got[4]["item"]["status"] == "incomplete"
    assert got[6]["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    # a late chunk of the cancelled response is ignored
    h.core.synthesis_chunk(got[6]["response"]["id"], PcmChunk(np.ones(2400, dtype=np.int16), 24000), 0.0)
    assert h.drain() == []
    got = h.send(
        {"type": "conversation.item.truncate", "item_id": assistant, "content_index": 0, "audio_end_ms": 250}
    )
    assert got[-1] == {**got[-1], "type": "conversation.item.truncated", "audio_end_ms": 250}


def test_interrupt_response_false_lets_the_response_finish() -> None:
    h = Harness()
    h.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"turn_detection": {"type": "server_vad", "interrupt_response": False}}},
            },
        }
    )
    h.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "a story"}],
            },
        }
    )
    h.send({"type": "response.create"})
    tts(h)
    assert kinds(h.audio([1.0] * 3)) == ["input_audio_buffer.speech_started"]


def test_idle_timeout_triggers_a_turn() -> None:
    h = Harness()
    h.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "output_modalities": ["text"],
                "audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 5000}}},
            },
        }
    )
    h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        }
    )
    h.send({"type": "response.create"}, now=10.0)
    assert h.core.get_timer() == 15.0
    h.core.handle_timer(14.9)
    assert h.drain() == []
    h.core.handle_timer(15.0)
    got = h.drain()
    assert kinds(got)[:5] == [
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "response.created",
    ]
    assert got[-2]["response"]["output"][0]["content"][0]["text"] == "Are you still there?"


def test_session_cap_closes_with_1001() -> None:
    h = Harness(max_session_s=60.0)
    assert h.events[0]["session"]["expires_at"] == 1_700_000_060
    assert h.core.get_timer() == 60.0
    h.core.handle_timer(59.0)
    h.drain()
    assert h.jobs == []
    h.core.handle_timer(60.0)
    h.drain()
    assert h.jobs == [CloseConnection(1001, CAP_REASON)]
    assert h.send({"type": "response.create"}) == []


def test_pcma_input_counts_eight_bytes_per_ms() -> None:
    h = Harness()
    h.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcma"}, "turn_detection": None}},
            },
        }
    )
    tone = PcmChunk((np.sin(np.arange(960) / 5) * 8000).astype(np.int16), 8000)  # 120 ms
    h.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk_to_alaw(tone)).decode()})
    got = h.send({"type": "input_audio_buffer.commit"})
    assert kinds(got) == ["input_audio_buffer.committed", "conversation.item.added", "conversation.item.done"]
    job = h.job(Transcribe)
    assert job.audio.rate == 16000 and 100 <= job.audio.duration_ms <= 120
    h.send({"type": "conversation.item.retrieve", "item_id": got[0]["item_id"]})
    audio = base64.b64decode(h.events[-1]["item"]["content"][0]["audio"])
    assert audio == chunk_to_alaw(tone)


def test_same_seed_same_session() -> None:
    def run() -> list[dict[str, Any]]:
        h = Harness(seed=42)
        h.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "who are you?"}],
                },
            }
        )
        h.send({"type": "response.create", "response": {"output_modalities": ["text"]}})
        return h.events

    first, second = run(), run()
    assert first == second
    assert len({e["event_id"] for e in first}) == len(first)


def test_client_audio_item_is_transcribed_and_failures_reported() -> None:
    h = Harness()
    h.send(
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "output_modalities": ["text"],
                "audio": {"input": {"turn_detection": None, "transcription": {"model": "gpt-4o-transcribe"}}},
            },
        }
    )
    audio = base64.b64encode(bytes(24 * 2 * 300)).decode()
    got = h.send(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": audio}]},
        }
    )
    assert "audio" not in got[0]["item"]["content"][0]  # added/done never carry audio bytes
    job = h.job(Transcribe)
    assert job.item_id == got[0]["item"]["id"] and job.audio.rate == 16000
    h.send({"type": "response.create"})
    assert kinds(h.events)[-1] == "response.created"  # waits for the transcript
    h.core.transcription_failed(job.item_id, "could not decode", 0.0)
    got = h.drain()
    assert got[0]["type"] == "conversation.item.input_audio_transcription.failed"
    assert got[0]["error"]["code"] == "audio_unintelligible"
    assert kinds(got)[-2:] == ["response.done", "rate_limits.updated"]
