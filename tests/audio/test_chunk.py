"""PcmChunk, ms/sample conversions and FrameSplitter."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.audio import FRAME_MS, FrameSplitter, PcmChunk, ms_to_samples, samples_to_ms


def ramp(n: int, rate: int = 8000) -> PcmChunk:
    return PcmChunk((np.arange(n) % 30000).astype(np.int16), rate)


@pytest.mark.parametrize(
    ("ms", "rate", "samples"),
    [(20, 8000, 160), (20, 16000, 320), (20, 24000, 480), (20, 48000, 960), (20, 22050, 441),
     (10, 22050, 220), (1, 44100, 44), (0, 8000, 0), (2.5, 8000, 20)],
)  # fmt: skip
def test_ms_to_samples_rounds_down(ms: float, rate: int, samples: int) -> None:
    assert ms_to_samples(ms, rate) == samples


@pytest.mark.parametrize(
    ("samples", "rate", "ms"),
    [(160, 8000, 20), (441, 22050, 20), (440, 22050, 19), (7, 8000, 0), (48000, 48000, 1000)],
)
def test_samples_to_ms_never_overstates(samples: int, rate: int, ms: int) -> None:
    assert samples_to_ms(samples, rate) == ms


def test_bytes_round_trip_is_little_endian() -> None:
    chunk = PcmChunk.from_bytes(b"\x01\x00\xff\xff\x00\x80\xff\x7f", 24000)
    assert chunk.samples.tolist() == [1, -1, -32768, 32767]
    assert chunk.rate == 24000
    assert chunk.to_bytes() == b"\x01\x00\xff\xff\x00\x80\xff\x7f"
    assert chunk.num_samples == len(chunk) == 4


def test_from_bytes_rejects_odd_length() -> None:
    with pytest.raises(ValueError, match="even"):
        PcmChunk.from_bytes(b"\x00\x01\x02", 8000)


def test_construction_is_validated() -> None:
    with pytest.raises(ValueError, match="positive"):
        PcmChunk(np.zeros(4, dtype=np.int16), 0)
    with pytest.raises(ValueError, match="int16"):
        PcmChunk(np.zeros(4, dtype=np.float32), 8000)
    with pytest.raises(ValueError, match="1-D"):
        PcmChunk(np.zeros((2, 2), dtype=np.int16), 8000)


def test_duration_silence_rms_and_concat() -> None:
    silence = PcmChunk.silence(20, 24000)
    assert silence.num_samples == 480
    assert silence.duration_ms == 20.0
    assert silence.rms() == 0.0
    assert PcmChunk(np.array([3, -3, 3, -3], dtype=np.int16), 8000).rms() == 3.0
    both = PcmChunk.concat([ramp(3), ramp(2)])
    assert both.samples.tolist() == [0, 1, 2, 0, 1]
    with pytest.raises(ValueError, match="different rates"):
        PcmChunk.concat([ramp(3, 8000), ramp(3, 16000)])
    assert PcmChunk.concat([], rate=8000).num_samples == 0
    with pytest.raises(ValueError, match="needs a rate"):
        PcmChunk.concat([])


def test_frames_split_with_a_short_tail() -> None:
    frames = list(ramp(400).frames())
    assert [f.num_samples for f in frames] == [160, 160, 80]
    assert np.array_equal(np.concatenate([f.samples for f in frames]), ramp(400).samples)
    assert [f.num_samples for f in ramp(441 * 3, 22050).frames(FRAME_MS)] == [441, 441, 441]
    assert list(ramp(0).frames()) == []
    with pytest.raises(ValueError, match="no samples"):
        list(ramp(10, 100).frames(5))


def test_frame_splitter_across_uneven_pushes() -> None:
    fs = FrameSplitter(8000)
    assert fs.push(ramp(100)) == []
    assert fs.pending_samples == 100
    out = fs.push(PcmChunk(np.arange(100, 500).astype(np.int16), 8000))
    assert [f.num_samples for f in out] == [160, 160, 160]
    assert np.concatenate([f.samples for f in out]).tolist() == list(range(480))
    assert fs.pending_samples == 20
    out = fs.push(PcmChunk(np.arange(500, 640).astype(np.int16), 8000))
    assert [f.samples.tolist() for f in out] == [list(range(480, 640))]
    assert fs.pending_samples == 0
    assert fs.flush() == []
    assert fs.push(PcmChunk(np.arange(640, 690).astype(np.int16), 8000)) == []
    (tail,) = fs.flush()
    assert tail.samples.tolist() == list(range(640, 690)) + [0] * 110


def test_frame_splitter_flush_pads_or_not() -> None:
    fs = FrameSplitter(16000, ms=10)
    fs.push(PcmChunk(np.full(50, 7, dtype=np.int16), 16000))
    (padded,) = fs.flush()
    assert padded.num_samples == 160
    assert padded.samples[:50].tolist() == [7] * 50
    assert not padded.samples[50:].any()
    fs.push(PcmChunk(np.full(50, 7, dtype=np.int16), 16000))
    (unpadded,) = fs.flush(pad=False)
    assert unpadded.samples.tolist() == [7] * 50


def test_frame_splitter_rejects_other_rates() -> None:
    with pytest.raises(ValueError, match="16000 Hz"):
        FrameSplitter(8000).push(ramp(10, 16000))


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=1000), max_size=30),
    rate=st.sampled_from([8000, 16000, 22050, 24000, 48000]),
)
def test_frame_splitter_preserves_every_sample_in_exact_frames(sizes: list[int], rate: int) -> None:
    data = (np.arange(sum(sizes)) % 32000).astype(np.int16)
    fs = FrameSplitter(rate)
    out: list[PcmChunk] = []
    pos = 0
    for n in sizes:
        out += fs.push(PcmChunk(data[pos : pos + n], rate))
        pos += n
    assert all(f.num_samples == ms_to_samples(FRAME_MS, rate) for f in out)
    assert len(out) == len(data) // ms_to_samples(FRAME_MS, rate)
    out += fs.flush(pad=False)
    joined = np.concatenate([f.samples for f in out]) if out else np.zeros(0, dtype=np.int16)
    assert np.array_equal(joined, data)


def test_g711_bytes_must_match_the_samples() -> None:
    with pytest.raises(ValueError, match=r"G\.711 bytes"):
        PcmChunk(np.zeros(160, dtype=np.int16), 8000, ("pcmu", b"\xff" * 159))


def test_frame_splitter_carries_g711_bytes_only_while_every_sample_has_them() -> None:
    from voicebot.audio.g711 import alaw_to_chunk, chunk_to_alaw, ulaw_to_chunk

    s = FrameSplitter(8000)
    a = s.push(ulaw_to_chunk(bytes([0x7F]) * 100))
    b = s.push(ulaw_to_chunk(bytes([0x01]) * 100))
    assert a == [] and len(b) == 1 and b[0].g711 == ("pcmu", bytes([0x7F]) * 100 + bytes([0x01]) * 60)
    c = s.push(alaw_to_chunk(bytes([0x55]) * 200))  # another law: the pending 40 samples lose their bytes
    assert len(c) == 1 and c[0].g711 is None
    tail = s.flush(pad=True)  # 80 A-law samples pending, and they started fresh after the mixed frame
    assert tail[0].g711 is None
    s.push(alaw_to_chunk(bytes([0x55]) * 10))
    padded = s.flush(pad=True)[0]
    assert padded.g711 == ("pcma", bytes([0x55]) * 10 + bytes([0xD5]) * 150)
    assert chunk_to_alaw(padded) == padded.g711[1]
    s.push(PcmChunk(np.ones(50, dtype=np.int16), 8000))  # plain PCM never has bytes
    assert s.flush()[0].g711 is None


def test_g711_silence_codes_encode_zero() -> None:
    from voicebot.audio.chunk import G711_SILENCE
    from voicebot.audio.g711 import alaw_encode, ulaw_encode

    zero = np.zeros(1, dtype=np.int16)
    assert ulaw_encode(zero) == bytes([G711_SILENCE["pcmu"]])
    assert alaw_encode(zero) == bytes([G711_SILENCE["pcma"]])
