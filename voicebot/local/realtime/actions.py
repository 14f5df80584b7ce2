"""What the Realtime core asks its adapter to do (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voicebot.audio.chunk import PcmChunk


@dataclass(frozen=True, slots=True)
class SendEvent:
    """Send this server event as one JSON text frame."""

    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Transcribe:
    """Run STT on a committed user item; answer with ``transcription_done`` / ``transcription_failed``."""

    item_id: str
    audio: PcmChunk
    language: str | None = None
    prompt: str | None = None


@dataclass(frozen=True, slots=True)
class Synthesize:
    """Speak ``text`` (24 kHz, sentence by sentence); answer with ``synthesis_chunk`` … ``synthesis_done``."""

    response_id: str
    text: str
    voice: str | None
    speed: float


@dataclass(frozen=True, slots=True)
class StopSynthesis:
    """The response was cancelled: stop its synthesis (later chunks are ignored anyway)."""

    response_id: str


@dataclass(frozen=True, slots=True)
class CloseConnection:
    code: int
    reason: str


Action = SendEvent | Transcribe | Synthesize | StopSynthesis | CloseConnection
