"""The UAS core behind ``Endpoint`` (pure): per-call state and the handlers for each request method.

Kept apart from ``endpoint.py`` (the adapter-facing surface: datagrams, timers, commands) so both stay
readable. Section numbers are RFC 3261 unless marked otherwise.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from enum import StrEnum

from voicebot.errors import ProtocolError
from voicebot.sip.dialog import Dialog
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
from voicebot.sip.message import (
    DEFAULT_LIMITS,
    Limits,
    SipParseError,
    SipRequest,
    SipResponse,
    build_response,
)
from voicebot.sip.sdp import (
    SUPPORTED_CODECS,
    LocalMedia,
    NegotiatedMedia,
    SdpNegotiationError,
    SessionDescription,
    accept_answer,
    build_offer,
    negotiate,
    parse_sdp,
)
from voicebot.sip.security import SecurityConfig, SecurityPolicy
from voicebot.sip.transaction import (
    DEFAULT_TIMERS,
    ClientNonInviteTransaction,
    Datagram,
    ServerInviteTransaction,
    ServerKey,
    ServerNonInviteTransaction,
    Timers,
    server_key,
)

log = logging.getLogger("voicebot.sip")

Addr = tuple[str, int]
ServerTx = ServerInviteTransaction | ServerNonInviteTransaction

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, NOTIFY"
ACCEPT = "application/sdp"
SUPPORTED_OPTIONS: frozenset[str] = frozenset()  # option tags we implement (none: no 100rel, no timer)
KNOWN_NOT_ALLOWED = frozenset({"REGISTER", "PUBLISH", "SUBSCRIBE", "REFER", "UPDATE", "PRACK"})
_DTMF_TYPES = ("application/dtmf-relay", "application/dtmf")


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    host: str = "127.0.0.1"  # our reachable address, used in Via and Contact
    port: int = 5060
    user: str = "voicebot"
    user_agent: str = "voicebot"
    max_calls: int = 40
    retry_after_s: int = 5
    max_call_duration_s: float | None = 3600.0
    max_ring_s: float = 60.0  # an INVITE nobody answers gets 480 after this long
    timers: Timers = DEFAULT_TIMERS
    limits: Limits = DEFAULT_LIMITS
    security: SecurityConfig = field(default_factory=SecurityConfig)
    codecs: tuple[str, ...] = SUPPORTED_CODECS
    transfer_targets: tuple[str, ...] = ()  # REFER targets allowed (never taken from model output)
    max_transactions: int = 4096

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{self.sent_by}>"

    @property
    def sent_by(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class CallState(StrEnum):
    OFFERED = "offered"  # INVITE received, 100 (maybe 180) sent
    ANSWERED = "answered"  # 200 sent, waiting for the ACK
    CONFIRMED = "confirmed"  # ACK received
    ENDED = "ended"


@dataclass(eq=False, slots=True)
class Call:
    call_id: str
    invite: SipRequest
    addr: Addr  # where the INVITE came from; our responses and requests go there
    tx: ServerInviteTransaction
    local_tag: str
    created: float
    state: CallState = CallState.OFFERED
    dialog: Dialog | None = None
    offer: SessionDescription | None = None  # the peer's offer from the INVITE
    our_offer: SessionDescription | None = None  # our offer in a 200, answered in the ACK
    local: LocalMedia | None = None
    media: NegotiatedMedia | None = None
    hangup_pending: bool = False
    deadline: float | None = None  # ring timeout, then max call duration
    reinvite_tx: ServerInviteTransaction | None = None
    # §13.3.1.4: the UAS core retransmits a 2xx to INVITE until the ACK arrives
    ok_wire: bytes | None = None
    ok_cseq: int = 0
    ok_next: float | None = None
    ok_interval: float = 0.5
    ok_deadline: float | None = None

    def start_ok_retransmit(self, wire: bytes, cseq: int, now: float, timers: Timers) -> None:
        self.ok_wire, self.ok_cseq = wire, cseq
        self.ok_interval = timers.t1
        self.ok_next = now + timers.t1
        self.ok_deadline = now + timers.b

    def stop_ok_retransmit(self) -> None:
        self.ok_wire = None
        self.ok_next = self.ok_deadline = None

    def next_timer(self) -> float | None:
        present = [t for t in (self.ok_next, self.ok_deadline, self.deadline) if t is not None]
        return min(present) if present else None


@dataclass(slots=True)
class Pending:
    tx: ClientNonInviteTransaction
    call_id: str
    purpose: str  # bye | refer | info


class UasCore:
    """State and per-method request handling; ``Endpoint`` adds the public surface."""

    def __init__(self, config: EndpointConfig | None = None, *, rng: random.Random | None = None) -> None:
        self.config = config or EndpointConfig()
        self._rng = rng or random.SystemRandom()
        self._security = SecurityPolicy(self.config.security)
        self._out: list[Datagram] = []
        self._events: deque[SipEvent] = deque()
        self._calls: dict[str, Call] = {}
        self._server: dict[ServerKey, ServerTx] = {}
        self._client: dict[str, Pending] = {}
        self.stats: Counter[str] = Counter()

    # -- small helpers -----------------------------------------------------------------------------
    def _tag(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    def _branch(self) -> str:
        return f"z9hG4bK{self._rng.getrandbits(64):016x}"

    def _send(self, datagrams: list[Datagram]) -> None:
        self._out.extend(datagrams)

    def _new_tx(self, req: SipRequest, addr: Addr, now: float) -> ServerTx:
        tx: ServerTx
        timers = self.config.timers
        if req.method == "INVITE":
            tx = ServerInviteTransaction(req, addr, now, timers)
        else:
            tx = ServerNonInviteTransaction(req, addr, now, timers)
        self._server[server_key(req)] = tx
        return tx

    def _reply(
        self,
        tx: ServerTx,
        status: int,
        now: float,
        *,
        tag: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        resp = build_response(tx.request, status, to_tag=tag or self._tag(), headers=headers or [], body=body)
        self._send(tx.send_response(resp, now))

    def _start_client(self, req: SipRequest, call: Call, purpose: str, now: float) -> None:
        tx = ClientNonInviteTransaction(req, call.addr, now, self.config.timers)
        self._client[tx.branch] = Pending(tx, call.call_id, purpose)
        self._send(tx.start())

    def _bye(self, call: Call, now: float, reason: str) -> None:
        if call.dialog is not None and call.state is not CallState.ENDED:
            self._start_client(call.dialog.new_request("BYE", self._branch()), call, "bye", now)
        self._end(call, reason)

    def _end(self, call: Call, reason: str, status: int | None = None) -> None:
        if call.state is CallState.ENDED:
            return
        call.state = CallState.ENDED
        call.stop_ok_retransmit()
        call.deadline = None
        self._calls.pop(call.call_id, None)
        self._events.append(CallEnded(call.call_id, reason, status))

    def _reject_call(
        self, call: Call, status: int, now: float, extra: list[tuple[str, str]], reason: str = "rejected"
    ) -> None:
        resp = build_response(call.invite, status, to_tag=call.local_tag, headers=extra)
        self._send(call.tx.send_response(resp, now))
        self._end(call, reason, status)

    def _ensure_dialog(self, call: Call) -> Dialog:
        if call.dialog is None:
            cfg = self.config
            start = self._rng.randrange(1, 2**16)
            call.dialog = Dialog.as_uas(call.invite, call.local_tag, cfg.contact, cfg.sent_by, start)
            call.dialog.user_agent = cfg.user_agent
        return call.dialog

    def _dialog_response(self, call: Call, req: SipRequest, status: int, body: bytes = b"") -> SipResponse:
        """A 18x/2xx that creates or refreshes the dialog: our tag, Contact, Record-Route copied (§12.1.1)."""
        headers = [("Record-Route", rr) for rr in req.headers.get_all("Record-Route")]
        headers += [("Contact", self.config.contact), ("Allow", ALLOW), ("Server", self.config.user_agent)]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return build_response(req, status, to_tag=call.local_tag, headers=headers, body=body)

    def _find_dialog(self, req: SipRequest) -> Call | None:
        call = self._calls.get(req.call_id)
        if call is None or call.dialog is None or not call.dialog.matches(req):
            return None
        return call

    # -- dispatch ----------------------------------------------------------------------------------
    def _dispatch(self, req: SipRequest, addr: Addr, now: float) -> None:
        method = req.method
        if method == "CANCEL":
            self._on_cancel(req, addr, now)
            return
        tx = self._new_tx(req, addr, now)
        allow = [("Allow", ALLOW)]
        scheme = req.uri.split(":", 1)[0].lower()
        if scheme not in ("sip", "sips", "tel"):
            self._reply(tx, 416, now)
        elif method in KNOWN_NOT_ALLOWED:
            self._reply(tx, 405, now, headers=allow)
        elif method not in ("INVITE", "BYE", "OPTIONS", "INFO", "NOTIFY"):
            self._reply(tx, 501, now, headers=allow)
        elif unsupported := [
            r for r in req.headers.get_list("Require") if r.lower() not in SUPPORTED_OPTIONS
        ]:
            self._reply(tx, 420, now, headers=[("Unsupported", ", ".join(unsupported))])
        elif method == "OPTIONS":
            self._on_options(req, tx, now)
        elif method == "INVITE":
            assert isinstance(tx, ServerInviteTransaction)
            if req.to.tag:
                self._on_reinvite(req, tx, now)
            else:
                self._on_invite(req, addr, tx, now)
        else:
            self._on_in_dialog(req, tx, now)

    def _on_options(self, req: SipRequest, tx: ServerTx, now: float) -> None:
        """§11.2: 200 with Allow/Accept; out of dialog it gets a fresh To tag like any other response."""
        headers = [("Allow", ALLOW), ("Accept", ACCEPT), ("Accept-Language", "en")]
        headers += [("Contact", self.config.contact), ("Server", self.config.user_agent)]
        call = self._find_dialog(req)
        self._reply(tx, 200, now, tag=call.local_tag if call else None, headers=headers)

    def _read_offer(self, req: SipRequest) -> SessionDescription | None:
        """The SDP offer of an INVITE, validated and checked for a usable codec; None if there is none."""
        if not req.body.strip():
            return None
        if req.content_type != "application/sdp":
            raise SipParseError(f"unsupported body type {req.content_type!r}", 415)
        encoding = (req.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            raise SipParseError(f"unsupported Content-Encoding {encoding!r}", 415)
        offer = parse_sdp(req.body)
        negotiate(offer, LocalMedia("0.0.0.0", 9, codecs=self.config.codecs))  # dry run: 488 now, not later
        return offer

    def _offer_error_headers(self, exc: ProtocolError) -> list[tuple[str, str]]:
        if isinstance(exc, SdpNegotiationError):
            return [("Warning", f'{exc.warning} {self.config.host} "{exc.message}"')]
        if exc.sip_status == 415:
            return [("Accept", ACCEPT)]
        text = exc.message[:80].replace('"', "'")
        return [("Warning", f'399 {self.config.host} "{text}"')]

    def _on_invite(self, req: SipRequest, addr: Addr, tx: ServerInviteTransaction, now: float) -> None:
        if req.call_id in self._calls:
            self._reply(tx, 482, now)  # §8.2.2.2 merged request (same Call-ID, new branch)
            return
        try:
            offer = self._read_offer(req)
        except ProtocolError as exc:
            self._reply(tx, exc.sip_status, now, headers=self._offer_error_headers(exc))
            return
        if len(self._calls) >= self.config.max_calls:
            self.stats["rejected_full"] += 1
            self._reply(tx, 503, now, headers=[("Retry-After", str(self.config.retry_after_s))])
            return
        call = Call(req.call_id, req, addr, tx, self._tag(), now, offer=offer)
        call.deadline = now + self.config.max_ring_s
        self._calls[call.call_id] = call
        self._send(tx.send_response(build_response(req, 100), now))
        frm = req.from_
        ua = req.headers.get("User-Agent") or ""
        self._events.append(
            IncomingCall(call.call_id, frm.uri, frm.display, req.to.uri, req.uri, offer, addr, ua)
        )

    def _on_cancel(self, req: SipRequest, addr: Addr, now: float) -> None:
        """§9.2: 200 to the CANCEL; 487 to the INVITE if it is still pending."""
        tx = self._new_tx(req, addr, now)
        invite_tx = self._server.get(server_key(req, "INVITE"))
        call = self._calls.get(req.call_id)
        if call is None or call.tx is not invite_tx:
            self._reply(tx, 481, now)
            return
        self._reply(tx, 200, now, tag=call.local_tag)
        if call.state is CallState.OFFERED and call.tx.state == "proceeding":
            self._reject_call(call, 487, now, [], reason="cancelled")

    def _on_ack(self, req: SipRequest, now: float) -> None:
        call = self._find_dialog(req)
        if call is None or call.ok_wire is None or req.cseq[0] != call.ok_cseq:
            self.stats["stray_ack"] += 1
            return
        call.stop_ok_retransmit()
        if call.our_offer is not None:  # delayed offer: the answer is in this ACK
            offer, call.our_offer = call.our_offer, None
            try:
                if req.content_type != "application/sdp":
                    raise ProtocolError("ACK carries no SDP answer")
                media = accept_answer(offer, parse_sdp(req.body))
            except ProtocolError as exc:
                log.info("call %s: bad answer in ACK: %s", call.call_id, exc)
                self._bye(call, now, "bad_ack")
                return
            self._media_update(call, media)
        if call.state is CallState.ANSWERED:
            call.state = CallState.CONFIRMED
            if call.media is not None:
                self._events.append(CallEstablished(call.call_id, call.media))
            if call.hangup_pending:
                self._bye(call, now, "local_bye")

    def _media_update(self, call: Call, media: NegotiatedMedia) -> None:
        old, call.media = call.media, media
        if old is None or call.state is not CallState.CONFIRMED:
            return
        if old.sending and not media.sending:
            self._events.append(CallHeld(call.call_id, media))
        elif media.sending and not old.sending:
            self._events.append(CallResumed(call.call_id, media))
        elif replace(old, local_direction=media.local_direction) != media:
            self._events.append(MediaChanged(call.call_id, media))

    def _on_reinvite(self, req: SipRequest, tx: ServerInviteTransaction, now: float) -> None:
        """§14.2 / RFC 3264 §8: a new offer (hold, resume, new address) or an empty one (we offer)."""
        call = self._find_dialog(req)
        if call is None or call.dialog is None:
            self._reply(tx, 481, now)
            return
        if not call.dialog.accept_remote_cseq(req.cseq[0]):
            self._reply(tx, 500, now, tag=call.local_tag)
            return
        if call.state is not CallState.CONFIRMED or call.ok_wire is not None or call.local is None:
            retry = [("Retry-After", str(self._rng.randint(1, 10)))]
            self._reply(tx, 500, now, tag=call.local_tag, headers=retry)  # §14.2: an INVITE is pending
            return
        local = replace(call.local, session_version=call.local.session_version + 1)
        try:
            offer = self._read_offer(req)
            if offer is None:
                call.our_offer = build_offer(local)
                body = call.our_offer.to_bytes()
            else:
                answer, media = negotiate(offer, local)
                body = answer.to_bytes()
        except ProtocolError as exc:
            self._reply(tx, exc.sip_status, now, tag=call.local_tag, headers=self._offer_error_headers(exc))
            return
        call.local = local
        call.dialog.update_target(req)
        call.reinvite_tx = tx
        resp = self._dialog_response(call, req, 200, body)
        self._send(tx.send_response(resp, now))
        call.start_ok_retransmit(resp.to_bytes(), req.cseq[0], now, self.config.timers)
        if offer is not None:
            self._media_update(call, media)

    def _on_in_dialog(self, req: SipRequest, tx: ServerTx, now: float) -> None:
        """BYE, INFO and NOTIFY: 481 outside a dialog, 500 for an out-of-order CSeq (§12.2.2)."""
        call = self._find_dialog(req)
        if call is None or call.dialog is None:
            self._reply(tx, 481, now)
            return
        if not call.dialog.accept_remote_cseq(req.cseq[0]):
            self._reply(tx, 500, now, tag=call.local_tag)
            return
        if req.method == "BYE":
            self._reply(tx, 200, now, tag=call.local_tag)
            if call.tx.state == "proceeding":  # BYE in an early dialog: finish the INVITE too
                self._send(
                    call.tx.send_response(build_response(call.invite, 487, to_tag=call.local_tag), now)
                )
            self._end(call, "remote_bye")
        elif req.method == "INFO":
            self._on_info(req, call, tx, now)
        else:
            self._on_notify(req, call, tx, now)

    def _on_info(self, req: SipRequest, call: Call, tx: ServerTx, now: float) -> None:
        if req.body.strip() and req.content_type not in _DTMF_TYPES:
            self._reply(tx, 415, now, tag=call.local_tag, headers=[("Accept", ", ".join(_DTMF_TYPES))])
            return
        digit, duration = _parse_dtmf_info(req)
        self._reply(tx, 200, now, tag=call.local_tag)
        if digit:
            self._events.append(DtmfFromSip(call.call_id, digit, duration))

    def _on_notify(self, req: SipRequest, call: Call, tx: ServerTx, now: float) -> None:
        """NOTIFY for our REFER (RFC 3515): the body is a sipfrag status line."""
        event = (req.headers.get("Event") or "").split(";", 1)[0].strip().lower()
        if event != "refer":
            self._reply(tx, 489, now, tag=call.local_tag)
            return
        self._reply(tx, 200, now, tag=call.local_tag)
        parts = req.body.decode("utf-8", "replace").split("\n", 1)[0].strip().split(" ", 2)
        if len(parts) >= 2 and parts[0].upper() == "SIP/2.0" and parts[1].isdigit():
            status = int(parts[1])
            state = (req.headers.get("Subscription-State") or "").strip().lower()
            final = state.startswith("terminated") or status >= 200
            self._events.append(
                TransferUpdate(call.call_id, status, final, parts[2] if len(parts) > 2 else "")
            )


def _parse_dtmf_info(req: SipRequest) -> tuple[str, int]:
    """``Signal=5\\r\\nDuration=160`` (dtmf-relay) or ``5`` (application/dtmf) → ("5", 160)."""
    text = req.body.decode("utf-8", "replace").strip()
    if req.content_type == "application/dtmf":
        digit = text[:1].upper()
        return (digit, 250) if digit and digit in "0123456789*#ABCD" else ("", 0)
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, _, value = line.partition("=")
        fields[name.strip().lower()] = value.strip()
    digit = fields.get("signal", "")[:1].upper()
    duration = fields.get("duration", "")
    if not digit or digit not in "0123456789*#ABCD":
        return "", 0
    return digit, int(duration) if duration.isdigit() and len(duration) < 7 else 250
