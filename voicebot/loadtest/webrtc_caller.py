"""A browser call played by aiortc: offer, ``POST /api/calls``, recorded audio as the microphone, hang up.

The caller does what the demo page does: it gathers its ICE candidates (no STUN/TURN servers, so it never
contacts a third party), posts a complete offer, opens the ``events`` data channel and plays its microphone.
The microphone is a ``Player`` paced on an absolute 20 ms schedule at 48 kHz (aiortc encodes it to Opus).
Everything the server sends is recorded: the agent's audio (duration and RMS), and the data-channel events
(``latency`` per turn, final transcripts, errors, ``ended``). ``DELETE /api/calls/{id}`` hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from fractions import Fraction
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from voicebot.loadtest.common import LoadTestConfig, run_turns, wait_until
from voicebot.loadtest.media import Player, Utterance
from voicebot.loadtest.report import CallResult

MIC_RATE = 48000
HANGUP_TIMEOUT_S = 3.0


class RecordedMic(MediaStreamTrack):
    """An audio track that plays queued utterances in real time (silence in between)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.player = Player(MIC_RATE)
        self._played: list[asyncio.Future[None]] = []
        self._start: float | None = None
        self._pts = 0

    def speak(self, utterance: Utterance) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.player.queue(utterance)
        self._played.append(fut)
        return fut

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            await asyncio.sleep(max(0.0, self._start + self._pts / MIC_RATE - now))
        frame = self.player.next_frame()
        if frame.drained and self._played:
            fut = self._played.pop(0)
            if not fut.done():
                fut.set_result(None)
        out = av.AudioFrame.from_ndarray(frame.samples.reshape(1, -1), format="s16", layout="mono")
        out.sample_rate = MIC_RATE
        out.pts = self._pts
        out.time_base = Fraction(1, MIC_RATE)
        self._pts += frame.samples.shape[0]
        return out


class WebRtcCaller:
    """One call; ``run`` fills ``result`` and never raises for anything the server or network does."""

    def __init__(self, cfg: LoadTestConfig, http: aiohttp.ClientSession, result: CallResult) -> None:
        assert cfg.url is not None
        self.cfg = cfg
        self.base = cfg.url.rstrip("/")
        self.http = http
        self.result = result
        self.mic = RecordedMic()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.state = "listening"
        self._ended = False
        self._hanging_up = False
        self._consumer: asyncio.Task[None] | None = None

    # Conversation --------------------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self._ended or self.pc.connectionState in ("failed", "closed")

    def speak(self, utterance: Utterance) -> asyncio.Future[None]:
        return self.mic.speak(utterance)

    def answer_mark(self) -> int:
        return len(self.result.latencies_ms)

    def answered_since(self, mark: int) -> bool:
        return len(self.result.latencies_ms) > mark and self.state == "listening"

    # events from the server ----------------------------------------------------------------------------
    def _on_message(self, message: object) -> None:
        if not isinstance(message, str):
            return
        try:
            ev = json.loads(message)
        except ValueError:
            self.result.errors.append("a data-channel message that is not JSON")
            return
        if not isinstance(ev, dict):
            return
        kind = ev.get("type")
        if kind == "latency" and isinstance(ev.get("ms"), int | float):
            self.result.latencies_ms.append(float(ev["ms"]))
        elif kind == "state":
            self.state = str(ev.get("state"))
        elif kind == "transcript" and ev.get("final"):
            self.result.transcripts.append(f"{ev.get('role')}: {ev.get('text')}")
        elif kind == "error":
            self.result.errors.append(f"{ev.get('kind')}/{ev.get('code')}: {ev.get('message')}")
        elif kind == "ended" and not self._hanging_up:
            self._ended = True
            self.result.end_reason = f"server: {ev.get('reason')}"

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._consumer is None:
            self._consumer = asyncio.get_running_loop().create_task(self._consume(track))

    async def _consume(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, av.AudioFrame):
                    x = frame.to_ndarray()
                    if frame.layout.nb_channels > 1 and x.shape[0] == 1:  # packed stereo: average
                        x = x.reshape(-1, frame.layout.nb_channels).mean(axis=1)
                    self.result.audio.add(np.asarray(x), frame.sample_rate)

    # the call ------------------------------------------------------------------------------------------
    async def run(self, utterances: list[Utterance], t0: float, stop_at: float) -> None:
        loop = asyncio.get_running_loop()
        self.result.started_at = loop.time() - t0
        channel = self.pc.createDataChannel("events")
        channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        self.pc.addTransceiver(self.mic, direction="sendrecv")
        try:
            if await self._connect(stop_at):
                self.result.answered_at = loop.time() - t0
                why = await run_turns(self, utterances, self.cfg, stop_at)
                self.result.end_reason = self.result.end_reason or why
        except Exception as exc:  # a load tester reports, it does not crash the run
            if self.result.outcome == "answered":
                self.result.errors.append(f"{type(exc).__name__}: {exc}")
            else:
                self.result.fail(f"error: {type(exc).__name__}: {exc}")
        finally:
            await self._hang_up()
            self.result.ended_at = loop.time() - t0

    async def _connect(self, stop_at: float) -> bool:
        loop = asyncio.get_running_loop()
        began = loop.time()
        until = min(stop_at, began + self.cfg.connect_timeout_s)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        data = await self._post(body, until)
        if data is None:
            return False
        self.result.call_id = str(data.get("call_id"))
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=str(data["sdp"]), type="answer"))
        up = await wait_until(lambda: self.pc.connectionState in ("connected", "failed", "closed"), until)
        if not up:
            self.result.fail("timeout (media did not connect)")
            return False
        if self.pc.connectionState != "connected":
            self.result.fail(f"media {self.pc.connectionState}")
            return False
        self.result.outcome = "answered"
        self.result.setup_ms = round((loop.time() - began) * 1000.0, 1)
        return True

    async def _post(self, body: dict[str, str], until: float) -> dict[str, Any] | None:
        left = until - asyncio.get_running_loop().time()
        try:
            timeout = aiohttp.ClientTimeout(total=max(0.1, left))
            async with self.http.post(f"{self.base}/api/calls", json=body, timeout=timeout) as r:
                try:
                    data = await r.json(content_type=None)
                except ValueError:
                    data = None
        except TimeoutError:
            self.result.fail("timeout (no answer to POST /api/calls)")
            return None
        except aiohttp.ClientConnectionError as exc:
            self.result.fail(f"connect error: {type(exc).__name__}")
            return None
        if r.status == 201 and isinstance(data, dict) and "sdp" in data:
            return data
        self.result.fail(_http_reason(r.status, data))
        return None

    async def _hang_up(self) -> None:
        self._hanging_up = True
        if self.result.call_id is not None and self.result.outcome == "answered" and not self._ended:
            with contextlib.suppress(Exception):
                timeout = aiohttp.ClientTimeout(total=HANGUP_TIMEOUT_S)
                async with self.http.delete(f"{self.base}/api/calls/{self.result.call_id}", timeout=timeout):
                    pass
        await self.pc.close()
        if self._consumer is not None:
            # aiortc ends a remote track only if media ever flowed; otherwise stop listening here.
            await asyncio.wait({self._consumer}, timeout=0.5)
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)


def _http_reason(status: int, data: object) -> str:
    code = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        code = data["error"].get("code")
    if status == 503:
        return "503 full" + (f" ({code})" if code and code != "capacity_exceeded" else "")
    return f"http {status}" + (f" {code}" if code else "")
