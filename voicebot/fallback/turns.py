"""Turn detection for the cascade (pure): VAD probabilities in, "speech started" / "turn over" out.

The adapter runs a frame VAD (webrtcvad, silero, or the energy detector) on the caller's audio and feeds
each frame with its speech probability to ``TurnDetector.push``. Time is counted in audio, not read from a
clock, so the same audio always gives the same turns:

* speech starts after ``min_speech_ms`` of consecutive frames at or above ``threshold``; the utterance then
  includes up to ``prefix_ms`` of the audio before it (the soft start of the first word);
* the turn is over after ``silence_ms`` of frames below ``release`` (hysteresis: ``release`` < ``threshold``),
  or when the utterance reaches ``max_utterance_ms``; the ``TurnOver`` event carries the utterance.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from voicebot.audio.chunk import PcmChunk


@dataclass(frozen=True, slots=True)
class SpeechBegan:
    """The caller started speaking (``at_ms``: audio time of the first speech frame)."""

    at_ms: float


@dataclass(frozen=True, slots=True)
class TurnOver:
    """The caller's turn ended; ``audio`` is the whole utterance (prefix included, trailing silence too)."""

    audio: PcmChunk
    at_ms: float
    forced: bool = False  # cut at max_utterance_ms rather than ended by silence


TurnEvent = SpeechBegan | TurnOver


class TurnDetector:
    def __init__(
        self,
        rate: int,
        *,
        threshold: float = 0.5,
        release: float = 0.35,
        min_speech_ms: float = 100.0,
        silence_ms: float = 500.0,
        prefix_ms: float = 300.0,
        max_utterance_ms: float = 30_000.0,
    ) -> None:
        if not 0 < release <= threshold <= 1:
            raise ValueError("need 0 < release <= threshold <= 1")
        if silence_ms <= 0 or min_speech_ms < 0 or prefix_ms < 0 or max_utterance_ms <= 0:
            raise ValueError("durations must be positive")
        self.rate = rate
        self.threshold = threshold
        self.release = release
        self.min_speech_ms = min_speech_ms
        self.silence_ms = silence_ms
        self.prefix_ms = prefix_ms
        self.max_utterance_ms = max_utterance_ms
        self.speaking = False
        self._clock_ms = 0.0  # audio time pushed so far
        self._prefix: deque[PcmChunk] = deque()
        self._prefix_ms = 0.0
        self._candidate: list[PcmChunk] = []
        self._candidate_ms = 0.0
        self._utterance: list[PcmChunk] = []
        self._utterance_ms = 0.0
        self._silent_ms = 0.0

    @property
    def now_ms(self) -> float:
        return self._clock_ms

    def push(self, frame: PcmChunk, prob: float) -> list[TurnEvent]:
        """One frame (any length, at ``rate``) and its speech probability."""
        if frame.rate != self.rate:
            raise ValueError(f"TurnDetector at {self.rate} Hz got a frame at {frame.rate} Hz")
        ms = frame.duration_ms
        self._clock_ms += ms
        if self.speaking:
            return self._while_speaking(frame, prob, ms)
        return self._while_quiet(frame, prob, ms)

    def _while_quiet(self, frame: PcmChunk, prob: float, ms: float) -> list[TurnEvent]:
        if prob < self.threshold:
            for old in self._candidate:
                self._keep_prefix(old)
            self._candidate, self._candidate_ms = [], 0.0
            self._keep_prefix(frame)
            return []
        self._candidate.append(frame)
        self._candidate_ms += ms
        if self._candidate_ms < self.min_speech_ms:
            return []
        started = self._clock_ms - self._candidate_ms
        self.speaking = True
        self._utterance = [*self._prefix, *self._candidate]
        self._utterance_ms = self._prefix_ms + self._candidate_ms
        self._prefix.clear()
        self._prefix_ms = 0.0
        self._candidate, self._candidate_ms = [], 0.0
        self._silent_ms = 0.0
        return [SpeechBegan(started)]

    def _while_speaking(self, frame: PcmChunk, prob: float, ms: float) -> list[TurnEvent]:
        self._utterance.append(frame)
        self._utterance_ms += ms
        self._silent_ms = self._silent_ms + ms if prob < self.release else 0.0
        if self._silent_ms >= self.silence_ms:
            return [self._end(forced=False)]
        if self._utterance_ms >= self.max_utterance_ms:
            return [self._end(forced=True)]
        return []

    def _end(self, *, forced: bool) -> TurnOver:
        audio = PcmChunk.concat(self._utterance, rate=self.rate)
        self.speaking = False
        self._utterance, self._utterance_ms, self._silent_ms = [], 0.0, 0.0
        return TurnOver(audio, self._clock_ms, forced)

    def _keep_prefix(self, frame: PcmChunk) -> None:
        self._prefix.append(frame)
        self._prefix_ms += frame.duration_ms
        while self._prefix and self._prefix_ms - self._prefix[0].duration_ms >= self.prefix_ms:
            self._prefix_ms -= self._prefix.popleft().duration_ms

    def reset(self) -> None:
        """Forget everything (a new stream): no turn in progress."""
        self.speaking = False
        self._prefix.clear()
        self._prefix_ms = 0.0
        self._candidate, self._candidate_ms = [], 0.0
        self._utterance, self._utterance_ms, self._silent_ms = [], 0.0, 0.0
