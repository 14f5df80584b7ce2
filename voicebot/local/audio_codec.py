"""Audio files in and out of the local engine's audio endpoints (pure: av and numpy only).

``decode_audio`` reads anything av can demux (wav, mp3, ogg/opus, flac, webm, m4a/mp4, aac) into one mono
``PcmChunk``. ``AudioEncoder`` turns a stream of 24 kHz chunks into the bytes of one of the formats of
``POST /v1/audio/speech`` incrementally, so the audio can be sent while it is still being synthesized:
``pcm`` (raw s16le), ``wav`` (a streamable header whose sizes say "unknown", as OpenAI's streamed WAV does),
``mp3`` (libmp3lame), ``opus`` (Ogg Opus), ``aac`` (ADTS) and ``flac``.
"""

from __future__ import annotations

import contextlib
import io
import struct
from typing import Any

import av
import numpy as np

from voicebot.audio.chunk import PcmChunk
from voicebot.errors import BadRequest

SPEECH_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
# format → (av container, av encoder, bit rate or None)
_AV_FORMATS: dict[str, tuple[str, str, int | None]] = {
    "mp3": ("mp3", "libmp3lame", 64000),
    "opus": ("ogg", "libopus", 32000),
    "aac": ("adts", "aac", 64000),
    "flac": ("flac", "flac", None),
}
_UNKNOWN_SIZE = 0xFFFFFFFF


class AudioDecodeError(BadRequest):
    code = "invalid_value"


def decode_audio(data: bytes, *, rate: int = 16000, max_seconds: float = 600.0) -> PcmChunk:
    """Decode a whole audio file to mono int16 at ``rate``; ``AudioDecodeError`` when it cannot be read."""
    limit = int(max_seconds * rate)
    parts: list[np.ndarray[Any, np.dtype[np.int16]]] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise AudioDecodeError("The file holds no audio stream.", param="file")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            for frame in container.decode(stream):
                if not isinstance(frame, av.AudioFrame):
                    continue
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
                    total += parts[-1].shape[0]
                if total > limit:
                    raise AudioDecodeError(
                        f"The audio is longer than {max_seconds:.0f} seconds, the most this engine "
                        "transcribes.",
                        param="file",
                    )
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1).astype(np.int16, copy=False))
    except AudioDecodeError:
        raise
    except (av.FFmpegError, ValueError, IndexError, OSError) as exc:
        raise AudioDecodeError(
            f"The audio file could not be decoded or its format is not supported ({exc}).", param="file"
        ) from None
    samples = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return PcmChunk(np.ascontiguousarray(samples, dtype=np.int16), rate)


def wav_header(rate: int, *, data_bytes: int | None = None) -> bytes:
    """A 44-byte PCM16 mono WAV header; without ``data_bytes`` the sizes say "unknown" (for streaming)."""
    size = _UNKNOWN_SIZE if data_bytes is None else data_bytes
    riff = _UNKNOWN_SIZE if data_bytes is None else 36 + data_bytes
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", size)
    )


class _Sink:
    """A write-only file for av's muxer: it collects what was written until ``take``."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes | memoryview) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class AudioEncoder:
    """Encodes consecutive mono chunks at ``rate`` into ``fmt``; ``encode`` and ``finish`` return the new
    bytes."""

    def __init__(self, fmt: str, rate: int = 24000) -> None:
        if fmt not in SPEECH_FORMATS:
            raise BadRequest(f"unsupported audio format {fmt!r}", param="response_format")
        self.format = fmt
        self.rate = rate
        self._started = False
        self._sink = _Sink()
        self._container: Any = None
        self._stream: Any = None
        if fmt in _AV_FORMATS:
            container_fmt, codec, bit_rate = _AV_FORMATS[fmt]
            try:
                self._container = av.open(self._sink, mode="w", format=container_fmt)
                self._stream = self._container.add_stream(codec, rate=rate)
            except (av.FFmpegError, ValueError) as exc:
                if self._container is not None:
                    with contextlib.suppress(av.FFmpegError, ValueError):
                        self._container.close()
                raise BadRequest(
                    f"This engine's av build cannot encode '{fmt}' ({codec} in {container_fmt}: {exc}); "
                    "use 'wav' or 'pcm'.",
                    param="response_format",
                    code="unsupported_value",
                ) from None
            self._stream.layout = "mono"
            if bit_rate is not None:
                self._stream.bit_rate = bit_rate

    def encode(self, chunk: PcmChunk) -> bytes:
        if chunk.rate != self.rate:
            raise ValueError(f"encoder at {self.rate} Hz got a chunk at {chunk.rate} Hz")
        head = b""
        if not self._started:
            self._started = True
            head = wav_header(self.rate) if self.format == "wav" else b""
        if self._stream is None:
            return head + chunk.to_bytes()
        if chunk.num_samples == 0:
            return head
        frame = av.AudioFrame.from_ndarray(chunk.samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.rate
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        return head + self._sink.take()

    def finish(self) -> bytes:
        """The encoder's tail (and the container trailer); the encoder cannot be used afterwards."""
        head = b""
        if not self._started:
            self._started = True
            head = wav_header(self.rate, data_bytes=0) if self.format == "wav" else b""
        if self._stream is None:
            return head
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._stream = None
        return head + self._sink.take()

    def close(self) -> None:
        """Release av's resources without writing anything more (used when a stream is abandoned)."""
        if self._container is not None and self._stream is not None:
            self._stream = None
            with contextlib.suppress(av.FFmpegError):
                self._container.close()
