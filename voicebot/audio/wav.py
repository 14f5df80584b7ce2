"""WAV files to and from PcmChunks.

``read_wav`` parses the RIFF container itself (so it can take WAVE_FORMAT_EXTENSIBLE and IEEE float files,
which the stdlib ``wave`` module in Python 3.11 rejects) and accepts integer PCM of 8 (unsigned), 16, 24 and
32 bits and float of 32 and 64 bits, any number of channels; channels are averaged into mono and everything
is converted to int16 (rounded to nearest, clipped). ``write_wav`` / ``wav_bytes`` write plain PCM16 mono
with the stdlib ``wave`` module.

Malformed input raises ``WavError`` (a ``ProtocolError`` and a ``ValueError``) with a message that says what
is wrong; nothing else escapes for bad bytes.
"""

from __future__ import annotations

import io
import os
import struct
import wave
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from voicebot.audio.chunk import PcmChunk
from voicebot.errors import ProtocolError

_PCM: Final = 0x0001
_FLOAT: Final = 0x0003
_EXTENSIBLE: Final = 0xFFFE


class WavError(ProtocolError, ValueError):
    """The bytes are not a WAV file this module can read."""

    code = "invalid_wav"


def read_wav(source: str | os.PathLike[str] | bytes | bytearray | memoryview | BinaryIO) -> PcmChunk:
    """A WAV file (a path, the file's bytes, or a binary file object) as one mono int16 chunk."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        with open(source, "rb") as f:
            data = f.read()
    else:
        data = source.read()
    fmt, payload = _split_chunks(data)
    tag, channels, rate, bits = _parse_fmt(fmt)
    frame_bytes = channels * (bits // 8)
    usable = len(payload) - len(payload) % frame_bytes
    samples = _decode_samples(payload[:usable], tag, bits).reshape(-1, channels)
    return PcmChunk(_to_mono_int16(samples, tag, bits), rate)


def _split_chunks(data: bytes) -> tuple[bytes, bytes]:
    """The bodies of the ``fmt `` and ``data`` chunks."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a WAV file (no RIFF/WAVE header)")
    fmt: bytes | None = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[
            pos + 8 : pos + 8 + size
        ]  # a streamed file may claim more than it holds: take what is there
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            if fmt is None:
                raise WavError("WAV data chunk comes before the fmt chunk")
            return fmt, body
        pos += 8 + size + (size & 1)
    raise WavError("WAV file has no fmt chunk" if fmt is None else "WAV file has no data chunk")


def _parse_fmt(fmt: bytes) -> tuple[int, int, int, int]:
    if len(fmt) < 16:
        raise WavError(f"WAV fmt chunk too short ({len(fmt)} bytes)")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE:
        if len(fmt) < 26:
            raise WavError("WAVE_FORMAT_EXTENSIBLE fmt chunk too short")
        tag = struct.unpack_from("<H", fmt, 24)[0]  # first two bytes of the sub-format GUID
    if tag not in (_PCM, _FLOAT):
        raise WavError(f"unsupported WAV encoding 0x{tag:04x} (only PCM and IEEE float)")
    allowed = (8, 16, 24, 32) if tag == _PCM else (32, 64)
    if bits not in allowed:
        kind = "PCM" if tag == _PCM else "float"
        raise WavError(f"unsupported WAV sample size: {bits}-bit {kind}")
    if channels == 0 or rate == 0:
        raise WavError(f"WAV file with {channels} channels at {rate} Hz")
    if block_align != channels * bits // 8:
        raise WavError(f"WAV block align {block_align} does not match {channels} x {bits}-bit")
    return tag, channels, rate, bits


def _decode_samples(payload: bytes, tag: int, bits: int) -> npt.NDArray[np.float64] | npt.NDArray[np.int32]:
    """Samples as int32 (PCM, at their own bit depth) or float64 (float, full scale 1.0)."""
    if tag == _FLOAT:
        return np.frombuffer(payload, dtype="<f4" if bits == 32 else "<f8").astype(np.float64)
    if bits == 8:
        return np.frombuffer(payload, dtype=np.uint8).astype(np.int32) - 128
    if bits == 24:
        b = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        return np.where(v >= 1 << 23, v - (1 << 24), v)
    return np.frombuffer(payload, dtype="<i2" if bits == 16 else "<i4").astype(np.int32)


def _to_mono_int16(samples: npt.NDArray[np.generic], tag: int, bits: int) -> npt.NDArray[np.int16]:
    if tag == _PCM and bits == 16 and samples.shape[1] == 1:
        return samples[:, 0].astype(np.int16)
    x = samples.astype(np.float64)
    x = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    scale = 32768.0 if tag == _FLOAT else 2.0 ** (16 - bits)
    return np.clip(np.rint(x * scale), -32768, 32767).astype(np.int16)


def write_wav(target: str | os.PathLike[str] | BinaryIO, chunk: PcmChunk) -> None:
    """Write ``chunk`` as a PCM16 mono WAV file to a path or a binary file object."""
    dest: str | BinaryIO = os.fspath(target) if isinstance(target, str | os.PathLike) else target
    with wave.open(dest, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(chunk.rate)
        w.writeframes(chunk.to_bytes())


def wav_bytes(chunk: PcmChunk) -> bytes:
    """``chunk`` as the bytes of a PCM16 mono WAV file."""
    buf = io.BytesIO()
    write_wav(buf, chunk)
    return buf.getvalue()
