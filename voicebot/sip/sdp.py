"""SDP (RFC 4566) parse/serialise and the offer/answer rules (RFC 3264) for a G.711 phone leg (pure).

``negotiate(offer, local)`` answers an offer: the first of PCMU/PCMA *in the offerer's order*, the offer's
telephone-event payload type echoed, the offered ptime honoured, the direction inverted (sendonly → recvonly,
which is hold). Every offered m-line gets an answer line (unused ones with port 0). When no audio stream
can be used it raises ``SdpNegotiationError`` (answer 488). Junk raises ``SdpError`` (answer 400).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voicebot.errors import ProtocolError

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_INVERT = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}
_STATIC = {0: ("PCMU", 8000), 8: ("PCMA", 8000)}
SUPPORTED_CODECS = ("PCMU", "PCMA")
_MAX_LINES = 256
_MAX_MEDIA = 16


class SdpError(ProtocolError):
    """Malformed SDP."""

    sip_status = 400


class SdpNegotiationError(ProtocolError):
    """Well-formed SDP we cannot answer: no usable audio stream or codec (488 + Warning)."""

    sip_status = 488

    def __init__(self, message: str, warning: int = 305) -> None:
        super().__init__(message)
        self.warning = warning


@dataclass(slots=True)
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # b=, i=, k= lines, kept verbatim

    def attr(self, name: str) -> str | None:
        for k, v in self.attributes:
            if k == name:
                return v if v is not None else ""
        return None

    def attrs(self, name: str) -> list[str]:
        return [v or "" for k, v in self.attributes if k == name]

    @property
    def direction(self) -> str | None:
        found = [k for k, _ in self.attributes if k in DIRECTIONS]
        return found[-1] if found else None

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """payload type → (encoding name upper-cased, clock rate), static types included."""
        out: dict[int, tuple[str, int]] = {}
        for fmt in self.formats:
            if fmt.isdigit() and int(fmt) in _STATIC:
                out[int(fmt)] = _STATIC[int(fmt)]
        for value in self.attrs("rtpmap"):
            pt_text, _, enc = value.partition(" ")
            name, _, rest = enc.strip().partition("/")
            rate = rest.partition("/")[0]
            if pt_text.isdigit() and rate.isdigit() and int(pt_text) < 128:
                out[int(pt_text)] = (name.upper(), int(rate))
        return out


@dataclass(slots=True)
class SessionDescription:
    origin: str = "- 0 0 IN IP4 0.0.0.0"
    name: str = "-"
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    timing: str = "0 0"

    @property
    def direction(self) -> str | None:
        found = [k for k, _ in self.attributes if k in DIRECTIONS]
        return found[-1] if found else None

    def to_bytes(self) -> bytes:
        lines = ["v=0", f"o={self.origin}", f"s={self.name or '-'}"]
        if self.connection:
            lines.append(f"c={_c_line(self.connection)}")
        lines.append(f"t={self.timing}")
        lines.extend(_a_line(k, v) for k, v in self.attributes)
        for m in self.media:
            lines.append(f"m={m.media} {m.port} {m.proto} {' '.join(m.formats)}")
            lines.extend(m.other)
            if m.connection:
                lines.append(f"c={_c_line(m.connection)}")
            lines.extend(_a_line(k, v) for k, v in m.attributes)
        return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _c_line(address: str) -> str:
    return f"IN {'IP6' if ':' in address else 'IP4'} {address}"


def _a_line(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


def _parse_connection(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6") or not parts[2]:
        raise SdpError(f"bad c= line {value[:60]!r}")
    return parts[2].split("/", 1)[0]


def _parse_m(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 4:
        raise SdpError(f"bad m= line {value[:60]!r}")
    port_text = parts[1].split("/", 1)[0]
    if not port_text.isdigit() or int(port_text) > 65535:
        raise SdpError(f"bad m= port {parts[1][:20]!r}")
    return MediaDescription(parts[0], int(port_text), parts[2], parts[3:])


def parse_sdp(data: bytes) -> SessionDescription:
    """Parse an SDP body; raises ``SdpError`` on anything that is not SDP."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpError("SDP is not UTF-8") from None
    lines = [ln.strip() for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]
    if not lines or lines[0] != "v=0":
        raise SdpError("SDP must start with v=0")
    if len(lines) > _MAX_LINES:
        raise SdpError("SDP has too many lines")
    sd = SessionDescription()
    current: MediaDescription | None = None
    for line in lines[1:]:
        kind, eq, value = line.partition("=")
        if not eq or len(kind) != 1:
            raise SdpError(f"bad SDP line {line[:40]!r}")
        if kind == "m":
            current = _parse_m(value)
            sd.media.append(current)
            if len(sd.media) > _MAX_MEDIA:
                raise SdpError("too many m= lines")
        elif kind == "c":
            address = _parse_connection(value)
            if current is None:
                sd.connection = address
            else:
                current.connection = address
        elif kind == "a":
            name, colon, aval = value.partition(":")
            attr = (name.strip(), aval.strip() if colon else None)
            (sd.attributes if current is None else current.attributes).append(attr)
        elif current is not None:
            current.other.append(line)
        elif kind == "o":
            if len(value.split()) != 6:
                raise SdpError(f"bad o= line {value[:60]!r}")
            sd.origin = value
        elif kind == "s":
            sd.name = value
        elif kind == "t":
            sd.timing = value
    return sd


@dataclass(frozen=True, slots=True)
class LocalMedia:
    """Our side of the media: where we receive RTP and what we can do."""

    address: str
    port: int
    codecs: tuple[str, ...] = SUPPORTED_CODECS
    dtmf: bool = True
    ptime: int = 20
    session_id: int = 1
    session_version: int = 1


@dataclass(frozen=True, slots=True)
class NegotiatedMedia:
    """The outcome of one offer/answer: what to send, where, and whether to send at all."""

    codec: str
    payload_type: int
    remote_address: str
    remote_port: int
    local_direction: str = "sendrecv"
    dtmf_payload_type: int | None = None
    ptime: int = 20
    clock_rate: int = 8000

    @property
    def sending(self) -> bool:
        return self.local_direction in ("sendrecv", "sendonly") and self.remote_port != 0

    @property
    def receiving(self) -> bool:
        return self.local_direction in ("sendrecv", "recvonly")

    @property
    def on_hold(self) -> bool:
        """The peer asked us to stop sending (sendonly/inactive offer, or c=0.0.0.0)."""
        return not self.sending


def _origin(local: LocalMedia) -> str:
    family = "IP6" if ":" in local.address else "IP4"
    return f"voicebot {local.session_id} {local.session_version} IN {family} {local.address}"


def _ptime(value: str | None, default: int) -> int:
    if value and value.strip().isdigit() and int(value) in (10, 20, 30, 40, 50, 60):
        return int(value)
    return default


def _pick(m: MediaDescription, codecs: tuple[str, ...]) -> tuple[int, str, int | None] | None:
    """First offered format we support (offer order), plus the offer's telephone-event type."""
    rtpmap = m.rtpmap()
    dtmf = next((pt for pt, (n, r) in rtpmap.items() if n == "TELEPHONE-EVENT" and r == 8000), None)
    for fmt in m.formats:
        if not fmt.isdigit():
            continue
        name, rate = rtpmap.get(int(fmt), ("", 0))
        if name in codecs and rate == 8000:
            return int(fmt), name, dtmf
    return None


def _media_lines(
    local: LocalMedia, pt: int, codec: str, dtmf: int | None, ptime: int, direction: str
) -> MediaDescription:
    formats = [str(pt)] + ([str(dtmf)] if dtmf is not None else [])
    attrs: list[tuple[str, str | None]] = [("rtpmap", f"{pt} {codec}/8000")]
    if dtmf is not None:
        attrs += [("rtpmap", f"{dtmf} telephone-event/8000"), ("fmtp", f"{dtmf} 0-15")]
    attrs += [("ptime", str(ptime)), (direction, None)]
    return MediaDescription("audio", local.port, "RTP/AVP", formats, None, attrs)


def negotiate(offer: SessionDescription, local: LocalMedia) -> tuple[SessionDescription, NegotiatedMedia]:
    """Answer ``offer``; raises ``SdpNegotiationError`` when no audio stream fits."""
    answer = SessionDescription(_origin(local), "voicebot", local.address)
    chosen: NegotiatedMedia | None = None
    warning = 304
    for m in offer.media:
        usable = chosen is None and m.media == "audio" and m.port != 0 and m.proto.upper() == "RTP/AVP"
        pick = _pick(m, local.codecs) if usable else None
        if usable and pick is None:
            warning = 305
        if pick is None:
            answer.media.append(MediaDescription(m.media, 0, m.proto, m.formats[:1]))
            continue
        address = m.connection or offer.connection
        if address is None:
            raise SdpError("no c= line for the audio stream")
        pt, codec, dtmf = pick
        dtmf = dtmf if local.dtmf else None
        remote_dir = m.direction or offer.direction or "sendrecv"
        if address in ("0.0.0.0", "::") and remote_dir in ("sendrecv", "recvonly"):
            remote_dir = "sendonly"  # RFC 2543 hold
        ours = _INVERT[remote_dir]
        ptime = _ptime(m.attr("ptime"), local.ptime)
        answer.media.append(_media_lines(local, pt, codec, dtmf, ptime, ours))
        chosen = NegotiatedMedia(codec, pt, address, m.port, ours, dtmf, ptime)
    if chosen is None:
        raise SdpNegotiationError("no usable audio stream or codec in the offer", warning)
    return answer, chosen


def build_offer(local: LocalMedia) -> SessionDescription:
    """Our offer (delayed-offer INVITEs: offer in the 200, answer in the ACK)."""
    sd = SessionDescription(_origin(local), "voicebot", local.address)
    static = {"PCMU": 0, "PCMA": 8}
    formats = [str(static[c]) for c in local.codecs if c in static]
    attrs: list[tuple[str, str | None]] = [
        ("rtpmap", f"{static[c]} {c}/8000") for c in local.codecs if c in static
    ]
    if local.dtmf:
        formats.append("101")
        attrs += [("rtpmap", "101 telephone-event/8000"), ("fmtp", "101 0-15")]
    attrs += [("ptime", str(local.ptime)), ("sendrecv", None)]
    sd.media.append(MediaDescription("audio", local.port, "RTP/AVP", formats, None, attrs))
    return sd


def accept_answer(offer: SessionDescription, answer: SessionDescription) -> NegotiatedMedia:
    """Read the peer's answer to our offer; raises ``SdpNegotiationError`` if it accepted nothing usable."""
    offered = {c: (int(f) if f.isdigit() else -1) for m in offer.media[:1] for f, c in _codec_names(m)}
    for m in answer.media:
        if m.media != "audio" or m.port == 0:
            continue
        pick = _pick(m, tuple(c for c in offered if c in SUPPORTED_CODECS))
        address = m.connection or answer.connection
        if pick is None or address is None:
            continue
        pt, codec, dtmf = pick
        remote_dir = m.direction or answer.direction or "sendrecv"
        if address in ("0.0.0.0", "::") and remote_dir in ("sendrecv", "recvonly"):
            remote_dir = "sendonly"
        ptime = _ptime(m.attr("ptime"), 20)
        return NegotiatedMedia(codec, pt, address, m.port, _INVERT[remote_dir], dtmf, ptime)
    raise SdpNegotiationError("the answer accepted no audio codec we offered")


def _codec_names(m: MediaDescription) -> list[tuple[str, str]]:
    rtpmap = m.rtpmap()
    return [(f, rtpmap[int(f)][0]) for f in m.formats if f.isdigit() and int(f) in rtpmap]
