"""A browser call's WebRTC side: offer/answer, the AudioPort over the peer connection, and its lifecycle.

``answer_offer`` builds one ``RTCPeerConnection`` from a browser's (already validated) offer and returns a
``WebRtcPort``: the call's ``AudioPort`` (inbound track → ``frames()``, ``play()`` → paced outbound track)
plus the page's ``events`` data channel. The port owns the peer connection: ``close()`` closes it, and when
the connection fails, is closed by the browser, or does not connect in time, the port closes it itself,
which ends ``frames()`` and therefore the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import av
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidAccessError, OperationError
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from voicebot.audio.chunk import PcmChunk
from voicebot.config import IceServer
from voicebot.errors import BadRequest
from voicebot.playout import OutputQueue, QueuedOutput
from voicebot.webrtc.sdp import OfferInfo, answer_codec
from voicebot.webrtc.tracks import InboundConverter, ItemChange, OutboundAudioTrack, decode_inline

log = logging.getLogger("voicebot.webrtc")

EVENTS_CHANNEL = "events"
#: Events kept for the page while its data channel is not open yet (older ones are dropped).
MAX_PENDING_EVENTS = 256


def rtc_configuration(servers: Sequence[IceServer]) -> RTCConfiguration:
    """aiortc configuration from the settings. An empty list means no STUN/TURN at all (aiortc would
    otherwise fall back to a public STUN server)."""
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s.url_list(), username=s.username, credential=s.credential) for s in servers
        ]
    )


class WebRtcPort(QueuedOutput):
    """The ``AudioPort`` of one browser call."""

    def __init__(
        self,
        pc: RTCPeerConnection,
        *,
        output_rate: int = 24000,
        input_rate: int = 48000,
        max_queue_ms: int = 60,
        connect_timeout_s: float = 15.0,
    ) -> None:
        self.pc = pc
        self.input_rate = input_rate
        self.output_rate = output_rate
        self.queue = OutputQueue(output_rate, max_ms=max_queue_ms)
        self._item_listeners: list[ItemChange] = []
        self.track = OutboundAudioTrack(self.queue, on_item_change=self._item_changed)
        self.codec: str | None = None
        self.connected_at: float | None = None
        self.on_close: Callable[[], None] | None = None
        self._remote: MediaStreamTrack | None = None
        self._inbound = InboundConverter(input_rate)
        self._channel: RTCDataChannel | None = None
        self._channel_open = asyncio.Event()
        self._pending: deque[str] = deque(maxlen=MAX_PENDING_EVENTS)
        self._channel_listeners: list[Callable[[dict[str, Any]], None]] = []
        self._closer: asyncio.Task[None] | None = None
        self._closed = False
        loop = asyncio.get_running_loop()
        self._connect_timer = loop.call_later(connect_timeout_s, self._connect_timed_out)
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_state)

    # AudioPort ------------------------------------------------------------------------------------
    async def frames(self) -> AsyncIterator[PcmChunk]:
        track = self._remote
        if track is None:
            return
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if isinstance(frame, av.AudioFrame):
                yield self._inbound.convert(frame)

    async def close(self) -> None:
        """Close the peer connection (idempotent); the page gets any last event first."""
        if not self._closed:
            self._connect_timer.cancel()
            if self.on_close is not None:
                try:
                    self.on_close()  # its last events are still queued for the page
                except Exception:
                    log.exception("webrtc: close listener failed")
            self._closed = True
            await self._wait_for_channel()
            await self._drain_channel()
            self.queue.clear()
            self.track.stop()
            self._start_closing()
        if self._closer is not None:
            await asyncio.shield(self._closer)

    # events to the page ---------------------------------------------------------------------------
    def send_event(self, event: dict[str, Any]) -> None:
        """Send one JSON event to the page (queued until its data channel is open)."""
        text = json.dumps(event, separators=(",", ":"))
        ch = self._channel
        if ch is not None and ch.readyState == "open":
            ch.send(text)
        elif not self._closed:
            self._pending.append(text)

    def on_item_change(self, fn: ItemChange) -> None:
        """``fn(previous, new, now)`` runs when the outbound track starts or stops sending an item."""
        self._item_listeners.append(fn)

    def on_page_message(self, fn: Callable[[dict[str, Any]], None]) -> None:
        """``fn`` gets each JSON object the page sends on its events channel."""
        self._channel_listeners.append(fn)

    @property
    def has_remote_audio(self) -> bool:
        return self._remote is not None

    @property
    def connection_state(self) -> str:
        return str(self.pc.connectionState)

    # internals ------------------------------------------------------------------------------------
    def _item_changed(self, previous: str | None, new: str | None, now: float) -> None:
        for fn in self._item_listeners:
            fn(previous, new, now)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._remote is None:
            self._remote = track

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_CHANNEL or self._channel is not None:
            return
        self._channel = channel
        self._channel_open.set()
        channel.on("message", self._on_message)
        while self._pending and channel.readyState == "open":
            channel.send(self._pending.popleft())

    def _on_message(self, message: object) -> None:
        if not isinstance(message, str) or len(message) > 4096:
            return
        try:
            data = json.loads(message)
        except ValueError:
            return
        if isinstance(data, dict):
            for fn in self._channel_listeners:
                fn(data)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        log.debug("webrtc: connection %s", state)
        if state == "connected" and self.connected_at is None:
            self.connected_at = time.monotonic()
            self._connect_timer.cancel()
        elif state == "failed":
            self._start_closing()

    def _connect_timed_out(self) -> None:
        if self.pc.connectionState != "connected":
            log.info("webrtc: media did not connect in time; closing")
            self._start_closing()

    def _start_closing(self) -> None:
        if self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(self._close_pc(), name="webrtc:close")

    async def _close_pc(self) -> None:
        await self.pc.close()
        # aiortc ends a remote track only from its decoder thread, which exists only once media has flowed:
        # a call closed before it connected would wait in frames() for ever. Give the track aiortc's own
        # end-of-stream marker so frames() (and with it the call) ends in every case.
        remote = self._remote
        queue = getattr(remote, "_queue", None)
        if remote is not None and remote.readyState == "live" and isinstance(queue, asyncio.Queue):
            queue.put_nowait(None)

    async def _wait_for_channel(self, limit_s: float = 2.0) -> None:
        """A call that ends while the page is still connecting: let its data channel open, so that the
        page learns why (an upstream error, say) instead of seeing the connection just drop."""
        if self._channel is not None or not self._pending:
            return
        if self.pc.connectionState not in ("new", "connecting", "connected"):
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._channel_open.wait(), limit_s)

    async def _drain_channel(self, limit_s: float = 0.25) -> None:
        ch = self._channel
        if ch is None or ch.readyState != "open":
            return
        if ch.bufferedAmount > 0:
            drained = asyncio.Event()
            ch.on("bufferedamountlow", drained.set)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drained.wait(), limit_s)
        # The SCTP layer sends from its own task; give it a turn to put the last chunk on the wire.
        await asyncio.sleep(0.02)


async def answer_offer(
    sdp: str,
    info: OfferInfo,
    *,
    ice_servers: Sequence[IceServer] = (),
    phone_quality: bool = False,
    output_rate: int = 24000,
    connect_timeout_s: float = 15.0,
) -> tuple[WebRtcPort, str]:
    """Answer a validated offer; returns the port and the answer SDP. The port owns the connection."""
    if phone_quality and not info.offers("pcmu"):
        raise BadRequest("phone quality needs G.711 µ-law (PCMU), which this browser did not offer")
    pc = RTCPeerConnection(configuration=rtc_configuration(ice_servers))
    port = WebRtcPort(pc, output_rate=output_rate, connect_timeout_s=connect_timeout_s)
    try:
        await _negotiate(pc, port, sdp, phone_quality=phone_quality)
    except BaseException:
        await port.close()
        raise
    answer = pc.localDescription.sdp
    port.codec = answer_codec(answer)
    port.track.encode_inline(port.codec)
    return port, answer


async def _negotiate(pc: RTCPeerConnection, port: WebRtcPort, sdp: str, *, phone_quality: bool) -> None:
    # The transceiver exists before the offer is applied, so that it takes the offer's first audio m-line
    # and its codec preferences (PCMU only for phone quality) decide what the answer accepts.
    transceiver = pc.addTransceiver(port.track, direction="sendrecv")
    decode_inline(transceiver.receiver)
    if phone_quality:
        caps = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() == "audio/pcmu"])
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    except (ValueError, KeyError, IndexError, TypeError, InvalidAccessError, OperationError) as exc:
        raise BadRequest(f"the offer was refused: {exc or type(exc).__name__}", param="sdp") from exc
    if not port.has_remote_audio:
        raise BadRequest("the offer has no audio the server can receive", param="sdp")
    answer = await pc.createAnswer()
    await pc.setLocalDescription(answer)
