"""Call: one conversation = one asyncio.TaskGroup over an AudioPort and a ModelSession.

::

    port.frames() ─▶ uplink ─(resample to model rate)─▶ model.send_audio
    model.events() ─▶ events ─(resample to port rate, 20 ms frames)─▶ playout buffer ─▶ playout ─▶ port.play
                         ├─ ClearAudio (barge-in): drop buffer and port queue, cancel tools, truncate
                         └─ ToolCall: a task per call → tools.run → model.submit_tool_output

The call ends when the caller hangs up (``frames()`` ends), the model session ends, a tool hangs up, or the
maximum duration passes. Every task belongs to the call's TaskGroup; nothing outlives ``run()``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from voicebot.audio.chunk import FrameSplitter, PcmChunk
from voicebot.audio.resample import StreamResampler
from voicebot.events import (
    AudioOut,
    ClearAudio,
    ModelEvent,
    ResponseDone,
    SessionEnded,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    Transcript,
)
from voicebot.playout import QueuedOutput
from voicebot.ports import AudioPort, ModelSession, TelephonyPort

log = logging.getLogger("voicebot.call")


class ToolExecutor(Protocol):
    """Runs the model's function calls (``voicebot.tools.ToolRunner`` implements it)."""

    async def run(self, call: ToolCall, control: Any) -> str: ...

    def cancel_cancellable(self, reason: str) -> None: ...


@dataclass(slots=True)
class TranscriptLine:
    role: str
    text: str
    item_id: str
    at: float


@dataclass(slots=True)
class CallStats:
    started_at: float = 0.0
    ended_at: float | None = None
    end_reason: str = ""
    turn_latencies_ms: list[float] = field(default_factory=list)
    barge_ins: int = 0
    tool_calls: int = 0
    frames_up: int = 0
    frames_down: int = 0


class Call:
    """One conversation. Also the ``CallControl`` handed to tools (hang up, transfer, DTMF, say)."""

    def __init__(
        self,
        port: AudioPort,
        model: ModelSession,
        *,
        call_id: str | None = None,
        caller: str = "unknown",
        tools: ToolExecutor | None = None,
        max_duration_s: float | None = None,
    ) -> None:
        self.port = port
        self.model = model
        self.call_id = call_id or f"call_{uuid.uuid4().hex[:16]}"
        self.caller = caller
        self.tools = tools
        self.max_duration_s = max_duration_s
        self.transcript: list[TranscriptLine] = []
        self.stats = CallStats()
        self._listeners: list[Callable[[ModelEvent], None]] = []
        self._ended = asyncio.Event()
        self._up = StreamResampler(port.input_rate, model.input_rate)
        self._new_downlink()
        self._playbuf: deque[tuple[PcmChunk, str]] = deque()
        self._playbuf_ready = asyncio.Event()
        self._tool_tasks: set[asyncio.Task[None]] = set()
        self._tg: asyncio.TaskGroup | None = None
        self._speech_stopped_at: float | None = None

    # public ----------------------------------------------------------------------------------------
    def add_listener(self, fn: Callable[[ModelEvent], None]) -> None:
        """``fn`` sees every model event (for UIs and logs); it must not block."""
        self._listeners.append(fn)

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def run(self) -> CallStats:
        self.stats.started_at = time.monotonic()
        log.info("call %s: start (caller %s)", self.call_id, self.caller)
        try:
            await self._run_tasks()
        except* Exception as group:
            for exc in group.exceptions:
                log.error("call %s: failed: %r", self.call_id, exc, exc_info=exc)
            self._end(f"error: {group.exceptions[0]!r}")
        finally:
            self._tg = None
            await self._close_both()
            self.stats.ended_at = time.monotonic()
            log.info("call %s: ended (%s)", self.call_id, self.stats.end_reason)
        return self.stats

    async def _run_tasks(self) -> None:
        await self.model.start()
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            tasks = [
                tg.create_task(self._uplink(), name=f"{self.call_id}:uplink"),
                tg.create_task(self._events(), name=f"{self.call_id}:events"),
                tg.create_task(self._playout(), name=f"{self.call_id}:playout"),
            ]
            try:
                await asyncio.wait_for(self._ended.wait(), self.max_duration_s)
            except TimeoutError:
                self._end("maximum call duration reached")
            for t in [*tasks, *self._tool_tasks]:
                t.cancel()

    # CallControl -----------------------------------------------------------------------------------
    async def hang_up(self, reason: str = "agent hung up", *, drain_s: float = 5.0) -> None:
        """End the call once what is queued for the caller has been played (at most ``drain_s``)."""
        try:
            async with asyncio.timeout(drain_s):
                while self._playbuf or not self._port_idle():  # noqa: ASYNC110 - frames leave on their own clock
                    await asyncio.sleep(0.02)
        except TimeoutError:
            pass
        self._end(reason)

    def _port_idle(self) -> bool:
        return self.port.output_idle if isinstance(self.port, QueuedOutput) else True

    @property
    def dtmf_received(self) -> str:
        """The keys the caller has pressed so far ("" when the port has no keypad)."""
        return str(getattr(self.port, "dtmf_received", ""))

    async def transfer(self, target: str) -> None:
        if not isinstance(self.port, TelephonyPort):
            raise RuntimeError("this call cannot be transferred (not a phone call)")
        await self.port.transfer(target)

    async def send_dtmf(self, digits: str) -> None:
        if not isinstance(self.port, TelephonyPort):
            raise RuntimeError("this call cannot send DTMF (not a phone call)")
        await self.port.send_dtmf(digits)

    async def say(self, text: str) -> None:
        await self.model.say(text)

    async def update_session(self, **changes: Any) -> None:
        await self.model.update_session(**{k: v for k, v in changes.items() if v is not None})

    # tasks -----------------------------------------------------------------------------------------
    async def _uplink(self) -> None:
        async for frame in self.port.frames():
            self.stats.frames_up += 1
            out = self._up.process(frame)
            if out.num_samples:
                await self.model.send_audio(out)
        self._end("caller hung up")

    async def _events(self) -> None:
        async for ev in self.model.events():
            for fn in self._listeners:
                fn(ev)
            await self._handle(ev)
        self._end("model session closed")

    async def _handle(self, ev: ModelEvent) -> None:
        if isinstance(ev, AudioOut):
            self._queue_audio(ev)
        elif isinstance(ev, ClearAudio):
            await self._barge_in(ev)
        elif isinstance(ev, ToolCall):
            self._start_tool(ev)
        elif isinstance(ev, Transcript):
            if ev.final:
                self.transcript.append(TranscriptLine(ev.role, ev.text, ev.item_id, time.monotonic()))
        elif isinstance(ev, ResponseDone):
            self._finish_item()
        elif isinstance(ev, SpeechStopped):
            self._speech_stopped_at = time.monotonic()
        elif isinstance(ev, SpeechStarted):
            self._speech_stopped_at = None
        elif isinstance(ev, SessionEnded):
            self._end(f"model session ended: {ev.reason}")

    async def _playout(self) -> None:
        while True:
            while not self._playbuf:
                self._playbuf_ready.clear()
                await self._playbuf_ready.wait()
            frame, item_id = self._playbuf.popleft()
            if self._speech_stopped_at is not None:
                self.stats.turn_latencies_ms.append((time.monotonic() - self._speech_stopped_at) * 1000)
                self._speech_stopped_at = None
            await self.port.play(frame, item_id)
            self.stats.frames_down += 1

    # helpers ---------------------------------------------------------------------------------------
    def _new_downlink(self) -> None:
        self._down = StreamResampler(self.model.output_rate, self.port.output_rate)
        self._splitter = FrameSplitter(self.port.output_rate)
        self._down_item: str | None = None

    def _finish_item(self) -> None:
        """All audio of the current item has arrived: play its tail too (the resampler's held-back samples,
        and the last partial frame padded with silence), so the listener hears the last word."""
        item = self._down_item
        if item is None:
            return
        tail = self._down.flush()
        frames = self._splitter.push(tail) if tail.num_samples else []
        frames += self._splitter.flush(pad=True)
        for frame in frames:
            self._playbuf.append((frame, item))
        self._down_item = None
        if frames:
            self._playbuf_ready.set()

    def _queue_audio(self, ev: AudioOut) -> None:
        if self._down_item is not None and ev.item_id != self._down_item:
            self._finish_item()  # a new item: the previous one is complete
        self._down_item = ev.item_id
        for frame in self._splitter.push(self._down.process(ev.chunk)):
            self._playbuf.append((frame, ev.item_id))
        if self._playbuf:
            self._playbuf_ready.set()

    async def _barge_in(self, ev: ClearAudio) -> None:
        self.stats.barge_ins += 1
        self._playbuf.clear()
        self.port.clear()
        self._new_downlink()
        if self.tools is not None:
            self.tools.cancel_cancellable("caller interrupted")
        if ev.item_id is not None:
            played = self.port.played_ms(ev.item_id)
            log.debug("call %s: barge-in, %d ms of %s heard", self.call_id, played, ev.item_id)
            await self.model.truncate(ev.item_id, played)

    def _start_tool(self, ev: ToolCall) -> None:
        self.stats.tool_calls += 1
        if self._tg is None:
            return
        task = self._tg.create_task(self._run_tool(ev), name=f"{self.call_id}:tool:{ev.name}")
        self._tool_tasks.add(task)
        task.add_done_callback(self._tool_tasks.discard)

    async def _run_tool(self, ev: ToolCall) -> None:
        if self.tools is None:
            output = json.dumps({"error": f"no tool named {ev.name!r} is available"})
        else:
            try:
                output = await self.tools.run(ev, self)
            except Exception as exc:  # the runner reports tool errors itself; this is the last guard
                log.exception("call %s: tool %s failed", self.call_id, ev.name)
                output = json.dumps({"error": f"tool {ev.name} failed: {exc}"})
        if not self.ended:
            await self.model.submit_tool_output(ev.call_id, output)

    def _end(self, reason: str) -> None:
        if not self._ended.is_set():
            self.stats.end_reason = reason
            self._ended.set()

    async def _close_both(self) -> None:
        for closer in (self.model.close, self.port.close):
            try:
                await closer()
            except Exception:
                log.exception("call %s: error while closing", self.call_id)
