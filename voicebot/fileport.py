"""FileAudioPort: an AudioPort that plays a recording in real time and records what comes back.

For tests, the CLI and load tests. One paced loop drives both directions every 20 ms: it yields the next
caller frame (then silence once the recording is over) and takes the next assistant frame from the output
queue (exactly as a WebRTC or RTP sender would), so playback accounting and barge-in behave as on a call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np

from voicebot.audio.chunk import FRAME_MS, PcmChunk, ms_to_samples
from voicebot.playout import OutputQueue, QueuedOutput


class FileAudioPort(QueuedOutput):
    """Plays ``source`` as the caller, in real time (or faster, ``speed`` > 1), and records the answer.

    The call ends (``frames()`` stops) on ``hang_up()``, or once the recording is over and the agent has been
    quiet for ``hangup_when_idle_s`` after it last spoke (None: never by itself), or after ``max_s``.
    """

    def __init__(
        self,
        source: PcmChunk | Path | str,
        *,
        output_rate: int = 24000,
        speed: float = 1.0,
        lead_silence_ms: int = 0,
        hangup_when_idle_s: float | None = 1.0,
        max_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(source, PcmChunk):
            from voicebot.audio.wav import read_wav

            source = read_wav(Path(source))
        assert isinstance(source, PcmChunk)
        self._source = source
        self.input_rate = source.rate
        self.output_rate = output_rate
        self._speed = speed
        self._lead = ms_to_samples(lead_silence_ms, source.rate)
        self._idle_s = hangup_when_idle_s
        self._max_s = max_s
        self._clock = clock
        self.queue = OutputQueue(output_rate)
        self._received: list[PcmChunk] = []
        self._timeline: list[PcmChunk] = []
        self._closed = asyncio.Event()
        self._cursor = 0  # samples of the source already sent
        self._extra: list[PcmChunk] = []
        self.last_output_at: float | None = None
        self.source_done_at: float | None = None

    # caller side -----------------------------------------------------------------------------------
    def inject(self, chunk: PcmChunk) -> None:
        """Queue more caller audio (for example a barge-in utterance) after what is already pending."""
        if chunk.rate != self.input_rate:
            raise ValueError(f"inject needs {self.input_rate} Hz audio, got {chunk.rate} Hz")
        self._extra.append(chunk)

    def hang_up(self) -> None:
        self._closed.set()

    async def frames(self) -> AsyncIterator[PcmChunk]:
        n_in = ms_to_samples(FRAME_MS, self.input_rate)
        n_out = ms_to_samples(FRAME_MS, self.output_rate)
        interval = FRAME_MS / 1000 / self._speed
        start = self._clock()
        deadline = start
        silence_out = np.zeros(n_out, dtype=np.int16)
        while not self._closed.is_set():
            now = self._clock()
            if now - start > self._max_s or self._should_hang_up(now):
                break
            yield self._next_input(n_in)
            taken = self.queue.take()
            if taken is None:
                self._timeline.append(PcmChunk(silence_out, self.output_rate))
            else:
                chunk, _item = taken
                self._received.append(chunk)
                self._timeline.append(chunk)
                self.last_output_at = now
            deadline += interval
            await asyncio.sleep(max(0.0, deadline - self._clock()))
        self._closed.set()

    def _next_input(self, n: int) -> PcmChunk:
        if self._lead > 0:
            take = min(n, self._lead)
            self._lead -= take
            return PcmChunk(np.zeros(n, dtype=np.int16), self.input_rate)
        src = self._source.samples
        if self._cursor < src.shape[0]:
            frame = src[self._cursor : self._cursor + n]
            self._cursor += n
            if frame.shape[0] < n:
                frame = np.concatenate([frame, np.zeros(n - frame.shape[0], dtype=np.int16)])
            if self._cursor >= src.shape[0] and not self._extra:
                self.source_done_at = self._clock()
            return PcmChunk(frame, self.input_rate)
        if self._extra:
            self._source = self._extra.pop(0)
            self._cursor = 0
            self.source_done_at = None
            return self._next_input(n)
        if self.source_done_at is None:
            self.source_done_at = self._clock()
        return PcmChunk(np.zeros(n, dtype=np.int16), self.input_rate)

    def _should_hang_up(self, now: float) -> bool:
        if self._idle_s is None or self.source_done_at is None or self.last_output_at is None:
            return False
        if not self.queue.idle:
            return False
        return now - max(self.last_output_at, self.source_done_at) >= self._idle_s

    # agent side: play / clear / played_ms come from QueuedOutput ----------------------------------
    async def close(self) -> None:
        self._closed.set()
        self.queue.clear()

    # results ---------------------------------------------------------------------------------------
    def received(self) -> PcmChunk:
        """All assistant audio that was played, back to back."""
        return PcmChunk.concat(self._received, rate=self.output_rate)

    def timeline(self) -> PcmChunk:
        """What the listener heard, silence included, one frame per 20 ms tick."""
        return PcmChunk.concat(self._timeline, rate=self.output_rate)
