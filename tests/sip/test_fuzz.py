"""Mutation fuzzing of the parser and the endpoint: the parser raises only ProtocolError, the endpoint never
raises and never hits its internal-error safety net. (A 100,000-example run is a separate, later job.)"""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sip.helpers import DATA, Harness, load
from voicebot.errors import ProtocolError
from voicebot.sip.message import parse_message
from voicebot.sip.sdp import LocalMedia, negotiate, parse_sdp

EXAMPLES = int(os.environ.get("VOICEBOT_FUZZ_EXAMPLES", "2000"))
SUBS = {"to_tag": "t0", "call_id": "1-4242@127.0.0.1", "cseq": 2, "branch": "fz", "from_tag": "f"}
SEEDS = [load(p.name, **SUBS) for p in sorted(DATA.glob("*.sip"))]
TOKENS = [
    *(b"\r\n", b"\r\n ", b":", b";", b",", b"<", b">", b'"', b"\\", b"=", b" ", b"\x00", b"\xff", b"0"),
    *(
        b"-1",
        b"99999999999",
        b"SIP/2.0",
        b"INVITE",
        b"ACK",
        b"BYE",
        b"CANCEL",
        b"z9hG4bK",
        b"tag=",
        b"v=0\r\n",
    ),
    *(b"m=audio 0 RTP/AVP", b"c=IN IP4 0.0.0.0", b"Content-Length: 5\r\n", b"l: 99999\r\n", b"\r\n\r\n"),
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 5))):  # 0: an intact seed, to drive the state machine too
        kind = draw(st.integers(0, 5))
        pos = draw(st.integers(0, len(data)))
        if kind == 0 and data:  # flip a byte
            i = min(pos, len(data) - 1)
            data[i] = draw(st.integers(0, 255))
        elif kind == 1:  # insert a SIP-ish token
            data[pos:pos] = draw(st.sampled_from(TOKENS))
        elif kind == 2:  # delete a span
            del data[pos : pos + draw(st.integers(1, 40))]
        elif kind == 3:  # truncate
            del data[pos:]
        elif kind == 4:  # duplicate a span
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 80))]
        else:  # random bytes
            data[pos:pos] = draw(st.binary(max_size=20))
    return bytes(data)


FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.mark.slow
@FUZZ
@given(mutated())
def test_parser_raises_only_protocol_error(data: bytes) -> None:
    try:
        msg = parse_message(data)
    except ProtocolError:
        return
    msg.to_bytes()  # whatever parsed can be serialised again
    if msg.body.startswith(b"v=0"):
        with contextlib.suppress(ProtocolError):
            negotiate(parse_sdp(msg.body), LocalMedia("127.0.0.1", 20000))


@pytest.mark.slow
@FUZZ
@given(st.lists(mutated(), min_size=1, max_size=4))
def test_endpoint_never_raises(datagrams: list[bytes]) -> None:
    h = Harness()
    tag = h.establish()
    for data in datagrams:
        h.ep.receive_datagram(data.replace(b"t0", tag.encode()), ("127.0.0.1", 5070), h.now)
        h.ep.datagrams_to_send()
        h.now += 0.1
    h.ep.handle_timer(h.now + 40)
    assert h.ep.stats["internal_error"] == 0
