"""The SIP UAS endpoint core (pure, sans-I/O): one object per SIP socket.

Adapter contract::

    endpoint.receive_datagram(data, addr, now)        # every UDP datagram
    endpoint.answer(call_id, LocalMedia(...), now)     # and ring / reject / hangup / send_dtmf / transfer
    for data, addr in endpoint.datagrams_to_send(): sock.sendto(data, addr)
    while (event := endpoint.next_event()) is not None: ...
    deadline = endpoint.get_timer(); ... endpoint.handle_timer(now)

It never raises on network input: malformed datagrams get a 400 (or 413/505/513) when a response can be
addressed and are dropped otherwise; everything is counted in ``stats``. Before a request is admitted it
passes the source allow-list, the scanner User-Agent list and the per-source token buckets, and it is fully
validated (headers, Require, body, SDP) before any per-call state exists. RTP ports are the adapter's: it
allocates them on ``IncomingCall`` and passes them to ``answer``.
"""

from __future__ import annotations

import logging

from voicebot.errors import BadRequest, ProtocolError
from voicebot.sip.events import SipEvent, TransferUpdate
from voicebot.sip.message import (
    SipParseError,
    SipRequest,
    SipResponse,
    build_response,
    can_answer,
    parse_message,
    stamp_received,
)
from voicebot.sip.sdp import LocalMedia, NegotiatedMedia, SdpNegotiationError, build_offer, negotiate
from voicebot.sip.transaction import Datagram, ServerInviteTransaction, server_key
from voicebot.sip.uas import Call, CallState, EndpointConfig, UasCore

log = logging.getLogger("voicebot.sip")

Addr = tuple[str, int]
DTMF_DIGITS = "0123456789*#ABCD"


class Endpoint(UasCore):
    """A SIP user agent server for inbound calls, plus the few requests a UAS sends (BYE, REFER, INFO)."""

    # -- adapter side ------------------------------------------------------------------------------
    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Feed one datagram. Never raises."""
        try:
            self._receive(data, addr, now)
        except Exception:  # a bug, not bad input: count it, keep the server alive
            self.stats["internal_error"] += 1
            log.exception("SIP endpoint failed on a datagram from %s", addr)

    def datagrams_to_send(self) -> list[Datagram]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> SipEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        times = [tx.get_timer() for tx in self._server.values()]
        times += [p.tx.get_timer() for p in self._client.values()]
        times += [call.next_timer() for call in self._calls.values()]
        present = [t for t in times if t is not None]
        return min(present) if present else None

    def handle_timer(self, now: float) -> None:
        try:
            self._handle_timer(now)
        except Exception:
            self.stats["internal_error"] += 1
            log.exception("SIP endpoint timer handling failed")

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def call_media(self, call_id: str) -> NegotiatedMedia | None:
        """The media agreed so far (after ``answer``; for a delayed offer only after the ACK)."""
        call = self._calls.get(call_id)
        return call.media if call else None

    def call_state(self, call_id: str) -> CallState | None:
        call = self._calls.get(call_id)
        return call.state if call else None

    # -- commands ----------------------------------------------------------------------------------
    def ring(self, call_id: str, now: float) -> bool:
        """Send 180 Ringing (creates the early dialog)."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.OFFERED or call.tx.state != "proceeding":
            return False
        self._ensure_dialog(call)
        self._send(call.tx.send_response(self._dialog_response(call, call.invite, 180), now))
        return True

    def answer(self, call_id: str, local: LocalMedia, now: float) -> bool:
        """Send 200 OK with our SDP answer (or our offer, for a delayed-offer INVITE)."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.OFFERED or call.tx.state != "proceeding":
            return False
        call.local = local
        try:
            body = self._local_sdp(call, local)
        except SdpNegotiationError as exc:
            self._reject_call(call, 488, now, [("Warning", f'{exc.warning} {self.config.host} "{exc}"')])
            return False
        self._ensure_dialog(call)
        resp = self._dialog_response(call, call.invite, 200, body)
        self._send(call.tx.send_response(resp, now))
        call.start_ok_retransmit(resp.to_bytes(), call.invite.cseq[0], now, self.config.timers)
        call.state = CallState.ANSWERED
        if self.config.max_call_duration_s is not None:
            call.deadline = now + self.config.max_call_duration_s
        return True

    def reject(self, call_id: str, now: float, status: int = 486, *, retry_after: int | None = None) -> bool:
        """Refuse an unanswered call with a final non-2xx status."""
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.OFFERED or not 300 <= status <= 699:
            return False
        extra = [("Retry-After", str(retry_after))] if retry_after is not None else []
        self._reject_call(call, status, now, extra)
        return True

    def hangup(self, call_id: str, now: float) -> bool:
        """End the call from our side: BYE once confirmed (after the ACK, §15.1.1), 480 before answering."""
        call = self._calls.get(call_id)
        if call is None:
            return False
        if call.state is CallState.OFFERED:
            self._reject_call(call, 480, now, [])
        elif call.state is CallState.ANSWERED:
            call.hangup_pending = True
        else:
            self._bye(call, now, "local_bye")
        return True

    def send_dtmf(self, call_id: str, digits: str, now: float, duration_ms: int = 160) -> bool:
        """Send digits as SIP INFO (application/dtmf-relay); RFC 4733 DTMF goes through the RTP stream."""
        if any(d not in DTMF_DIGITS for d in digits.upper()):
            raise BadRequest(f"not DTMF digits: {digits!r}")
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.CONFIRMED or call.dialog is None:
            return False
        for digit in digits.upper():
            body = f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
            req = call.dialog.new_request(
                "INFO", self._branch(), body=body, content_type="application/dtmf-relay"
            )
            self._start_client(req, call, "info", now)
        return True

    def transfer(self, call_id: str, target: str, now: float) -> bool:
        """Blind transfer with REFER; ``target`` must be in ``config.transfer_targets``."""
        if target not in self.config.transfer_targets:
            raise BadRequest(f"transfer target {target!r} is not allow-listed")
        call = self._calls.get(call_id)
        if call is None or call.state is not CallState.CONFIRMED or call.dialog is None:
            return False
        headers = (("Refer-To", f"<{target}>"), ("Referred-By", self.config.contact))
        req = call.dialog.new_request("REFER", self._branch(), headers=headers)
        self._start_client(req, call, "refer", now)
        return True

    # -- receive path ------------------------------------------------------------------------------
    def _receive(self, data: bytes, addr: Addr, now: float) -> None:
        if not data.strip(b"\r\n\t "):
            self.stats["keepalive"] += 1  # RFC 5626 CRLF keepalive
            return
        if not self._security.source_allowed(addr[0]):
            self.stats["drop_source"] += 1
            return
        try:
            msg = parse_message(data, self.config.limits)
        except SipParseError as exc:
            self.stats["malformed"] += 1
            self._answer_malformed(exc, addr, now)
            return
        if isinstance(msg, SipResponse):
            self._on_response(msg, now)
            return
        if not self._admit(msg, addr, now):
            return
        stamp_received(msg, addr)
        self._on_request(msg, addr, now)

    def _admit(self, req: SipRequest, addr: Addr, now: float) -> bool:
        if self._security.is_scanner(req.headers.get("User-Agent")):
            self.stats["drop_scanner"] += 1
            log.info("drop scanner UA %r from %s", req.headers.get("User-Agent"), addr[0])
            return False
        if not self._security.rate_ok(addr[0], req.method, now):
            self.stats["drop_rate"] += 1
            return False
        return True

    def _answer_malformed(self, exc: SipParseError, addr: Addr, now: float) -> None:
        req = exc.partial
        if req is None or not can_answer(req) or not self._admit(req, addr, now):
            self.stats["drop_malformed"] += 1
            return
        try:
            stamp_received(req, addr)
            resp = build_response(
                req, exc.sip_status, to_tag=self._tag(), headers=[("Warning", _warning(exc))]
            )
        except ProtocolError:
            self.stats["drop_malformed"] += 1
            return
        self._out.append((resp.to_bytes(), addr))

    def _on_request(self, req: SipRequest, addr: Addr, now: float) -> None:
        key = server_key(req)
        tx = self._server.get(key)
        if req.method == "ACK":
            if isinstance(tx, ServerInviteTransaction) and tx.state in ("completed", "confirmed"):
                tx.receive_request(req, now)  # ACK for a non-2xx final: absorbed by the transaction
            else:
                self._on_ack(req, now)
            return
        if tx is not None:
            self.stats["retransmission"] += 1
            self._send(tx.receive_request(req, now))
            return
        if len(self._server) >= self.config.max_transactions:
            self.stats["drop_overload"] += 1
            return
        self._dispatch(req, addr, now)

    def _on_response(self, resp: SipResponse, now: float) -> None:
        try:
            branch = resp.top_via.branch or ""
        except ProtocolError:
            self.stats["stray_response"] += 1
            return
        pending = self._client.get(branch)
        if pending is None or not pending.tx.matches(resp):
            self.stats["stray_response"] += 1
            return
        result = pending.tx.receive_response(resp, now)
        if result is not None and pending.purpose == "refer" and result.status >= 200:
            final = result.status >= 300
            self._events.append(TransferUpdate(pending.call_id, result.status, final, result.reason))

    # -- timers ------------------------------------------------------------------------------------
    def _handle_timer(self, now: float) -> None:
        for key, tx in list(self._server.items()):
            due = tx.get_timer()
            if due is not None and now >= due:
                self._send(tx.handle_timer(now))
            if tx.terminated:
                del self._server[key]
        for branch, pending in list(self._client.items()):
            due = pending.tx.get_timer()
            if due is not None and now >= due:
                self._send(pending.tx.handle_timer(now))
            if pending.tx.terminated:
                del self._client[branch]
                if pending.tx.timed_out and pending.purpose == "refer":
                    self._events.append(TransferUpdate(pending.call_id, 408, True, "REFER timed out"))
        for call in list(self._calls.values()):
            self._call_timer(call, now)

    def _call_timer(self, call: Call, now: float) -> None:
        if call.ok_deadline is not None and now >= call.ok_deadline:
            self.stats["no_ack"] += 1
            self._bye(call, now, "no_ack")  # §13.3.1.4: no ACK within 64·T1
            return
        if call.ok_next is not None and now >= call.ok_next and call.ok_wire is not None:
            self._out.append((call.ok_wire, call.addr))
            call.ok_interval = min(2 * call.ok_interval, self.config.timers.t2)
            call.ok_next = now + call.ok_interval
        if call.deadline is not None and now >= call.deadline:
            if call.state is CallState.OFFERED:
                self._reject_call(call, 480, now, [], reason="no_answer")
            else:
                self._bye(call, now, "max_duration")

    def _local_sdp(self, call: Call, local: LocalMedia) -> bytes:
        if call.offer is None:
            call.our_offer = build_offer(local)
            return call.our_offer.to_bytes()
        answer, media = negotiate(call.offer, local)
        call.media = media
        return answer.to_bytes()


def _warning(exc: ProtocolError) -> str:
    text = str(exc).replace('"', "'")[:100]
    return f'399 voicebot "{text}"'


__all__ = ["CallState", "Endpoint", "EndpointConfig", "SipEvent"]
