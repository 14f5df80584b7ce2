"""100,000 mutated SIP datagrams through the parser and one long-lived Endpoint (seeded, no shrinking).

Nothing may raise, the endpoint's internal-error safety net must never fire, and afterwards the same
endpoint must still answer a valid INVITE with 200 OK and complete the call.
"""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.sip.helpers import BOT_MEDIA, DATA, SIPP, Harness, load, statuses
from voicebot.errors import ProtocolError
from voicebot.sip.endpoint import EndpointConfig
from voicebot.sip.message import SipResponse, parse_message
from voicebot.sip.security import SecurityConfig

COUNT = int(os.environ.get("VOICEBOT_FUZZ_BIG", "100000"))
SEED = int(os.environ.get("VOICEBOT_FUZZ_SEED", "20261125"))
SUBS = {"to_tag": "t0", "call_id": "1-4242@127.0.0.1", "cseq": 2, "branch": "fz", "from_tag": "f"}
TOKENS = (
    b"\r\n", b"\r\n ", b":", b";", b",", b"<", b">", b'"', b"\\", b"=", b" ", b"\x00", b"\xff", b"0", b"-1",
    b"99999999999", b"SIP/2.0", b"INVITE", b"ACK", b"BYE", b"CANCEL", b"OPTIONS", b"z9hG4bK", b"tag=",
    b"v=0\r\n", b"m=audio 0 RTP/AVP", b"c=IN IP4 0.0.0.0", b"Content-Length: 5\r\n", b"l: 99999\r\n",
    b"\r\n\r\n", b"a=sendonly", b"Require: 100rel\r\n", b"\xc3\x28", b"%00", b"sip:", b"tel:",
)  # fmt: skip


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randrange(6)):  # 0 mutations: an intact seed, which drives the state machine too
        kind = rng.randrange(6)
        pos = rng.randrange(len(data) + 1)
        if kind == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif kind == 1:
            data[pos:pos] = rng.choice(TOKENS)
        elif kind == 2:
            del data[pos : pos + rng.randrange(1, 41)]
        elif kind == 3:
            del data[pos:]
        elif kind == 4:
            data[pos:pos] = data[pos : pos + rng.randrange(1, 81)]
        else:
            data[pos:pos] = rng.randbytes(rng.randrange(21))
    return bytes(data)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_100k_mutated_datagrams_then_a_valid_invite_still_works() -> None:
    seeds = [load(p.name, **SUBS) for p in sorted(DATA.glob("*.sip"))]
    rng = random.Random(SEED)
    # no rate limit: every datagram must reach the parser and the state machine
    unlimited = SecurityConfig(requests_per_s=1e9, request_burst=1e9, invites_per_s=1e9, invite_burst=1e9)
    h = Harness(EndpointConfig(port=5080, security=unlimited, max_calls=10_000), seed=SEED)
    tag = h.establish()
    parsed = 0
    started = time.monotonic()
    for i in range(COUNT):
        data = mutate(rng, rng.choice(seeds)).replace(b"t0", tag.encode())
        try:
            parse_message(data)
            parsed += 1
        except ProtocolError:
            pass
        h.ep.receive_datagram(data, (SIPP[0], 5070 + i % 7), h.now)
        h.ep.datagrams_to_send()
        while h.ep.next_event() is not None:
            pass
        h.now += 0.001
        if i % 1000 == 999:
            h.ep.handle_timer(h.now)
    h.ep.handle_timer(h.now + 120)  # every timer fires: transactions and calls are reaped
    h.ep.datagrams_to_send()
    while h.ep.next_event() is not None:
        pass
    elapsed = time.monotonic() - started
    assert h.ep.stats["internal_error"] == 0
    assert 0 < parsed < COUNT, "the mix holds both valid and invalid messages"
    assert elapsed < 120, f"{COUNT} datagrams took {elapsed:.0f} s"

    # the same endpoint still serves a clean call
    h.now += 200
    invite = load("invite_sipp_pcmu.sip").replace(b"1-4242@127.0.0.1", b"after-fuzz@127.0.0.1")
    assert 100 in statuses(h.send(invite))
    assert h.ep.answer("after-fuzz@127.0.0.1", BOT_MEDIA, h.now)
    (ok,) = [m for m, _ in h.drain() if isinstance(m, SipResponse)]
    assert ok.status == 200 and ok.body.startswith(b"v=0")
