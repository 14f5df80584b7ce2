"""What the SIP endpoint core tells its adapter (pure dataclasses), read with ``Endpoint.next_event()``."""

from __future__ import annotations

from dataclasses import dataclass

from voicebot.sip.sdp import NegotiatedMedia, SessionDescription

Addr = tuple[str, int]


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A validated INVITE; answer with ``Endpoint.answer`` (after allocating RTP) or ``reject``.

    ``offer`` is None for a delayed-offer INVITE (we offer in the 200, the answer comes in the ACK)."""

    call_id: str
    caller: str  # the From header's URI
    caller_name: str  # the From display name ("" if none); neither is authenticated
    callee: str  # the To header's URI
    request_uri: str
    offer: SessionDescription | None
    source: Addr
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class CallEstablished:
    """The ACK arrived: start sending media (``media.sending`` says whether to, given hold)."""

    call_id: str
    media: NegotiatedMedia


@dataclass(frozen=True, slots=True)
class MediaChanged:
    """A re-INVITE changed the codec or the peer's address/port without changing hold state."""

    call_id: str
    media: NegotiatedMedia


@dataclass(frozen=True, slots=True)
class CallHeld:
    """The peer put us on hold: stop sending RTP (``media.sending`` is False)."""

    call_id: str
    media: NegotiatedMedia


@dataclass(frozen=True, slots=True)
class CallResumed:
    """The peer took us off hold: send again."""

    call_id: str
    media: NegotiatedMedia


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call is over. ``reason``: remote_bye, local_bye, cancelled, rejected, no_ack, max_duration,
    no_answer, bad_ack."""

    call_id: str
    reason: str
    status: int | None = None


@dataclass(frozen=True, slots=True)
class DtmfFromSip:
    """A DTMF digit carried in a SIP INFO (RFC 2833/4733 digits come from the RTP side)."""

    call_id: str
    digit: str
    duration_ms: int


@dataclass(frozen=True, slots=True)
class TransferUpdate:
    """Progress of our REFER: 202 (accepted), then NOTIFY sipfrag statuses; ``final`` ends it."""

    call_id: str
    status: int
    final: bool
    reason: str = ""


SipEvent = (
    IncomingCall
    | CallEstablished
    | MediaChanged
    | CallHeld
    | CallResumed
    | CallEnded
    | DtmfFromSip
    | TransferUpdate
)
