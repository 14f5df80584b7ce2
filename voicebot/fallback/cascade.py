"""CascadeModelSession: a ``voicebot.ports.ModelSession`` over the non-realtime endpoints (adapter).

::

    send_audio ─▶ 16 kHz ─▶ frame VAD ─▶ TurnDetector ─┬─ speech started: SpeechStarted (+ barge-in)
                                                        └─ turn over (500 ms silence): SpeechStopped, job
    worker (one job at a time):
      user turn ─▶ audio.transcriptions ─▶ Transcript(user) ─▶ respond
      respond   ─▶ responses.create(stream, tools, whole history as input) ─┬─ text ─▶ sentences ─▶ Speaker
                                                                             └─ function calls ─▶ ToolCall
      say       ─▶ Speaker (the text as given)
    Speaker ─▶ audio.speech (pcm, streamed) per sentence ─▶ AudioOut

Tool calls follow the Realtime rules: a ``ToolCall`` goes out as soon as a call is complete; once the
response is over and every call of it has its output, exactly one follow-up response is requested. A
response interrupted by the caller gets no follow-up; the next turn sees the outputs.

Barge-in: caller speech while the agent talks (a response or a ``say`` running, or its audio still playing)
cancels the response and the speech synthesis at once and emits ``ClearAudio`` for the item that was playing;
``truncate(item_id, played_ms)`` then cuts that message in the history to what was heard, at a word boundary.

The history is plain Responses input items (``store: false``); ``History`` seeds it on a failover. One worker
task, started by ``start()`` and cancelled by ``close()``, owns every request.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from openai import AsyncOpenAI

from voicebot.audio.chunk import FrameSplitter, PcmChunk
from voicebot.audio.resample import StreamResampler
from voicebot.config import Settings
from voicebot.errors import LocalError
from voicebot.events import (
    AudioOut,
    ClearAudio,
    ErrorKind,
    ModelError,
    ModelEvent,
    ResponseDone,
    ResponseStarted,
    SessionEnded,
    SpeechStarted,
    SpeechStopped,
    Transcript,
)
from voicebot.fallback.history import History, heard_text
from voicebot.fallback.openai_http import (
    HTTP_ERRORS,
    AnyHttpError,
    FatalHttpError,
    RetryableHttpError,
    transcribe,
    translated,
)
from voicebot.fallback.response import ResponseState
from voicebot.fallback.turns import SpeechBegan, TurnDetector, TurnOver
from voicebot.local.speech.types import FrameVad

log = logging.getLogger("voicebot.fallback")

_IGNORED_UPDATES = frozenset(
    {
        "turn_detection",
        "transcription_model",
        "transcription_language",
        "noise_reduction",
        "output_modalities",
    }
)
_UPDATES = frozenset({"instructions", "tools", "tool_choice", "voice", "speed", "max_output_tokens"})
MIN_UTTERANCE_MS = 250  # shorter "turns" are clicks and breaths: not worth a transcription


@dataclass(frozen=True, slots=True)
class CascadeConfig:
    """What the cascade needs: models, the agent's instructions and tools, audio rates, turn detection."""

    model: str = "gpt-4.1-mini"
    transcription_model: str = "gpt-4o-mini-transcribe"
    tts_model: str = "gpt-4o-mini-tts"
    voice: str = "marin"
    instructions: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | dict[str, Any] = "auto"
    language: str | None = None
    speed: float | None = None
    max_output_tokens: int | None = None
    input_rate: int = 24_000
    output_rate: int = 24_000
    silence_ms: int = 500
    min_speech_ms: int = 100
    prefix_ms: int = 300
    interrupts: bool = True
    max_tool_rounds: int = 4  # consecutive tool rounds before a follow-up is forced to answer in words
    store: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> CascadeConfig:
        base = cls(
            model=settings.fallback_responses_model,
            transcription_model=settings.fallback_transcription_model,
            tts_model=settings.fallback_tts_model,
            voice=settings.voice,
            instructions=settings.instructions,
            silence_ms=settings.fallback_silence_ms,
        )
        return replace(base, **overrides)


def default_vad() -> FrameVad:
    """webrtcvad (about 2 µs a frame) when installed, else the numpy energy detector."""
    from voicebot.local.speech.vad import EnergyVad, WebRtcVad

    try:
        return WebRtcVad(16_000, mode=3)
    except ImportError:
        return EnergyVad(16_000)


@dataclass(frozen=True, slots=True)
class _UserTurn:
    item_id: str
    audio: PcmChunk


@dataclass(frozen=True, slots=True)
class _Respond:
    due: bool = False  # known to be due when queued (a filler line queued before it does not count)


@dataclass(frozen=True, slots=True)
class _Say:
    text: str


_Job = _UserTurn | _Respond | _Say


class CascadeModelSession:
    """A ``ModelSession`` over transcriptions → responses → speech; see the module docstring."""

    def __init__(
        self,
        client: AsyncOpenAI,
        config: CascadeConfig | None = None,
        *,
        history: History | None = None,
        vad_factory: Callable[[], FrameVad] = default_vad,
        close_client: bool = False,
    ) -> None:
        self.client = client
        self._close_client = close_client
        self.config = config or CascadeConfig()
        self.history = history or History()
        self.last_request: dict[str, Any] | None = (
            None  # the last responses.create parameters (observability)
        )
        self.responses_requested = 0
        self._vad = vad_factory()
        self._to_vad = StreamResampler(self.config.input_rate, self._vad.rate)
        frame_ms = self._vad.frame_samples * 1000 // self._vad.rate
        self._framer = FrameSplitter(self._vad.rate, frame_ms)
        self._turns = TurnDetector(
            self._vad.rate,
            silence_ms=self.config.silence_ms,
            min_speech_ms=self.config.min_speech_ms,
            prefix_ms=self.config.prefix_ms,
        )
        self._events: asyncio.Queue[ModelEvent | None] = asyncio.Queue()
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._queued_turns = 0
        self._worker: asyncio.Task[None] | None = None
        self._speaking: asyncio.Task[None] | None = None
        self._user_item: str | None = None
        self._last_audio_item: str | None = None
        self.cleared_item: str | None = None
        self._playout_until = 0.0
        self._batch: list[str] = []  # call ids of the last response's function calls
        self._batch_open = False  # their response is over, outputs are awaited, a follow-up is due
        self._tool_rounds = 0
        self._closed = False

    # ModelSession -----------------------------------------------------------------------------------------

    @property
    def input_rate(self) -> int:
        return self.config.input_rate

    @property
    def output_rate(self) -> int:
        return self.config.output_rate

    async def start(self) -> None:
        if self._worker is not None:
            raise LocalError("the cascade session was already started")
        self._worker = asyncio.create_task(self._work(), name="cascade-worker")

    async def send_audio(self, chunk: PcmChunk) -> None:
        if self._closed:
            return
        for frame in self._framer.push(self._to_vad.process(chunk)):
            for event in self._turns.push(frame, self._vad.speech_prob(frame)):
                if isinstance(event, SpeechBegan):
                    self._speech_began()
                else:
                    self._turn_over(event)

    async def events(self) -> AsyncIterator[ModelEvent]:
        while (event := await self._events.get()) is not None:
            yield event
            if isinstance(event, SessionEnded):
                return

    async def submit_tool_output(self, call_id: str, output: str) -> None:
        if self.history.has_output(call_id) or call_id not in self.history.open_calls():
            log.warning("tool output for unknown or already answered call %s ignored", call_id)
            return
        self.history.add_output(f"item_cas_{uuid.uuid4().hex[:20]}", call_id, output)
        self._maybe_follow_up()

    async def truncate(self, item_id: str, played_ms: int) -> None:
        item = self.history.get(item_id)
        if item is None or item.role != "assistant" or item.truncated:
            return
        item.truncated = True
        heard = heard_text(item.spoken, played_ms)
        if heard == item.text:
            return
        if heard:
            item.text = heard
            self.history.touch()
        else:
            self.history.remove(item_id)
        self.emit(Transcript("assistant", item_id, heard, True))

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        self.history.add_message(self.new_item_id(), "user", text)
        if respond:
            self._jobs.put_nowait(_Respond())

    async def update_session(self, **changes: Any) -> None:
        unknown = set(changes) - _UPDATES - _IGNORED_UPDATES
        if unknown:
            raise LocalError(f"the cascade cannot update {', '.join(sorted(unknown))}")
        values = {k: v for k, v in changes.items() if k in _UPDATES}
        if "tools" in values:
            values["tools"] = tuple(values["tools"] or ())
        if values.get("voice") is None:
            values.pop("voice", None)
        self.config = replace(self.config, **values)

    async def say(self, text: str) -> None:
        if text.strip():
            self._jobs.put_nowait(_Say(text))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        if self._close_client:
            await self.client.close()
        self._events.put_nowait(None)

    # extras for the failover wrapper ----------------------------------------------------------------------

    def respond_to_audio(self, audio: PcmChunk) -> None:
        """Treat ``audio`` (a whole utterance at any rate) as the caller's next turn."""
        self._queued_turns += 1
        self._jobs.put_nowait(_UserTurn(self.new_item_id(), audio))

    def respond_if_due(self, preface: str | None = None) -> bool:
        """Answer now if the history ends with an unanswered user message or tool outputs (or once the open
        function calls have their outputs), saying ``preface`` first. False when nothing is due."""
        open_calls = self.history.open_calls()
        due = self.history.awaiting_answer()
        if (open_calls or due) and preface:
            self._jobs.put_nowait(_Say(preface))
        if open_calls:
            self._batch, self._batch_open = open_calls, True
        elif due:
            self._jobs.put_nowait(_Respond(due=True))
        return bool(open_calls) or due

    @property
    def at_turn_boundary(self) -> bool:
        """Idle: no job, no queued turn, the caller not speaking, no tool batch open, playback drained."""
        loop = asyncio.get_running_loop()
        return (
            self._speaking is None
            and self._jobs.empty()
            and self._queued_turns == 0
            and not self._turns.speaking
            and not self._batch_open
            and not self.history.open_calls()
            and loop.time() >= self._playout_until
        )

    # uplink -----------------------------------------------------------------------------------------------

    def _speech_began(self) -> None:
        self._user_item = self.new_item_id()
        self.emit(SpeechStarted(self._user_item))
        if not self.config.interrupts or not self._agent_talking():
            return
        still_playing = asyncio.get_running_loop().time() < self._playout_until
        playing = self._last_audio_item if still_playing else None
        item = self.history.get(playing) if playing else None
        self.cleared_item = playing if item is not None and not item.truncated else None
        self.emit(ClearAudio(self.cleared_item))
        self._playout_until = 0.0
        self._drop_queued_says()
        if self._speaking is not None:
            self._speaking.cancel()

    def _turn_over(self, event: TurnOver) -> None:
        item_id = self._user_item or self.new_item_id()
        self._user_item = None
        self.emit(SpeechStopped(item_id))
        if event.audio.duration_ms < MIN_UTTERANCE_MS:
            return
        self._queued_turns += 1
        self._jobs.put_nowait(_UserTurn(item_id, event.audio))

    def _agent_talking(self) -> bool:
        return self._speaking is not None or asyncio.get_running_loop().time() < self._playout_until

    def _drop_queued_says(self) -> None:
        kept = [job for job in self._drain_jobs() if not isinstance(job, _Say)]
        for job in kept:
            self._jobs.put_nowait(job)

    def _drain_jobs(self) -> list[_Job]:
        jobs: list[_Job] = []
        while not self._jobs.empty():
            jobs.append(self._jobs.get_nowait())
        return jobs

    # the worker -------------------------------------------------------------------------------------------

    async def _work(self) -> None:
        try:
            while True:
                job = await self._jobs.get()
                if isinstance(job, _UserTurn):
                    await self._user_turn(job)
                elif isinstance(job, _Say):
                    await self._speak_job(self._say(job.text))
                elif (job.due or self.history.awaiting_answer()) and not self._user_busy():
                    await self._speak_job(self._respond())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must end the call cleanly, not leave it mute
            log.exception("cascade worker failed")
            error = ModelError(ErrorKind.FATAL, "internal_error", repr(exc))
            self.emit(SessionEnded("cascade worker failed", error))
        finally:
            if self._speaking is not None:
                self._speaking.cancel()
                await asyncio.gather(self._speaking, return_exceptions=True)

    def _user_busy(self) -> bool:
        """The caller is speaking again or another turn is waiting: answer after that one instead."""
        return self._turns.speaking or self._queued_turns > 0

    async def _user_turn(self, job: _UserTurn) -> None:
        try:
            text = await transcribe(
                self.client,
                job.audio,
                model=self.config.transcription_model,
                language=self.config.language,
            )
        except HTTP_ERRORS as exc:
            self._report(exc)
            text = ""
        finally:
            self._queued_turns -= 1
        if text:
            self.history.add_message(job.item_id, "user", text)
            self.emit(Transcript("user", job.item_id, text, True))
            self._tool_rounds = 0
        if self.history.awaiting_answer() and not self._user_busy():
            await self._speak_job(self._respond())

    async def _speak_job(self, work: Any) -> None:
        """Run one response or ``say`` as the cancellable speaking task (barge-in cancels it)."""
        task: asyncio.Task[None] = asyncio.create_task(work, name="cascade-speaking")
        self._speaking = task
        try:
            await asyncio.wait({task})
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            self._speaking = None
        if not task.cancelled() and (exc := task.exception()) is not None:
            raise exc

    def _report(self, exc: AnyHttpError) -> None:
        if isinstance(exc, FatalHttpError):
            error = ModelError(ErrorKind.FATAL, exc.code, exc.message)
            self.emit(error)
            self.emit(SessionEnded("the cascade upstream refused to serve this call", error))
            return
        kind = ErrorKind.RETRYABLE if isinstance(exc, RetryableHttpError) else ErrorKind.INVALID
        self.emit(ModelError(kind, exc.code, exc.message))

    # one response -----------------------------------------------------------------------------------------

    def _request(self) -> dict[str, Any]:
        cfg = self.config
        params: dict[str, Any] = {
            "model": cfg.model,
            "input": self.history.to_input(),
            "stream": True,
            "store": cfg.store,
        }
        if cfg.instructions:
            params["instructions"] = cfg.instructions
        if cfg.tools:
            params["tools"] = [dict(t) for t in cfg.tools]
            forced_words = self._tool_rounds >= cfg.max_tool_rounds
            params["tool_choice"] = "none" if forced_words else cfg.tool_choice
        if cfg.max_output_tokens is not None:
            params["max_output_tokens"] = cfg.max_output_tokens
        return params

    async def _respond(self) -> None:
        params = self._request()
        self.last_request = params
        self.responses_requested += 1
        state = ResponseState(self, f"resp_cas_{uuid.uuid4().hex[:20]}")

        async def run() -> None:
            with translated("responses"):
                stream = await self.client.responses.create(**params)
                async with stream:
                    async for event in stream:
                        state.on_event(event)

        await self._run_response(state, run)
        self._close_batch(state.calls, state.status)

    async def _say(self, text: str) -> None:
        state = ResponseState(self, f"resp_cas_{uuid.uuid4().hex[:20]}")
        state.aside = self.history.awaiting_answer() or bool(self.history.open_calls())

        async def run() -> None:
            state.text(text)

        await self._run_response(state, run)

    async def _run_response(self, state: ResponseState, produce: Callable[[], Awaitable[None]]) -> None:
        """ResponseStarted, the text (and its speech), ResponseDone, whatever happens in between."""
        self.emit(ResponseStarted(state.response_id))
        error: AnyHttpError | None = None
        try:
            await produce()
            await state.finish()
        except HTTP_ERRORS as exc:
            state.status, state.reason, error = "failed", exc.code, exc
        except asyncio.CancelledError:
            state.status, state.reason = "cancelled", "turn_detected"
            await state.close()
            self.emit(ResponseDone(state.response_id, state.status, state.reason))
            raise
        await state.close()
        self.emit(ResponseDone(state.response_id, state.status, state.reason))
        if error is not None:
            self._report(error)

    def _close_batch(self, calls: list[str], status: str) -> None:
        if not calls:
            return
        self._tool_rounds += 1
        if status == "completed":
            self._batch, self._batch_open = calls, True
            self._maybe_follow_up()

    def _maybe_follow_up(self) -> None:
        if self._batch_open and all(self.history.has_output(c) for c in self._batch):
            self._batch_open = False
            self._jobs.put_nowait(_Respond(due=True))

    # helpers ----------------------------------------------------------------------------------------------

    def emit(self, event: ModelEvent) -> None:
        if isinstance(event, AudioOut):
            loop_time = asyncio.get_running_loop().time()
            start = max(loop_time, self._playout_until)
            self._playout_until = start + event.chunk.duration_ms / 1000
            self._last_audio_item = event.item_id
        self._events.put_nowait(event)

    @staticmethod
    def new_item_id() -> str:
        return f"item_cas_{uuid.uuid4().hex[:20]}"
