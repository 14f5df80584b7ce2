"""Test helpers: load captured messages from tests/data/sip and drive an Endpoint with a fake clock."""

from __future__ import annotations

import random
from pathlib import Path

from voicebot.sip.endpoint import Endpoint, EndpointConfig
from voicebot.sip.events import SipEvent
from voicebot.sip.message import SipMessage, SipRequest, SipResponse, parse_message
from voicebot.sip.sdp import LocalMedia

DATA = Path(__file__).parent.parent / "data" / "sip"
SIPP = ("127.0.0.1", 5070)
BOT_MEDIA = LocalMedia("127.0.0.1", 20000, session_id=4711)


def load(name: str, **subs: object) -> bytes:
    """A stored message with CRLF line ends; ``$NAME`` placeholders replaced by ``subs``."""
    text = (DATA / name).read_text()
    for key, value in subs.items():
        text = text.replace(f"${key.upper()}", str(value))
    assert "$" not in text.split("\n\n", 1)[0], f"unfilled placeholder in {name}"
    return text.replace("\n", "\r\n").encode()


class Harness:
    """An endpoint plus a fake clock; every helper returns what the endpoint sent, parsed."""

    def __init__(self, config: EndpointConfig | None = None, seed: int = 7) -> None:
        self.ep = Endpoint(config or EndpointConfig(port=5080), rng=random.Random(seed))
        self.now = 0.0
        self.cseq = 1

    def send(self, data: bytes, addr: tuple[str, int] = SIPP) -> list[tuple[SipMessage, tuple[str, int]]]:
        self.ep.receive_datagram(data, addr, self.now)
        return self.drain()

    def drain(self) -> list[tuple[SipMessage, tuple[str, int]]]:
        return [(parse_message(d), a) for d, a in self.ep.datagrams_to_send()]

    def events(self) -> list[SipEvent]:
        out: list[SipEvent] = []
        while (ev := self.ep.next_event()) is not None:
            out.append(ev)
        return out

    def advance(self, until: float) -> list[tuple[SipMessage, tuple[str, int]]]:
        """Run every timer due up to ``until`` at its exact deadline."""
        out: list[tuple[SipMessage, tuple[str, int]]] = []
        for _ in range(10000):
            due = self.ep.get_timer()
            if due is None or due > until:
                break
            self.now = max(self.now, due)
            self.ep.handle_timer(self.now)
            out += [(parse_message(d), a) for d, a in self.ep.datagrams_to_send()]
        self.now = until
        return out

    def responses(self, data: bytes, addr: tuple[str, int] = SIPP) -> list[SipResponse]:
        return [m for m, _ in self.send(data, addr) if isinstance(m, SipResponse)]

    def in_dialog(self, name: str, tag: str, call_id: str = "1-4242@127.0.0.1", **subs: object) -> bytes:
        """An in-dialog request from the sipp side with a fresh branch and the next CSeq."""
        if "cseq" not in subs:
            self.cseq += 1
            subs["cseq"] = self.cseq
        subs.setdefault("branch", f"b{self.cseq}-{name.split('.')[0]}")
        return load(name, to_tag=tag, call_id=call_id, **subs)

    def establish(self, invite: str = "invite_sipp_pcmu.sip") -> str:
        """INVITE → 100/180/200 → ACK; returns our To tag."""
        self.send(load(invite))
        call_id = parse_message(load(invite)).call_id
        self.ep.ring(call_id, self.now)
        self.ep.answer(call_id, BOT_MEDIA, self.now)
        sent = self.drain()
        ok = sent[-1][0]
        assert isinstance(ok, SipResponse) and ok.status == 200
        tag = ok.to.tag
        assert tag
        self.send(self.in_dialog("ack.sip", tag, call_id, cseq=1))
        return tag


def requests(msgs: list[tuple[SipMessage, tuple[str, int]]]) -> list[SipRequest]:
    return [m for m, _ in msgs if isinstance(m, SipRequest)]


def statuses(msgs: list[tuple[SipMessage, tuple[str, int]]]) -> list[int]:
    return [m.status for m, _ in msgs if isinstance(m, SipResponse)]
