"""Speaks one assistant message, sentence by sentence, as its text streams in (adapter).

The cascade puts each complete sentence into a ``Speaker``; the speaker asks the speech endpoint for it
(``response_format: "pcm"``, streamed) while the next sentences are still being written, and hands every chunk
on as ``AudioOut`` for the message's item, resampled to the session's output rate. It records which text
went into how much audio (``HistoryItem.spoken``), which is what a barge-in truncation works from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from openai import AsyncOpenAI

from voicebot.audio.chunk import PcmChunk
from voicebot.audio.resample import StreamResampler
from voicebot.events import AudioOut
from voicebot.fallback.history import HistoryItem, Spoken
from voicebot.fallback.openai_http import SPEECH_RATE, speak


class Speaker:
    """One message's speech. ``put`` sentences, then ``finish()``; ``cancel()`` stops it at once."""

    def __init__(
        self,
        client: AsyncOpenAI,
        item: HistoryItem,
        emit: Callable[[AudioOut], None],
        *,
        model: str,
        voice: str,
        speed: float | None,
        output_rate: int,
    ) -> None:
        self.item = item
        self._client = client
        self._emit = emit
        self._model = model
        self._voice = voice
        self._speed = speed
        self._resampler = StreamResampler(SPEECH_RATE, output_rate)
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name=f"speak {item.id}")
        self.first_audio_at: float | None = None  # loop time of the first AudioOut

    def put(self, text: str) -> None:
        if text.strip():
            self._queue.put_nowait(text.strip())

    async def finish(self) -> None:
        """Wait until every sentence put so far has been spoken (re-raises a speech failure)."""
        self._queue.put_nowait(None)
        await asyncio.shield(self._task)

    async def cancel(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while (text := await self._queue.get()) is not None:
            piece = Spoken(text)
            self.item.spoken.append(piece)
            async for chunk in speak(
                self._client, text, model=self._model, voice=self._voice, speed=self._speed
            ):
                self._out(piece, self._resampler.process(chunk), loop)
        self._out(None, self._resampler.flush(), loop)

    def _out(self, piece: Spoken | None, chunk: PcmChunk, loop: asyncio.AbstractEventLoop) -> None:
        if not chunk.num_samples:
            return
        if piece is None and self.item.spoken:
            piece = self.item.spoken[-1]
        if piece is not None:
            piece.audio_ms += chunk.duration_ms
        if self.first_audio_at is None:
            self.first_audio_at = loop.time()
        self._emit(AudioOut(self.item.id, chunk))
