"""Session configuration and its GA wire shape, plus the audio codec of the Realtime wire (pure).

``SessionConfig`` is what a call wants from the model; ``session_payload`` turns it into the GA ``session``
object of ``session.update`` (``type: "realtime"``, ``output_modalities``, ``audio.input``/``audio.output``).
Turn detection is always sent as a complete object, because a partial one picks up server defaults.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from voicebot.audio.chunk import PcmChunk
from voicebot.audio.g711 import alaw_to_chunk, chunk_to_alaw, chunk_to_ulaw, ulaw_to_chunk
from voicebot.errors import LocalError, ProtocolError

AudioFormat = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
AUDIO_FORMATS: tuple[AudioFormat, ...] = ("audio/pcm", "audio/pcmu", "audio/pcma")
PCM_RATE = 24_000
G711_RATE = 8_000
MAX_APPEND_BYTES = 15 * 1024 * 1024  # one input_audio_buffer.append carries at most 15 MiB (decoded)


@dataclass(frozen=True, slots=True)
class ServerVad:
    """``server_vad`` turn detection; every field is sent explicitly."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True
    idle_timeout_ms: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
            "idle_timeout_ms": self.idle_timeout_ms,
        }


@dataclass(frozen=True, slots=True)
class SemanticVad:
    """``semantic_vad`` turn detection; every field is sent explicitly."""

    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    create_response: bool = True
    interrupt_response: bool = True

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "semantic_vad",
            "eagerness": self.eagerness,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }


TurnDetection = ServerVad | SemanticVad


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What the call asks of a Realtime session. ``None`` for ``turn_detection`` means push-to-talk."""

    model: str = "gpt-realtime"
    voice: str = "marin"
    instructions: str | None = None
    output_modalities: Literal["audio", "text"] = "audio"
    input_format: AudioFormat = "audio/pcm"
    output_format: AudioFormat = "audio/pcm"
    transcription_model: str | None = "gpt-4o-mini-transcribe"
    transcription_language: str | None = None
    turn_detection: TurnDetection | None = field(default_factory=ServerVad)
    noise_reduction: Literal["near_field", "far_field"] | None = None
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] = "auto"
    speed: float | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    max_buffered_audio_ms: int = 2000  # input audio held while the session is not ready (oldest dropped)
    input_audio_batch_ms: int = 0  # caller audio per input_audio_buffer.append (0: one message per chunk)

    def __post_init__(self) -> None:
        for fmt in (self.input_format, self.output_format):
            if fmt not in AUDIO_FORMATS:
                raise LocalError(f"unknown audio format {fmt!r}; use one of {', '.join(AUDIO_FORMATS)}")
        if self.max_buffered_audio_ms < 0:
            raise LocalError("max_buffered_audio_ms must not be negative")
        if not 0 <= self.input_audio_batch_ms <= 1000:
            raise LocalError("input_audio_batch_ms must be between 0 and 1000")

    @property
    def input_rate(self) -> int:
        return wire_rate(self.input_format)

    @property
    def output_rate(self) -> int:
        return wire_rate(self.output_format)

    @property
    def interrupts(self) -> bool:
        """Whether the server cancels a response when the user starts speaking (barge-in)."""
        return self.turn_detection is not None and self.turn_detection.interrupt_response


# update_session(**changes) keys → where they live in the GA session object
_UPDATE_PATHS: dict[str, tuple[str, ...]] = {
    "instructions": ("instructions",),
    "tools": ("tools",),
    "tool_choice": ("tool_choice",),
    "output_modalities": ("output_modalities",),
    "max_output_tokens": ("max_output_tokens",),
    "voice": ("audio", "output", "voice"),
    "speed": ("audio", "output", "speed"),
    "turn_detection": ("audio", "input", "turn_detection"),
    "transcription_model": ("audio", "input", "transcription"),
    "transcription_language": ("audio", "input", "transcription"),
    "noise_reduction": ("audio", "input", "noise_reduction"),
}
UPDATABLE = frozenset(_UPDATE_PATHS)


def format_payload(fmt: AudioFormat) -> dict[str, Any]:
    return {"type": "audio/pcm", "rate": PCM_RATE} if fmt == "audio/pcm" else {"type": fmt}


def session_payload(cfg: SessionConfig) -> dict[str, Any]:
    """The complete GA ``session`` object for ``session.update``."""
    transcription: dict[str, Any] | None = None
    if cfg.transcription_model:
        transcription = {"model": cfg.transcription_model}
        if cfg.transcription_language:
            transcription["language"] = cfg.transcription_language
    audio_in: dict[str, Any] = {
        "format": format_payload(cfg.input_format),
        "transcription": transcription,
        "turn_detection": cfg.turn_detection.to_wire() if cfg.turn_detection else None,
    }
    if cfg.noise_reduction:
        audio_in["noise_reduction"] = {"type": cfg.noise_reduction}
    audio_out: dict[str, Any] = {"format": format_payload(cfg.output_format), "voice": cfg.voice}
    if cfg.speed is not None:
        audio_out["speed"] = cfg.speed
    session: dict[str, Any] = {
        "type": "realtime",
        "output_modalities": [cfg.output_modalities],
        "audio": {"input": audio_in, "output": audio_out},
    }
    if cfg.instructions is not None:
        session["instructions"] = cfg.instructions
    session["tools"] = [dict(t) for t in cfg.tools]
    session["tool_choice"] = cfg.tool_choice
    if cfg.max_output_tokens is not None:
        session["max_output_tokens"] = cfg.max_output_tokens
    return session


def apply_changes(cfg: SessionConfig, changes: dict[str, Any]) -> tuple[SessionConfig, dict[str, Any]]:
    """The config after ``changes`` and the partial GA ``session`` object that carries them."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise LocalError(
            f"cannot update {', '.join(sorted(unknown))}; updatable: {', '.join(sorted(UPDATABLE))}"
        )
    values = dict(changes)
    if "tools" in values:
        values["tools"] = tuple(values["tools"] or ())
    if "output_modalities" in values and isinstance(values["output_modalities"], list | tuple):
        values["output_modalities"] = values["output_modalities"][0]
    new = replace(cfg, **values)
    full = session_payload(new)
    partial: dict[str, Any] = {"type": "realtime"}
    for key in changes:
        path = _UPDATE_PATHS[key]
        src: Any = full
        dst = partial
        for part in path[:-1]:
            src = src[part]
            dst = dst.setdefault(part, {})
        dst[path[-1]] = src.get(path[-1])  # absent in the full object (cleared) → null
    return new, partial


# audio on the wire ----------------------------------------------------------------------------------------


def wire_rate(fmt: AudioFormat) -> int:
    return PCM_RATE if fmt == "audio/pcm" else G711_RATE


def bytes_per_sample(fmt: AudioFormat) -> int:
    return 2 if fmt == "audio/pcm" else 1


def encode_audio(chunk: PcmChunk, fmt: AudioFormat) -> bytes:
    """Raw wire bytes of a chunk that is already at the wire rate of ``fmt``."""
    if chunk.rate != wire_rate(fmt):
        raise LocalError(f"{fmt} audio must be at {wire_rate(fmt)} Hz, got a chunk at {chunk.rate} Hz")
    if fmt == "audio/pcm":
        return chunk.to_bytes()
    if fmt == "audio/pcmu":
        return chunk_to_ulaw(chunk)  # the caller's own bytes when the chunk came from µ-law
    return chunk_to_alaw(chunk)


def decode_audio(data: bytes, fmt: AudioFormat) -> PcmChunk:
    """A chunk from raw wire bytes (PCM16 data must have an even length)."""
    if fmt == "audio/pcm":
        return PcmChunk.from_bytes(data, PCM_RATE)
    if fmt == "audio/pcmu":
        return ulaw_to_chunk(data)
    return alaw_to_chunk(data)


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError(f"audio delta is not valid base64: {exc}") from exc
