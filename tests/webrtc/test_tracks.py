"""The media pieces alone: inbound frame conversion and the paced outbound track."""

from __future__ import annotations

import time

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from voicebot.audio.chunk import PcmChunk
from voicebot.playout import OutputQueue
from voicebot.webrtc.tracks import InboundConverter, OutboundAudioTrack


def frame(samples: np.ndarray, fmt: str, layout: str, rate: int) -> av.AudioFrame:
    f = av.AudioFrame.from_ndarray(samples, format=fmt, layout=layout)
    f.sample_rate = rate
    return f


def test_packed_stereo_from_the_opus_decoder_becomes_mono_48k() -> None:
    packed = np.array([[100, 300, -5, -6, 32767, 32767, -32768, -32768]], dtype=np.int16)
    out = InboundConverter(48000).convert(frame(packed, "s16", "stereo", 48000))
    assert out.rate == 48000
    assert out.samples.tolist() == [200, -6, 32767, -32768]


def test_planar_and_mono_frames_are_accepted() -> None:
    conv = InboundConverter(48000)
    planar = np.array([[1, 2, 3], [3, 4, 5]], dtype=np.int16)
    assert conv.convert(frame(planar, "s16p", "stereo", 48000)).samples.tolist() == [2, 3, 4]
    mono = np.array([[7, 8, 9]], dtype=np.int16)
    assert conv.convert(frame(mono, "s16", "mono", 48000)).samples.tolist() == [7, 8, 9]


def test_g711_frames_at_8k_are_resampled_statefully_to_48k() -> None:
    conv = InboundConverter(48000)
    t = np.arange(8000) / 8000
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    outs = [
        conv.convert(frame(tone[i : i + 160].reshape(1, -1), "s16", "mono", 8000))
        for i in range(0, 8000, 160)
    ]
    total = PcmChunk.concat(outs)
    assert total.rate == 48000
    assert 47000 <= total.num_samples <= 48000  # one second in, one second out (less the resampler's delay)
    steady = total.samples[4800:40000].astype(np.float64)
    assert abs(np.sqrt(np.mean(steady**2)) - 8000 / np.sqrt(2)) < 200  # level kept, no frame-edge clicks
    assert np.max(np.abs(np.diff(steady))) < 8000 * 2 * np.pi * 440 / 48000 * 1.2


def test_other_sample_formats_are_refused() -> None:
    f = frame(np.zeros((1, 960), dtype=np.float32), "flt", "mono", 48000)
    with pytest.raises(ValueError, match="expected s16"):
        InboundConverter().convert(f)


async def test_outbound_track_is_paced_sends_silence_when_idle_and_stops_on_clear() -> None:
    queue = OutputQueue(24000, max_ms=60)
    changes: list[tuple[str | None, str | None]] = []
    track = OutboundAudioTrack(queue, on_item_change=lambda a, b, _now: changes.append((a, b)))
    loud = PcmChunk(np.full(480, 5000, dtype=np.int16), 24000)
    for _ in range(3):
        assert await queue.put(loud, "item_a")

    start = time.monotonic()
    received = [await track.recv() for _ in range(2)]
    queue.clear()  # barge-in: the third queued frame must never be sent
    received += [await track.recv() for _ in range(23)]
    elapsed = time.monotonic() - start

    levels = [int(np.abs(f.to_ndarray()).max()) for f in received]
    assert levels[:2] == [5000, 5000] and set(levels[2:]) == {0}
    assert [f.pts for f in received] == [480 * i for i in range(25)]
    assert all(f.sample_rate == 24000 and f.samples == 480 for f in received)
    assert 0.46 <= elapsed <= 0.62  # 24 intervals of 20 ms on an absolute schedule
    assert queue.played_ms("item_a") == 40
    assert changes == [(None, "item_a"), ("item_a", None)]

    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


def test_mono_opus_decoder_folds_a_stereo_stream_into_one_channel() -> None:
    from aiortc.codecs.opus import OpusEncoder
    from aiortc.jitterbuffer import JitterFrame

    from voicebot.webrtc.tracks import MonoOpusDecoder

    encoder, decoder, converter = OpusEncoder(), MonoOpusDecoder(), InboundConverter(48000)
    t = np.arange(960) / 48000
    out: list[np.ndarray] = []
    for i in range(20):
        left = (6000 * np.sin(2 * np.pi * 440 * (t + i * 0.02))).astype(np.int16)
        stereo = np.stack([left, left]).T.reshape(1, -1)  # packed L R L R, as a browser would send
        frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = i * 960
        for payload in encoder.encode(frame)[0]:
            for decoded in decoder.decode(JitterFrame(payload, i * 960)):
                assert decoded.layout.name == "mono" and decoded.sample_rate == 48000
                out.append(converter.convert(decoded).samples)
    pcm = np.concatenate(out[5:]).astype(np.float64)
    assert np.sqrt(np.mean(pcm**2)) == pytest.approx(6000 / np.sqrt(2), rel=0.1)
