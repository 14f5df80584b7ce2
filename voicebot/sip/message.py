"""SIP messages (pure): parse, serialise, build responses (RFC 3261 §7, §8.2.6, §18.3, §20).

``parse_message(data)`` turns one UDP datagram into a ``SipRequest`` or ``SipResponse`` or raises
``SipParseError`` (a ``ProtocolError``) that carries the SIP status to answer and, when the start line and
headers could be read, the partly parsed request so a 400 can still be built. Header names are
case-insensitive, compact forms are expanded, folded lines are unfolded, comma-joined list headers (Via,
Contact, Route, ...) can be read one element at a time. URI, name-addr, Via and CSeq helpers live in
``voicebot.sip.headers``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from voicebot.errors import ProtocolError
from voicebot.sip.headers import (
    NameAddr,
    Via,
    parse_cseq,
    parse_name_addr,
    parse_via,
    split_list,
)

SIP_VERSION = "SIP/2.0"

COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
}

_CANONICAL = {
    name.lower(): name
    for name in (
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Allow",
        "Allow-Events",
        "Authorization",
        "Call-ID",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Event",
        "Expires",
        "From",
        "Max-Forwards",
        "Min-Expires",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Refer-To",
        "Referred-By",
        "Require",
        "Retry-After",
        "Route",
        "Server",
        "Session-Expires",
        "Subject",
        "Subscription-State",
        "Supported",
        "Timestamp",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
    )
}

# Headers whose value is a comma-separated list that may also be split over several header lines.
LIST_HEADERS = frozenset(
    {"via", "route", "record-route", "contact", "allow", "supported", "require", "proxy-require"}
    | {"unsupported", "accept", "accept-encoding", "accept-language", "allow-events"}
)

REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    603: "Decline",
}

_TOKEN = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_LINE_SPLIT = re.compile(r"\r\n|\n")


@dataclass(frozen=True, slots=True)
class Limits:
    """Size caps applied before anything else is read."""

    max_message: int = 16384
    max_headers: int = 80
    max_line: int = 2048
    max_body: int = 8192


DEFAULT_LIMITS = Limits()


class SipParseError(ProtocolError):
    """A datagram that is not an acceptable SIP message.

    ``sip_status`` is what to answer; ``partial`` is the request as far as it could be read (start line and
    headers), or None when no response can be built.
    """

    def __init__(self, message: str, sip_status: int = 400, partial: SipRequest | None = None) -> None:
        super().__init__(message)
        self.sip_status = sip_status
        self.partial = partial


def canonical_name(name: str) -> str:
    """``v`` → ``Via``, ``call-id`` → ``Call-ID``; unknown names keep their spelling."""
    low = name.lower()
    if low in COMPACT_FORMS:
        return COMPACT_FORMS[low]
    return _CANONICAL.get(low, name)


class Headers:
    """Ordered header list with case-insensitive access by (canonical) name."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def copy(self) -> Headers:
        return Headers(self._items)

    def get(self, name: str) -> str | None:
        low = canonical_name(name).lower()
        for n, v in self._items:
            if n.lower() == low:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """Every header line's value, in order (no comma splitting)."""
        low = canonical_name(name).lower()
        return [v for n, v in self._items if n.lower() == low]

    def get_list(self, name: str) -> list[str]:
        """Every element of a list header, whether on separate lines or comma-joined."""
        out: list[str] = []
        for value in self.get_all(name):
            out.extend(split_list(value))
        return out

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` header by one, kept at the first one's position."""
        canon = canonical_name(name)
        low = canon.lower()
        for i, (n, _) in enumerate(self._items):
            if n.lower() == low:
                self._items[i] = (canon, value)
                self._items = [it for j, it in enumerate(self._items) if j <= i or it[0].lower() != low]
                return
        self._items.append((canon, value))

    def remove(self, name: str) -> None:
        low = canonical_name(name).lower()
        self._items = [it for it in self._items if it[0].lower() != low]


@dataclass(slots=True)
class _Message:
    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str:
        return (self.headers.get("Call-ID") or "").strip()

    @property
    def cseq(self) -> tuple[int, str]:
        return parse_cseq(self.headers.get("CSeq") or "")

    @property
    def top_via(self) -> Via:
        vias = self.headers.get_list("Via")
        if not vias:
            raise ProtocolError("no Via header")
        return parse_via(vias[0])

    @property
    def from_(self) -> NameAddr:
        return parse_name_addr(self.headers.get("From") or "")

    @property
    def to(self) -> NameAddr:
        return parse_name_addr(self.headers.get("To") or "")

    @property
    def content_type(self) -> str:
        value = self.headers.get("Content-Type") or ""
        return value.split(";", 1)[0].strip().lower()

    def _head_lines(self) -> list[str]:
        lines = [f"{n}: {v}" for n, v in self.headers if n != "Content-Length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return lines


@dataclass(slots=True)
class SipRequest(_Message):
    method: str = "OPTIONS"
    uri: str = ""

    def to_bytes(self) -> bytes:
        head = "\r\n".join([f"{self.method} {self.uri} {SIP_VERSION}", *self._head_lines()])
        return head.encode("utf-8") + b"\r\n\r\n" + self.body


@dataclass(slots=True)
class SipResponse(_Message):
    status: int = 200
    reason: str = "OK"

    def to_bytes(self) -> bytes:
        head = "\r\n".join([f"{SIP_VERSION} {self.status} {self.reason}", *self._head_lines()])
        return head.encode("utf-8") + b"\r\n\r\n" + self.body


SipMessage = SipRequest | SipResponse


@dataclass(slots=True)
class _Head:
    start: str
    headers: list[tuple[str, str]] = field(default_factory=list)


def _split_head(data: bytes, limits: Limits) -> tuple[str, bytes]:
    if len(data) > limits.max_message:
        raise SipParseError(f"message of {len(data)} bytes exceeds {limits.max_message}", 513)
    end = data.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end, sep = data.find(b"\n\n"), 2
    if end < 0:
        raise SipParseError("no empty line after the headers")
    head = data[:end].decode("utf-8", errors="replace")
    if "\x00" in head:
        raise SipParseError("NUL byte in the headers")
    return head, data[end + sep :]


def _read_head(head: str, limits: Limits) -> _Head:
    lines = _LINE_SPLIT.split(head.lstrip("\r\n"))
    out = _Head(lines[0].strip())
    if not out.start:
        raise SipParseError("empty start line")
    for line in lines[1:]:
        if len(line) > limits.max_line:
            raise SipParseError(f"header line longer than {limits.max_line}")
        if line[:1] in (" ", "\t"):
            if not out.headers:
                raise SipParseError("continuation line before any header")
            name, value = out.headers[-1]
            out.headers[-1] = (name, f"{value} {line.strip()}".strip())
            if len(out.headers[-1][1]) > limits.max_line:
                raise SipParseError(f"folded header longer than {limits.max_line}")
            continue
        name, colon, value = line.partition(":")
        name = name.strip()
        if not colon or not _TOKEN.match(name):
            raise SipParseError(f"malformed header line {line[:40]!r}")
        out.headers.append((name, value.strip()))
        if len(out.headers) > limits.max_headers:
            raise SipParseError(f"more than {limits.max_headers} headers")
    return out


def _content_length(headers: Headers, body: bytes, limits: Limits, partial: SipRequest | None) -> bytes:
    values = {v.strip() for v in headers.get_all("Content-Length")}
    if not values:
        return body  # UDP: the body is the rest of the datagram
    if len(values) > 1:
        raise SipParseError("conflicting Content-Length headers", 400, partial)
    (value,) = values
    if not value.isdigit() or len(value) > 9:
        raise SipParseError(f"bad Content-Length {value[:20]!r}", 400, partial)
    length = int(value)
    if length > limits.max_body:
        raise SipParseError(f"Content-Length {length} exceeds {limits.max_body}", 413, partial)
    if length > len(body):
        raise SipParseError(f"Content-Length {length} but only {len(body)} body bytes", 400, partial)
    return body[:length]  # §18.3: extra bytes after the declared body are discarded


def parse_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> SipMessage:
    """Parse one datagram. Raises ``SipParseError``; never anything else."""
    head_text, rest = _split_head(data, limits)
    head = _read_head(head_text, limits)
    headers = Headers(head.headers)
    parts = head.start.split(" ", 2)
    if parts[0].upper().startswith("SIP/"):
        return _parse_response(parts, headers, rest, limits)
    return _parse_request(parts, headers, rest, limits)


def _parse_response(parts: list[str], headers: Headers, rest: bytes, limits: Limits) -> SipResponse:
    if len(parts) < 2 or parts[0].upper() != SIP_VERSION:
        raise SipParseError(f"bad status line {' '.join(parts)[:60]!r}")
    code = parts[1]
    if not (code.isdigit() and len(code) == 3 and 100 <= int(code) <= 699):
        raise SipParseError(f"bad status code {code[:10]!r}")
    body = _content_length(headers, rest, limits, None)
    resp = SipResponse(headers, body, int(code), parts[2].strip() if len(parts) > 2 else "")
    for name in ("Via", "CSeq", "Call-ID"):
        if headers.get(name) is None:
            raise SipParseError(f"response without {name}")
    try:
        resp.cseq  # noqa: B018  (validates)
    except ProtocolError as exc:
        raise SipParseError(exc.message) from None
    return resp


def _parse_request(parts: list[str], headers: Headers, rest: bytes, limits: Limits) -> SipRequest:
    if len(parts) != 3 or not _TOKEN.match(parts[0]) or not parts[1]:
        raise SipParseError(f"bad request line {' '.join(parts)[:60]!r}")
    method, uri, version = parts[0].upper(), parts[1], parts[2].strip()
    partial = SipRequest(headers, b"", method, uri)
    if version.upper() != SIP_VERSION:
        raise SipParseError(f"unsupported version {version[:20]!r}", 505, partial)
    if ":" not in uri or " " in uri:
        raise SipParseError(f"bad Request-URI {uri[:60]!r}", 400, partial)
    partial.body = _content_length(headers, rest, limits, partial)
    _validate_request(partial)
    return partial


def _validate_request(req: SipRequest) -> None:
    """§8.2: the mandatory headers exist and are well formed; the CSeq method matches."""
    for name in ("To", "From", "CSeq", "Call-ID", "Via"):
        if not (req.headers.get(name) or "").strip():
            raise SipParseError(f"missing {name} header", 400, None)
    try:
        req.top_via  # noqa: B018
        number, method = req.cseq
        req.from_  # noqa: B018
        req.to  # noqa: B018
    except ProtocolError as exc:
        raise SipParseError(exc.message, 400, None) from None
    if method != req.method:
        raise SipParseError(f"CSeq method {method} does not match {req.method}", 400, req)
    mf = req.headers.get("Max-Forwards")
    if mf is not None and not mf.strip().isdigit():
        raise SipParseError("bad Max-Forwards", 400, req)
    if number > 2**31 - 1:
        raise SipParseError("CSeq number too large", 400, req)


def can_answer(req: SipRequest | None) -> bool:
    """True when ``req`` has what a response needs (Via, From, To, Call-ID, CSeq) in readable form."""
    if req is None or req.method == "ACK":
        return False
    try:
        req.top_via  # noqa: B018
        req.cseq  # noqa: B018
        req.from_  # noqa: B018
        req.to  # noqa: B018
    except ProtocolError:
        return False
    return bool(req.call_id)


def build_response(
    req: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> SipResponse:
    """A response to ``req`` per §8.2.6: Via (all, in order), From, To, Call-ID and CSeq are copied; the
    To gets ``to_tag`` unless it already has one or this is a 100 (which also copies Timestamp)."""
    out = Headers()
    for value in req.headers.get_all("Via"):
        out.add("Via", value)
    out.add("From", req.headers.get("From") or "")
    to_value = req.headers.get("To") or ""
    if status != 100 and to_tag and req.to.tag is None:
        to_value = f"{to_value};tag={to_tag}"
    out.add("To", to_value)
    out.add("Call-ID", req.call_id)
    out.add("CSeq", req.headers.get("CSeq") or "")
    if status == 100 and req.headers.get("Timestamp"):
        out.add("Timestamp", req.headers.get("Timestamp") or "")
    for name, value in headers:
        out.add(name, value)
    return SipResponse(out, body, status, reason or REASONS.get(status, "Unknown"))


def stamp_received(req: SipRequest, addr: tuple[str, int]) -> None:
    """§18.2.1 + RFC 3581: add ``received=`` to the top Via when its host is not the source IP, and
    fill an empty ``rport`` with the source port (then ``received`` is always added)."""
    vias = req.headers.get_all("Via")
    if not vias:
        return
    elements = split_list(vias[0])
    top = parse_via(elements[0])
    has_rport = top.has_param("rport")
    if top.host.strip("[]") != addr[0] or has_rport:
        top = top.with_param("received", addr[0])
    if has_rport and not top.param("rport"):
        top = top.with_param("rport", str(addr[1]))
    elements[0] = str(top)
    items = list(req.headers)
    first = next(i for i, (n, _) in enumerate(items) if n == "Via")
    items[first] = ("Via", ", ".join(elements))
    req.headers = Headers(items)
