"""SIP over UDP on asyncio (adapter): drives the pure ``Endpoint`` (and an optional ``RegisterClient``).

Every datagram is fed with the loop's monotonic time, everything the cores want sent is sent at once, their
events go to one ``on_event`` callback, and a single timer handle is kept at the earliest deadline of both
cores. Responses whose Call-ID is the registration's go to the ``RegisterClient``; everything else goes to
the endpoint. Nothing here raises on network input, and a failing event handler is logged and skipped so
one call's trouble never stops the socket serving the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar, cast

from voicebot.sip.auth import RegisterClient, RegistrationEvent
from voicebot.sip.endpoint import Endpoint
from voicebot.sip.events import SipEvent
from voicebot.sip.message import SipParseError, SipResponse, parse_message
from voicebot.sip.sdp import LocalMedia

log = logging.getLogger("voicebot.sip")

Addr = tuple[str, int]
T = TypeVar("T")


class SipTransport(asyncio.DatagramProtocol):
    """The SIP socket. Create it with ``await SipTransport.listen(...)``; ``close()`` when done."""

    def __init__(
        self,
        endpoint: Endpoint,
        on_event: Callable[[SipEvent], None],
        *,
        register: RegisterClient | None = None,
        on_registration: Callable[[RegistrationEvent], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.on_event = on_event
        self.register = register
        self.on_registration = on_registration
        self.transport: asyncio.DatagramTransport | None = None
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._closed = False
        self._pumping = False
        self._pump_again = False

    @classmethod
    async def listen(
        cls,
        host: str,
        port: int,
        endpoint: Endpoint,
        on_event: Callable[[SipEvent], None],
        **kwargs: object,
    ) -> SipTransport:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(
            lambda: cls(endpoint, on_event, **kwargs),  # type: ignore[arg-type]
            local_addr=(host, port),
        )
        return protocol

    @property
    def local_address(self) -> Addr:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    def now(self) -> float:
        return self._loop.time()

    # asyncio callbacks --------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # on CPython 3.11 the selector datagram transport is not an asyncio.DatagramTransport subclass
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        source = (str(addr[0]), int(addr[1]))
        now = self.now()
        if not self._to_register(data, now):
            self.endpoint.receive_datagram(data, source, now)
        self._pump()

    def error_received(self, exc: Exception) -> None:
        log.debug("SIP socket error: %r", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()

    # commands (each feeds "now" to the core, then sends what it produced) -----------------------------
    def run(self, command: Callable[[float], T]) -> T:
        """Run ``command(now)`` against the cores and send its output: ``sip.run(lambda now: ...)``."""
        try:
            return command(self.now())
        finally:
            self._pump()

    def ring(self, call_id: str) -> bool:
        return self.run(lambda now: self.endpoint.ring(call_id, now))

    def answer(self, call_id: str, local: LocalMedia) -> bool:
        return self.run(lambda now: self.endpoint.answer(call_id, local, now))

    def reject(self, call_id: str, status: int, retry_after: int | None = None) -> bool:
        return self.run(lambda now: self.endpoint.reject(call_id, now, status, retry_after=retry_after))

    def hangup(self, call_id: str) -> bool:
        return self.run(lambda now: self.endpoint.hangup(call_id, now))

    def transfer(self, call_id: str, target: str) -> bool:
        return self.run(lambda now: self.endpoint.transfer(call_id, target, now))

    def send_info_dtmf(self, call_id: str, digits: str) -> bool:
        return self.run(lambda now: self.endpoint.send_dtmf(call_id, digits, now))

    def start_registration(self) -> None:
        if self.register is not None:
            register = self.register
            self.run(register.start)

    def stop_registration(self) -> None:
        if self.register is not None and self.register.state == "registered":
            register = self.register
            self.run(register.stop)

    def close(self) -> None:
        self._closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()

    # plumbing -----------------------------------------------------------------------------------------
    def _to_register(self, data: bytes, now: float) -> bool:
        """Route a response to the RegisterClient when its Call-ID is the registration's."""
        reg = self.register
        if reg is None or not data.startswith(b"SIP/2.0 "):
            return False
        try:
            msg = parse_message(data, self.endpoint.config.limits)
        except SipParseError:
            return False
        if not isinstance(msg, SipResponse) or msg.headers.get("Call-ID") != reg.call_id:
            return False
        try:
            reg.receive_response(msg, now)
        except Exception:
            log.exception("the REGISTER client failed on a response")
        return True

    def _pump(self) -> None:
        """Send what the cores produced, hand out their events, re-arm the timer.

        An event handler may issue commands (which pump again): those nested pumps are folded into this
        one, so events are handed out in order."""
        if self._pumping:
            self._pump_again = True
            return
        self._pumping = True
        try:
            self._pump_again = True
            while self._pump_again and not self._closed:
                self._pump_again = False
                self._pump_once()
        finally:
            self._pumping = False

    def _pump_once(self) -> None:
        out = self.endpoint.datagrams_to_send()
        if self.register is not None:
            out += self.register.datagrams_to_send()
        if self.transport is not None:
            for data, addr in out:
                self.transport.sendto(data, addr)
        while (event := self.endpoint.next_event()) is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("SIP event handler failed on %r", event)
        if self.register is not None and self.on_registration is not None:
            while (reg_event := self.register.next_event()) is not None:
                try:
                    self.on_registration(reg_event)
                except Exception:
                    log.exception("registration event handler failed")
        self._arm()

    def _arm(self) -> None:
        due = self.endpoint.get_timer()
        if self.register is not None:
            reg_due = self.register.get_timer()
            if reg_due is not None and (due is None or reg_due < due):
                due = reg_due
        if due == self._timer_at and self._timer is not None:
            return
        self._cancel_timer()
        if due is not None:
            self._timer_at = due
            self._timer = self._loop.call_at(due, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = None

    def _on_timer(self) -> None:
        fired_at = self._timer_at or 0.0
        self._timer = None
        self._timer_at = None
        now = max(self.now(), fired_at)
        self.endpoint.handle_timer(now)
        if self.register is not None:
            try:
                self.register.handle_timer(now)
            except Exception:
                log.exception("the REGISTER client failed on a timer")
        self._pump()
