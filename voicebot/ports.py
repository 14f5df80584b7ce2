"""The Protocols a Call is made of: an AudioPort (the caller's side) and a ModelSession (the model's).

Kept apart from ``call.py`` so that adapters can implement them without importing the call machinery.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

from voicebot.audio.chunk import PcmChunk
from voicebot.events import ModelEvent


@runtime_checkable
class AudioPort(Protocol):
    """The caller's audio: WebRTC, RTP, or a file.

    ``frames()`` yields the caller's audio (any chunk length, at ``input_rate``) and ends when the caller
    hangs up. ``play()`` queues assistant audio at ``output_rate``; it may wait when its bounded queue is
    full (backpressure). ``clear()`` drops everything queued at once (barge-in). ``played_ms(item_id)`` is
    the playback accounting: whole milliseconds of that item's audio actually sent to the listener.
    """

    @property
    def input_rate(self) -> int: ...

    @property
    def output_rate(self) -> int: ...

    def frames(self) -> AsyncIterator[PcmChunk]: ...

    async def play(self, chunk: PcmChunk, item_id: str) -> None: ...

    def clear(self) -> None: ...

    def played_ms(self, item_id: str) -> int: ...

    async def close(self) -> None: ...


@runtime_checkable
class ModelSession(Protocol):
    """The model: the Realtime API over WebSocket, or the non-realtime cascade.

    ``send_audio`` takes chunks at ``input_rate``; ``events()`` yields ``ModelEvent``s (audio at
    ``output_rate``) until the session ends.
    """

    @property
    def input_rate(self) -> int: ...

    @property
    def output_rate(self) -> int: ...

    async def start(self) -> None: ...

    async def send_audio(self, chunk: PcmChunk) -> None: ...

    def events(self) -> AsyncIterator[ModelEvent]: ...

    async def submit_tool_output(self, call_id: str, output: str) -> None: ...

    async def truncate(self, item_id: str, played_ms: int) -> None: ...

    async def send_text(self, text: str, *, respond: bool = True) -> None: ...

    async def update_session(self, **changes: Any) -> None: ...

    async def say(self, text: str) -> None:
        """Speak ``text`` (a filler line, a greeting) as the agent, without waiting for the caller."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class TelephonyPort(Protocol):
    """Extra powers of a phone leg (SIP): blind transfer and sending DTMF."""

    async def transfer(self, target: str) -> None: ...

    async def send_dtmf(self, digits: str) -> None: ...
