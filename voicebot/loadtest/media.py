"""The callers' microphone (pure): recorded utterances, resampled once, played out 20 ms at a time.

``load_utterances`` reads WAV files of any rate and channel count (``voicebot.audio.wav``) and resamples each
to the caller's rate. A ``Player`` hands out one frame per call of ``next_frame``; the caller's adapter calls
it on its own 20 ms schedule (the WebRTC track's ``recv``, the SIP caller's RTP loop), so the pacing and the
clock stay in the adapters. The player says when the last voiced frame of an utterance went out (the end of
the caller's speech, where turn latency starts) and when the utterance is fully played.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from voicebot.audio.chunk import PcmChunk
from voicebot.audio.resample import resample
from voicebot.audio.wav import read_wav
from voicebot.errors import BadRequest

FRAME_MS = 20
#: A 20 ms frame of the caller's audio above this RMS counts as speech (for the end-of-speech mark).
SPEECH_RMS = 300.0


@dataclass(frozen=True, slots=True)
class Utterance:
    """One recorded utterance at the caller's rate; ``speech_end`` is the sample after its last voiced frame."""

    name: str
    samples: npt.NDArray[np.int16]
    rate: int
    speech_end: int

    @property
    def seconds(self) -> float:
        return int(self.samples.shape[0]) / self.rate


def _speech_end(samples: npt.NDArray[np.int16], rate: int) -> int:
    n = rate * FRAME_MS // 1000
    total = int(samples.shape[0])
    frames = total // n
    if frames == 0:
        return total
    x = samples[: frames * n].astype(np.float64).reshape(frames, n)
    rms = np.sqrt(np.mean(x * x, axis=1))
    voiced = np.flatnonzero(rms > SPEECH_RMS)
    return int(voiced[-1] + 1) * n if voiced.size else total


def make_utterance(name: str, chunk: PcmChunk, rate: int) -> Utterance:
    """``chunk`` resampled to ``rate`` (one stateless pass over the whole recording)."""
    if chunk.num_samples == 0:
        raise BadRequest(f"{name}: the audio file holds no samples")
    audio = chunk if chunk.rate == rate else resample(chunk, rate)
    samples = np.asarray(audio.samples, dtype=np.int16)
    return Utterance(name, samples, rate, _speech_end(samples, rate))


def load_utterances(paths: list[str | os.PathLike[str]], rate: int) -> list[Utterance]:
    """Read and resample every WAV file; a missing or unreadable file is a ``BadRequest`` naming it."""
    out = []
    for p in paths:
        path = Path(p)
        try:
            chunk = read_wav(path)
        except FileNotFoundError:
            raise BadRequest(f"{path}: no such audio file") from None
        except (OSError, ValueError) as exc:
            raise BadRequest(f"{path}: cannot read it as WAV: {exc}") from None
        out.append(make_utterance(path.name, chunk, rate))
    return out


@dataclass(frozen=True, slots=True)
class Frame:
    samples: npt.NDArray[np.int16]
    speech_ended: bool  # this frame held the last voiced audio of an utterance
    drained: bool  # this frame finished an utterance


class Player:
    """A queue of utterances played frame by frame; silence when nothing is queued."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.frame_samples = rate * FRAME_MS // 1000
        self._queue: deque[Utterance] = deque()
        self._pos = 0

    @property
    def idle(self) -> bool:
        return not self._queue

    def queue(self, utterance: Utterance) -> None:
        if utterance.rate != self.rate:
            raise ValueError(f"utterance at {utterance.rate} Hz queued on a {self.rate} Hz player")
        self._queue.append(utterance)

    def next_frame(self) -> Frame:
        n = self.frame_samples
        if not self._queue:
            return Frame(np.zeros(n, dtype=np.int16), False, False)
        utt = self._queue[0]
        start, end = self._pos, min(self._pos + n, utt.samples.shape[0])
        out = utt.samples[start:end]
        if out.shape[0] < n:
            out = np.concatenate([out, np.zeros(n - out.shape[0], dtype=np.int16)])
        ended = start < utt.speech_end <= end or (utt.speech_end == 0 and start == 0)
        self._pos = end
        drained = end >= utt.samples.shape[0]
        if drained:
            self._queue.popleft()
            self._pos = 0
        return Frame(out, ended, drained)
