"""RealtimeModelSession: the WebSocket adapter around ``RealtimeCore`` (a ``voicebot.ports.ModelSession``).

One runner task owns the connection: per connection it runs a reader (frames → core → events), a writer
(core frames → socket) and a rollover watcher in a ``TaskGroup``. After a drop it reconnects with exponential
backoff and lets the core replay the conversation. Before the session cap it opens a fresh connection at a
turn boundary (no response, no speech, no open tool batch, our playback estimate drained) and switches over.
``close()`` cancels and awaits the runner; nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from voicebot.audio.chunk import PcmChunk
from voicebot.config import Settings, Upstream
from voicebot.errors import FatalUpstreamError, LocalError, ProtocolError, RetryableUpstreamError
from voicebot.events import AudioOut, ClearAudio, ErrorKind, ModelError, ModelEvent, Notice, SessionEnded
from voicebot.realtime.session import RealtimeCore
from voicebot.realtime.wire import SessionConfig

log = logging.getLogger("voicebot.realtime")

FATAL_CLOSE_CODES = frozenset({4000})  # beta shape refused
_RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """Where and how to connect: OpenAI, the local engine, or an Azure-style endpoint (``api-key`` header)."""

    websocket_base_url: str  # e.g. wss://api.openai.com/v1 ; the URL is {base}/realtime?model=...
    api_key: str
    api_key_header: Literal["authorization", "api-key"] = "authorization"
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    extra_query: Mapping[str, str] = field(default_factory=dict)
    open_timeout_s: float = 10.0
    proxy: str | Literal[True] | None = True  # True: honour the *_PROXY environment like the SDK


class RealtimeModelSession:
    """A ``ModelSession`` over the GA Realtime WebSocket protocol."""

    def __init__(
        self,
        options: ConnectOptions,
        config: SessionConfig | None = None,
        *,
        reconnect_attempts: int = 5,
        reconnect_backoff_s: float = 0.25,
        session_rollover_s: float = 55 * 60,
        rollover_margin_s: float = 120.0,
    ) -> None:
        self.options = options
        self.core = RealtimeCore(config)
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_backoff_s = reconnect_backoff_s
        self.session_rollover_s = session_rollover_s
        self.rollover_margin_s = rollover_margin_s
        self.connections = 0  # connections opened so far (reconnects and rollovers included)
        self._queue: asyncio.Queue[ModelEvent | None] = asyncio.Queue()
        self._wakeup = asyncio.Event()  # the writer has frames to send
        self._send_lock = asyncio.Lock()  # held while messages are taken from the core and sent
        self._changed = asyncio.Event()  # the core's state may have changed (for the rollover watcher)
        self._runner: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._next_ws: ClientConnection | None = None
        self._connected_at = 0.0
        self._playout_until = 0.0
        self._closing = False
        self._finished = False
        self._flush_timer: asyncio.TimerHandle | None = None
        self._batch_wait_s = (self.core.config.input_audio_batch_ms + 20) / 1000

    @classmethod
    def from_settings(
        cls, settings: Settings, upstream: Upstream, config: SessionConfig | None = None
    ) -> RealtimeModelSession:
        cfg = config or SessionConfig(
            model=settings.model,
            voice=settings.voice,
            instructions=settings.instructions,
            input_audio_batch_ms=settings.realtime_input_batch_ms,
        )
        return cls(
            ConnectOptions(upstream.websocket_base_url, upstream.api_key),
            cfg,
            reconnect_attempts=settings.reconnect_attempts,
            reconnect_backoff_s=settings.reconnect_backoff_s,
            session_rollover_s=settings.session_rollover_s,
        )

    @property
    def input_rate(self) -> int:
        return self.core.input_rate

    @property
    def output_rate(self) -> int:
        return self.core.output_rate

    @property
    def url(self) -> str:
        query = {"model": self.core.config.model, **self.options.extra_query}
        return f"{self.options.websocket_base_url.rstrip('/')}/realtime?{urlencode(query)}"

    # ModelSession ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (retrying transient failures) and start the session. Raises ``FatalUpstreamError`` or
        ``RetryableUpstreamError`` when no connection could be made."""
        if self._runner is not None:
            raise LocalError("the realtime session was already started")
        for attempt in range(self.reconnect_attempts + 1):
            try:
                ws = await self._open()
                break
            except RetryableUpstreamError:
                if attempt == self.reconnect_attempts:
                    raise
                await asyncio.sleep(self.reconnect_backoff_s * 2**attempt)
        self._attach(ws, rollover=False)
        self._runner = asyncio.create_task(self._run(), name="realtime-session")

    async def send_audio(self, chunk: PcmChunk) -> None:
        core = self.core
        core.append_audio(chunk)
        if core.batched_input_samples and self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(
                self._batch_wait_s, self._flush_due, core.input_batches_sent
            )
        if not core.has_output:  # the chunk joined a batch: nothing to send yet
            return
        ws = self._ws
        if ws is None or core.has_events or self._send_lock.locked():
            self._wake()  # the writer sends it (after what it is sending now)
            return
        try:  # the batch leaves from this task: no hop through the writer task per message
            await self._send_all(ws)
        except ConnectionClosed:
            return  # the reader sees the close and reconnects; audio in flight is lost either way

    async def _send_all(self, ws: ClientConnection) -> None:
        """Send everything the core has produced, in order (one sender at a time)."""
        async with self._send_lock:
            for message in self.core.messages_to_send():
                await ws.send(message)

    def _flush_due(self, batches_then: int) -> None:
        """The batch timer: audio stopped arriving mid-batch, so send what there is."""
        self._flush_timer = None
        core = self.core
        if not core.batched_input_samples:
            return
        if core.input_batches_sent != batches_then:  # batches are still filling up: check again later
            self._flush_timer = asyncio.get_running_loop().call_later(
                self._batch_wait_s, self._flush_due, core.input_batches_sent
            )
            return
        core.flush_input_audio()
        self._wake()

    async def events(self) -> AsyncIterator[ModelEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event
            if isinstance(event, SessionEnded):
                return

    async def submit_tool_output(self, call_id: str, output: str) -> None:
        if not self.core.submit_tool_output(call_id, output):
            log.warning("tool output for unknown or already answered call %s ignored", call_id)
        self._wake()

    async def truncate(self, item_id: str, played_ms: int) -> None:
        self.core.truncate(item_id, played_ms)
        self._wake()

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        self.core.send_text(text, respond=respond)
        self._wake()

    async def update_session(self, **changes: Any) -> None:
        self.core.update_session(**changes)
        self._wake()

    async def say(self, text: str) -> None:
        self.core.say(text)
        self._wake()

    async def create_response(self, **overrides: Any) -> None:
        self.core.create_response(**overrides)
        self._wake()

    async def close(self) -> None:
        self._closing = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        await self._close_sockets()
        self._finish("closed")

    # plumbing -------------------------------------------------------------------------------------------

    def _wake(self) -> None:
        self._pull()

    def _pull(self) -> None:
        """Move the core's events to the queue and let the writer send what the core produced."""
        loop_time = asyncio.get_running_loop().time()
        while (event := self.core.next_event()) is not None:
            if isinstance(event, AudioOut):
                start = max(loop_time, self._playout_until)
                self._playout_until = start + event.chunk.duration_ms / 1000
            elif isinstance(event, ClearAudio):
                self._playout_until = loop_time
            elif isinstance(event, SessionEnded):
                detail = event.error.message if event.error else ""
                log.error("realtime session ended: %s %s", event.reason, detail)
                self._finished = True
            self._queue.put_nowait(event)
        self._wakeup.set()
        self._changed.set()

    def _finish(self, reason: str, error: ModelError | None = None) -> None:
        if not self._finished:
            self._finished = True
            if error is not None:
                log.error("realtime session ended: %s (%s)", reason, error.message)
            self._queue.put_nowait(SessionEnded(reason, error))
        self._queue.put_nowait(None)

    def _attach(self, ws: ClientConnection, *, rollover: bool) -> None:
        self._ws = ws
        self.connections += 1
        self._connected_at = asyncio.get_running_loop().time()
        self.core.connection_opened(rollover=rollover)
        self._pull()

    async def _open(self) -> ClientConnection:
        headers = dict(self.options.extra_headers)
        if self.options.api_key_header == "api-key":
            headers["api-key"] = self.options.api_key
        else:
            headers["Authorization"] = f"Bearer {self.options.api_key}"
        try:
            return await connect(
                self.url,
                additional_headers=headers,
                open_timeout=self.options.open_timeout_s,
                close_timeout=2,
                max_size=16 * 1024 * 1024,
                compression=None,
                proxy=self.options.proxy,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            message = f"the upstream refused the Realtime WebSocket with HTTP {status}"
            if 400 <= status < 500 and status not in _RETRYABLE_STATUS:
                raise FatalUpstreamError(message, code=f"http_{status}") from exc
            raise RetryableUpstreamError(message, code=f"http_{status}") from exc
        except InvalidURI as exc:
            raise FatalUpstreamError(f"bad Realtime URL {self.url!r}: {exc}", code="invalid_url") from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise RetryableUpstreamError(f"cannot reach the Realtime upstream: {exc!r}") from exc

    async def _close_sockets(self) -> None:
        for ws in (self._ws, self._next_ws):
            if ws is not None:
                with contextlib.suppress(Exception):
                    await ws.close()
        self._ws = self._next_ws = None

    # the runner -----------------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._connections()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must end this call cleanly, not leave it hanging
            log.exception("realtime session runner failed")
            self._finish("internal error", ModelError(ErrorKind.FATAL, "internal_error", repr(exc)))
        finally:
            await self._close_sockets()
            self._finish("closed")

    async def _connections(self) -> None:
        while self._ws is not None and not self.core.ended and not self._closing:
            ws = self._ws
            outcome, new_ws = await self._serve(ws)
            if outcome == "ended":
                return
            if outcome == "rollover" and new_ws is not None:
                self.core.connection_lost()
                self._next_ws = None
                self._attach(new_ws, rollover=True)
                log.info("realtime session rolled over to connection %d", self.connections)
                with contextlib.suppress(Exception):
                    await ws.close()
                continue
            self._ws = None
            self.core.connection_lost()
            self._queue.put_nowait(Notice("disconnected", {"code": ws.close_code, "reason": ws.close_reason}))
            self._pull()
            if ws.close_code in FATAL_CLOSE_CODES:
                error = ModelError(ErrorKind.FATAL, f"close_{ws.close_code}", ws.close_reason or "closed")
                self._finish(f"upstream closed the connection with code {ws.close_code}", error)
                return
            new = await self._reconnect()
            if new is None:
                return
            self._attach(new, rollover=False)

    async def _serve(self, ws: ClientConnection) -> tuple[str, ClientConnection | None]:
        async with asyncio.TaskGroup() as group:
            reader = group.create_task(self._read(ws))
            writer = group.create_task(self._write(ws))
            roller = group.create_task(self._roll())
            done, _ = await asyncio.wait({reader, writer, roller}, return_when=asyncio.FIRST_COMPLETED)
            for task in (reader, writer, roller):
                task.cancel()
        if roller in done and not roller.cancelled() and roller.result() is not None:
            return "rollover", roller.result()
        if self._next_ws is not None:  # a rollover connection that lost the race: drop it
            with contextlib.suppress(Exception):
                await self._next_ws.close()
            self._next_ws = None
        if self.core.ended or self._closing:
            return "ended", None
        return "closed", None

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                try:
                    self.core.receive_message(message)
                except ProtocolError as exc:
                    log.warning("ignoring a malformed Realtime frame: %s", exc)
                self._pull()
                if self.core.ended:
                    return
        except ConnectionClosed:
            return

    async def _write(self, ws: ClientConnection) -> None:
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                await self._send_all(ws)
        except ConnectionClosed:
            return

    async def _reconnect(self) -> ClientConnection | None:
        for attempt in range(self.reconnect_attempts):
            delay = self.reconnect_backoff_s * 2**attempt
            self._queue.put_nowait(Notice("reconnecting", {"attempt": attempt + 1, "delay_s": delay}))
            await asyncio.sleep(delay)
            try:
                return await self._open()
            except FatalUpstreamError as exc:
                self._finish(
                    "the upstream refused to reconnect", ModelError(ErrorKind.FATAL, exc.code, exc.message)
                )
                return None
            except RetryableUpstreamError as exc:
                log.warning("reconnect attempt %d failed: %s", attempt + 1, exc.message)
        error = ModelError(
            ErrorKind.RETRYABLE, "reconnect_failed", f"{self.reconnect_attempts} attempts failed"
        )
        self._finish("could not reconnect to the Realtime upstream", error)
        return None

    # rollover -------------------------------------------------------------------------------------------

    def _rollover_due(self) -> float:
        """Loop time at which this connection should be replaced."""
        due = self._connected_at + self.session_rollover_s
        if self.core.expires_at is not None:
            left = self.core.expires_at - time.time() - self.rollover_margin_s
            by_expiry = asyncio.get_running_loop().time() + left
            # a server clock far off (expiry already past) must not cause a storm of rollovers
            due = min(due, max(by_expiry, self._connected_at + min(60.0, self.session_rollover_s)))
        return due

    def _at_boundary(self) -> bool:
        return self.core.at_turn_boundary and asyncio.get_running_loop().time() >= self._playout_until

    async def _until_boundary(self) -> None:
        """Return at a turn boundary; woken by every frame and command, and when playback should be over."""
        loop = asyncio.get_running_loop()
        while not self._at_boundary():
            self._changed.clear()
            timeout = max(0.02, self._playout_until - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)

    async def _roll(self) -> ClientConnection | None:
        loop = asyncio.get_running_loop()
        while True:
            wait = self._rollover_due() - loop.time()
            if wait <= 0:
                break
            await asyncio.sleep(min(wait, 1.0))  # re-read: expires_at may arrive meanwhile
        failures = 0
        while self._next_ws is None:
            await self._until_boundary()
            try:
                self._next_ws = await self._open()
            except (RetryableUpstreamError, FatalUpstreamError) as exc:
                failures += 1
                log.warning("rollover connection failed (%s); retrying", exc.message)
                await asyncio.sleep(min(self.reconnect_backoff_s * 2**failures, 30.0))
        await self._until_boundary()
        return self._next_ws
