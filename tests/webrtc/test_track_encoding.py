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
from voicebot.webrtc.tracks import SILENCE_SETTLE, OutboundAudioTrack


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


@pytest.mark.parametrize(("codec", "step"), [("opus", 960), ("pcmu", 160)])
async def test_settled_silence_packets_are_reused_without_breaking_the_stream(codec: str, step: int) -> None:
    queue = OutputQueue(24000, max_ms=400)
    track = OutboundAudioTrack(queue)
    track.encode_inline(codec)
    packets: list[av.Packet[object]] = []

    async def send(n: int) -> None:
        for _ in range(n):
            packet = await track.recv()
            assert isinstance(packet, av.Packet)
            packets.append(packet)

    for frame in tone(200, 24000).frames():
        await queue.put(frame, "item_a")
    await send(10)  # the tone
    await send(60)  # then silence: encoded until the encoder settles (within 30 frames), then reused
    reused = track.silence_packets_reused
    assert reused >= 60 - 30 - SILENCE_SETTLE
    for frame in tone(200, 24000).frames():
        await queue.put(frame, "item_b")
    await send(10)  # speech again: encoded, never the silence packet
    assert track.silence_packets_reused == reused
    silence = bytes(packets[65])
    assert all(bytes(p) != silence for p in packets[-8:])  # (the codec delays speech by up to a frame)
    # one timestamp step per 20 ms throughout, across the reused packets
    stamps = [p.pts for p in packets]
    assert all(b - a == step for a, b in itertools.pairwise(stamps)), stamps


async def test_reused_silence_decodes_to_silence_and_speech_after_it_decodes_cleanly() -> None:
    from aiortc.codecs.opus import OpusDecoder

    queue = OutputQueue(24000, max_ms=400)
    track = OutboundAudioTrack(queue)
    track.encode_inline("opus")
    payloads: list[bytes] = []
    for n, item in ((10, "a"), (40, None), (10, "b")):
        if item is not None:
            for frame in tone(n * 20, 24000).frames():
                await queue.put(frame, item)
        for _ in range(n):
            payloads.append(bytes(await track.recv()))  # type: ignore[arg-type]
    assert track.silence_packets_reused > 0
    decoder = OpusDecoder()
    pcm = [
        f.to_ndarray().reshape(-1).astype(np.float64)
        for i, p in enumerate(payloads)
        for f in decoder.decode(JitterFrame(p, i * 960))
    ]
    rms = [float(np.sqrt(np.mean(x**2))) for x in pcm]
    assert max(rms[25:50]) < 30  # the reused packets are silence
    assert min(rms[53:60]) > 3000  # and the tone after them comes through whole
