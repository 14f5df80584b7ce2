"""WAV reading and writing: round trips, other sample formats built by hand, and junk input."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

from voicebot.audio import PcmChunk, WavError, read_wav, wav_bytes, write_wav
from voicebot.errors import ProtocolError


def riff(
    fmt_body: bytes, data: bytes, *, extra_chunks: bytes = b"", data_size: int | None = None, pad: bool = True
) -> bytes:
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + extra_chunks + b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body
    body += b"data" + struct.pack("<I", size) + data + (b"\x00" if len(data) % 2 and pad else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def fmt(tag: int, channels: int, rate: int, bits: int) -> bytes:
    block = channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)


def extensible(channels: int, rate: int, bits: int, sub_tag: int) -> bytes:
    guid = struct.pack("<H", sub_tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    return fmt(0xFFFE, channels, rate, bits) + struct.pack("<HHI", 22, bits, 0x4) + guid


SAMPLES = np.array([0, 1, -1, 1000, -1000, 32767, -32768, 12345], dtype=np.int16)


def test_round_trip_through_bytes_is_read_by_stdlib_wave() -> None:
    chunk = PcmChunk(SAMPLES, 24000)
    data = wav_bytes(chunk)
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24000)
        assert w.readframes(100) == chunk.to_bytes()
    back = read_wav(data)
    assert back.rate == 24000
    assert back.samples.tolist() == SAMPLES.tolist()


def test_round_trip_through_a_path_and_a_file_object(tmp_path: Path) -> None:
    chunk = PcmChunk(SAMPLES, 8000)
    path = tmp_path / "x.wav"
    write_wav(path, chunk)
    assert read_wav(path).samples.tolist() == SAMPLES.tolist()
    assert read_wav(str(path)).rate == 8000
    buf = io.BytesIO()
    write_wav(buf, chunk)
    buf.seek(0)
    assert read_wav(buf).samples.tolist() == SAMPLES.tolist()
    empty = read_wav(wav_bytes(PcmChunk(np.zeros(0, dtype=np.int16), 16000)))
    assert (empty.num_samples, empty.rate) == (0, 16000)


def test_8_bit_unsigned() -> None:
    data = riff(fmt(1, 1, 8000, 8), bytes([128, 129, 127, 255, 0]))
    assert read_wav(data).samples.tolist() == [0, 256, -256, 32512, -32768]


def test_24_bit() -> None:
    values = [0, 256, -256, 8388607, -8388608, 128, 0x123456]
    payload = b"".join(v.to_bytes(3, "little", signed=True) for v in values)
    # scaled by 1/256 and rounded to nearest (ties to even): 128/256 = 0.5 -> 0, 0x123456/256 = 4660.2 -> 4660
    assert read_wav(riff(fmt(1, 1, 48000, 24), payload)).samples.tolist() == [
        0,
        1,
        -1,
        32767,
        -32768,
        0,
        4660,
    ]


def test_32_bit_int() -> None:
    payload = np.array([0, 65536, -65536, 2**31 - 1, -(2**31), 98304], dtype="<i4").tobytes()
    assert read_wav(riff(fmt(1, 1, 16000, 32), payload)).samples.tolist() == [0, 1, -1, 32767, -32768, 2]


def test_32_bit_float_clips() -> None:
    payload = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0, 1 / 32768], dtype="<f4").tobytes()
    chunk = read_wav(riff(fmt(3, 1, 22050, 32), payload))
    assert chunk.rate == 22050
    assert chunk.samples.tolist() == [0, 16384, -16384, 32767, -32768, 32767, 1]


def test_extensible_float_and_pcm() -> None:
    payload = np.array([0.25, -0.25], dtype="<f4").tobytes()
    assert read_wav(riff(extensible(1, 8000, 32, 3), payload)).samples.tolist() == [8192, -8192]
    payload = np.array([5, -5], dtype="<i2").tobytes()
    assert read_wav(riff(extensible(1, 8000, 16, 1), payload)).samples.tolist() == [5, -5]


def test_stereo_is_downmixed_to_mono() -> None:
    frames = np.array([[1000, 3000], [-100, 100], [32767, 32767], [7, 8]], dtype="<i2")
    chunk = read_wav(riff(fmt(1, 2, 44100, 16), frames.tobytes()))
    assert chunk.rate == 44100
    assert chunk.samples.tolist() == [2000, 0, 32767, 8]  # 7.5 rounds to even


def test_other_chunks_odd_padding_and_overlong_data_size() -> None:
    extra = b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd-sized chunk with its pad byte
    payload = np.array([1, 2, 3], dtype="<i2").tobytes()
    assert read_wav(riff(fmt(1, 1, 8000, 16), payload, extra_chunks=extra)).samples.tolist() == [1, 2, 3]
    # a streamed WAV whose data size says "unknown/huge": read what is there, whole frames only
    streamed = riff(fmt(1, 1, 8000, 16), payload + b"\x09", data_size=0xFFFFFFFF, pad=False)
    assert read_wav(streamed).samples.tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a WAV"),
        (b"hello world, not a wav file at all", "not a WAV"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "not a WAV"),
        (b"RIFF\x04\x00\x00\x00WAVE", "no fmt"),
        (riff(fmt(1, 1, 8000, 16), b"")[:36], "no data"),
        (riff(fmt(2, 1, 8000, 4), b"\x00"), "unsupported WAV encoding 0x0002"),
        (riff(fmt(1, 1, 8000, 12), b"\x00\x00"), "12-bit PCM"),
        (riff(fmt(3, 1, 8000, 16), b"\x00\x00"), "16-bit float"),
        (riff(fmt(1, 0, 8000, 16), b"\x00\x00"), "0 channels"),
        (riff(fmt(1, 1, 0, 16), b"\x00\x00"), "at 0 Hz"),
        (riff(fmt(1, 1, 8000, 16)[:12], b"\x00\x00"), "fmt chunk too short"),
        (riff(fmt(0xFFFE, 1, 8000, 16), b"\x00\x00"), "EXTENSIBLE fmt chunk too short"),
        (riff(struct.pack("<HHIIHH", 1, 2, 8000, 32000, 3, 16), b"\x00\x00"), "block align"),
    ],
)
def test_junk_is_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(WavError, match=message) as info:
        read_wav(data)
    assert isinstance(info.value, ProtocolError)
    assert isinstance(info.value, ValueError)


def test_data_before_fmt_is_rejected() -> None:
    data = b"RIFF" + struct.pack("<I", 16) + b"WAVE" + b"data" + struct.pack("<I", 0)
    with pytest.raises(WavError, match="before the fmt"):
        read_wav(data)


def test_random_bytes_never_escape_as_other_errors() -> None:
    rng = np.random.default_rng(5)
    good = riff(fmt(1, 2, 8000, 16), np.arange(64, dtype="<i2").tobytes())
    for _ in range(300):
        corrupt = bytearray(good)
        for pos in rng.integers(0, len(good), size=int(rng.integers(1, 6))):
            corrupt[pos] = int(rng.integers(0, 256))
        cut = bytes(corrupt[: int(rng.integers(0, len(good) + 1))])
        try:
            chunk = read_wav(cut)
        except WavError:
            continue
        assert chunk.samples.dtype == np.int16
