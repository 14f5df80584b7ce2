"""One streamed response of the cascade: the assistant message being written and spoken, its function calls.

``ResponseState`` takes the Responses stream events (``on_event``) or a given text (``say``), puts the text
into the history as it comes, cuts it into sentences for the ``Speaker`` and emits ``Transcript`` and
``ToolCall`` events through its host (the ``CascadeModelSession``). ``close`` settles the message after the
end or a cancellation: an interrupted message keeps only the text that got audio.
"""

from __future__ import annotations

from typing import Any, Protocol

import openai
from openai import AsyncOpenAI

from voicebot.events import ModelEvent, ToolCall, Transcript
from voicebot.fallback.history import History, HistoryItem, spoken_text
from voicebot.fallback.sentences import SentenceSplitter
from voicebot.fallback.speaker import Speaker


class Host(Protocol):
    """What a response needs from its session."""

    client: AsyncOpenAI
    history: History
    cleared_item: str | None

    @property
    def config(self) -> Any: ...

    def emit(self, event: ModelEvent) -> None: ...

    def new_item_id(self) -> str: ...


class ResponseState:
    """One streamed response: the assistant message being written and spoken, and the function calls."""

    def __init__(self, session: Host, response_id: str) -> None:
        self.session = session
        self.response_id = response_id
        self.item: HistoryItem | None = None
        self.speaker: Speaker | None = None
        self.splitter = SentenceSplitter()
        self.calls: list[str] = []
        self.status = "completed"
        self.reason: str | None = None
        self.aside = False

    def on_event(self, event: Any) -> None:
        kind = getattr(event, "type", "")
        if kind == "response.output_text.delta":
            self.text(event.delta)
        elif kind == "response.output_item.done" and getattr(event.item, "type", "") == "function_call":
            self.call(event.item)
        elif kind in ("response.failed", "response.incomplete"):
            self.status = "failed" if kind == "response.failed" else "incomplete"
            error = getattr(event.response, "error", None)
            details = getattr(event.response, "incomplete_details", None)
            self.reason = getattr(error, "code", None) or getattr(details, "reason", None)
        elif kind == "error":
            raise openai.OpenAIError(f"the response stream failed: {getattr(event, 'message', '')}")

    def text(self, delta: str) -> None:
        if not delta:
            return
        s = self.session
        if self.item is None:
            self.item = s.history.add_message(s.new_item_id(), "assistant")
            self.item.aside = self.aside
            cfg = s.config
            self.speaker = Speaker(
                s.client,
                self.item,
                s.emit,
                model=cfg.tts_model,
                voice=cfg.voice,
                speed=cfg.speed,
                output_rate=cfg.output_rate,
            )
        self.item.text += delta
        s.emit(Transcript("assistant", self.item.id, delta, False))
        for sentence in self.splitter.push(delta):
            assert self.speaker is not None
            self.speaker.put(sentence)

    def call(self, item: Any) -> None:
        s = self.session
        item_id = getattr(item, "id", None) or s.new_item_id()
        s.history.add_call(item_id, item.call_id, item.name, item.arguments)
        self.calls.append(item.call_id)
        s.emit(ToolCall(item.call_id, item.name, item.arguments, item_id, self.response_id))

    async def finish(self) -> None:
        if self.speaker is not None:
            rest = self.splitter.flush()
            if rest:
                self.speaker.put(rest)
            await self.speaker.finish()

    async def close(self) -> None:
        """After the end (or cancellation): stop speaking and settle the message's text."""
        item, s, status = self.item, self.session, self.status
        if self.speaker is not None:
            await self.speaker.cancel()
        if item is None:
            return
        if status != "completed" and not item.truncated:
            item.text = spoken_text(item.spoken)
            s.history.touch()
            if not item.text:
                s.history.remove(item.id)
        if s.cleared_item == item.id and status == "cancelled":
            return  # the caller's truncate() settles the transcript of the item that was playing
        if item.text and not item.truncated:
            s.emit(Transcript("assistant", item.id, item.text, True))
