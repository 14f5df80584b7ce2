"""G.711 against the Sun Microsystems g711.c algorithm (re-implemented here per sample) and stdlib audioop."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from voicebot.audio import PcmChunk
from voicebot.audio.g711 import (
    alaw_decode,
    alaw_encode,
    alaw_to_chunk,
    chunk_to_alaw,
    chunk_to_ulaw,
    ulaw_decode,
    ulaw_encode,
    ulaw_to_chunk,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))

# --- a straightforward per-sample transcription of Sun's g711.c ------------------------------------------
SEG_UEND = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF]
SEG_AEND = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]


def search(val: int, table: list[int]) -> int:
    for i, end in enumerate(table):
        if val <= end:
            return i
    return len(table)


def ref_linear2ulaw(pcm: int) -> int:
    pcm >>= 2
    if pcm < 0:
        pcm = -pcm
        mask = 0x7F
    else:
        mask = 0xFF
    if pcm > 8159:
        pcm = 8159
    pcm += 0x84 >> 2
    seg = search(pcm, SEG_UEND)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((pcm >> (seg + 1)) & 0xF)) ^ mask


def ref_ulaw2linear(u: int) -> int:
    u = ~u & 0xFF
    t = ((u & 0x0F) << 3) + 0x84
    t <<= (u & 0x70) >> 4
    return 0x84 - t if u & 0x80 else t - 0x84


def ref_linear2alaw(pcm: int) -> int:
    pcm >>= 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg = search(pcm, SEG_AEND)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= ((pcm >> 1) if seg < 2 else (pcm >> seg)) & 0x0F
    return aval ^ mask


def ref_alaw2linear(a: int) -> int:
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


# --- decode: all 256 codes ----------------------------------------------------------------------------
def test_ulaw_decode_all_codes_match_reference_and_audioop() -> None:
    got = ulaw_decode(ALL_CODES)
    assert got.dtype == np.int16
    assert got.tolist() == [ref_ulaw2linear(c) for c in range(256)]
    assert got.tobytes() == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_decode_all_codes_match_reference_and_audioop() -> None:
    got = alaw_decode(ALL_CODES)
    assert got.dtype == np.int16
    assert got.tolist() == [ref_alaw2linear(c) for c in range(256)]
    assert got.tobytes() == audioop.alaw2lin(ALL_CODES, 2)


# --- encode: every int16 value ------------------------------------------------------------------------
def test_ulaw_encode_every_int16_matches_reference_and_audioop() -> None:
    got = ulaw_encode(ALL_INT16)
    assert len(got) == 65536
    assert got == bytes(ref_linear2ulaw(v) for v in range(-32768, 32768))
    assert got == audioop.lin2ulaw(ALL_INT16.astype("<i2").tobytes(), 2)


def test_alaw_encode_every_int16_matches_reference_and_audioop() -> None:
    got = alaw_encode(ALL_INT16)
    assert len(got) == 65536
    assert got == bytes(ref_linear2alaw(v) for v in range(-32768, 32768))
    assert got == audioop.lin2alaw(ALL_INT16.astype("<i2").tobytes(), 2)


# --- known values ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "value"), [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124)])
def test_ulaw_known_codes(code: int, value: int) -> None:
    assert int(ulaw_decode(bytes([code]))[0]) == value


@pytest.mark.parametrize(("code", "value"), [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256)])
def test_alaw_known_codes(code: int, value: int) -> None:
    assert int(alaw_decode(bytes([code]))[0]) == value


def test_known_encodings() -> None:
    samples = np.array([0, -1, 32767, -32768], dtype=np.int16)
    # -1 >> 2 is -1 (arithmetic shift), so -1 lands in the first negative step (0x7E, which decodes to -8)
    assert ulaw_encode(samples) == bytes([0xFF, 0x7E, 0x80, 0x00])
    assert alaw_encode(samples) == bytes([0xD5, 0x55, 0xAA, 0x2A])


# --- properties and conveniences --------------------------------------------------------------------------
def test_decode_then_encode_is_identity_on_decoded_values() -> None:
    for enc, dec in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        values = dec(ALL_CODES)
        assert np.array_equal(dec(enc(values)), values)


def test_chunk_conveniences_round_trip_at_8k() -> None:
    chunk = PcmChunk(np.array([0, 100, -100, 5000, -5000, 32767, -32768], dtype=np.int16), 8000)
    for to_bytes, to_chunk in ((chunk_to_ulaw, ulaw_to_chunk), (chunk_to_alaw, alaw_to_chunk)):
        data = to_bytes(chunk)
        assert len(data) == chunk.num_samples
        back = to_chunk(data)
        assert back.rate == 8000
        assert back.num_samples == chunk.num_samples
        # companding error is below 1/16 of the magnitude plus the smallest step
        err = np.abs(back.samples.astype(np.int32) - chunk.samples.astype(np.int32))
        assert np.all(err <= np.abs(chunk.samples.astype(np.int32)) // 16 + 16)
    assert ulaw_to_chunk(b"\xff\xff", rate=16000).rate == 16000


def test_encode_rejects_wrong_dtype() -> None:
    with pytest.raises(ValueError, match="int16"):
        ulaw_encode(np.zeros(4, dtype=np.int32))
    with pytest.raises(ValueError, match="int16"):
        alaw_encode(np.zeros((2, 2), dtype=np.int16))


def test_empty_input() -> None:
    assert ulaw_encode(np.zeros(0, dtype=np.int16)) == b""
    assert alaw_decode(b"").shape == (0,)
