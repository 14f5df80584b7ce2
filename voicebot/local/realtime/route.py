"""``GET /v1/realtime``: the aiohttp WebSocket adapter that drives ``RealtimeCore``.

One connection is one ``asyncio.TaskGroup``: the reader (this handler), a writer that sends the core's
events in order, and one task per STT or TTS job. VAD runs per append (inline for a few frames, in a thread
for more), STT and TTS run in the speech stack's own workers, so the loop only moves frames.

With ``RECORD_DIR`` set on the app every session is recorded to JSONL; with ``REPLAY_PATH`` set the route
replays that recording instead of emulating (see ``voicebot.local.record``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from voicebot.local import keys
from voicebot.local.brain import Brain
from voicebot.local.faults import RealtimeFaults
from voicebot.local.http_errors import check_bearer, error_response
from voicebot.local.realtime.actions import (
    CloseConnection,
    SendEvent,
    StopSynthesis,
    Synthesize,
    Transcribe,
)
from voicebot.local.realtime.ids import IdFactory
from voicebot.local.realtime.protocol import RealtimeCore
from voicebot.local.record import Recorder, Recording, Replayer
from voicebot.local.speech import SpeechStack

log = logging.getLogger("voicebot.local.realtime")

# Record every session into this directory (one ``<session id>.jsonl`` each).
RECORD_DIR = web.AppKey("realtime_record_dir", Path)
# Serve this recording on every connection instead of emulating.
REPLAY_PATH = web.AppKey("realtime_replay_path", Path)

MAX_FRAME_BYTES = 20 * 1024 * 1024  # above the 15 MiB append limit, so oversized appends get an error event
INLINE_VAD_FRAMES = 8
BETA_MESSAGE = "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API."


def add_realtime_routes(
    app: web.Application, *, record_dir: Path | None = None, replay: Path | None = None
) -> None:
    """Register ``GET /realtime`` (the engine app is mounted under ``/v1``)."""
    if record_dir is not None:
        app[RECORD_DIR] = record_dir
    if replay is not None:
        app[REPLAY_PATH] = replay
    app.router.add_get("/realtime", realtime_handler)


def _is_beta(request: web.Request) -> bool:
    beta = request.headers.get("OpenAI-Beta", "").replace(" ", "").lower()
    protocols = request.headers.get("Sec-WebSocket-Protocol", "").replace(" ", "").lower().split(",")
    return "realtime=v1" in beta.split(",") or "openai-beta.realtime-v1" in protocols


async def realtime_handler(request: web.Request) -> web.StreamResponse:
    settings = request.config_dict[keys.ENGINE_SETTINGS]
    denied = check_bearer(request, settings)
    if denied is not None:
        return denied
    model, call_id = request.query.get("model"), request.query.get("call_id")
    if not model and not call_id:
        return error_response(
            400,
            "Missing required parameter: 'model'.",
            "invalid_request_error",
            "model",
            "missing_required_parameter",
        )
    faults = request.config_dict.get(keys.FAULTS)
    refusal = faults.take_refusal() if faults is not None else None
    if refusal is not None:
        log.info("fault injection: refusing a Realtime connection with HTTP %d", refusal)
        return error_response(
            refusal, "The server is temporarily unavailable (injected fault).", "server_error", None, None
        )
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, protocols=("realtime",), compress=False)
    await ws.prepare(request)
    if _is_beta(request):
        event = {
            "type": "error",
            "event_id": IdFactory().event(),
            "error": {
                "type": "invalid_request_error",
                "code": "beta_api_shape_disabled",
                "message": BETA_MESSAGE,
                "param": None,
                "event_id": None,
            },
        }
        await ws.send_str(json.dumps(event))
        await ws.close(code=4000, message=b"beta_api_shape_disabled")
        return ws
    replay = request.config_dict.get(REPLAY_PATH)
    if replay is not None:
        await _replay(ws, await asyncio.to_thread(Recording.load, replay))
        return ws
    brain = request.config_dict.get(keys.BRAIN) or Brain()
    speech = request.config_dict.get(keys.SPEECH)
    conn = _Connection(ws, speech, brain, model or "gpt-realtime", settings.local_max_session_s)
    if faults is not None:
        conn.drop_after_deltas = faults.take_drop()
        conn.faults = faults
    conn.transport = request.transport
    record_dir = request.config_dict.get(RECORD_DIR)
    if record_dir is not None:
        meta = {"path": request.path, "query": dict(request.query), "started_unix": time.time()}
        conn.recorder = Recorder(
            record_dir / f"{conn.core.session['id']}.jsonl", started=conn.started, meta=meta
        )
    try:
        await conn.run()
    finally:
        if conn.recorder is not None:
            conn.recorder.close()
    return ws


class _Connection:
    """Drives one ``RealtimeCore`` over one WebSocket."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        speech: SpeechStack | None,
        brain: Brain,
        model: str,
        max_session_s: float,
    ) -> None:
        self.ws = ws
        self.speech = speech
        self.vad = speech.new_vad() if speech is not None else None
        self.started = time.monotonic()
        self.core = RealtimeCore(
            model=model,
            now=self.started,
            unix_now=time.time(),
            brain=brain,
            max_session_s=max_session_s,
            vad_rate=self.vad.rate if self.vad else 16000,
            vad_frame_samples=self.vad.frame_samples if self.vad else 512,
        )
        self.recorder: Recorder | None = None
        self._outbox: asyncio.Queue[str | CloseConnection] = asyncio.Queue()
        self._tts: dict[str, asyncio.Task[None]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._close_sent = asyncio.Event()
        # fault injection (voicebot.local.faults)
        self.faults: RealtimeFaults | None = None
        self.drop_after_deltas: int | None = None
        self.transport: asyncio.Transport | None = None
        self._deltas_sent = 0

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            writer = tg.create_task(self._writer())
            self._pump()
            try:
                await self._reader()
            finally:
                writer.cancel()
                for task in list(self._tasks):
                    task.cancel()

    # reading ----------------------------------------------------------------------------------------------
    async def _reader(self) -> None:
        ws, core = self.ws, self.core
        while not ws.closed and not core.closed:
            timer = core.get_timer()
            timeout = None if timer is None else max(0.0, timer - time.monotonic())
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                core.handle_timer(time.monotonic())
                self._pump()
                continue
            now = time.monotonic()
            if msg.type == WSMsgType.TEXT:
                if self.recorder:
                    self.recorder.frame("client", msg.data, now)
                core.receive_message(msg.data, now)
                await self._run_vad()
            elif msg.type == WSMsgType.BINARY:
                core.receive_message(bytes(msg.data), now)
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                if self.recorder and msg.type == WSMsgType.CLOSE:
                    self.recorder.close_frame("client", int(msg.data or 1000), str(msg.extra or ""), now)
                break
            self._pump()
        if core.closed:  # let the writer deliver the close the core asked for
            try:
                await asyncio.wait_for(self._close_sent.wait(), 5.0)
            except TimeoutError:
                log.warning("closing the session took too long")

    async def _run_vad(self) -> None:
        frames = self.core.take_vad_frames()
        if not frames:
            return
        vad = self.vad
        if vad is None:
            probs = [0.0] * len(frames)
        elif len(frames) <= INLINE_VAD_FRAMES:
            probs = [vad.speech_prob(f) for f in frames]
        else:
            probs = await asyncio.to_thread(lambda: [vad.speech_prob(f) for f in frames])
        self.core.feed_vad(probs, time.monotonic())

    # the core's actions ------------------------------------------------------------------------------------
    def _pump(self) -> None:
        for action in self.core.take_actions():
            if isinstance(action, SendEvent):
                self._outbox.put_nowait(json.dumps(action.event, separators=(",", ":")))
            elif isinstance(action, CloseConnection):
                self._outbox.put_nowait(action)
            elif isinstance(action, Transcribe):
                self._spawn(self._transcribe(action))
            elif isinstance(action, Synthesize):
                self._tts[action.response_id] = self._spawn(self._synthesize(action))
            elif isinstance(action, StopSynthesis):
                task = self._tts.pop(action.response_id, None)
                if task is not None:
                    task.cancel()

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        assert self._tg is not None
        task: asyncio.Task[None] = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _writer(self) -> None:
        while True:
            item = await self._outbox.get()
            if isinstance(item, CloseConnection):
                if self.recorder:
                    self.recorder.close_frame("server", item.code, item.reason, time.monotonic())
                await self.ws.close(code=item.code, message=item.reason.encode())
                self._close_sent.set()
                return
            if self.ws.closed:
                continue
            if self.recorder:
                self.recorder.frame("server", item, time.monotonic())
            if self.faults is not None and await self._inject(item):
                return
            try:
                await self.ws.send_str(item)
            except ConnectionError:
                log.debug("client went away while sending")

    async def _inject(self, frame: str) -> bool:
        """Apply injected faults before ``frame`` goes out; True when the connection is over."""
        if self.drop_after_deltas is not None and '"type":"response.output_audio.delta"' in frame:
            self._deltas_sent += 1
            if self._deltas_sent > self.drop_after_deltas:
                log.info("fault injection: dropping the socket mid-response")
                if self.transport is not None:
                    self.transport.abort()  # like a network drop: no close frame
                self.core.closed = True
                self._close_sent.set()
                return True
        if (
            '"type":"response.created"' in frame
            and self.faults is not None
            and self.faults.take_quota_error()
        ):
            log.info("fault injection: insufficient_quota")
            error = {
                "type": "error",
                "event_id": IdFactory().event(),
                "error": {
                    "type": "insufficient_quota",
                    "code": "insufficient_quota",
                    "message": "You exceeded your current quota, please check your plan and billing details.",
                    "param": None,
                    "event_id": None,
                },
            }
            await self.ws.send_str(json.dumps(error))
            await self.ws.close(code=1011, message=b"insufficient_quota")
            self.core.closed = True
            self._close_sent.set()
            return True
        return False

    # speech -------------------------------------------------------------------------------------------
    async def _transcribe(self, job: Transcribe) -> None:
        try:
            if self.speech is None:
                raise RuntimeError("the local engine has no speech stack")
            result = await self.speech.transcribe(job.audio, language=job.language, prompt=job.prompt)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("transcription of %s failed: %s", job.item_id, exc)
            self.core.transcription_failed(job.item_id, str(exc), time.monotonic())
        else:
            self.core.transcription_done(job.item_id, result.text, result.duration_s, time.monotonic())
        self._pump()

    async def _synthesize(self, job: Synthesize) -> None:
        try:
            if self.speech is None:
                raise RuntimeError("the local engine has no speech stack")
            async for chunk in self.speech.synthesize(job.text, voice=job.voice, speed=job.speed):
                self.core.synthesis_chunk(job.response_id, chunk, time.monotonic())
                self._pump()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("synthesis for %s failed: %s", job.response_id, exc)
            self.core.synthesis_failed(job.response_id, str(exc), time.monotonic())
        else:
            self.core.synthesis_done(job.response_id, time.monotonic())
        finally:
            self._tts.pop(job.response_id, None)
        self._pump()


async def _replay(ws: web.WebSocketResponse, recording: Recording) -> None:
    """Serve a recording: its server frames in order, paced by the client's frames."""
    replayer = Replayer(recording)

    async def send(entries: list[Any]) -> bool:
        for e in entries:
            if e.kind == "close":
                await ws.close(code=e.code, message=e.reason.encode())
                return False
            await ws.send_str(e.text)
        return True

    if not await send(replayer.start()):
        return
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        if not await send(replayer.on_client_frame(msg.data)):
            return
