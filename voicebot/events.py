"""What a model session tells its call (pure).

Both model sessions (the Realtime one and the non-realtime cascade) speak in these events, so the call does
not care which one it drives. Audio is always a ``PcmChunk`` at the session's ``output_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from voicebot.audio.chunk import PcmChunk


class ErrorKind(StrEnum):
    BENIGN = "benign"  # harmless races (cancel after completion, a second response.create)
    RETRYABLE = "retryable"  # try again or reconnect (5xx, rate limits, dropped sockets)
    FATAL = "fatal"  # this upstream cannot serve the call (bad key, no quota, beta shape)
    INVALID = "invalid"  # we sent something the upstream refused; the session goes on


@dataclass(frozen=True, slots=True)
class AudioOut:
    """Assistant audio to play, belonging to assistant item ``item_id``."""

    item_id: str
    chunk: PcmChunk


@dataclass(frozen=True, slots=True)
class ClearAudio:
    """Barge-in: drop every queued output frame now, then report what was heard of ``item_id``
    (``ModelSession.truncate``). ``item_id`` is None when nothing was playing."""

    item_id: str | None


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class Transcript:
    """A transcript delta (``final=False``) or the whole transcript of an item (``final=True``)."""

    role: Literal["user", "assistant"]
    item_id: str
    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model asks for a function call. Answer with ``ModelSession.submit_tool_output``."""

    call_id: str
    name: str
    arguments: str  # JSON text, exactly as the model produced it
    item_id: str = ""
    response_id: str = ""


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    response_id: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    response_id: str
    status: str  # completed | cancelled | failed | incomplete
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ModelError:
    kind: ErrorKind
    code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The model session is over (fatal error, or closed); the call should end."""

    reason: str
    error: ModelError | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """Anything else worth surfacing to a UI or log (reconnects, rollovers, failovers)."""

    kind: str
    detail: dict[str, object] = field(default_factory=dict)


ModelEvent = (
    AudioOut
    | ClearAudio
    | SpeechStarted
    | SpeechStopped
    | Transcript
    | ToolCall
    | ResponseStarted
    | ResponseDone
    | ModelError
    | SessionEnded
    | Notice
)
