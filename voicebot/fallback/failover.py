"""FailoverModelSession: the Realtime session, with the cascade as a hot spare (adapter).

The Call drives one ``ModelSession``; this one holds either a ``RealtimeModelSession`` (the primary) or a
``CascadeModelSession`` and swaps them in place:

* **failover** (realtime → cascade) when the Realtime session cannot be opened within ``open_timeout_s``,
  ends (``SessionEnded``, its event stream stops), reports a fatal error (``insufficient_quota``, a bad key)
  or a retryable one (``rate_limit_exceeded``, ``server_error``), or drops and has not reconnected after
  ``reconnect_grace_s``. The cascade starts with the Realtime conversation (texts, function calls, outputs),
  the current instructions, tools and voice. If the caller was waiting for an answer it says ``switch_line``
  and answers: from the history when the caller's words had been transcribed, otherwise from the caller's
  last utterance, cut from the uplink audio this wrapper keeps (``uplink_keep_s``).
* **failback** (cascade → realtime): a prober opens a new Realtime session after ``probe_initial_s``
  (doubling up to ``probe_max_s`` while it fails), seeded with the cascade's history so that its replay
  carries the conversation over, and swaps it in at a turn boundary (the cascade idle, its audio played).

Audio and commands that arrive during a swap are held and delivered to the new session. Every swap is logged
at INFO, counted (``failovers``, ``failbacks``, ``switches``) and announced with a ``Notice`` (kind
``failover`` / ``failback``). Events of a replaced session are dropped, so the Call only sees one session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from voicebot.audio.chunk import PcmChunk
from voicebot.config import Settings
from voicebot.errors import LocalError, UpstreamError
from voicebot.events import (
    AudioOut,
    ErrorKind,
    ModelError,
    ModelEvent,
    Notice,
    ResponseDone,
    ResponseStarted,
    SessionEnded,
    SpeechStarted,
    SpeechStopped,
    Transcript,
)
from voicebot.fallback.cascade import CascadeModelSession
from voicebot.fallback.history import History
from voicebot.realtime.client import RealtimeModelSession

log = logging.getLogger("voicebot.fallback")

Mode = Literal["realtime", "cascade"]
PrimaryFactory = Callable[[], RealtimeModelSession]
FallbackFactory = Callable[[History], CascadeModelSession]


@dataclass(frozen=True, slots=True)
class FailoverPolicy:
    open_timeout_s: float = 3.0
    reconnect_grace_s: float = 1.0
    probe_initial_s: float = 10.0
    probe_max_s: float = 120.0
    switch_line: str | None = "One moment."
    fail_on_retryable_errors: bool = True
    uplink_keep_s: float = 30.0
    utterance_margin_ms: int = 600  # audio kept before the primary's speech_started (its VAD lags a little)

    @classmethod
    def from_settings(cls, settings: Settings) -> FailoverPolicy:
        return cls(
            open_timeout_s=settings.fallback_open_timeout_s,
            reconnect_grace_s=settings.fallback_reconnect_grace_s,
            probe_initial_s=settings.fallback_probe_initial_s,
            probe_max_s=settings.fallback_probe_max_s,
            switch_line=settings.fallback_switch_line or None,
        )


@dataclass(frozen=True, slots=True)
class SwitchRecord:
    to: Mode
    reason: str
    at: float  # loop time


@dataclass(frozen=True, slots=True)
class _Ended:
    """The active session's event stream stopped."""


@dataclass(frozen=True, slots=True)
class _GraceOver:
    """The primary dropped and did not reconnect in time."""


@dataclass(frozen=True, slots=True)
class _SwitchBack:
    primary: RealtimeModelSession
    version: int  # the cascade history version the primary was seeded with


_Message = ModelEvent | _Ended | _GraceOver | _SwitchBack


@dataclass(slots=True)
class _CallerState:
    """What the primary's events say about the caller: are they waiting for an answer, and where in the
    uplink audio was their last utterance."""

    waiting: bool = False  # spoke, no answer audio yet
    response_open: bool = False
    transcribed: bool = False  # the last utterance got its transcript
    start: int | None = None  # uplink sample index of the last speech start
    end: int | None = None


class FailoverModelSession:
    """A ``ModelSession`` that fails over from Realtime to the cascade and back; see the module docstring."""

    def __init__(
        self,
        primary: PrimaryFactory,
        fallback: FallbackFactory,
        policy: FailoverPolicy | None = None,
    ) -> None:
        self.policy = policy or FailoverPolicy()
        self._primary_factory = primary
        self._fallback_factory = fallback
        self._first: RealtimeModelSession | None = primary()
        self._input_rate = self._first.input_rate
        self._output_rate = self._first.output_rate
        self.active: RealtimeModelSession | CascadeModelSession | None = None
        self.mode: Mode = "realtime"
        self.switch_log: list[SwitchRecord] = []
        self._out: asyncio.Queue[ModelEvent | None] = asyncio.Queue()
        self._inbox: asyncio.Queue[tuple[int, _Message]] = asyncio.Queue()
        self._gen = 0
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # event pumps and probers (owned; cancelled by close)
        self._grace: asyncio.TimerHandle | None = None
        self._changes: dict[str, Any] = {}
        self._outputs: dict[str, str] = {}  # every tool output the call submitted (call id → output)
        self._held_audio: list[PcmChunk] = []
        self._held: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []  # commands during a swap
        self._ring: deque[PcmChunk] = deque()
        self._ring_samples = 0
        self._uplink_samples = 0  # caller samples seen so far (index of the next sample)
        self._caller = _CallerState()
        self._closing = False

    # counters ---------------------------------------------------------------------------------------------

    @property
    def failovers(self) -> int:
        return sum(1 for s in self.switch_log if s.to == "cascade")

    @property
    def failbacks(self) -> int:
        return sum(1 for s in self.switch_log if s.to == "realtime")

    @property
    def switches(self) -> int:
        return len(self.switch_log)

    # ModelSession -----------------------------------------------------------------------------------------

    @property
    def input_rate(self) -> int:
        return self._input_rate

    @property
    def output_rate(self) -> int:
        return self._output_rate

    async def start(self) -> None:
        if self._runner is not None or self._first is None:
            raise LocalError("the failover session was already started")
        first, self._first = self._first, None
        try:
            await asyncio.wait_for(first.start(), self.policy.open_timeout_s)
        except (UpstreamError, TimeoutError) as exc:
            await first.close()
            reason = getattr(exc, "message", "") or f"no connection within {self.policy.open_timeout_s:g} s"
            await self._to_cascade(History(), f"realtime unavailable: {reason}", answer=False)
        else:
            self._activate(first, "realtime")
        self._runner = asyncio.create_task(self._run(), name="failover")

    async def send_audio(self, chunk: PcmChunk) -> None:
        self._remember(chunk)
        active = self.active
        if active is None:
            self._held_audio.append(chunk)
            return
        await active.send_audio(chunk)

    async def events(self) -> AsyncIterator[ModelEvent]:
        while (event := await self._out.get()) is not None:
            yield event
            if isinstance(event, SessionEnded):
                return

    async def submit_tool_output(self, call_id: str, output: str) -> None:
        self._outputs[call_id] = output
        await self._command("submit_tool_output", call_id, output)

    async def truncate(self, item_id: str, played_ms: int) -> None:
        await self._command("truncate", item_id, played_ms)

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        await self._command("send_text", text, respond=respond)

    async def update_session(self, **changes: Any) -> None:
        self._changes.update(changes)
        await self._command("update_session", **changes)

    async def say(self, text: str) -> None:
        await self._command("say", text)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._cancel_grace()
        runner, self._runner = self._runner, None
        for task in [runner, *self._tasks]:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        offered = [m.primary for _, m in _drain(self._inbox) if isinstance(m, _SwitchBack)]
        for session in (self.active, self._first, *offered):
            if session is not None:
                with contextlib.suppress(Exception):
                    await session.close()
        self.active = None
        self._out.put_nowait(None)

    # plumbing ---------------------------------------------------------------------------------------------

    async def _command(self, name: str, *args: Any, **kwargs: Any) -> None:
        active = self.active
        if active is None:
            self._held.append((name, args, kwargs))
            return
        await getattr(active, name)(*args, **kwargs)

    def _remember(self, chunk: PcmChunk) -> None:
        """Keep the last ``uplink_keep_s`` of caller audio (for an utterance the primary never transcribed)."""
        self._ring.append(chunk)
        self._ring_samples += chunk.num_samples
        self._uplink_samples += chunk.num_samples
        limit = int(self.policy.uplink_keep_s * self._input_rate)
        while self._ring and self._ring_samples - self._ring[0].num_samples >= limit:
            self._ring_samples -= self._ring.popleft().num_samples

    def _uplink_slice(self, start: int, end: int) -> PcmChunk | None:
        first = self._uplink_samples - self._ring_samples  # index of the ring's first sample
        start, end = max(start, first), min(end, self._uplink_samples)
        if end - start < self._input_rate // 5:
            return None
        audio = PcmChunk.concat(list(self._ring), rate=self._input_rate)
        return PcmChunk(audio.samples[start - first : end - first].copy(), self._input_rate)

    def _activate(self, session: RealtimeModelSession | CascadeModelSession, mode: Mode) -> None:
        self._gen += 1
        self.active, self.mode = session, mode
        self._caller = _CallerState()
        gen = self._gen
        self._spawn(self._forward(session, gen), f"failover-pump-{gen}")
        if mode == "cascade":
            self._spawn(self._probe(gen, self.policy.probe_initial_s), f"failover-probe-{gen}")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _forward(self, session: RealtimeModelSession | CascadeModelSession, gen: int) -> None:
        async for event in session.events():
            self._inbox.put_nowait((gen, event))
        self._inbox.put_nowait((gen, _Ended()))

    async def _deliver_held(self, session: RealtimeModelSession | CascadeModelSession) -> None:
        """Audio and commands that came in during the swap, in order, before anything new."""
        while self._held_audio or self._held:
            audio, self._held_audio = self._held_audio, []
            for chunk in audio:
                await session.send_audio(chunk)
            held, self._held = self._held, []
            for name, args, kwargs in held:
                await getattr(session, name)(*args, **kwargs)

    def _cancel_grace(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None

    # the runner -------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                gen, message = await self._inbox.get()
                if gen != self._gen:
                    if isinstance(message, _SwitchBack):
                        await message.primary.close()
                    continue
                if self.mode == "realtime":
                    await self._from_primary(message)
                else:
                    await self._from_cascade(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must end the call cleanly
            log.exception("failover runner failed")
            error = ModelError(ErrorKind.FATAL, "internal_error", repr(exc))
            self._out.put_nowait(SessionEnded("failover runner failed", error))

    async def _from_primary(self, message: _Message) -> None:
        if isinstance(message, _Ended | SessionEnded):
            detail = message.error.message if isinstance(message, SessionEnded) and message.error else ""
            reason = message.reason if isinstance(message, SessionEnded) else "realtime session closed"
            await self._fail_over(f"{reason} {detail}".strip())
        elif isinstance(message, _GraceOver):
            await self._fail_over(f"no reconnect within {self.policy.reconnect_grace_s:g} s")
        elif isinstance(message, ModelError):
            self._out.put_nowait(message)
            fatal = message.kind is ErrorKind.FATAL
            if fatal or (message.kind is ErrorKind.RETRYABLE and self.policy.fail_on_retryable_errors):
                await self._fail_over(f"{message.kind.value} error {message.code}: {message.message}")
        elif isinstance(message, _SwitchBack):
            await message.primary.close()
        else:
            self._track(message)
            self._out.put_nowait(message)

    def _track(self, event: ModelEvent) -> None:
        """Follow the caller's side of the primary's conversation (and its connection notices)."""
        state = self._caller
        if isinstance(event, SpeechStarted):
            margin = self.policy.utterance_margin_ms * self._input_rate // 1000
            state.start, state.end, state.transcribed = self._uplink_samples - margin, None, False
        elif isinstance(event, SpeechStopped):
            state.end, state.waiting = self._uplink_samples, True
        elif isinstance(event, Transcript) and event.role == "user" and event.final:
            state.transcribed = True
        elif isinstance(event, AudioOut):
            state.waiting = False
        elif isinstance(event, ResponseStarted):
            state.response_open = True
        elif isinstance(event, ResponseDone) and event.reason != "connection_lost":
            state.response_open = False  # a response lost with its connection stays unfinished
        elif isinstance(event, Notice) and event.kind == "disconnected":
            gen = self._gen
            loop = asyncio.get_running_loop()
            self._cancel_grace()
            self._grace = loop.call_later(
                self.policy.reconnect_grace_s, lambda: self._inbox.put_nowait((gen, _GraceOver()))
            )
        elif isinstance(event, Notice) and event.kind == "reconnected":
            self._cancel_grace()

    async def _fail_over(self, reason: str) -> None:
        primary = self.active
        assert isinstance(primary, RealtimeModelSession)
        self._cancel_grace()
        self.active = None
        self._gen += 1  # drop whatever the old session still sends
        caller = self._caller
        items = list(primary.core.conversation)
        await primary.close()
        history = History.from_conversation(items, self._outputs)
        pending: PcmChunk | None = None
        if caller.waiting and not caller.transcribed and caller.start is not None:
            pending = self._uplink_slice(caller.start, caller.end or self._uplink_samples)
        if caller.response_open:
            _drop_unfinished_answer(history)
        await self._to_cascade(history, reason, answer=caller.waiting or caller.response_open, audio=pending)

    async def _to_cascade(
        self, history: History, reason: str, *, answer: bool, audio: PcmChunk | None = None
    ) -> None:
        cascade = self._fallback_factory(history)
        if (cascade.input_rate, cascade.output_rate) != (self._input_rate, self._output_rate):
            raise LocalError("the cascade must use the same audio rates as the Realtime session")
        try:
            if self._changes:
                await cascade.update_session(**self._changes)
            await cascade.start()
        except BaseException:  # cancelled (the call closed) or broken: do not leave its worker behind
            await asyncio.shield(cascade.close())
            raise
        line = self.policy.switch_line
        if answer and audio is not None:
            if line:
                await cascade.say(line)
            cascade.respond_to_audio(audio)
        elif answer:
            cascade.respond_if_due(preface=line)
        await self._deliver_held(cascade)
        self._activate(cascade, "cascade")
        self._record("cascade", reason, {"history_items": len(history), "replayed_audio": audio is not None})

    def _record(self, to: Mode, reason: str, detail: dict[str, object]) -> None:
        loop = asyncio.get_running_loop()
        self.switch_log.append(SwitchRecord(to, reason, loop.time()))
        source = "realtime" if to == "cascade" else "cascade"
        log.info("model failover #%d: %s → %s (%s)", self.switches, source, to, reason)
        kind = "failover" if to == "cascade" else "failback"
        info: dict[str, object] = {"from": source, "to": to, "reason": reason, "switches": self.switches}
        self._out.put_nowait(Notice(kind, info | detail))

    # back to realtime -------------------------------------------------------------------------------------

    async def _from_cascade(self, message: _Message) -> None:
        if isinstance(message, _SwitchBack):
            await self._fail_back(message)
        elif isinstance(message, _Ended):
            self._out.put_nowait(SessionEnded("the cascade session closed"))
        elif isinstance(message, _GraceOver):
            return
        else:
            self._out.put_nowait(message)

    async def _probe(self, gen: int, first_delay_s: float) -> None:
        """Wait, then at a turn boundary open a seeded Realtime session and offer it to the runner; on
        failure wait longer (doubling from ``probe_initial_s`` up to ``probe_max_s``) and try again."""
        delay = first_delay_s
        while True:
            await asyncio.sleep(delay)
            cascade = self.active
            if gen != self._gen or not isinstance(cascade, CascadeModelSession):
                return
            await _boundary(cascade)
            version = cascade.history.version
            primary = await self._open_primary(cascade.history)
            if primary is not None:
                self._inbox.put_nowait((gen, _SwitchBack(primary, version)))
                return
            delay = min(max(delay * 2, self.policy.probe_initial_s), self.policy.probe_max_s)

    async def _open_primary(self, history: History) -> RealtimeModelSession | None:
        """A started Realtime session seeded with ``history`` (replayed on connect), or None."""
        primary = self._primary_factory()
        for item in history.to_conversation():
            primary.core.conversation.append(item)
        try:
            if self._changes:
                await primary.update_session(**self._changes)
            async with asyncio.timeout(self.policy.open_timeout_s):
                await primary.start()
                await _until(lambda: primary.core.ready or primary.core.ended)
            if primary.core.ended:
                raise UpstreamError("the Realtime session ended while opening")
        except (UpstreamError, TimeoutError) as exc:
            log.info("realtime probe failed: %s", getattr(exc, "message", "") or "timed out")
            await primary.close()
            return None
        except BaseException:  # the prober was cancelled (the call closed or switched)
            await asyncio.shield(primary.close())
            raise
        return primary

    async def _fail_back(self, message: _SwitchBack) -> None:
        cascade = self.active
        assert isinstance(cascade, CascadeModelSession)
        if not cascade.at_turn_boundary or cascade.history.version != message.version:
            await message.primary.close()  # the conversation moved on meanwhile: probe again soon
            self._spawn(self._probe(self._gen, min(1.0, self.policy.probe_initial_s)), "failover-reprobe")
            return
        self.active = None
        self._gen += 1
        await cascade.close()
        primary = message.primary
        lead = self._uplink_slice(self._uplink_samples - self._input_rate * 3 // 10, self._uplink_samples)
        if lead is not None:
            await primary.send_audio(lead)  # the onset of speech the cascade's VAD may not have flagged yet
        await self._deliver_held(primary)
        self._activate(primary, "realtime")
        self._record("realtime", "realtime upstream recovered", {"history_items": len(cascade.history)})


def _drain(queue: asyncio.Queue[tuple[int, _Message]]) -> list[tuple[int, _Message]]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def _drop_unfinished_answer(history: History) -> None:
    """The lost response's partial assistant message goes: the cascade answers that turn again in full."""
    items = list(history)
    if items and items[-1].kind == "message" and items[-1].role == "assistant":
        history.remove(items[-1].id)


async def _boundary(cascade: CascadeModelSession) -> None:
    await _until(lambda: cascade.at_turn_boundary)


async def _until(predicate: Callable[[], bool], step_s: float = 0.02) -> None:
    while not predicate():  # noqa: ASYNC110 - the states polled here change on other tasks' clocks
        await asyncio.sleep(step_s)
