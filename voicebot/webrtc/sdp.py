"""Checks on a browser's SDP offer before any WebRTC resource is allocated (pure).

aiortc's own parser accepts a lot and fails late (sometimes after sockets are open), so the call route runs
``parse_offer`` first: it turns junk into a ``BadRequest`` with a reason the page can show, and reports what
the offer carries (its audio codecs, whether it has a data channel) so the route can refuse a phone-quality
call the browser cannot send as G.711.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from voicebot.errors import BadRequest

#: Largest offer accepted. Browser offers are 2–6 kB; anything near this is not a browser.
MAX_SDP_BYTES = 64 * 1024

#: Audio codecs the server can decode (aiortc), by lower-case encoding name.
SUPPORTED_AUDIO = ("opus", "pcmu", "pcma")

_LINE = re.compile(r"^[a-z]=")
_MLINE = re.compile(r"^m=(\S+) (\d+)(?:/\d+)? (\S+)(?: (.*))?$")
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ([^/\s]+)/(\d+)")


@dataclass(frozen=True, slots=True)
class OfferInfo:
    """What a validated offer carries."""

    audio_codecs: tuple[str, ...]  # lower-case encoding names of the first live audio section, in order
    has_datachannel: bool

    def offers(self, codec: str) -> bool:
        return codec.lower() in self.audio_codecs


@dataclass(slots=True)
class _Section:
    media: str
    port: int
    payloads: list[str]
    lines: list[str]


def parse_offer(payload: object) -> tuple[str, OfferInfo]:
    """Validate a ``{"sdp": ..., "type": "offer"}`` body; return the SDP text and what it offers.

    Raises ``BadRequest`` (HTTP 400) with the reason when the body is not a usable WebRTC audio offer.
    """
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object with 'sdp' and 'type'")
    kind = payload.get("type")
    if kind != "offer":
        raise BadRequest(f"'type' must be 'offer', got {kind!r}", param="type")
    sdp = payload.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise BadRequest("'sdp' must be a non-empty string", param="sdp")
    if len(sdp.encode("utf-8", "replace")) > MAX_SDP_BYTES:
        raise BadRequest(f"'sdp' is larger than {MAX_SDP_BYTES} bytes", param="sdp")
    return sdp, check_sdp(sdp)


def check_sdp(sdp: str) -> OfferInfo:
    """Structural checks of an SDP offer; raises ``BadRequest`` naming the first problem found."""
    lines = [ln.rstrip("\r") for ln in sdp.split("\n")]
    lines = [ln for ln in lines if ln]
    if not lines or lines[0] != "v=0":
        raise BadRequest("not an SDP offer: it must start with 'v=0'", param="sdp")
    bad = next((ln for ln in lines if not _LINE.match(ln)), None)
    if bad is not None:
        raise BadRequest(f"not an SDP offer: malformed line {bad[:60]!r}", param="sdp")
    session, sections = _split(lines)
    if not any(ln.startswith("o=") for ln in session):
        raise BadRequest("not an SDP offer: no 'o=' line", param="sdp")
    audio = [s for s in sections if s.media == "audio" and s.port != 0]
    if not audio:
        raise BadRequest(
            "the offer has no audio m-line: add a microphone track before createOffer", param="sdp"
        )
    first = audio[0]
    _require_attr(session, first, "a=ice-ufrag:", "ICE credentials (a=ice-ufrag)")
    _require_attr(session, first, "a=fingerprint:", "a DTLS fingerprint (a=fingerprint)")
    if any(ln in ("a=inactive", "a=recvonly") for ln in first.lines):
        raise BadRequest("the offer's audio is not sent (recvonly/inactive): the microphone is missing")
    codecs = _codecs(first)
    if not any(c in SUPPORTED_AUDIO for c in codecs):
        raise BadRequest(
            f"the offer has no audio codec this server can use (offered: {', '.join(codecs) or 'none'}; "
            f"supported: {', '.join(SUPPORTED_AUDIO)})",
            param="sdp",
        )
    has_dc = any(s.media == "application" and s.port != 0 for s in sections)
    return OfferInfo(audio_codecs=tuple(codecs), has_datachannel=has_dc)


def answer_codec(sdp: str) -> str | None:
    """The codec an answer chose for its first live audio section (lower case), or None."""
    lines = [ln.rstrip("\r") for ln in sdp.split("\n") if ln.strip()]
    try:
        _, sections = _split(lines)
    except BadRequest:
        return None
    for s in sections:
        if s.media == "audio" and s.port != 0:
            codecs = _codecs(s)
            return codecs[0] if codecs else None
    return None


def _split(lines: list[str]) -> tuple[list[str], list[_Section]]:
    session: list[str] = []
    sections: list[_Section] = []
    for ln in lines:
        if ln.startswith("m="):
            m = _MLINE.match(ln)
            if m is None:
                raise BadRequest(f"not an SDP offer: malformed m-line {ln[:60]!r}", param="sdp")
            payloads = (m.group(4) or "").split()
            sections.append(_Section(m.group(1), int(m.group(2)), payloads, []))
        elif sections:
            sections[-1].lines.append(ln)
        else:
            session.append(ln)
    return session, sections


def _require_attr(session: list[str], section: _Section, prefix: str, what: str) -> None:
    if not any(ln.startswith(prefix) for ln in (*session, *section.lines)):
        raise BadRequest(f"the offer has no {what}: it is not a WebRTC offer", param="sdp")


def _codecs(section: _Section) -> list[str]:
    names: dict[str, str] = {}
    for ln in section.lines:
        m = _RTPMAP.match(ln)
        if m:
            names[m.group(1)] = m.group(2).lower()
    # Static payload types may appear without an rtpmap line.
    static = {"0": "pcmu", "8": "pcma"}
    out: list[str] = []
    for pt in section.payloads:
        name = names.get(pt) or static.get(pt)
        if name and name not in out:
            out.append(name)
    return out
