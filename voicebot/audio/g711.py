"""G.711 µ-law (PCMU) and A-law (PCMA) for the RTP edge, with numpy lookup tables.

Reference: ITU-T Recommendation G.711 as implemented in the classic Sun Microsystems ``g711.c``
(``linear2ulaw`` / ``ulaw2linear`` / ``linear2alaw`` / ``alaw2linear``), which CPython's ``audioop`` module
also follows (``lin2ulaw`` / ``ulaw2lin`` / ``lin2alaw`` / ``alaw2lin`` with width 2). The output is
bit-exact with both for every int16 input and every code byte (see tests/audio/test_g711.py):

- µ-law encode: drop the two low bits (arithmetic shift), take the magnitude, clip it to 8159, add the bias
  33, find the segment (the first of 0x3F, 0x7F, ... 0x1FFF that is >= the value), keep 4 mantissa bits,
  and invert all bits (only the low 7 for negative samples). Decode: ``t = ((mantissa << 3) + 0x84) << seg``,
  result ``t - 0x84`` (or ``0x84 - t`` when the sign bit of the inverted code is set).
- A-law encode: drop three low bits, for negatives take ``-x - 1``, find the segment among 0x1F ... 0xFFF,
  keep 4 mantissa bits, and XOR with 0xD5 (positive) or 0x55 (negative). Decode: XOR with 0x55,
  ``t = (mantissa << 4) + 8`` for segment 0, else ``((mantissa << 4) + 0x108) << (seg - 1)``; the sign bit
  set means positive.

Encoding is one lookup in a 65536-entry table indexed by ``sample + 32768``; decoding one lookup in a
256-entry table. Both tables are built once at import, vectorised.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from voicebot.audio.chunk import PcmChunk

G711_RATE: Final = 8000

_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 2
    negative = pcm < 0
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_ULAW_SEG_END, mag).astype(np.int32)
    code = (seg << 4) | ((mag >> (seg + 1)) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ np.where(negative, 0x7F, 0xFF)).astype(np.uint8)


def _ulaw_decode_table() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    pcm = np.arange(-32768, 32768, dtype=np.int32) >> 3
    negative = pcm < 0
    mag = np.where(negative, -pcm - 1, pcm)
    seg = np.searchsorted(_ALAW_SEG_END, mag).astype(np.int32)
    mantissa = np.where(seg < 2, mag >> 1, mag >> np.maximum(seg, 1)) & 0xF
    code = np.where(seg >= 8, 0x7F, (seg << 4) | mantissa)
    return (code ^ np.where(negative, 0x55, 0xD5)).astype(np.uint8)


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = (a & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


ULAW_ENCODE: Final = _ulaw_encode_table()
ULAW_DECODE: Final = _ulaw_decode_table()
ALAW_ENCODE: Final = _alaw_encode_table()
ALAW_DECODE: Final = _alaw_decode_table()
for _table in (ULAW_ENCODE, ULAW_DECODE, ALAW_ENCODE, ALAW_DECODE):
    _table.setflags(write=False)


def _encode(table: npt.NDArray[np.uint8], samples: npt.NDArray[np.int16]) -> bytes:
    if samples.dtype != np.int16 or samples.ndim != 1:
        raise ValueError(f"G.711 encodes a 1-D int16 array, got {samples.dtype} with shape {samples.shape}")
    return table[samples.astype(np.int32) + 32768].tobytes()


def _decode(table: npt.NDArray[np.int16], data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    out: npt.NDArray[np.int16] = table[np.frombuffer(data, dtype=np.uint8)]
    return out


def ulaw_encode(samples: npt.NDArray[np.int16]) -> bytes:
    """int16 samples to µ-law bytes (one byte per sample)."""
    return _encode(ULAW_ENCODE, samples)


def ulaw_decode(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """µ-law bytes to int16 samples."""
    return _decode(ULAW_DECODE, data)


def alaw_encode(samples: npt.NDArray[np.int16]) -> bytes:
    """int16 samples to A-law bytes (one byte per sample)."""
    return _encode(ALAW_ENCODE, samples)


def alaw_decode(data: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
    """A-law bytes to int16 samples."""
    return _decode(ALAW_DECODE, data)


def chunk_to_ulaw(chunk: PcmChunk) -> bytes:
    """Encode a chunk (callers resample to 8 kHz first; the rate is not checked). A chunk decoded from
    µ-law gives back the bytes it was decoded from."""
    g711 = chunk.g711
    if g711 is not None and g711[0] == "pcmu":
        return g711[1]
    return ulaw_encode(chunk.samples)


def ulaw_to_chunk(data: bytes | bytearray | memoryview, rate: int = G711_RATE) -> PcmChunk:
    """Decode µ-law; the chunk keeps the bytes so a µ-law edge can forward them unchanged."""
    return PcmChunk(ulaw_decode(data), rate, ("pcmu", bytes(data)))


def chunk_to_alaw(chunk: PcmChunk) -> bytes:
    """Encode a chunk (callers resample to 8 kHz first; the rate is not checked). A chunk decoded from
    A-law gives back the bytes it was decoded from."""
    g711 = chunk.g711
    if g711 is not None and g711[0] == "pcma":
        return g711[1]
    return alaw_encode(chunk.samples)


def alaw_to_chunk(data: bytes | bytearray | memoryview, rate: int = G711_RATE) -> PcmChunk:
    """Decode A-law; the chunk keeps the bytes so an A-law edge can forward them unchanged."""
    return PcmChunk(alaw_decode(data), rate, ("pcma", bytes(data)))
