"""SIP dialog state (RFC 3261 §12) for the UAS side of a call (pure).

A dialog is created from an INVITE when we send a 1xx/2xx with our To tag. It remembers who is who (tags,
URIs), where in-dialog requests go (remote target, route set) and both CSeq spaces, and it builds our own
in-dialog requests (BYE, REFER, INFO).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voicebot.sip.headers import NameAddr, parse_name_addr
from voicebot.sip.message import Headers, SipRequest


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_party: NameAddr  # the INVITE's To, without tag
    remote_party: NameAddr  # the INVITE's From, without tag
    remote_target: str  # the peer's Contact URI
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0
    remote_cseq: int = 0
    contact: str = ""  # our Contact header value
    sent_by: str = ""  # our Via sent-by (host:port)
    user_agent: str = "voicebot"

    @classmethod
    def as_uas(
        cls, invite: SipRequest, local_tag: str, contact: str, sent_by: str, local_cseq: int = 0
    ) -> Dialog:
        """§12.1.1: route set = Record-Route in order, remote target = Contact, remote CSeq = INVITE's."""
        frm = invite.from_
        to = invite.to
        contacts = invite.headers.get_list("Contact")
        target = parse_name_addr(contacts[0]).uri if contacts else frm.uri
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=frm.tag or "",
            local_party=NameAddr(to.display, to.uri, tuple(p for p in to.params if p[0].lower() != "tag")),
            remote_party=NameAddr(
                frm.display, frm.uri, tuple(p for p in frm.params if p[0].lower() != "tag")
            ),
            remote_target=target,
            route_set=invite.headers.get_list("Record-Route"),
            local_cseq=local_cseq,
            remote_cseq=invite.cseq[0],
            contact=contact,
            sent_by=sent_by,
        )

    def matches(self, req: SipRequest) -> bool:
        """An in-dialog request: Call-ID, our tag in To and the peer's tag in From."""
        return (
            req.call_id == self.call_id
            and req.to.tag == self.local_tag
            and (req.from_.tag or "") == self.remote_tag
        )

    def accept_remote_cseq(self, number: int) -> bool:
        """§12.2.2: a CSeq lower than (or equal to) the last one is out of order (answer 500)."""
        if number <= self.remote_cseq:
            return False
        self.remote_cseq = number
        return True

    def update_target(self, req: SipRequest) -> None:
        """A target refresh (re-INVITE) replaces the remote target with its Contact."""
        contacts = req.headers.get_list("Contact")
        if contacts:
            try:
                self.remote_target = parse_name_addr(contacts[0]).uri
            except Exception:
                return

    def new_request(
        self,
        method: str,
        branch: str,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipRequest:
        """§12.2.1.1: Request-URI = remote target, Route = route set, local CSeq + 1."""
        self.local_cseq += 1
        h = Headers()
        h.add("Via", f"SIP/2.0/UDP {self.sent_by};branch={branch};rport")
        for route in self.route_set:
            h.add("Route", route)
        h.add("Max-Forwards", "70")
        h.add("From", str(self.local_party.with_param("tag", self.local_tag)))
        h.add("To", str(self.remote_party.with_param("tag", self.remote_tag)))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{self.local_cseq} {method}")
        h.add("Contact", self.contact)
        h.add("User-Agent", self.user_agent)
        for name, value in headers:
            h.add(name, value)
        if content_type:
            h.add("Content-Type", content_type)
        return SipRequest(h, body, method, self.remote_target)
