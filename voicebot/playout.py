"""OutputQueue: the bounded, clearable queue between a call and a paced sender, with playback accounting.

Every audio port (WebRTC track, RTP sender, file player) has a sender that takes one frame every 20 ms.
The call puts frames in with ``put`` (which waits while the queue holds ``max_ms`` or more), the sender
takes them with ``take`` (``None`` when idle: send silence). ``clear`` drops everything at once and
releases any ``put`` that was waiting, whose frame is dropped too: after ``clear`` returns, nothing queued
before it is sent.

Accounting is by item, in a ``PlayoutLedger``: ``played_ms(item_id)`` counts only frames the sender actually
took, so a truncate built from it never claims audio the listener did not hear.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from voicebot.audio.chunk import PcmChunk
from voicebot.realtime.playback import PlayoutLedger


@dataclass(slots=True)
class _Queued:
    item_id: str
    chunk: PcmChunk


class OutputQueue:
    def __init__(self, rate: int, *, max_ms: int = 60) -> None:
        self.rate = rate
        self.max_samples = max(1, max_ms * rate // 1000)
        self._frames: deque[_Queued] = deque()
        self._queued_samples = 0
        self.ledger = PlayoutLedger()
        self._changed = asyncio.Event()
        self._epoch = 0
        self.current_item: str | None = None

    async def put(self, chunk: PcmChunk, item_id: str) -> bool:
        """Queue one frame; False when a ``clear`` dropped it while it waited for space."""
        if chunk.rate != self.rate:
            raise ValueError(f"OutputQueue at {self.rate} Hz got a chunk at {chunk.rate} Hz")
        epoch = self._epoch
        while self._queued_samples >= self.max_samples:
            self._changed.clear()
            await self._changed.wait()
            if self._epoch != epoch:
                return False
        self._frames.append(_Queued(item_id, chunk))
        self._queued_samples += chunk.num_samples
        self.ledger.queued(item_id, chunk.num_samples, self.rate)
        return True

    def take(self) -> tuple[PcmChunk, str] | None:
        """The next frame to send (and its item), or None when nothing is queued."""
        if not self._frames:
            self.current_item = None
            return None
        q = self._frames.popleft()
        self._queued_samples -= q.chunk.num_samples
        self.ledger.played(q.item_id, q.chunk.num_samples, self.rate)
        self.current_item = q.item_id
        self._changed.set()
        return q.chunk, q.item_id

    def clear(self) -> int:
        """Drop everything queued and release waiting ``put``s; returns the number of samples dropped."""
        dropped = self._queued_samples
        self._frames.clear()
        self._queued_samples = 0
        self.ledger.drop_queued()
        self._epoch += 1
        self.current_item = None
        self._changed.set()
        return dropped

    def played_ms(self, item_id: str) -> int:
        return self.ledger.played_ms(item_id)

    @property
    def queued_ms(self) -> float:
        return self._queued_samples * 1000 / self.rate

    @property
    def idle(self) -> bool:
        return not self._frames


async def run_paced(
    tick: Callable[[], Awaitable[bool]],
    interval_s: float = 0.02,
    *,
    clock: Callable[[], float] = time.monotonic,
    max_lag_s: float = 0.2,
) -> None:
    """Call ``tick`` every ``interval_s`` on an absolute monotonic schedule until it returns False.

    The schedule does not drift: each deadline is the previous one plus ``interval_s``, so a late wake-up is
    made up by a shorter sleep, never accumulated. After a stall longer than ``max_lag_s`` it resynchronises
    instead of bursting to catch up.
    """
    deadline = clock()
    while await tick():
        deadline += interval_s
        now = clock()
        if now - deadline > max_lag_s:
            deadline = now
        await asyncio.sleep(max(0.0, deadline - now))


class QueuedOutput:
    """The output half of an ``AudioPort`` over an ``OutputQueue`` in ``self.queue``: ports that send paced
    20 ms frames (WebRTC, RTP, file) inherit ``play``, ``clear``, ``played_ms`` and ``output_idle`` from here."""

    queue: OutputQueue

    async def play(self, chunk: PcmChunk, item_id: str) -> None:
        await self.queue.put(chunk, item_id)

    def clear(self) -> None:
        self.queue.clear()

    def played_ms(self, item_id: str) -> int:
        return self.queue.played_ms(item_id)

    @property
    def output_idle(self) -> bool:
        """Nothing is waiting to be sent."""
        return self.queue.idle
