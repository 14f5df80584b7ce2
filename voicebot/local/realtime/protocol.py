"""One Realtime connection of the local engine, as a pure state machine (sans-I/O).

Feed it client frames (``receive_message``), VAD probabilities for the frames it hands out
(``take_vad_frames`` → ``feed_vad``), STT results (``transcription_done``), TTS chunks (``synthesis_chunk`` …
``synthesis_done``) and timer ticks (``handle_timer``), always with ``now`` (monotonic seconds). Drain
``take_actions()`` after each call: server events to send, speech work to run, or a close.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from voicebot.audio.chunk import FrameSplitter, PcmChunk
from voicebot.local.brain import Brain
from voicebot.local.realtime.actions import Action, CloseConnection, SendEvent, Transcribe
from voicebot.local.realtime.audio_codec import InputDecoder, bytes_per_ms, decode_b64, format_type
from voicebot.local.realtime.ids import IdFactory
from voicebot.local.realtime.item_ops import ItemsMixin
from voicebot.local.realtime.items import Conversation, StoredItem
from voicebot.local.realtime.responses import Response, ResponsesMixin
from voicebot.local.realtime.session_config import (
    MAX_AUDIO_B64_CHARS,
    ConfigError,
    default_session,
    merge,
    validate_update,
)

CAP_REASON = "Your session hit the maximum duration of 60 minutes."
MIN_COMMIT_MS = 100.0
IDLE_BUFFER_MS = 30_000.0  # audio kept while no speech is detected (server VAD)
SEMANTIC_SILENCE_MS = {"low": 800, "medium": 500, "auto": 500, "high": 300}

CLIENT_EVENTS: dict[str, frozenset[str]] = {
    "session.update": frozenset({"session"}),
    "input_audio_buffer.append": frozenset({"audio"}),
    "input_audio_buffer.commit": frozenset(),
    "input_audio_buffer.clear": frozenset(),
    "output_audio_buffer.clear": frozenset({"response_id"}),
    "conversation.item.create": frozenset({"item", "previous_item_id"}),
    "conversation.item.retrieve": frozenset({"item_id"}),
    "conversation.item.truncate": frozenset({"item_id", "content_index", "audio_end_ms"}),
    "conversation.item.delete": frozenset({"item_id"}),
    "response.create": frozenset({"response"}),
    "response.cancel": frozenset({"response_id"}),
}


class RealtimeCore(ItemsMixin, ResponsesMixin):
    """The session, conversation, input buffer, turn detection and responses of one connection."""

    def __init__(
        self,
        *,
        model: str,
        now: float,
        unix_now: float,
        brain: Brain,
        max_session_s: float = 3600.0,
        vad_rate: int = 16000,
        vad_frame_samples: int = 512,
        ids: IdFactory | None = None,
    ) -> None:
        self.ids = ids or IdFactory()
        self._brain = brain
        self._actions: list[Action] = []
        self._expires = now + max_session_s
        self.session = default_session(self.ids.make("sess_"), model, int(unix_now + max_session_s))
        self.conversation_id = self.ids.make("conv_")
        self.conv = Conversation()
        self._responses: dict[str, Response] = {}
        self._active_default: str | None = None
        self._audio_output_started = False
        self._idle_deadline: float | None = None
        self._tokens_used = 0
        self.closed = False
        # input audio
        self._vad_rate = vad_rate
        self._frame_ms = vad_frame_samples * 1000.0 / vad_rate
        self._splitter = FrameSplitter(vad_rate, max(1, round(self._frame_ms)))
        self._splitter.frame_samples = vad_frame_samples
        self._decoder = InputDecoder(self._in_format, vad_rate)
        self._buf_raw = bytearray()
        self._buf_pcm: list[PcmChunk] = []
        self._buf_start_ms = 0.0  # stream time (ms of input since the session began) of the buffer start
        self._stream_ms = 0.0
        self._vad_ms = 0.0
        self._pending_frames: list[PcmChunk] = []
        self._speaking = False
        self._speech_item: str | None = None
        self._silence_ms = 0.0
        self._emit("session.created", session=copy.deepcopy(self.session))

    # plumbing ------------------------------------------------------------
    @property
    def _in_format(self) -> dict[str, Any]:
        fmt: dict[str, Any] = self.session["audio"]["input"]["format"]
        return fmt

    @property
    def _turn_detection(self) -> dict[str, Any] | None:
        td: dict[str, Any] | None = self.session["audio"]["input"]["turn_detection"]
        return td

    def take_actions(self) -> list[Action]:
        out, self._actions = self._actions, []
        return out

    def _act(self, action: Action) -> None:
        self._actions.append(action)

    def _emit(self, type_: str, **fields: Any) -> None:
        self._actions.append(SendEvent({"type": type_, "event_id": self.ids.event(), **fields}))

    def _error(
        self,
        code: str,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
        type_: str = "invalid_request_error",
    ) -> None:
        self._emit(
            "error",
            error={"type": type_, "code": code, "message": message, "param": param, "event_id": event_id},
        )

    def _item_event(self, type_: str, st: StoredItem) -> None:
        self._emit(type_, previous_item_id=self.conv.previous_of(st.id), item=st.wire())

    def _on_response_finished(self, resp: Response, now: float) -> None:
        td = self._turn_detection
        if resp.in_conversation and td and td["type"] == "server_vad" and td.get("idle_timeout_ms"):
            self._idle_deadline = now + resp.audio_ms / 1000.0 + td["idle_timeout_ms"] / 1000.0

    # timers ------------------------------------------------------------
    def get_timer(self) -> float | None:
        if self.closed:
            return None
        return min(self._expires, self._idle_deadline) if self._idle_deadline is not None else self._expires

    def handle_timer(self, now: float) -> None:
        if self.closed:
            return
        if now >= self._expires:
            self.closed = True
            self._act(CloseConnection(1001, CAP_REASON))
            return
        if self._idle_deadline is not None and now >= self._idle_deadline:
            self._idle_deadline = None
            self._idle_timeout(now)

    def _idle_timeout(self, now: float) -> None:
        td = self._turn_detection
        if td is None or td["type"] != "server_vad" or self._speaking or self._active_default is not None:
            return
        item_id = self.ids.item()
        ms = int(self._stream_ms)
        self._emit(
            "input_audio_buffer.timeout_triggered", audio_start_ms=ms, audio_end_ms=ms, item_id=item_id
        )
        self._commit(item_id, None, now, heard="")
        if td.get("create_response", True):
            self._start_response({}, None, False, now)

    # client frames ------------------------------------------------------------
    def receive_message(self, data: str | bytes, now: float) -> None:
        if self.closed:
            return
        if isinstance(data, bytes):
            self._error("invalid_json", "Binary WebSocket frames are not supported; send JSON text frames.")
            return
        try:
            event = json.loads(data)
        except ValueError as exc:
            self._error("invalid_json", f"Invalid JSON in client event: {exc}.")
            return
        if not isinstance(event, dict):
            self._error("invalid_type", "Invalid type for client event: expected an object.")
            return
        raw_id = event.get("event_id")
        event_id = raw_id if isinstance(raw_id, str) else None
        kind = event.get("type")
        if kind is None:
            self._error("missing_required_parameter", "Missing required parameter: 'type'.", "type", event_id)
            return
        if kind not in CLIENT_EVENTS:
            shown = kind if isinstance(kind, str) else json.dumps(kind)
            supported = ", ".join(f"'{k}'" for k in CLIENT_EVENTS)
            self._error(
                "invalid_value",
                f"Invalid value: '{shown}'. Supported values are: {supported}.",
                "type",
                event_id,
            )
            return
        extra = sorted(set(event) - CLIENT_EVENTS[kind] - {"type", "event_id"})
        if extra:
            self._error("unknown_parameter", f"Unknown parameter: '{extra[0]}'.", extra[0], event_id)
            return
        getattr(self, "_on_" + kind.replace(".", "_"))(event, event_id, now)

    # session ------------------------------------------------------------
    def _on_session_update(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        if "session" not in event:
            self._error(
                "missing_required_parameter", "Missing required parameter: 'session'.", "session", event_id
            )
            return
        update = event["session"]
        try:
            validate_update(update)
        except ConfigError as err:
            self._error(err.code, err.message, err.param, event_id)
            return
        if update["type"] == "transcription":
            self._error(
                "invalid_value",
                "Passing a transcription session update event to a realtime session is not allowed.",
                "session.type",
                event_id,
            )
            return
        new = merge(self.session, update)
        old_out, new_out = self.session["audio"]["output"], new["audio"]["output"]
        if self._audio_output_started and new_out["voice"] != old_out["voice"]:
            self._error(
                "cannot_update_voice",
                "Cannot update a conversation's voice if assistant audio is present.",
                "session.audio.output.voice",
                event_id,
            )
            return
        old_in, old_td = self._in_format, self._turn_detection
        self.session = new
        if self._in_format != old_in:
            self._decoder = InputDecoder(self._in_format, self._vad_rate)
            self._reset_buffer()
        if self._turn_detection != old_td:
            self._speaking, self._speech_item, self._silence_ms = False, None, 0.0
            if self._turn_detection is None:
                self._idle_deadline = None
        self._emit("session.updated", session=copy.deepcopy(self.session))

    # input audio buffer ------------------------------------------------------------
    def _on_input_audio_buffer_append(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        audio = event.get("audio")
        if audio is None:
            self._error(
                "missing_required_parameter", "Missing required parameter: 'audio'.", "audio", event_id
            )
            return
        if not isinstance(audio, str):
            self._error(
                "invalid_type",
                "Invalid type for 'audio': expected a base64-encoded string.",
                "audio",
                event_id,
            )
            return
        if len(audio) > MAX_AUDIO_B64_CHARS:
            self._error(
                "string_above_max_length",
                "Invalid 'audio': string too long. Expected a string with "
                f"maximum length {MAX_AUDIO_B64_CHARS}, but got a string with length {len(audio)} "
                "instead.",
                "audio",
                event_id,
            )
            return
        try:
            raw = decode_b64(audio)
        except ValueError:
            self._error(
                "invalid_value",
                "Invalid 'audio': the value is not valid base64-encoded audio.",
                "audio",
                event_id,
            )
            return
        self.append_audio(raw)

    def append_audio(self, raw: bytes) -> None:
        """Wire bytes in the session's input format (already base64-decoded)."""
        if not raw:
            return
        pcm = self._decoder.decode(raw)
        self._buf_raw.extend(raw)
        self._buf_pcm.append(pcm)
        self._stream_ms += len(raw) / bytes_per_ms(self._in_format)
        if self._turn_detection is not None:
            self._pending_frames.extend(self._splitter.push(pcm))

    def take_vad_frames(self) -> list[PcmChunk]:
        """Frames (``vad_frame_samples`` at ``vad_rate``) whose speech probability ``feed_vad`` needs next."""
        out, self._pending_frames = self._pending_frames, []
        return out

    def _buffer_ms(self) -> float:
        return len(self._buf_raw) / bytes_per_ms(self._in_format)

    def _reset_buffer(self) -> None:
        self._buf_raw.clear()
        self._buf_pcm.clear()
        self._buf_start_ms = self._stream_ms

    def _trim_buffer_to(self, stream_ms: float) -> None:
        """Drop buffered audio from before ``stream_ms``."""
        drop_ms = stream_ms - self._buf_start_ms
        if drop_ms <= 0:
            return
        width = 2 if format_type(self._in_format) == "audio/pcm" else 1
        n = int(drop_ms * bytes_per_ms(self._in_format)) // width * width
        del self._buf_raw[:n]
        pcm = PcmChunk.concat(self._buf_pcm, self._vad_rate)
        self._buf_pcm = [PcmChunk(pcm.samples[int(drop_ms * self._vad_rate / 1000) :].copy(), self._vad_rate)]
        self._buf_start_ms = stream_ms

    def _on_input_audio_buffer_commit(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        ms = self._buffer_ms()
        if ms < MIN_COMMIT_MS:
            self._error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too "
                f"small. Expected at least 100ms of audio, but buffer only has {ms:.2f}ms of audio.",
                None,
                event_id,
            )
            return
        self._speaking, self._silence_ms = False, 0.0
        item_id = self._speech_item or self.ids.item()
        self._speech_item = None
        self._commit(item_id, event_id, now)

    def _commit(self, item_id: str, event_id: str | None, now: float, heard: str | None = None) -> None:
        raw = bytes(self._buf_raw)
        pcm = PcmChunk.concat(self._buf_pcm, self._vad_rate)
        self._reset_buffer()
        self._emit("input_audio_buffer.committed", previous_item_id=self.conv.last_id(), item_id=item_id)
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        st = StoredItem(
            item,
            audio=bytearray(raw),
            audio_format=copy.deepcopy(self._in_format),
            heard=heard,
            waiting_stt=heard is None,
        )
        self.conv.add(st)
        self._item_event("conversation.item.added", st)
        self._item_event("conversation.item.done", st)
        if heard is None:
            tr = self.session["audio"]["input"]["transcription"] or {}
            self._act(Transcribe(item_id, pcm, tr.get("language"), tr.get("prompt")))

    def _on_input_audio_buffer_clear(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        self._reset_buffer()
        self._speaking, self._speech_item, self._silence_ms = False, None, 0.0
        self._emit("input_audio_buffer.cleared")

    def _on_output_audio_buffer_clear(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        self._error(
            "invalid_value",
            "output_audio_buffer.clear is only supported on WebRTC and SIP connections; "
            "over WebSocket the client owns playback (use conversation.item.truncate).",
            "type",
            event_id,
        )

    # turn detection ------------------------------------------------------------
    def feed_vad(self, probs: list[float], now: float) -> None:
        """Speech probabilities of the frames last handed out by ``take_vad_frames``, in order."""
        for p in probs:
            start = self._vad_ms
            self._vad_ms += self._frame_ms
            td = self._turn_detection
            if td is None or self.closed:
                continue
            threshold = float(td.get("threshold", 0.5)) if td["type"] == "server_vad" else 0.5
            if not self._speaking:
                if p >= threshold:
                    self._speech_started(td, start, now)
                elif self._buffer_ms() > IDLE_BUFFER_MS:
                    self._trim_buffer_to(self._stream_ms - IDLE_BUFFER_MS / 2)
            elif p >= max(threshold - 0.15, 0.01):
                self._silence_ms = 0.0
            else:
                self._silence_ms += self._frame_ms
                if self._silence_ms >= self._silence_limit(td):
                    self._speech_stopped(td, now)

    def _silence_limit(self, td: dict[str, Any]) -> float:
        if td["type"] == "server_vad":
            return float(td.get("silence_duration_ms", 200))
        return float(SEMANTIC_SILENCE_MS.get(str(td.get("eagerness", "auto")), 500))

    def _speech_started(self, td: dict[str, Any], start_ms: float, now: float) -> None:
        prefix = float(td.get("prefix_padding_ms", 300)) if td["type"] == "server_vad" else 300.0
        audio_start = max(0.0, start_ms - prefix, self._buf_start_ms)
        self._trim_buffer_to(audio_start)
        self._speaking, self._silence_ms = True, 0.0
        self._speech_item = self.ids.item()
        self._idle_deadline = None
        self._emit(
            "input_audio_buffer.speech_started", audio_start_ms=int(audio_start), item_id=self._speech_item
        )
        active = self._responses.get(self._active_default) if self._active_default else None
        if active is not None and td.get("interrupt_response", True):
            self._cancel(active, "turn_detected", now)

    def _speech_stopped(self, td: dict[str, Any], now: float) -> None:
        item_id = self._speech_item or self.ids.item()
        self._speaking, self._speech_item, self._silence_ms = False, None, 0.0
        self._emit("input_audio_buffer.speech_stopped", audio_end_ms=int(self._vad_ms), item_id=item_id)
        self._commit(item_id, None, now)
        if td.get("create_response", True) and self._active_default is None:
            self._start_response({}, None, False, now)

    # speech results ------------------------------------------------------------
    def transcription_done(self, item_id: str, text: str, duration_s: float, now: float) -> None:
        st = self.conv.get(item_id)
        text = " ".join(text.split())
        if st is not None:
            st.heard, st.waiting_stt = text, False
            tr = self.session["audio"]["input"]["transcription"]
            if tr is not None:
                st.item["content"][0]["transcript"] = text
                self._emit_input_transcript(item_id, text, duration_s, str(tr.get("model", "")))
        self._retry_waiting(now)

    def transcription_failed(self, item_id: str, message: str, now: float) -> None:
        st = self.conv.get(item_id)
        if st is not None:
            st.heard, st.waiting_stt = "", False
            if self.session["audio"]["input"]["transcription"] is not None:
                self._emit(
                    "conversation.item.input_audio_transcription.failed",
                    item_id=item_id,
                    content_index=0,
                    error={
                        "type": "transcription_error",
                        "code": "audio_unintelligible",
                        "message": message,
                        "param": None,
                    },
                )
        self._retry_waiting(now)

    def _emit_input_transcript(self, item_id: str, text: str, duration_s: float, model: str) -> None:
        for i, word in enumerate(text.split()):
            delta = word if i == 0 else " " + word
            self._emit(
                "conversation.item.input_audio_transcription.delta",
                item_id=item_id,
                content_index=0,
                delta=delta,
                obfuscation=self.ids.obfuscation(len(delta)),
            )
        if model == "whisper-1":
            usage: dict[str, Any] = {"type": "duration", "seconds": round(duration_s, 3)}
        else:
            audio_tokens, out_tokens = max(1, round(duration_s * 10)), max(1, len(text) // 4)
            usage = {
                "type": "tokens",
                "input_tokens": audio_tokens,
                "output_tokens": out_tokens,
                "total_tokens": audio_tokens + out_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
            }
        self._emit(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id,
            content_index=0,
            transcript=text,
            usage=usage,
        )

    def _retry_waiting(self, now: float) -> None:
        for resp in list(self._responses.values()):
            self._try_generate(resp, now)

    # responses ------------------------------------------------------------
    def _on_response_create(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        self._create_response(event.get("response"), event_id, now)

    def _on_response_cancel(self, event: dict[str, Any], event_id: str | None, now: float) -> None:
        rid = event.get("response_id") or self._active_default
        resp = self._responses.get(rid) if isinstance(rid, str) else None
        if resp is None:
            self._error(
                "response_cancel_not_active", "Cancellation failed: no active response found", None, event_id
            )
            return
        self._cancel(resp, "client_cancelled", now)
