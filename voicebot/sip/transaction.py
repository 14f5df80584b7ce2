"""SIP transactions over UDP (RFC 3261 §17, RFC 6026), driven by ``now`` arguments (pure).

Each transaction returns the datagrams it wants sent from every call and exposes ``get_timer()`` /
``handle_timer(now)``. After a timer the transaction user reads ``timed_out`` and ``terminated``.

Retransmitting a 2xx to INVITE until the ACK is *not* done here (§13.3.1.4): the INVITE server transaction
moves to Accepted (RFC 6026) and absorbs INVITE retransmissions; the UAS core (``endpoint``) resends the 2xx.
"""

from __future__ import annotations

from dataclasses import dataclass

from voicebot.sip.headers import parse_via
from voicebot.sip.message import Headers, SipRequest, SipResponse

Addr = tuple[str, int]
Datagram = tuple[bytes, Addr]
MAGIC_COOKIE = "z9hG4bK"


@dataclass(frozen=True, slots=True)
class Timers:
    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    @property
    def b(self) -> float:
        """Timer B = F = H = J = L = M: 64·T1."""
        return 64 * self.t1


DEFAULT_TIMERS = Timers()

ServerKey = tuple[str, ...]


def server_key(req: SipRequest, method: str | None = None) -> ServerKey:
    """§17.2.3 matching key: branch + sent-by + method (ACK matches its INVITE). Pre-3261 peers without the
    magic cookie fall back to Request-URI, tags, Call-ID, CSeq number and top Via (§17.2.3). An ACK to a 2xx
    carries our To tag, so it never matches the INVITE that way; the ACK to a non-2xx is matched by branch."""
    via = req.top_via
    method = method or ("INVITE" if req.method == "ACK" else req.method)
    branch = via.branch or ""
    if branch.startswith(MAGIC_COOKIE):
        return (branch, via.sent_by.lower(), method)
    to_tag = "" if req.method == "ACK" else (req.to.tag or "")
    return (
        "2543",
        req.uri,
        req.call_id,
        req.from_.tag or "",
        to_tag,
        str(req.cseq[0]),
        via.sent_by.lower(),
        method,
    )


def _min(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


class ServerInviteTransaction:
    """§17.2.1 with RFC 6026's Accepted state."""

    def __init__(self, request: SipRequest, addr: Addr, now: float, timers: Timers = DEFAULT_TIMERS) -> None:
        self.request = request
        self.addr = addr
        self.timers = timers
        self.state = "proceeding"
        self.created = now
        self.last_response: SipResponse | None = None
        self._wire: bytes | None = None
        self._g: float | None = None
        self._g_interval = timers.t1
        self._end: float | None = None  # Timer H, I or L
        self.timed_out = False

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def send_response(self, resp: SipResponse, now: float) -> list[Datagram]:
        if self.state not in ("proceeding",):
            return []
        self.last_response = resp
        self._wire = resp.to_bytes()
        if 200 <= resp.status < 300:
            self.state = "accepted"
            self._end = now + self.timers.b  # Timer L
        elif resp.status >= 300:
            self.state = "completed"
            self._g = now + self._g_interval
            self._end = now + self.timers.b  # Timer H
        return [(self._wire, self.addr)]

    def receive_request(self, req: SipRequest, now: float) -> list[Datagram]:
        """A retransmitted INVITE or the ACK for a non-2xx final response (both absorbed)."""
        if req.method == "ACK":
            if self.state == "completed":
                self.state = "confirmed"
                self._g = None
                self._end = now + self.timers.t4  # Timer I (UDP)
            return []
        if self.state in ("proceeding", "completed") and self._wire is not None:
            return [(self._wire, self.addr)]
        return []

    def get_timer(self) -> float | None:
        return None if self.terminated else _min(self._g, self._end)

    def handle_timer(self, now: float) -> list[Datagram]:
        out: list[Datagram] = []
        if self._end is not None and now >= self._end:
            self.timed_out = self.state == "completed"  # Timer H: the ACK never came
            self.state = "terminated"
            self._g = self._end = None
            return out
        if self._g is not None and now >= self._g and self._wire is not None:
            out.append((self._wire, self.addr))
            self._g_interval = min(2 * self._g_interval, self.timers.t2)
            self._g = now + self._g_interval
        return out


class ServerNonInviteTransaction:
    """§17.2.2: the final response is cached and resent on every retransmission until Timer J."""

    def __init__(self, request: SipRequest, addr: Addr, now: float, timers: Timers = DEFAULT_TIMERS) -> None:
        self.request = request
        self.addr = addr
        self.timers = timers
        self.state = "trying"
        self.created = now
        self._wire: bytes | None = None
        self._j: float | None = None
        self.timed_out = False

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def send_response(self, resp: SipResponse, now: float) -> list[Datagram]:
        if self.state in ("completed", "terminated"):
            return []
        self._wire = resp.to_bytes()
        if resp.status >= 200:
            self.state = "completed"
            self._j = now + self.timers.b
        else:
            self.state = "proceeding"
        return [(self._wire, self.addr)]

    def receive_request(self, req: SipRequest, now: float) -> list[Datagram]:
        del req, now
        if self.state in ("proceeding", "completed") and self._wire is not None:
            return [(self._wire, self.addr)]
        return []

    def get_timer(self) -> float | None:
        return self._j if self.state == "completed" else None

    def handle_timer(self, now: float) -> list[Datagram]:
        if self._j is not None and now >= self._j:
            self.state = "terminated"
            self._j = None
        return []


class ClientNonInviteTransaction:
    """§17.1.2: Timer E retransmits (T1 doubling to T2; T2 once a provisional came), Timer F gives up,
    Timer K absorbs retransmitted finals."""

    def __init__(self, request: SipRequest, dest: Addr, now: float, timers: Timers = DEFAULT_TIMERS) -> None:
        self.request = request
        self.dest = dest
        self.timers = timers
        self.state = "trying"
        self.branch = request.top_via.branch or ""
        self.method = request.method
        self._wire = request.to_bytes()
        self._interval = timers.t1
        self._e: float | None = now + timers.t1
        self._f: float | None = now + timers.b
        self._k: float | None = None
        self.timed_out = False
        self.final: SipResponse | None = None

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def start(self) -> list[Datagram]:
        return [(self._wire, self.dest)]

    def matches(self, resp: SipResponse) -> bool:
        try:
            return resp.top_via.branch == self.branch and resp.cseq[1] == self.method
        except Exception:
            return False

    def receive_response(self, resp: SipResponse, now: float) -> SipResponse | None:
        """Returns the response for the transaction user, or None when absorbed."""
        if self.state in ("completed", "terminated"):
            return None
        if resp.status < 200:
            self.state = "proceeding"
            return resp
        self.state = "completed"
        self.final = resp
        self._e = self._f = None
        self._k = now + self.timers.t4
        return resp

    def get_timer(self) -> float | None:
        return None if self.terminated else _min(self._e, self._f, self._k)

    def handle_timer(self, now: float) -> list[Datagram]:
        if self._k is not None and now >= self._k:
            self.state = "terminated"
            self._k = None
            return []
        if self._f is not None and now >= self._f:
            self.timed_out = True
            self.state = "terminated"
            self._e = self._f = None
            return []
        if self._e is not None and now >= self._e:
            if self.state == "proceeding":
                self._interval = self.timers.t2
            else:
                self._interval = min(2 * self._interval, self.timers.t2)
            self._e = now + self._interval
            return [(self._wire, self.dest)]
        return []


def ack_for_non_2xx(invite: SipRequest, resp: SipResponse) -> SipRequest:
    """§17.1.1.3: the ACK for a non-2xx final response reuses the INVITE's branch (top Via only)."""
    headers = Headers()
    headers.add("Via", str(parse_via(invite.headers.get_list("Via")[0])))
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", resp.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq[0]} ACK")
    return SipRequest(headers, b"", "ACK", invite.uri)


class ClientInviteTransaction:
    """§17.1.1 with RFC 6026: Timer A doubles from T1, Timer B gives up; a non-2xx final is ACKed here
    (same branch) and Timer D absorbs its retransmissions; 2xx responses go to the UAS/UAC core."""

    def __init__(self, request: SipRequest, dest: Addr, now: float, timers: Timers = DEFAULT_TIMERS) -> None:
        self.request = request
        self.dest = dest
        self.timers = timers
        self.state = "calling"
        self.branch = request.top_via.branch or ""
        self._wire = request.to_bytes()
        self._interval = timers.t1
        self._a: float | None = now + timers.t1
        self._b: float | None = now + timers.b
        self._d: float | None = None
        self._ack: bytes | None = None
        self.timed_out = False

    @property
    def terminated(self) -> bool:
        return self.state == "terminated"

    def start(self) -> list[Datagram]:
        return [(self._wire, self.dest)]

    def matches(self, resp: SipResponse) -> bool:
        try:
            return resp.top_via.branch == self.branch and resp.cseq[1] == "INVITE"
        except Exception:
            return False

    def receive_response(self, resp: SipResponse, now: float) -> tuple[SipResponse | None, list[Datagram]]:
        if self.state == "completed":
            return None, [(self._ack, self.dest)] if self._ack else []
        if self.state == "terminated":
            return None, []
        self._a = None
        if resp.status < 200:
            self.state = "proceeding"
            self._b = None
            return resp, []
        if resp.status < 300:
            self.state = "accepted"  # RFC 6026 Timer M: 2xx retransmissions go to the core
            self._b = now + self.timers.b
            return resp, []
        self.state = "completed"
        self._b = None
        self._d = now + 32.0
        self._ack = ack_for_non_2xx(self.request, resp).to_bytes()
        return resp, [(self._ack, self.dest)]

    def get_timer(self) -> float | None:
        return None if self.terminated else _min(self._a, self._b, self._d)

    def handle_timer(self, now: float) -> list[Datagram]:
        if self._d is not None and now >= self._d:
            self.state = "terminated"
            return []
        if self._b is not None and now >= self._b:
            self.timed_out = self.state == "calling"
            self.state = "terminated"
            self._a = self._b = None
            return []
        if self._a is not None and now >= self._a:
            self._interval *= 2
            self._a = now + self._interval
            return [(self._wire, self.dest)]
        return []
