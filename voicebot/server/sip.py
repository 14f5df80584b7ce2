"""Phone calls: the SIP endpoint on UDP, RTP per call, and a voicebot ``Call`` for every answered INVITE.

::

    INVITE ─▶ SipTransport ─▶ IncomingCall ─▶ bind RTP port ─▶ 180 ─▶ start model session ─▶ 200 (SDP)
    ACK    ─▶ CallEstablished ─▶ RtpSession.start ─▶ Call(SipAudioPort, model, tools).run()
    BYE/CANCEL/max duration ─▶ CallEnded ─▶ frames() ends ─▶ the Call closes the model and the port
    the Call ends (end_call tool, model failure) ─▶ port.close() ─▶ BYE

By default G.711 passes straight through: the model session uses ``audio/pcmu`` or ``audio/pcma`` (8 kHz,
so the call's resamplers are identity) and the port hands over 20 ms frames decoded from the RTP payload.
With ``sip_transcode_to_pcm24k`` the model gets 24 kHz PCM instead. Every call is one task owned by the
``SipService``; ``close()`` hangs them all up. Start it with ``setup_sip(app)`` (``Settings.sip_port``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from aiohttp import web

from voicebot.audio.chunk import PcmChunk
from voicebot.call import Call
from voicebot.config import Settings
from voicebot.errors import BadRequest, CapacityError, ProtocolError, UpstreamError, VoicebotError
from voicebot.playout import QueuedOutput
from voicebot.ports import ModelSession
from voicebot.realtime.wire import AudioFormat
from voicebot.rtp.dtmf import DtmfDigit
from voicebot.rtp.transport import RtpClock, RtpPortPool, RtpSession
from voicebot.server.app import SETTINGS
from voicebot.server.capacity import CALL_SLOTS
from voicebot.server.sessions import run_call
from voicebot.sip.auth import RegisterClient, RegistrationConfig, RegistrationEvent
from voicebot.sip.endpoint import DTMF_DIGITS, Endpoint, EndpointConfig
from voicebot.sip.events import (
    CallEnded,
    CallEstablished,
    CallHeld,
    CallResumed,
    DtmfFromSip,
    IncomingCall,
    MediaChanged,
    SipEvent,
    TransferUpdate,
)
from voicebot.sip.headers import SipUri
from voicebot.sip.sdp import LocalMedia, NegotiatedMedia, SdpNegotiationError, negotiate
from voicebot.sip.security import SecurityConfig
from voicebot.sip.transport import SipTransport
from voicebot.tools import ToolRunner
from voicebot.webrtc.relay import ObservedModel

log = logging.getLogger("voicebot.sip")

MODEL_START_TIMEOUT_S = 10.0
ACK_TIMEOUT_S = 40.0  # the core gives up after 64·T1 = 32 s and reports no_ack; this is a backstop
TRANSFER_ACCEPT_TIMEOUT_S = 8.0
TRANSFER_FINAL_TIMEOUT_S = 5.0
DTMF_GAP_S = 0.6  # digits closer together than this reach the model as one message
HANGUP_WAIT_S = 5.0
RECORDS_KEPT = 100


class SipModelFactory(Protocol):
    """Makes the model side of a phone call (``voicebot.server.sessions.create_model_session``)."""

    def __call__(
        self, app: web.Application, *, caller: str, audio_format: AudioFormat, runner: ToolRunner | None
    ) -> ModelSession: ...


SIP_MODEL_FACTORY = web.AppKey("sip_model_factory", SipModelFactory)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A finished SIP call, kept (the last ``RECORDS_KEPT``) for status pages, logs and tests."""

    call_id: str
    caller: str
    answered: bool
    end_reason: str
    dtmf: str
    codec: str | None
    rtp_stats: dict[str, int]


@dataclass(eq=False)
class SipLeg:
    """What the service knows about one SIP call."""

    call_id: str
    caller: str
    rtp: RtpSession
    established: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    end_reason: str = ""
    media: NegotiatedMedia | None = None
    digits: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    dtmf_received: str = ""  # every digit the caller pressed, in order
    transfer_updates: asyncio.Queue[TransferUpdate] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    call: Call | None = None


class SipAudioPort(QueuedOutput):
    """``AudioPort`` + ``TelephonyPort`` of one SIP call (8 kHz both ways, 20 ms frames)."""

    input_rate = 8000
    output_rate = 8000

    def __init__(self, service: SipService, leg: SipLeg) -> None:
        self.service = service
        self.leg = leg
        self.queue = leg.rtp.queue  # Call.hang_up drains it before ending

    def frames(self) -> AsyncIterator[PcmChunk]:
        return self.leg.rtp.frames()

    def clear(self) -> None:
        self.leg.rtp.clear()

    @property
    def dtmf_received(self) -> str:
        return self.leg.dtmf_received

    async def close(self) -> None:
        call = self.leg.call
        self.service.end_leg(self.leg, (call.stats.end_reason if call is not None else "") or "local hangup")

    async def send_dtmf(self, digits: str) -> None:
        digits = digits.upper()
        if not digits or any(d not in DTMF_DIGITS for d in digits):
            raise BadRequest(f"not DTMF digits: {digits!r}")
        if not self.leg.rtp.send_dtmf(digits):  # no telephone-event negotiated: SIP INFO
            self.service.sip.send_info_dtmf(self.leg.call_id, digits)

    async def transfer(self, target: str) -> None:
        """Blind transfer (REFER) to an allow-listed target (a name or one of the listed URIs)."""
        uri = self.service.transfer_uri(target)
        while not self.leg.transfer_updates.empty():
            self.leg.transfer_updates.get_nowait()
        if not self.service.sip.transfer(self.leg.call_id, uri):
            raise BadRequest("the call cannot be transferred now (not established)")
        try:
            async with asyncio.timeout(TRANSFER_ACCEPT_TIMEOUT_S):
                update = await self.leg.transfer_updates.get()
        except TimeoutError:
            raise UpstreamError("the phone network did not answer the transfer request") from None
        if update.status >= 300:
            raise UpstreamError(f"the transfer was refused ({update.status} {update.reason})".strip())
        log.info("call %s: transfer to %s accepted (%d)", self.leg.call_id, target, update.status)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TRANSFER_FINAL_TIMEOUT_S):
                while not update.final:
                    update = await self.leg.transfer_updates.get()
        self.service.end_leg(self.leg, "transferred")


class SipService:
    """The SIP socket, the RTP ports and clock, and the calls in progress."""

    def __init__(self, app: web.Application, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.bind_host = settings.sip_host or settings.host
        self.public_host = settings.sip_public_address or _public_default(self.bind_host)
        self.transfer_targets = dict(settings.sip_transfer_targets)
        self.endpoint = Endpoint(endpoint_config(settings, self.public_host, settings.sip_port or 5060))
        self.pool = RtpPortPool(self.bind_host, settings.rtp_port_min, settings.rtp_port_max)
        self.clock = RtpClock()
        self.legs: dict[str, SipLeg] = {}
        self.finished: deque[CallRecord] = deque(maxlen=RECORDS_KEPT)
        self.stats: Counter[str] = Counter()  # incoming, answered, reject_<status>, end_<reason>
        self.register: RegisterClient | None = None
        self.registration: RegistrationEvent | None = None
        self._registration_changed = asyncio.Event()
        self._sip: SipTransport | None = None
        self._closing = False

    @property
    def sip(self) -> SipTransport:
        if self._sip is None:
            raise RuntimeError("the SIP service is not started")
        return self._sip

    async def start(self) -> None:
        port = self.settings.sip_port or 0
        self.register = await self._register_client(port)
        self._sip = await SipTransport.listen(
            self.bind_host,
            port,
            self.endpoint,
            self.on_event,
            register=self.register,
            on_registration=self._on_registration,
        )
        bound = self._sip.local_address[1]
        if bound != self.endpoint.config.port:
            self.endpoint.config = replace(self.endpoint.config, port=bound)
        self.clock.start()
        log.info("SIP listening on udp %s:%d (public %s)", self.bind_host, bound, self.public_host)
        if self.register is not None:
            contact, sent_by = _contact_fields(self, bound)
            self.register.config = replace(self.register.config, contact=contact, sent_by=sent_by)
            self._sip.start_registration()

    async def close(self) -> None:
        self._closing = True
        legs = list(self.legs.values())
        for leg in legs:
            self.end_leg(leg, "server shutting down")
        tasks = [leg.task for leg in legs if leg.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=HANGUP_WAIT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._sip is not None:
            if self.register is not None and self.register.state == "registered":
                self._registration_changed.clear()
                self._sip.stop_registration()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._registration_changed.wait(), 1.0)
            await asyncio.sleep(0.05)  # let the BYEs leave the socket
            self._sip.close()
        await self.clock.close()

    # events from the SIP core -----------------------------------------------------------------------------
    def on_event(self, event: SipEvent) -> None:
        if isinstance(event, IncomingCall):
            self._incoming(event)
            return
        leg = self.legs.get(event.call_id)
        if leg is None:
            return
        if isinstance(event, CallEstablished):
            leg.media = event.media
            leg.rtp.start(event.media)
            leg.established.set()
        elif isinstance(event, CallHeld | CallResumed | MediaChanged):
            log.info("call %s: %s", leg.call_id, type(event).__name__)
            leg.media = event.media
            leg.rtp.update(event.media)
        elif isinstance(event, CallEnded):
            log.info("call %s: SIP side ended (%s)", leg.call_id, event.reason)
            self._ended(leg, event.reason)
        elif isinstance(event, DtmfFromSip):
            self._digit(leg, event.digit)
        elif isinstance(event, TransferUpdate):
            leg.transfer_updates.put_nowait(event)

    def _on_registration(self, event: RegistrationEvent) -> None:
        log.info("trunk registration: %r", event)
        self.registration = event
        self._registration_changed.set()

    def _incoming(self, event: IncomingCall) -> None:
        if self._closing:
            self.sip.reject(event.call_id, 503, retry_after=10)
            return
        slots = self.app.get(CALL_SLOTS)
        if slots is not None:
            try:
                slots.acquire()
            except CapacityError as exc:
                self.stats["reject_503"] += 1
                self.sip.reject(event.call_id, 503, retry_after=exc.retry_after_s)
                return
        rtp = RtpSession(
            self.pool,
            self.clock,
            name=event.call_id,
            inbound_chunk_ms=self.settings.realtime_input_batch_ms,
        )
        rtp.signalling_ip = event.source[0]
        leg = SipLeg(event.call_id, event.caller, rtp)
        rtp.on_dtmf = functools.partial(self._rtp_digit, leg)
        rtp.on_failure = functools.partial(self.end_leg, leg, "media failure")
        self.legs[leg.call_id] = leg
        self.stats["incoming"] += 1
        leg.task = asyncio.get_running_loop().create_task(self._serve(leg, event), name=f"sip:{leg.call_id}")

    def _rtp_digit(self, leg: SipLeg, digit: DtmfDigit) -> None:
        self._digit(leg, digit.digit)

    def _reject(self, leg: SipLeg, status: int, retry_after: int | None = None) -> None:
        self.stats[f"reject_{status}"] += 1
        self.sip.reject(leg.call_id, status, retry_after=retry_after)

    def _digit(self, leg: SipLeg, digit: str) -> None:
        log.info("call %s: DTMF %s", leg.call_id, digit)
        leg.dtmf_received += digit
        leg.digits.put_nowait(digit)

    def _ended(self, leg: SipLeg, reason: str) -> None:
        if not leg.ended.is_set():
            leg.end_reason = reason
            leg.ended.set()
        leg.rtp.close()  # frames() ends: the Call sees the caller hang up

    def end_leg(self, leg: SipLeg, reason: str = "local hangup") -> None:
        """End the call from our side: BYE (or a final response if it was not answered yet)."""
        if not leg.ended.is_set():
            self._ended(leg, reason)  # first, so the core's CallEnded(local_bye) does not override it
            if self._sip is not None:
                self._sip.hangup(leg.call_id)
        leg.rtp.close()

    def transfer_uri(self, target: str) -> str:
        if target in self.transfer_targets:
            return self.transfer_targets[target]
        if target in self.transfer_targets.values():
            return target
        raise BadRequest(f"transfer target {target!r} is not in the allow-list (sip_transfer_targets)")

    # one call ----------------------------------------------------------------------------------------------
    async def _serve(self, leg: SipLeg, event: IncomingCall) -> None:
        model: ModelSession | None = None
        try:
            model = await self._prepare(leg, event)
            if model is None:
                return
            if not await _first(leg.established, leg.ended, ACK_TIMEOUT_S):
                return
            await self._converse(leg, model)
            model = None  # the Call closed it
        except Exception:
            log.exception("call %s: failed", leg.call_id)
        finally:
            if model is not None:
                await _close_quietly(model)
            self.end_leg(leg, leg.end_reason or "done")
            self.legs.pop(leg.call_id, None)
            slots = self.app.get(CALL_SLOTS)
            if slots is not None:
                slots.release()
            self.finished.append(_record(leg))
            self.stats[f"end_{leg.end_reason}"] += 1

    async def _prepare(self, leg: SipLeg, event: IncomingCall) -> ModelSession | None:
        """Bind RTP, ring, start the model, answer. None (after rejecting) when the call cannot go on."""
        try:
            port = await leg.rtp.open()
        except CapacityError as exc:
            log.warning("call %s: %s", leg.call_id, exc.message)
            self._reject(leg, 503, exc.retry_after_s)
            return None
        self.sip.ring(leg.call_id)
        local = LocalMedia(self.public_host, port, session_id=_session_id(leg.call_id))
        runner = self._runner()
        model: ModelSession = ObservedModel(self._model(leg, event, local, runner))
        try:
            started = asyncio.ensure_future(model.start())
            if not await _first_task(started, leg.ended, MODEL_START_TIMEOUT_S):
                await _close_quietly(model)
                log.warning("call %s: the model session did not start in time", leg.call_id)
                self._reject(leg, 480 if leg.ended.is_set() else 503, 5)
                return None
        except Exception as exc:
            log.warning("call %s: model session failed to start: %r", leg.call_id, exc)
            await _close_quietly(model)
            self._reject(leg, 503, 30)
            return None
        delay = self.settings.sip_answer_delay_s
        if delay > 0 and await _first(leg.ended, asyncio.Event(), delay):
            await _close_quietly(model)  # cancelled (or hung up) while ringing
            return None
        if not self.sip.answer(leg.call_id, local):
            await _close_quietly(model)
            return None
        leg.call = Call(
            SipAudioPort(self, leg),
            model,
            call_id=leg.call_id,
            caller=leg.caller,
            tools=runner,
            max_duration_s=self.settings.sip_max_call_duration_s + 5,
        )
        self.stats["answered"] += 1
        log.info("call %s from %s answered (RTP port %d)", leg.call_id, leg.caller, port)
        return model

    def _runner(self) -> ToolRunner | None:
        from voicebot.server.sessions import AGENT, create_tool_runner

        return create_tool_runner(self.app) if AGENT in self.app else None

    def _model(
        self, leg: SipLeg, event: IncomingCall, local: LocalMedia, runner: ToolRunner | None
    ) -> ModelSession:
        factory = self.app.get(SIP_MODEL_FACTORY)
        if factory is None:
            from voicebot.server.sessions import create_model_session

            factory = create_model_session
        return factory(
            self.app, caller=leg.caller, audio_format=self._audio_format(event, local), runner=runner
        )

    def _audio_format(self, event: IncomingCall, local: LocalMedia) -> AudioFormat:
        if self.settings.sip_transcode_to_pcm24k:
            return "audio/pcm"
        if event.offer is not None:
            with contextlib.suppress(SdpNegotiationError, ProtocolError):
                if negotiate(event.offer, local)[1].codec == "PCMA":
                    return "audio/pcma"
        return "audio/pcmu"

    async def _converse(self, leg: SipLeg, model: ModelSession) -> None:
        call = leg.call
        assert call is not None
        async with asyncio.TaskGroup() as tg:
            pump = tg.create_task(_dtmf_pump(leg, model), name=f"{leg.call_id}:dtmf")
            stats = await run_call(self.app, call)
            pump.cancel()
        log.info(
            "call %s: done (%s; %d frames up, %d down, %d barge-ins)",
            leg.call_id,
            stats.end_reason,
            stats.frames_up,
            stats.frames_down,
            stats.barge_ins,
        )

    async def _register_client(self, port: int) -> RegisterClient | None:
        s = self.settings
        if not s.sip_register_uri:
            return None
        if not s.sip_register_username or s.sip_register_password is None:
            raise BadRequest("sip_register_uri needs sip_register_username and sip_register_password")
        uri = SipUri.parse(s.sip_register_uri)
        host, rport = uri.address
        infos = await asyncio.get_running_loop().getaddrinfo(host, rport, type=socket.SOCK_DGRAM)
        if not infos:
            raise BadRequest(f"cannot resolve the registrar {host!r}")
        address = infos[0][4]
        aor = s.sip_register_aor or f"sip:{s.sip_register_username}@{host}"
        config = RegistrationConfig(
            registrar=(str(address[0]), int(address[1])),
            registrar_uri=f"{uri.scheme}:{uri.host}" + (f":{uri.port}" if uri.port else ""),
            aor=aor,
            contact="",
            sent_by="",
            username=s.sip_register_username,
            password=s.sip_register_password.get_secret_value(),
            expires=s.sip_register_expires,
        )
        contact, sent_by = _contact_fields(self, port)
        return RegisterClient(replace(config, contact=contact, sent_by=sent_by))


def _record(leg: SipLeg) -> CallRecord:
    codec = leg.media.codec if leg.media is not None else None
    stats = dict(leg.rtp.stats)
    return CallRecord(
        leg.call_id, leg.caller, leg.call is not None, leg.end_reason, leg.dtmf_received, codec, stats
    )


def _contact_fields(service: SipService, port: int) -> tuple[str, str]:
    """(Contact URI, Via sent-by) of our registration."""
    host = f"[{service.public_host}]" if ":" in service.public_host else service.public_host
    user = service.settings.sip_register_username or "voicebot"
    return f"sip:{user}@{host}:{port}", f"{host}:{port}"


def endpoint_config(settings: Settings, public_host: str, port: int) -> EndpointConfig:
    """The SIP core's configuration from the settings."""
    sources = tuple(settings.sip_allowed_sources) if settings.sip_allowed_sources is not None else None
    return EndpointConfig(
        host=public_host,
        port=port,
        user=settings.sip_register_username or "voicebot",
        max_calls=settings.max_calls,
        max_call_duration_s=settings.sip_max_call_duration_s,
        security=SecurityConfig(
            allowed_sources=sources,
            requests_per_s=settings.sip_requests_per_s,
            request_burst=2 * settings.sip_requests_per_s,
            invites_per_s=settings.sip_invites_per_s,
            invite_burst=2 * settings.sip_invites_per_s,
        ),
        transfer_targets=tuple(settings.sip_transfer_targets.values()),
    )


def _public_default(bind_host: str) -> str:
    if bind_host in ("0.0.0.0", "::", ""):
        log.warning("SIP binds %r; set sip_public_address so peers can reach us (using 127.0.0.1)", bind_host)
        return "127.0.0.1"
    return bind_host


def _session_id(call_id: str) -> int:
    return abs(hash(call_id)) % 10**9 + 1


async def _first(good: asyncio.Event, bad: asyncio.Event, limit_s: float) -> bool:
    """Wait until ``good`` or ``bad`` is set (or the timeout); True only for ``good`` (before ``bad``)."""
    waiters = [asyncio.ensure_future(good.wait()), asyncio.ensure_future(bad.wait())]
    try:
        await asyncio.wait(waiters, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return good.is_set() and not bad.is_set()


async def _first_task(task: asyncio.Future[None], bad: asyncio.Event, limit_s: float) -> bool:
    """Wait for ``task`` unless ``bad`` is set first; re-raises its error; False on ``bad`` or timeout."""
    waiter: asyncio.Future[Any] = asyncio.ensure_future(bad.wait())
    both: set[asyncio.Future[Any]] = {task, waiter}
    try:
        await asyncio.wait(both, timeout=limit_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return False
    task.result()
    return not bad.is_set()


async def _dtmf_pump(leg: SipLeg, model: ModelSession) -> None:
    """Digits reach the model as a user message (several quick presses as one), which asks for a reply."""
    while True:
        digits = [await leg.digits.get()]
        while digits[-1] != "#":
            try:
                async with asyncio.timeout(DTMF_GAP_S):
                    digits.append(await leg.digits.get())
            except TimeoutError:
                break
        try:
            await model.send_text(f"The caller pressed {' '.join(digits)}", respond=True)
        except VoicebotError as exc:
            log.warning("call %s: could not pass DTMF to the model: %s", leg.call_id, exc)


async def _close_quietly(model: ModelSession) -> None:
    try:
        await model.close()
    except Exception:
        log.debug("closing a model session failed", exc_info=True)


# wiring ---------------------------------------------------------------------------------------------------
SIP_SERVICE = web.AppKey("sip_service", SipService)


async def sip_lifetime(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx entry: the SIP endpoint lives and dies with the app."""
    service = SipService(app, app[SETTINGS])
    await service.start()
    app[SIP_SERVICE] = service
    try:
        yield
    finally:
        await service.close()


def setup_sip(app: web.Application) -> None:
    """Start SIP with the app when ``Settings.sip_port`` is set."""
    if app[SETTINGS].sip_port is not None:
        app.cleanup_ctx.append(sip_lifetime)
