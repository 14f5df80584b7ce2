"""Digest authentication client (RFC 2617 / RFC 7616 / RFC 8760) and a REGISTER client (pure).

``authorization(challenge, ...)`` answers a ``WWW-Authenticate``/``Proxy-Authenticate`` challenge with MD5
or SHA-256 (``-sess`` variants too), ``qop=auth`` (or ``auth-int``), nonce count and cnonce.
``RegisterClient`` keeps one registration alive: it answers challenges (once per nonce, again on
``stale=true``), refreshes before expiry and retries after failures, all with ``now`` passed in. Passwords
and Authorization values are never logged.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import deque
from dataclasses import dataclass

from voicebot.errors import ProtocolError
from voicebot.sip.headers import parse_name_addr, split_list
from voicebot.sip.message import Headers, SipParseError, SipRequest, SipResponse, parse_message
from voicebot.sip.transaction import DEFAULT_TIMERS, ClientNonInviteTransaction, Datagram, Timers

log = logging.getLogger("voicebot.sip")

_HASHES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
_PREFERENCE = ("SHA-512-256", "SHA-256", "MD5")  # RFC 8760: prefer the strongest offered


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    proxy: bool = False  # from Proxy-Authenticate (answer with Proxy-Authorization)

    @property
    def base_algorithm(self) -> str:
        return self.algorithm.upper().removesuffix("-SESS")

    @property
    def supported(self) -> bool:
        return self.base_algorithm in _HASHES and (not self.qop or bool({"auth", "auth-int"} & set(self.qop)))


def _auth_params(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in split_list(text):
        name, eq, value = part.partition("=")
        if not eq:
            raise ProtocolError(f"bad auth parameter {part[:40]!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].replace('\\"', '"')
        out[name.strip().lower()] = value
    return out


def parse_challenge(value: str, *, proxy: bool = False) -> Challenge:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise ProtocolError(f"unsupported auth scheme {scheme[:20]!r}")
    p = _auth_params(rest)
    if "nonce" not in p or "realm" not in p:
        raise ProtocolError("digest challenge without realm or nonce")
    qop = tuple(q.strip().lower() for q in p.get("qop", "").split(",") if q.strip())
    stale = p.get("stale", "").lower() == "true"
    return Challenge(p["realm"], p["nonce"], p.get("algorithm", "MD5"), qop, p.get("opaque"), stale, proxy)


def pick_challenge(resp: SipResponse) -> Challenge | None:
    """The strongest supported challenge of a 401/407 (SHA-256 before MD5)."""
    found: list[Challenge] = []
    for header, proxy in (("WWW-Authenticate", False), ("Proxy-Authenticate", True)):
        for value in resp.headers.get_all(header):
            try:
                ch = parse_challenge(value, proxy=proxy)
            except ProtocolError:
                continue
            if ch.supported:
                found.append(ch)
    found.sort(key=lambda c: _PREFERENCE.index(c.base_algorithm))
    return found[0] if found else None


def _h(algorithm: str, text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.new(_HASHES[algorithm.upper().removesuffix("-SESS")], data).hexdigest()


def digest_response(
    challenge: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int,
    qop: str | None,
    body: bytes = b"",
) -> str:
    """The ``response=`` value (RFC 7616 §3.4.1; without qop the RFC 2069 form)."""
    alg = challenge.algorithm
    ha1 = _h(alg, f"{username}:{challenge.realm}:{password}")
    if alg.upper().endswith("-SESS"):
        ha1 = _h(alg, f"{ha1}:{challenge.nonce}:{cnonce}")
    a2 = f"{method}:{uri}" if qop != "auth-int" else f"{method}:{uri}:{_h(alg, body)}"
    ha2 = _h(alg, a2)
    if qop is None:
        return _h(alg, f"{ha1}:{challenge.nonce}:{ha2}")
    return _h(alg, f"{ha1}:{challenge.nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")


def authorization(
    challenge: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> tuple[str, str]:
    """(header name, value) answering ``challenge``."""
    qop = "auth" if "auth" in challenge.qop else ("auth-int" if "auth-int" in challenge.qop else None)
    response = digest_response(
        challenge, username=username, password=password, method=method, uri=uri, cnonce=cnonce, nc=nc,
        qop=qop, body=body,
    )  # fmt: skip
    parts = [
        f'username="{username}"',
        f'realm="{challenge.realm}"',
        f'nonce="{challenge.nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        f"algorithm={challenge.algorithm}",
    ]
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc:08x}", f'cnonce="{cnonce}"']
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    name = "Proxy-Authorization" if challenge.proxy else "Authorization"
    return name, "Digest " + ", ".join(parts)


# -- REGISTER client -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegistrationConfig:
    registrar: tuple[str, int]  # where REGISTERs are sent
    registrar_uri: str  # Request-URI, e.g. sip:trunk.example
    aor: str  # address of record, e.g. sip:bot@trunk.example
    contact: str  # our Contact URI, e.g. sip:bot@203.0.113.5:5060
    sent_by: str  # our Via sent-by host:port
    username: str
    password: str
    expires: int = 3600
    retry_s: float = 60.0
    user_agent: str = "voicebot"


@dataclass(frozen=True, slots=True)
class Registered:
    expires: int


@dataclass(frozen=True, slots=True)
class RegistrationFailed:
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Unregistered:
    pass


RegistrationEvent = Registered | RegistrationFailed | Unregistered


class RegisterClient:
    def __init__(
        self, config: RegistrationConfig, *, rng: random.Random | None = None, timers: Timers = DEFAULT_TIMERS
    ) -> None:
        self.config = config
        self.timers = timers
        self._rng = rng or random.SystemRandom()
        self.call_id = f"{self._rng.getrandbits(96):024x}"
        self._tag = f"{self._rng.getrandbits(64):016x}"
        self._cseq = 0
        self.state = "idle"  # idle | registering | registered | failed | unregistering | unregistered
        self._tx: ClientNonInviteTransaction | None = None
        self._challenge: Challenge | None = None
        self._nc = 0
        self._challenged = False  # this round already answered a challenge
        self._expires_requested = config.expires
        self._refresh_at: float | None = None
        self._out: list[Datagram] = []
        self._events: deque[RegistrationEvent] = deque()
        self.expires: int | None = None

    # adapter surface
    def datagrams_to_send(self) -> list[Datagram]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> RegistrationEvent | None:
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        times = [t for t in (self._tx.get_timer() if self._tx else None, self._refresh_at) if t is not None]
        return min(times) if times else None

    def start(self, now: float) -> None:
        self._challenged = False
        self._send(now, self.config.expires)

    def stop(self, now: float) -> None:
        """Unregister (Expires: 0)."""
        self._refresh_at = None
        self._challenged = False
        self._send(now, 0)

    def receive_datagram(self, data: bytes, addr: tuple[str, int], now: float) -> bool:
        """For a socket of its own. True when the datagram was a response to our REGISTER."""
        del addr
        try:
            msg = parse_message(data)
        except SipParseError:
            return False
        return isinstance(msg, SipResponse) and self.receive_response(msg, now)

    def receive_response(self, resp: SipResponse, now: float) -> bool:
        if self._tx is None or not self._tx.matches(resp):
            return False
        result = self._tx.receive_response(resp, now)
        if result is not None and result.status >= 200:
            self._tx = None
            self._on_final(result, now)
        return True

    def handle_timer(self, now: float) -> None:
        if self._tx is not None:
            due = self._tx.get_timer()
            if due is not None and now >= due:
                self._out.extend(self._tx.handle_timer(now))
            if self._tx.terminated:
                timed_out = self._tx.timed_out
                self._tx = None
                if timed_out:
                    self._fail(408, "registrar did not answer", now)
        if self._refresh_at is not None and now >= self._refresh_at:
            self._refresh_at = None
            self.start(now)

    # internals
    def _request(self, expires: int) -> SipRequest:
        cfg = self.config
        self._cseq += 1
        h = Headers()
        h.add("Via", f"SIP/2.0/UDP {cfg.sent_by};branch=z9hG4bK{self._rng.getrandbits(64):016x};rport")
        h.add("Max-Forwards", "70")
        h.add("From", f"<{cfg.aor}>;tag={self._tag}")
        h.add("To", f"<{cfg.aor}>")
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self._cseq} REGISTER")
        h.add("Contact", f"<{cfg.contact}>")
        h.add("Expires", str(expires))
        h.add("User-Agent", cfg.user_agent)
        if self._challenge is not None:
            self._nc += 1
            cnonce = f"{self._rng.getrandbits(64):016x}"
            name, value = authorization(
                self._challenge, username=cfg.username, password=cfg.password, method="REGISTER",
                uri=cfg.registrar_uri, cnonce=cnonce, nc=self._nc,
            )  # fmt: skip
            h.add(name, value)
        return SipRequest(h, b"", "REGISTER", cfg.registrar_uri)

    def _send(self, now: float, expires: int) -> None:
        self._expires_requested = expires
        self.state = "registering" if expires else "unregistering"
        self._tx = ClientNonInviteTransaction(self._request(expires), self.config.registrar, now, self.timers)
        self._out.extend(self._tx.start())

    def _on_final(self, resp: SipResponse, now: float) -> None:
        if resp.status in (401, 407):
            challenge = pick_challenge(resp)
            if challenge is None:
                self._fail(resp.status, "no supported digest challenge", now)
            elif self._challenged and not challenge.stale:
                self._fail(resp.status, "credentials rejected", now)  # answered once already: wrong password
            else:
                self._challenge, self._nc, self._challenged = challenge, 0, True
                self._send(now, self._expires_requested)
        elif resp.status == 423:
            minimum = (resp.headers.get("Min-Expires") or "").strip()
            if minimum.isdigit() and int(minimum) > self._expires_requested:
                self._send(now, int(minimum))
            else:
                self._fail(423, "interval too brief", now)
        elif 200 <= resp.status < 300:
            self._on_ok(resp, now)
        else:
            self._fail(resp.status, resp.reason, now)

    def _on_ok(self, resp: SipResponse, now: float) -> None:
        if self._expires_requested == 0:
            self.state, self.expires = "unregistered", None
            self._events.append(Unregistered())
            return
        expires = self._granted_expires(resp)
        self.state, self.expires = "registered", expires
        margin = min(expires / 2, 60.0)  # refresh well before expiry
        self._refresh_at = now + max(1.0, expires - margin)
        self._events.append(Registered(expires))

    def _granted_expires(self, resp: SipResponse) -> int:
        for value in resp.headers.get_list("Contact"):
            try:
                na = parse_name_addr(value)
            except ProtocolError:
                continue
            exp = na.param("expires")
            if na.uri == self.config.contact and exp and exp.isdigit():
                return int(exp)
        header = (resp.headers.get("Expires") or "").strip()
        return int(header) if header.isdigit() else self._expires_requested

    def _fail(self, status: int, reason: str, now: float) -> None:
        log.info("registration failed: %d %s", status, reason)
        self.state = "failed"
        self._challenge = None
        self._refresh_at = now + self.config.retry_s
        self._events.append(RegistrationFailed(status, reason))
