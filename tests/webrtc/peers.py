"""Test peers for the WebRTC broker: an aiortc caller (the browser's role) and a tone model (the model's role).

Both are the *other* side of the unit under test: the caller is a real aiortc peer that negotiates, sends a
scripted microphone and records what it hears; the model is a small ``ModelSession`` that speaks a tone and
reacts to the caller's voice like the Realtime API does (speech started → clear audio → truncate).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np
from aiohttp import ClientSession
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from voicebot.audio.chunk import PcmChunk
from voicebot.events import (
    AudioOut,
    ClearAudio,
    ErrorKind,
    ModelError,
    ModelEvent,
    SessionEnded,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    Transcript,
)

MIC_RATE = 48000


def tone(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.4) -> np.ndarray[Any, Any]:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


# the model side -----------------------------------------------------------------------------------------
@dataclass
class ToneModel:
    """A ModelSession: greets with a tone, hears the caller by level, barges in, answers with a tone.

    ``greeting_s`` of tone is sent at start (item ``item_greet``) in 100 ms bursts, faster than real time like
    the Realtime API. When the caller's audio is loud it emits ``SpeechStarted`` + ``ClearAudio`` (recording
    the time); when the caller goes quiet again it emits ``SpeechStopped``, a user transcript, a tool call and
    ``answer_s`` of tone as item ``item_answer_N``.
    """

    greeting_s: float = 0.0
    answer_s: float = 0.0
    input_rate: int = 24000
    output_rate: int = 24000
    threshold: float = 2000.0
    fail_start: BaseException | None = None
    end_at_start: str | None = None  # an upstream error that ends the session right after start
    speech_started_at: list[float] = field(default_factory=list)
    truncates: list[tuple[str, int]] = field(default_factory=list)
    tool_outputs: list[tuple[str, str]] = field(default_factory=list)
    started: int = 0
    closed: bool = False

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[ModelEvent | None] = asyncio.Queue()
        self._speaking_item: str | None = None
        self._caller_loud = False
        self._quiet_frames = 0
        self._answers = 0

    async def start(self) -> None:
        self.started += 1
        if self.fail_start is not None:
            raise self.fail_start
        if self.end_at_start is not None:
            err = ModelError(ErrorKind.FATAL, "insufficient_quota", self.end_at_start)
            self._queue.put_nowait(err)
            self._queue.put_nowait(SessionEnded("upstream refused the session", err))
        if self.greeting_s > 0:
            self._speak("item_greet", self.greeting_s)

    def _speak(self, item_id: str, seconds: float) -> None:
        self._speaking_item = item_id
        for chunk in PcmChunk(tone(seconds, self.output_rate), self.output_rate).frames(100):
            self._queue.put_nowait(AudioOut(item_id, chunk))

    async def send_audio(self, chunk: PcmChunk) -> None:
        loud = chunk.rms() > self.threshold
        if loud and not self._caller_loud:
            self._caller_loud = True
            self.speech_started_at.append(time.monotonic())
            self._queue.put_nowait(SpeechStarted())
            self._queue.put_nowait(ClearAudio(self._speaking_item))
            self._speaking_item = None
        elif self._caller_loud:
            self._quiet_frames = 0 if loud else self._quiet_frames + 1
            if self._quiet_frames * chunk.duration_ms >= 200:
                self._caller_loud = False
                self._answer()

    def _answer(self) -> None:
        self._answers += 1
        n = self._answers
        self._queue.put_nowait(SpeechStopped(f"item_user_{n}"))
        self._queue.put_nowait(Transcript("user", f"item_user_{n}", "hello there", final=True))
        self._queue.put_nowait(ToolCall(f"call_{n}", "get_time", '{"zone": "UTC"}'))
        self._queue.put_nowait(Transcript("assistant", f"item_answer_{n}", "Hi", final=False))
        self._queue.put_nowait(Transcript("assistant", f"item_answer_{n}", "Hi!", final=True))
        if self.answer_s > 0:
            self._speak(f"item_answer_{n}", self.answer_s)

    async def events(self) -> AsyncIterator[ModelEvent]:
        while True:
            ev = await self._queue.get()
            if ev is None:
                return
            yield ev

    async def submit_tool_output(self, call_id: str, output: str) -> None:
        self.tool_outputs.append((call_id, output))

    async def truncate(self, item_id: str, played_ms: int) -> None:
        self.truncates.append((item_id, played_ms))

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        return None

    async def update_session(self, **changes: Any) -> None:
        return None

    async def say(self, text: str) -> None:
        return None

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(None)


# the browser side ---------------------------------------------------------------------------------------
class ScriptedMic(MediaStreamTrack):
    """A microphone: 20 ms frames at 48 kHz, silence until ``speak`` queues samples."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending = np.zeros(0, dtype=np.int16)
        self._start: float | None = None
        self._pts = 0

    def speak(self, samples: np.ndarray[Any, Any]) -> None:
        self._pending = np.concatenate([self._pending, samples.astype(np.int16)])

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        n = MIC_RATE // 50
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            await asyncio.sleep(max(0.0, self._start + self._pts / MIC_RATE - now))
        out = self._pending[:n]
        self._pending = self._pending[n:]
        if out.shape[0] < n:
            out = np.concatenate([out, np.zeros(n - out.shape[0], dtype=np.int16)])
        frame = av.AudioFrame.from_ndarray(out.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = MIC_RATE
        frame.pts = self._pts
        frame.time_base = Fraction(1, MIC_RATE)
        self._pts += n
        return frame


@dataclass
class Heard:
    at: float
    rms: float
    ms: float


class Caller:
    """The browser's role, played by aiortc: offer, POST /api/calls, record what arrives."""

    def __init__(self, http: ClientSession, base: str, *, codecs: tuple[str, ...] | None = None) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.mic = ScriptedMic()
        self.heard: list[Heard] = []
        self.events: list[dict[str, Any]] = []
        self.call_id: str | None = None
        self.channel = self.pc.createDataChannel("events")
        self.channel.on("message", self._on_message)
        self._consumer: asyncio.Task[None] | None = None
        self._codecs = codecs
        self.pc.on("track", self._on_track)

    def _on_message(self, message: object) -> None:
        if isinstance(message, str):
            self.events.append(json.loads(message))

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._consumer = asyncio.get_running_loop().create_task(self._consume(track))

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                x = frame.to_ndarray().astype(np.float64)
                rms = float(np.sqrt(np.mean(x * x)))
                self.heard.append(Heard(time.monotonic(), rms, frame.samples * 1000.0 / frame.sample_rate))

    async def offer(self) -> dict[str, str]:
        transceiver = self.pc.addTransceiver(self.mic, direction="sendrecv")
        if self._codecs is not None:
            from aiortc import RTCRtpSender

            caps = RTCRtpSender.getCapabilities("audio").codecs
            transceiver.setCodecPreferences(
                [c for c in caps if c.mimeType.split("/")[1].lower() in self._codecs]
            )
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"sdp": self.pc.localDescription.sdp, "type": "offer"}

    async def connect(self, **extra: Any) -> dict[str, Any]:
        body = {**(await self.offer()), **extra}
        async with self.http.post(f"{self.base}/api/calls", json=body) as r:
            data: dict[str, Any] = await r.json()
            if r.status != 201:
                raise AssertionError(f"POST /api/calls → {r.status}: {data}")
        self.call_id = data["call_id"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="answer"))
        return data

    async def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pc.connectionState != "connected":
            if time.monotonic() > deadline:
                raise AssertionError(f"not connected after {timeout} s: {self.pc.connectionState}")
            await asyncio.sleep(0.02)

    async def wait_event(self, kind: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for ev in self.events:
                if ev.get("type") == kind and all(ev.get(k) == v for k, v in match.items()):
                    return ev
            if time.monotonic() > deadline:
                raise AssertionError(f"no {kind} event {match} in {timeout} s; got {self.events}")
            await asyncio.sleep(0.02)

    async def hang_up(self) -> int:
        status = 0
        if self.call_id is not None:
            async with self.http.delete(f"{self.base}/api/calls/{self.call_id}") as r:
                status = r.status
        await self.close()
        return status

    async def close(self) -> None:
        await self.pc.close()
        if self._consumer is not None:
            # aiortc ends a remote track only if media ever flowed; otherwise stop listening here.
            await asyncio.wait({self._consumer}, timeout=0.5)
            self._consumer.cancel()
            await asyncio.wait({self._consumer})
