"""Audio on the Realtime wire: decode input formats, encode output formats, cut deltas (pure).

Input (``audio/pcm`` 24 kHz, ``audio/pcmu``, ``audio/pcma`` 8 kHz) is decoded to ``PcmChunk`` and resampled
with a stateful resampler to the VAD/STT rate. Output audio (24 kHz from TTS) is encoded to the session's
output format and cut into deltas of about ``DELTA_MS``.
"""

from __future__ import annotations

import binascii
from typing import Any

from voicebot.audio.chunk import PcmChunk
from voicebot.audio.g711 import alaw_to_chunk, chunk_to_alaw, chunk_to_ulaw, ulaw_to_chunk
from voicebot.audio.resample import StreamResampler

PCM_RATE = 24000
G711_RATE = 8000
DELTA_MS = 150


def format_type(fmt: Any) -> str:
    return str(fmt.get("type", "audio/pcm")) if isinstance(fmt, dict) else "audio/pcm"


def wire_rate(fmt: Any) -> int:
    return PCM_RATE if format_type(fmt) == "audio/pcm" else G711_RATE


def bytes_per_ms(fmt: Any) -> int:
    """48 for 24 kHz PCM16, 8 for G.711."""
    return 48 if format_type(fmt) == "audio/pcm" else 8


def decode_b64(data: str) -> bytes:
    """Strict base64 (raises ``ValueError`` on anything else)."""
    try:
        return binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(str(exc)) from exc


def decode_audio(raw: bytes, fmt: Any) -> PcmChunk:
    """Wire bytes in ``fmt`` → samples at the wire rate. Raises ``ValueError`` on odd-length PCM16."""
    kind = format_type(fmt)
    if kind == "audio/pcmu":
        return ulaw_to_chunk(raw)
    if kind == "audio/pcma":
        return alaw_to_chunk(raw)
    return PcmChunk.from_bytes(raw, PCM_RATE)


class InputDecoder:
    """Wire bytes → chunks at ``out_rate`` (stateful; one per input stream and format)."""

    def __init__(self, fmt: Any, out_rate: int) -> None:
        self.fmt = fmt
        self._resampler = StreamResampler(wire_rate(fmt), out_rate)
        self._odd = b""

    def decode(self, raw: bytes) -> PcmChunk:
        if format_type(self.fmt) == "audio/pcm":
            raw = self._odd + raw
            cut = len(raw) - (len(raw) % 2)
            raw, self._odd = raw[:cut], raw[cut:]
        return self._resampler.process(decode_audio(raw, self.fmt))


class OutputEncoder:
    """24 kHz TTS chunks → wire bytes in ``fmt`` (stateful resampling to 8 kHz for G.711)."""

    def __init__(self, fmt: Any) -> None:
        self.fmt = fmt
        self._kind = format_type(fmt)
        self._resampler = StreamResampler(PCM_RATE, G711_RATE) if self._kind != "audio/pcm" else None

    def _encode(self, chunk: PcmChunk) -> bytes:
        if self._kind == "audio/pcmu":
            return chunk_to_ulaw(chunk)
        if self._kind == "audio/pcma":
            return chunk_to_alaw(chunk)
        return chunk.to_bytes()

    def encode(self, chunk: PcmChunk) -> bytes:
        if self._resampler is not None:
            chunk = self._resampler.process(chunk)
        return self._encode(chunk)

    def flush(self) -> bytes:
        return self._encode(self._resampler.flush()) if self._resampler is not None else b""


def split_deltas(raw: bytes, fmt: Any, delta_ms: int = DELTA_MS) -> list[bytes]:
    """Cut wire audio into pieces of ``delta_ms`` (the last one shorter), on sample boundaries."""
    step = bytes_per_ms(fmt) * delta_ms
    return [raw[i : i + step] for i in range(0, len(raw), step)]
