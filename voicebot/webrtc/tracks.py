"""Media of a browser call: the paced outbound track and the inbound frame conversion.

Outbound: ``OutboundAudioTrack`` is the aiortc track the server sends. aiortc's sender pulls one frame at a
time with ``recv()``; the track sleeps until the frame's slot on an absolute monotonic schedule
(``start + pts / rate``), then takes the next frame from the call's ``OutputQueue`` or, when the queue is
empty, sends silence. Frames are taken at send time, never earlier, so a barge-in ``clear()`` stops the agent
within one frame, and the queue's accounting (``played_ms``) counts only what was really sent.

Inbound: ``decode_inline`` makes aiortc's receiver decode on the loop thread instead of in its per-call
decoder thread, Opus straight to mono s16 at 48 kHz (``MonoOpusDecoder``; G.711 gives mono at 8 kHz).
``InboundConverter`` turns any decoded frame (aiortc's own stereo Opus frames too) into mono ``PcmChunk``s at
one fixed rate, with one stateful resampler per call when the codec's rate differs.

Outbound encoding: ``encode_inline`` encodes on the loop thread (``VoiceOpusEncoder`` for Opus, aiortc's
G.711 encoders) and hands aiortc finished packets; while the agent is quiet the encoder's settled silence
packet is resent without encoding.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import time
from collections import deque
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import numpy as np
from aiortc import RTCRtpReceiver
from aiortc.codecs import get_decoder
from aiortc.codecs.base import Decoder, Encoder
from aiortc.codecs.g711 import PcmaEncoder, PcmuEncoder
from aiortc.codecs.opus import OpusEncoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from voicebot.audio.chunk import FRAME_MS, PcmChunk, ms_to_samples
from voicebot.audio.resample import StreamResampler
from voicebot.playout import OutputQueue

log = logging.getLogger("voicebot.webrtc")

#: Silent frames in a row that must encode to the same packet before that packet is reused for silence.
SILENCE_SETTLE = 10

#: Called with (previous item, new item, monotonic time) whenever the item being sent changes; None = silence.
ItemChange = Callable[[str | None, str | None, float], None]


class OutboundAudioTrack(MediaStreamTrack):
    """The agent's voice: 20 ms frames from an ``OutputQueue``, paced on an absolute schedule."""

    kind = "audio"

    def __init__(
        self,
        queue: OutputQueue,
        *,
        on_item_change: ItemChange | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_lag_s: float = 0.2,
    ) -> None:
        super().__init__()
        self.queue = queue
        self.rate = queue.rate
        self._frame = ms_to_samples(FRAME_MS, self.rate)
        self._silence = np.zeros(self._frame, dtype=np.int16)
        self._time_base = Fraction(1, self.rate)
        self._clock = clock
        self._max_lag_s = max_lag_s
        self._on_item_change = on_item_change
        self._start: float | None = None
        self._pts = 0
        self._encoder: Encoder | None = None
        self._packet_time_base = Fraction(1, 48000)
        self._packets: deque[av.Packet[Any]] = deque()
        self._timestamp_step = 0
        self._next_timestamp = 0
        # the packet the encoder gives for silence, and for how many silent frames in a row it has given it
        self._silence_payload: bytes | None = None
        self._silence_repeats = 0
        self._sending_silence = False
        self.silence_packets_reused = 0
        self._item: str | None = None
        self.frames_sent = 0
        self.audio_frames_sent = 0

    def encode_inline(self, codec: str | None) -> bool:
        """Encode on the loop thread from now on and hand aiortc finished packets.

        aiortc otherwise encodes every 20 ms frame through ``run_in_executor``: a thread-pool round trip per
        frame per call that costs more CPU than the encoding itself (Opus: about 0.1 ms per frame; G.711:
        microseconds). With packets the sender only packs them. False for a codec not handled here.
        """
        made = _encoder_for(codec, self.rate)
        if made is None:
            return False
        self._encoder, clock = made
        self._packet_time_base = Fraction(1, clock)
        self._timestamp_step = clock * FRAME_MS // 1000
        return True

    async def recv(self) -> av.AudioFrame | av.Packet[Any]:
        if self._encoder is None:
            return await self._next_frame()
        while not self._packets:
            frame = await self._next_frame()
            silent = self._sending_silence
            settled = self._silence_payload
            if silent and settled is not None and self._silence_repeats >= SILENCE_SETTLE:
                # The agent is quiet and the encoder has produced this same packet for the last few silent
                # frames: send it again rather than encode zeros. The encoder's state, which last saw
                # silence, still fits what follows; after speech it has to settle again first.
                self._add_packet(settled)
                self.silence_packets_reused += 1
                continue
            payloads, _ = self._encoder.encode(frame)
            for payload in payloads:  # usually one per frame; none while the encoder primes
                self._add_packet(payload)
            if not silent or len(payloads) != 1:
                self._silence_repeats = 0
            elif payloads[0] == settled:
                self._silence_repeats += 1
            else:
                self._silence_payload, self._silence_repeats = payloads[0], 1
        return self._packets.popleft()

    def _add_packet(self, payload: bytes) -> None:
        # One 20 ms step per packet, counted here: the encoder's own timestamps count only the frames it
        # was given, not the silence sent without it.
        packet = av.Packet(payload)
        packet.pts = self._next_timestamp
        packet.time_base = self._packet_time_base
        self._packets.append(packet)
        self._next_timestamp += self._timestamp_step

    async def _next_frame(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        await self._wait_for_slot()
        taken = self.queue.take()  # after the wait: a clear() during the sleep is honoured
        now = self._clock()
        self._sending_silence = taken is None
        if taken is None:
            samples, item = self._silence, None
        else:
            chunk, item = taken
            samples = chunk.samples
            self.audio_frames_sent += 1
        if item != self._item:
            previous, self._item = self._item, item
            if self._on_item_change is not None:
                try:
                    self._on_item_change(previous, item, now)
                except Exception:
                    log.exception("item-change listener failed")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += samples.shape[0]
        self.frames_sent += 1
        return frame

    async def _wait_for_slot(self) -> None:
        now = self._clock()
        if self._start is None:
            self._start = now
            return
        deadline = self._start + self._pts / self.rate
        if now - deadline > self._max_lag_s:
            # A stall (the loop was blocked): resynchronise rather than burst to catch up.
            self._start = now - self._pts / self.rate
            return
        if deadline > now:
            await asyncio.sleep(deadline - now)


class VoiceOpusEncoder(Encoder):
    """Opus for the agent's voice: mono, fed at the track's own rate, CELT only ("restricted low delay").

    aiortc's encoder resamples every frame to 48 kHz stereo and encodes 96 kbit/s stereo; this one encodes
    what the agent actually has (24 kHz mono speech) at 48 kbit/s, at complexity 5 of 10, in 40 % of the
    CPU time (about 54 µs per 20 ms frame against 135 µs; 66 µs at complexity 10), with 2.5 ms of codec
    delay. A mono stream is valid in a session that signals opus/48000/2 (RFC 7587 §3.4: a decoder plays
    mono or stereo packets alike), and the RTP clock stays at 48 kHz.
    """

    RATES = (8000, 12000, 16000, 24000, 48000)  # the input rates libopus takes

    def __init__(self, rate: int, bitrate: int = 48000) -> None:
        if rate not in self.RATES:
            raise ValueError(f"Opus cannot take {rate} Hz input")
        self.codec: Any = av.CodecContext.create("libopus", "w")
        self.codec.bit_rate = bitrate
        self.codec.format = "s16"
        self.codec.layout = "mono"
        self.codec.sample_rate = rate
        self.codec.time_base = Fraction(1, rate)
        self.codec.options = {"application": "lowdelay", "compression_level": "5"}

    def encode(self, frame: Any, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        return [bytes(p) for p in self.codec.encode(frame)], 0  # the track counts timestamps itself

    def pack(self, packet: Any) -> tuple[list[bytes], int]:  # pragma: no cover - the track never asks
        raise NotImplementedError


def _encoder_for(codec: str | None, rate: int) -> tuple[Encoder, int] | None:
    """The encoder for ``codec`` at the track's ``rate`` and its RTP clock rate."""
    if codec == "opus":
        if rate in VoiceOpusEncoder.RATES:
            return VoiceOpusEncoder(rate), 48000
        return OpusEncoder(), 48000
    if codec == "pcmu":
        return PcmuEncoder(), 8000
    if codec == "pcma":
        return PcmaEncoder(), 8000
    return None


class InboundConverter:
    """Decoded aiortc audio frames → mono ``PcmChunk``s at ``rate`` (one converter per call)."""

    def __init__(self, rate: int = 48000) -> None:
        self.rate = rate
        self._resampler: StreamResampler | None = None
        self._resampler_from: int | None = None

    def convert(self, frame: av.AudioFrame) -> PcmChunk:
        mono = _mono_s16(frame)
        src_rate = int(frame.sample_rate)
        if src_rate == self.rate:
            return PcmChunk(mono, self.rate)
        return self._resample(PcmChunk(mono, src_rate))

    def _resample(self, chunk: PcmChunk) -> PcmChunk:
        if self._resampler is None or self._resampler_from != chunk.rate:
            self._resampler = StreamResampler(chunk.rate, self.rate)
            self._resampler_from = chunk.rate
        return self._resampler.process(chunk)


Int16Vector = np.ndarray[tuple[int], np.dtype[np.int16]]


def _mono_s16(frame: av.AudioFrame) -> Int16Vector:
    """The frame's samples as mono int16 (channels averaged)."""
    if frame.format.name not in ("s16", "s16p"):
        raise ValueError(f"expected s16 audio from the decoder, got {frame.format.name}")
    channels = len(frame.layout.channels)
    rows: np.ndarray[Any, Any]
    if frame.format.is_planar:
        rows = frame.to_ndarray()
    else:
        # Packed (L R L R …), read straight from the plane: aiortc's Opus decoder gives stereo with both
        # channels equal for a browser's mono voice; its G.711 decoder gives mono.
        packed = np.frombuffer(memoryview(frame.planes[0]), dtype=np.int16, count=frame.samples * channels)
        if channels == 1:
            single: Int16Vector = packed.copy()
            return single
        rows = packed.reshape(-1, channels).T
    total = rows[0].astype(np.int32)
    for ch in range(1, channels):
        total += rows[ch]
    if channels == 2:
        total >>= 1
    else:
        total //= channels
    mono: Int16Vector = total.astype(np.int16)
    return mono


class InlineDecoder:
    """Takes the place of an aiortc receiver's decoder queue and decodes each frame as it is handed over.

    aiortc's receiver puts every complete encoded frame on a ``queue.Queue`` read by a per-call decoder
    thread, which hands each decoded frame back to the loop with ``run_coroutine_threadsafe``: two thread
    hops, a self-pipe wake-up and a new task per 20 ms frame, which cost several times the Opus decode itself
    (about 30 µs). Here the frame is decoded where it arrives and put straight on the remote track's queue.
    The idle thread stays parked on its own queue and only gets aiortc's end-of-stream marker, so stopping
    the receiver still ends the remote track the way aiortc does it.
    """

    def __init__(self, thread_queue: queue.Queue[Any], output: asyncio.Queue[Any], kind: str) -> None:
        self._thread_queue = thread_queue
        self._output = output
        self._kind = kind
        self._decoder: Decoder | None = None
        self._codec_name: str | None = None
        self.frames_decoded = 0
        self.decode_errors = 0

    def put(self, task: tuple[Any, Any] | None) -> None:
        if task is None:  # the receiver stops: the thread ends the track and exits
            self._thread_queue.put(None)
            return
        codec, encoded = task
        if self._decoder is None or codec.name != self._codec_name:
            self._decoder = MonoOpusDecoder() if codec.name.lower() == "opus" else get_decoder(codec)
            self._codec_name = codec.name
        try:
            frames = self._decoder.decode(encoded)
        except av.FFmpegError as exc:
            # keep the decoder's state, as aiortc does: a reset would spoil the frames that follow
            self.decode_errors += 1
            log.warning("webrtc: could not decode a %s %s frame: %s", self._kind, codec.name, exc)
            return
        for frame in frames:
            self._output.put_nowait(frame)
        self.frames_decoded += 1


class MonoOpusDecoder(Decoder):
    """Opus straight to mono s16 at 48 kHz: libopus folds the channels itself, about 40 % cheaper than
    aiortc's stereo decode followed by a downmix (a browser's microphone is mono anyway)."""

    def __init__(self) -> None:
        self.codec: Any = av.CodecContext.create("libopus", "r")
        self.codec.format = "s16"
        self.codec.layout = "mono"
        self.codec.sample_rate = 48000

    def decode(self, encoded_frame: Any) -> list[Any]:
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = _OPUS_TIME_BASE
        return list(self.codec.decode(packet))


_OPUS_TIME_BASE = Fraction(1, 48000)

#: The receiver's private attribute that holds its decoder queue (aiortc 1.9–1.16).
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"


def decode_inline(receiver: RTCRtpReceiver) -> bool:
    """Make ``receiver`` decode on the loop thread once it starts receiving (see ``InlineDecoder``).

    Call it before the connection starts its media. False (and aiortc keeps its decoder thread) when this
    aiortc does not have the internals it relies on.
    """
    if not isinstance(getattr(receiver, _DECODER_QUEUE, None), queue.Queue):
        log.info("webrtc: this aiortc has no decoder queue to replace; decoding stays on its thread")
        return False
    original = receiver.receive

    async def receive(parameters: Any) -> None:
        await original(parameters)  # starts the decoder thread on the current queue, without awaiting
        thread_queue = getattr(receiver, _DECODER_QUEUE)
        track = receiver.track
        output = getattr(track, "_queue", None)
        if isinstance(thread_queue, queue.Queue) and isinstance(output, asyncio.Queue):
            decoder = InlineDecoder(thread_queue, output, track.kind)
            setattr(receiver, _DECODER_QUEUE, decoder)
            receiver.inline_decoder = decoder  # type: ignore[attr-defined]

    receiver.receive = receive  # type: ignore[method-assign]
    return True


def inline_decoder(receiver: RTCRtpReceiver) -> InlineDecoder | None:
    """The receiver's ``InlineDecoder`` once it is receiving, else None."""
    found = getattr(receiver, "inline_decoder", None)
    return found if isinstance(found, InlineDecoder) else None
