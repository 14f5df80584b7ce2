"""The outbound track can encode on the loop thread and hand aiortc finished packets (no thread hop per frame)."""

from __future__ import annotations

import itertools

import av
import numpy as np
import pytest
from aiortc.codecs.g711 import PcmuDecoder
from aiortc.jitterbuffer import JitterFrame

from voicebot.audio.chunk import PcmChunk
from voicebot.playout import OutputQueue
from voicebot.webrtc.tracks import OutboundAudioTrack


def tone(ms: int, rate: int) -> PcmChunk:
    t = np.arange(ms * rate // 1000) / rate
    return PcmChunk((8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), rate)


@pytest.mark.parametrize(
    ("codec", "clock", "step"), [("pcmu", 8000, 160), ("pcma", 8000, 160), ("opus", 48000, 960)]
)
async def test_packets_carry_consecutive_timestamps(codec: str, clock: int, step: int) -> None:
    queue = OutputQueue(24000, max_ms=200)
    track = OutboundAudioTrack(queue)
    assert track.encode_inline(codec)
    for frame in tone(100, 24000).frames():
        await queue.put(frame, "item_a")
    packets = [await track.recv() for _ in range(6)]
    assert all(isinstance(p, av.Packet) for p in packets)
    stamps = [p.pts for p in packets]
    assert all(b - a == step for a, b in itertools.pairwise(stamps))
    assert all(p.time_base.denominator == clock for p in packets)
    assert queue.played_ms("item_a") >= 100  # the frames were taken from the queue as they were encoded


async def test_g711_packets_decode_back_to_the_audio() -> None:
    queue = OutputQueue(8000, max_ms=200)
    track = OutboundAudioTrack(queue)
    track.encode_inline("pcmu")
    await queue.put(tone(20, 8000), "item_a")
    packet = await track.recv()
    assert isinstance(packet, av.Packet) and len(bytes(packet)) == 160
    (frame,) = PcmuDecoder().decode(JitterFrame(bytes(packet), 0))
    decoded = frame.to_ndarray().reshape(-1).astype(np.float64)
    assert np.sqrt(np.mean(decoded**2)) == pytest.approx(8000 / np.sqrt(2), rel=0.05)


async def test_an_unknown_codec_keeps_frames() -> None:
    track = OutboundAudioTrack(OutputQueue(24000))
    assert not track.encode_inline("g722")
    assert isinstance(await track.recv(), av.AudioFrame)
