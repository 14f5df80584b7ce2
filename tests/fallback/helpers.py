"""Helpers for driving whole calls in the fallback tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from voicebot.audio.chunk import PcmChunk
from voicebot.call import Call
from voicebot.events import AudioOut, ModelEvent, ResponseDone, ResponseStarted
from voicebot.fileport import FileAudioPort


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` every 20 ms; fail with ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None


def lines(call: Call, role: str) -> list[str]:
    return [t.text for t in call.transcript if t.role == role]


class Driver:
    """Plays the caller's side of a running Call: inject an utterance, wait for the answer to be spoken."""

    def __init__(self, call: Call, port: FileAudioPort) -> None:
        self.call = call
        self.port = port
        self.seen: list[ModelEvent] = []
        self.times: list[float] = []  # monotonic time each event was seen
        self.open_responses: set[str] = set()
        call.add_listener(self._see)

    def _see(self, event: ModelEvent) -> None:
        self.seen.append(event)
        self.times.append(time.monotonic())
        if isinstance(event, ResponseStarted):
            self.open_responses.add(event.response_id)
        elif isinstance(event, ResponseDone):
            self.open_responses.discard(event.response_id)

    def gap_after(self, first: Callable[[ModelEvent], bool]) -> float:
        """Seconds from the first event matching ``first`` to the next assistant audio."""
        start = next(n for n, e in enumerate(self.seen) if first(e))
        audio = next(n for n in range(start, len(self.seen)) if isinstance(self.seen[n], AudioOut))
        return self.times[audio] - self.times[start]

    def answered_items(self) -> list[str]:
        """Item ids of assistant messages with a final transcript, in order, each once."""
        ids: list[str] = []
        for t in self.call.transcript:
            if t.role == "assistant" and t.item_id not in ids:
                ids.append(t.item_id)
        return ids

    async def quiet(self, for_s: float = 0.5, timeout: float = 30.0) -> None:
        """Wait until no response is running and nothing has been played for ``for_s`` seconds."""

        def idle() -> bool:
            last = self.port.last_output_at
            played_out = last is None or time.monotonic() - last >= for_s
            return not self.open_responses and self.port.queue.idle and played_out

        await until(idle, timeout, "the agent to stop speaking")

    async def inject(self, audio: PcmChunk) -> None:
        self.port.inject(PcmChunk.silence(300, self.port.input_rate))
        self.port.inject(audio)

    async def say_and_wait(self, audio: PcmChunk, timeout: float = 30.0) -> str:
        """Inject one caller utterance, wait for the answer to a new assistant item and for it to be played;
        returns the answer's final transcript."""
        before = len(self.answered_items())
        await self.inject(audio)
        await until(lambda: len(self.answered_items()) > before, timeout, "an assistant answer")
        new = self.answered_items()[before]
        await self.quiet()
        return [t.text for t in self.call.transcript if t.item_id == new][-1]

    async def answer_containing(self, words: list[str], timeout: float = 30.0) -> str:
        """Wait for a final assistant transcript containing every one of ``words`` (case-insensitive), then
        for the agent to finish speaking; returns that transcript."""

        def found() -> str | None:
            for t in reversed(self.call.transcript):
                if t.role == "assistant" and all(w.lower() in t.text.lower() for w in words):
                    return t.text
            return None

        await until(lambda: found() is not None, timeout, f"an answer mentioning {words}")
        await self.quiet()
        text = found()
        assert text is not None
        return text
