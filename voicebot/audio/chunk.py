"""PcmChunk: the only shape in which audio crosses a module boundary.

A chunk is mono int16 samples plus the sample rate they were taken at. Everything else (Opus, G.711,
base64 PCM16 on the Realtime wire) is converted to or from a chunk at the edge that speaks it.

A chunk decoded from G.711 also keeps the bytes it came from (``g711``), and ``FrameSplitter`` cuts them
along with the samples; an edge that speaks the same law (the RTP sender, the Realtime ``audio/pcmu`` or
``audio/pcma`` wire) then forwards those bytes unchanged instead of encoding the samples again. Any other
transformation (resampling, concatenation, mixing) makes a chunk without them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

Int16Array = npt.NDArray[np.int16]

FRAME_MS = 20

G711Law = Literal["pcmu", "pcma"]
G711_SILENCE: dict[str, int] = {"pcmu": 0xFF, "pcma": 0xD5}  # the code of the sample value 0


@dataclass(frozen=True, slots=True)
class PcmChunk:
    """Mono signed 16-bit samples at ``rate`` Hz."""

    samples: Int16Array
    rate: int
    g711: tuple[G711Law, bytes] | None = field(default=None, compare=False, repr=False)
    """The G.711 payload (law, one byte per sample) these samples were decoded from, if any."""

    def __post_init__(self) -> None:
        if self.rate <= 0:
            raise ValueError(f"sample rate must be positive, got {self.rate}")
        if self.samples.dtype != np.int16 or self.samples.ndim != 1:
            raise ValueError(
                f"PcmChunk needs a 1-D int16 array, got {self.samples.dtype} with shape {self.samples.shape}"
            )
        if self.g711 is not None and len(self.g711[1]) != self.samples.shape[0]:
            raise ValueError(f"{len(self.g711[1])} G.711 bytes for {self.samples.shape[0]} samples")

    # construction -------------------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes, rate: int) -> PcmChunk:
        """From raw little-endian PCM16 (the Realtime API's ``audio/pcm``)."""
        if len(data) % 2:
            raise ValueError(f"PCM16 data must have an even number of bytes, got {len(data)}")
        return cls(np.frombuffer(data, dtype="<i2").astype(np.int16, copy=False), rate)

    @classmethod
    def silence(cls, ms: int, rate: int) -> PcmChunk:
        return cls(np.zeros(ms_to_samples(ms, rate), dtype=np.int16), rate)

    @classmethod
    def concat(cls, chunks: list[PcmChunk], rate: int | None = None) -> PcmChunk:
        if not chunks:
            if rate is None:
                raise ValueError("concat of no chunks needs a rate")
            return cls(np.zeros(0, dtype=np.int16), rate)
        r = chunks[0].rate
        if any(c.rate != r for c in chunks):
            raise ValueError("cannot concatenate chunks of different rates")
        return cls(np.concatenate([c.samples for c in chunks]), r)

    # views ----------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Raw little-endian PCM16."""
        return self.samples.astype("<i2", copy=False).tobytes()

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_ms(self) -> float:
        return self.num_samples * 1000.0 / self.rate

    def __len__(self) -> int:
        return self.num_samples

    def rms(self) -> float:
        """Root mean square level, in int16 units (0 for an empty chunk)."""
        if self.num_samples == 0:
            return 0.0
        x = self.samples.astype(np.float64)
        return float(np.sqrt(np.mean(x * x)))

    def frames(self, ms: int = FRAME_MS) -> Iterator[PcmChunk]:
        """Split into whole frames of ``ms`` milliseconds; a short tail is yielded last, unpadded."""
        n = ms_to_samples(ms, self.rate)
        if n <= 0:
            raise ValueError(f"frame of {ms} ms at {self.rate} Hz has no samples")
        for start in range(0, self.num_samples, n):
            yield PcmChunk(self.samples[start : start + n], self.rate)


def ms_to_samples(ms: float, rate: int) -> int:
    """Samples in ``ms`` milliseconds at ``rate`` Hz, rounded down."""
    return int(ms * rate // 1000)


def samples_to_ms(samples: int, rate: int) -> int:
    """Whole milliseconds covered by ``samples`` at ``rate`` Hz, rounded down (never overstates)."""
    return samples * 1000 // rate


class FrameSplitter:
    """Re-frames a stream of chunks of any length into exact frames of ``ms`` milliseconds."""

    def __init__(self, rate: int, ms: int = FRAME_MS) -> None:
        self.rate = rate
        self.frame_samples = ms_to_samples(ms, rate)
        if self.frame_samples <= 0:
            raise ValueError(f"frame of {ms} ms at {rate} Hz has no samples")
        self._pending = np.zeros(0, dtype=np.int16)
        self._law: G711Law | None = None  # the G.711 bytes of the pending samples travel along (or None)
        self._pending_g711 = b""

    def push(self, chunk: PcmChunk) -> list[PcmChunk]:
        if chunk.rate != self.rate:
            raise ValueError(f"FrameSplitter at {self.rate} Hz got a chunk at {chunk.rate} Hz")
        self._carry_g711(chunk)
        buf = np.concatenate([self._pending, chunk.samples]) if self._pending.size else chunk.samples
        n = self.frame_samples
        whole = buf.shape[0] // n
        law, coded = self._law, self._pending_g711
        out = [
            PcmChunk(
                buf[i * n : (i + 1) * n].copy(),
                self.rate,
                None if law is None else (law, coded[i * n : (i + 1) * n]),
            )
            for i in range(whole)
        ]
        self._pending = buf[whole * n :].copy()
        self._pending_g711 = coded[whole * n :]
        return out

    def _carry_g711(self, chunk: PcmChunk) -> None:
        """Keep the G.711 bytes alongside while every pending sample has them in one law."""
        g711 = chunk.g711
        if not self._pending.size:
            self._law, self._pending_g711 = g711 if g711 is not None else (None, b"")
        elif g711 is not None and g711[0] == self._law:
            self._pending_g711 += g711[1]
        else:
            self._law, self._pending_g711 = None, b""

    def flush(self, pad: bool = True) -> list[PcmChunk]:
        """The remainder as one last frame (zero-padded to a whole frame when ``pad``)."""
        if not self._pending.size:
            return []
        tail, law, coded = self._pending, self._law, self._pending_g711
        if pad:
            missing = self.frame_samples - tail.shape[0]
            tail = np.concatenate([tail, np.zeros(missing, dtype=np.int16)])
            coded += bytes([G711_SILENCE[law]]) * missing if law is not None else b""
        self._pending = np.zeros(0, dtype=np.int16)
        self._law, self._pending_g711 = None, b""
        return [PcmChunk(tail, self.rate, None if law is None else (law, coded))]

    @property
    def pending_samples(self) -> int:
        return int(self._pending.shape[0])
