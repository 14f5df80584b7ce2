"""What the demo page sees of a call: model events → small JSON messages on the ``events`` data channel.

Messages (each a JSON object with a ``type``)::

    {"type": "call", "call_id", "codec", "phone_quality"}            once, when the call starts
    {"type": "state", "state": "listening" | "thinking" | "speaking"}  on every change
    {"type": "speech", "speaking": bool, "item_id"}   the caller started / stopped speaking (server VAD)
    {"type": "transcript", "role": "user" | "assistant", "item_id", "text", "final"}
    {"type": "tool_call", "call_id", "name", "arguments"}
    {"type": "tool_result", "call_id", "output"}
    {"type": "latency", "ms", "item_id"}   end of the caller's speech → first assistant audio frame sent
    {"type": "barge_in", "item_id"}
    {"type": "notice", "kind", "detail"}
    {"type": "error", "kind", "code", "message"}
    {"type": "ended", "reason"}                                       just before the server hangs up

The state is "speaking" while the outbound track sends assistant audio, "thinking" from the end of the
caller's speech (or a response start) until then, and "listening" otherwise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from voicebot.audio.chunk import PcmChunk
from voicebot.events import (
    ClearAudio,
    ModelError,
    ModelEvent,
    Notice,
    ResponseStarted,
    SessionEnded,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    Transcript,
)
from voicebot.ports import ModelSession

log = logging.getLogger("voicebot.webrtc")

Send = Callable[[dict[str, Any]], None]


class EventRelay:
    """Turns one call's model events and outbound-track activity into page messages."""

    def __init__(self, send: Send, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._clock = clock
        self.state = "listening"
        self._speech_stopped_at: float | None = None
        self.latencies_ms: list[float] = []

    # inputs ---------------------------------------------------------------------------------------
    def on_model_event(self, ev: ModelEvent) -> None:
        """A ``Call.add_listener`` listener."""
        if isinstance(ev, Transcript):
            self._send(
                {
                    "type": "transcript",
                    "role": ev.role,
                    "item_id": ev.item_id,
                    "text": ev.text,
                    "final": ev.final,
                }
            )
        elif isinstance(ev, SpeechStarted):
            self._speech_stopped_at = None
            self._send({"type": "speech", "speaking": True, "item_id": ev.item_id})
            self._set_state("listening")
        elif isinstance(ev, SpeechStopped):
            self._speech_stopped_at = self._clock()
            self._send({"type": "speech", "speaking": False, "item_id": ev.item_id})
            self._set_state("thinking")
        elif isinstance(ev, ResponseStarted):
            if self.state == "listening":
                self._set_state("thinking")
        elif isinstance(ev, ToolCall):
            self._send(
                {"type": "tool_call", "call_id": ev.call_id, "name": ev.name, "arguments": ev.arguments}
            )
        elif isinstance(ev, ClearAudio):
            self._send({"type": "barge_in", "item_id": ev.item_id})
        else:
            self._other(ev)

    def _other(self, ev: ModelEvent) -> None:
        if isinstance(ev, ModelError):
            self.error(ev.message, kind=ev.kind.value, code=ev.code)
        elif isinstance(ev, SessionEnded):
            if ev.error is not None:
                self.error(ev.error.message, kind=ev.error.kind.value, code=ev.error.code)
        elif isinstance(ev, Notice):
            self._send({"type": "notice", "kind": ev.kind, "detail": _jsonable(ev.detail)})

    def on_item_change(self, previous: str | None, new: str | None, now: float) -> None:
        """The outbound track started sending ``new`` (None: silence)."""
        if new is None:
            self._set_state("listening")
            return
        if self._speech_stopped_at is not None:
            ms = round((now - self._speech_stopped_at) * 1000.0, 1)
            self._speech_stopped_at = None
            self.latencies_ms.append(ms)
            self._send({"type": "latency", "ms": ms, "item_id": new})
        self._set_state("speaking")

    def on_tool_result(self, call_id: str, output: str) -> None:
        self._send({"type": "tool_result", "call_id": call_id, "output": output})

    # outputs --------------------------------------------------------------------------------------
    def started(self, call_id: str, *, codec: str | None, phone_quality: bool) -> None:
        self._send({"type": "call", "call_id": call_id, "codec": codec, "phone_quality": phone_quality})
        self._send({"type": "state", "state": self.state})

    def error(self, message: str, *, kind: str = "fatal", code: str | None = None) -> None:
        self._send({"type": "error", "kind": kind, "code": code, "message": message})

    def ended(self, reason: str) -> None:
        self._send({"type": "ended", "reason": reason})

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._send({"type": "state", "state": state})


def _jsonable(detail: dict[str, object]) -> dict[str, object]:
    return {
        k: v if isinstance(v, str | int | float | bool | type(None)) else str(v) for k, v in detail.items()
    }


class ObservedModel:
    """A ``ModelSession`` that reports the tool outputs the call submits (for the page's tool log).

    ``start`` is idempotent, so the route can start the model before answering (an unreachable upstream is
    then an HTTP error, not a call that dies at once) and the call's own ``start`` does nothing more.
    Everything else passes straight through to ``inner``.
    """

    def __init__(self, inner: ModelSession, on_tool_result: Callable[[str, str], None] | None = None) -> None:
        self.inner = inner
        self.input_rate = inner.input_rate
        self.output_rate = inner.output_rate
        self.on_tool_result = on_tool_result
        self._started = False

    async def start(self) -> None:
        if not self._started:
            self._started = True
            await self.inner.start()

    async def send_audio(self, chunk: PcmChunk) -> None:
        await self.inner.send_audio(chunk)

    def events(self) -> AsyncIterator[ModelEvent]:
        return self.inner.events()

    async def submit_tool_output(self, call_id: str, output: str) -> None:
        if self.on_tool_result is not None:
            try:
                self.on_tool_result(call_id, output)
            except Exception:
                log.exception("tool-result listener failed")
        await self.inner.submit_tool_output(call_id, output)

    async def truncate(self, item_id: str, played_ms: int) -> None:
        await self.inner.truncate(item_id, played_ms)

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        await self.inner.send_text(text, respond=respond)

    async def update_session(self, **changes: Any) -> None:
        await self.inner.update_session(**changes)

    async def say(self, text: str) -> None:
        await self.inner.say(text)

    async def close(self) -> None:
        await self.inner.close()
