"""Shapes shared by the speech backends of the local engine (pure: no I/O, no clock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from voicebot.audio.chunk import PcmChunk
from voicebot.errors import RetryableUpstreamError

__all__ = ["FrameVad", "Segment", "SpeechBackendError", "TranscriptionResult", "Word"]


@dataclass(frozen=True)
class Segment:
    """A stretch of recognised text, times in seconds from the start of the audio."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Word:
    """One recognised word, times in seconds from the start of the audio."""

    start: float
    end: float
    word: str


@dataclass(frozen=True)
class TranscriptionResult:
    text: str
    language: str
    duration_s: float
    segments: list[Segment] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)


class FrameVad(Protocol):
    """A stateful voice-activity detector for one stream: feed it consecutive frames."""

    rate: int
    frame_samples: int

    def speech_prob(self, frame: PcmChunk) -> float:
        """Speech probability (0..1) of one frame of exactly ``frame_samples`` samples at ``rate``."""
        ...

    def reset(self) -> None:
        """Forget the stream so far (start of a new stream)."""
        ...


class SpeechBackendError(RetryableUpstreamError):
    """A speech model or its worker failed (crashed, timed out, or could not load)."""

    code = "speech_backend_error"
