"""Long recordings for the transcription endpoint (pure): cut at silences, and subtitles from segments.

Upstreams limit one transcription request (OpenAI: 25 MB; the local engine: 600 s), and one long request
gives no progress. ``split_at_silences`` cuts a recording into pieces of at most ``max_s`` seconds, each cut
placed in the quietest stretch of the last ``search_s`` seconds before the limit, so no word is cut in two.
``render_srt`` / ``render_vtt`` write subtitles from (start, end, text) segments with times already shifted
to the whole recording.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voicebot.audio.chunk import PcmChunk

_WINDOW_MS = 300  # the quiet stretch a cut looks for
_STEP_MS = 20


@dataclass(frozen=True, slots=True)
class Piece:
    start_s: float
    audio: PcmChunk

    @property
    def end_s(self) -> float:
        return self.start_s + self.audio.duration_ms / 1000


@dataclass(frozen=True, slots=True)
class Cue:
    start_s: float
    end_s: float
    text: str


def split_at_silences(audio: PcmChunk, *, max_s: float = 120.0, search_s: float = 20.0) -> list[Piece]:
    """Pieces of at most ``max_s`` seconds that together are exactly ``audio``."""
    if max_s <= 0 or not 0 < search_s < max_s:
        raise ValueError("need max_s > search_s > 0")
    rate, n = audio.rate, audio.num_samples
    limit = int(max_s * rate)
    pieces: list[Piece] = []
    start = 0
    while n - start > limit:
        cut = _quietest(audio.samples, start + limit - int(search_s * rate), start + limit, rate)
        pieces.append(Piece(start / rate, PcmChunk(audio.samples[start:cut].copy(), rate)))
        start = cut
    pieces.append(Piece(start / rate, PcmChunk(audio.samples[start:].copy(), rate)))
    return pieces


def _quietest(samples: np.ndarray, lo: int, hi: int, rate: int) -> int:
    """The sample index in [lo, hi] at the centre of the quietest ``_WINDOW_MS`` stretch."""
    step = rate * _STEP_MS // 1000
    window = rate * _WINDOW_MS // 1000
    region = samples[lo:hi].astype(np.float64)
    frames = region.size // step
    if frames == 0:
        return hi
    energy = (region[: frames * step].reshape(frames, step) ** 2).mean(axis=1)
    width = max(1, window // step)
    smooth = np.convolve(energy, np.ones(width) / width, mode="same")
    best = int(np.argmin(smooth[::-1]))  # ties go to the latest stretch: pieces stay long
    index = frames - 1 - best
    return min(hi, lo + index * step + step // 2)


def _stamp(seconds: float, sep: str) -> str:
    ms = round(max(0.0, seconds) * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"


def render_srt(cues: list[Cue]) -> str:
    blocks = [
        f"{n}\n{_stamp(c.start_s, ',')} --> {_stamp(c.end_s, ',')}\n{c.text.strip()}\n"
        for n, c in enumerate((c for c in cues if c.text.strip()), start=1)
    ]
    return "\n".join(blocks)


def render_vtt(cues: list[Cue]) -> str:
    blocks = [
        f"{_stamp(c.start_s, '.')} --> {_stamp(c.end_s, '.')}\n{c.text.strip()}\n"
        for c in cues
        if c.text.strip()
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)
