"""RtpSession over real UDP sockets on 127.0.0.1 with a small Python peer: pacing, silence, barge-in
accounting, RFC 4733 out and in, port allocation."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from voicebot.audio.chunk import PcmChunk
from voicebot.errors import CapacityError
from voicebot.rtp.dtmf import TelephoneEvent, encode_digit
from voicebot.rtp.packet import RtpPacket
from voicebot.rtp.stream import RtpStream, StreamConfig
from voicebot.rtp.transport import RtpClock, RtpPortPool, RtpSession
from voicebot.sip.sdp import NegotiatedMedia

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Peer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[float, RtpPacket]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.got.append((time.monotonic(), RtpPacket.parse(data)))


@pytest_asyncio.fixture(loop_scope="session")
async def rtp_peer() -> AsyncIterator[tuple[Peer, int]]:
    """A UDP socket on 127.0.0.1 that records every RTP packet it gets, and its port."""
    loop = asyncio.get_running_loop()
    _, p = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    assert p.transport is not None
    yield p, int(p.transport.get_extra_info("sockname")[1])
    p.transport.close()


def tone(ms: int, rate: int = 8000) -> PcmChunk:
    t = np.arange(ms * rate // 1000) / rate
    return PcmChunk((np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), rate)


async def session(remote_port: int, pool: RtpPortPool | None = None) -> tuple[RtpSession, RtpClock]:
    clock = RtpClock()
    clock.start()
    s = RtpSession(pool or RtpPortPool("127.0.0.1", 42000, 42999), clock)
    await s.open()
    s.start(NegotiatedMedia("PCMU", 0, "127.0.0.1", remote_port, dtmf_payload_type=101))
    return s, clock


async def test_paced_20ms_with_silence_when_quiet(rtp_peer: tuple[Peer, int]) -> None:
    p, port = rtp_peer
    s, clock = await session(port)
    try:
        for frame in tone(200).frames(20):
            await s.queue.put(frame, "item_a")
        await asyncio.sleep(1.0)
    finally:
        s.close()
        await clock.close()
    packets = [pkt for _, pkt in p.got]
    assert 50 <= len(packets) <= 62  # 1 s after the last put, plus the ~140 ms the puts waited
    assert packets[0].marker
    assert all((b.sequence - a.sequence) % 65536 == 1 for a, b in itertools.pairwise(packets))
    assert all((b.timestamp - a.timestamp) % 2**32 == 160 for a, b in itertools.pairwise(packets))
    audio = [pkt for pkt in packets if pkt.payload != b"\xff" * 160]
    assert len(audio) == 10, "200 ms of tone is ten frames; the rest is mu-law silence"
    assert s.queue.played_ms("item_a") == 200
    gaps = sorted(b - a for (a, _), (b, _) in itertools.pairwise(p.got))
    mean = sum(gaps) / len(gaps)
    assert 0.0195 < mean < 0.0205, f"mean interval {mean * 1000:.2f} ms"
    assert clock.intervals.percentile(50) == pytest.approx(20, abs=1.5)


async def test_barge_in_drops_the_queue_and_played_ms_counts_what_was_sent(
    rtp_peer: tuple[Peer, int],
) -> None:
    p, port = rtp_peer
    s, clock = await session(port)

    async def produce() -> None:
        for frame in tone(2000).frames(20):
            if not await s.queue.put(frame, "item_b"):
                return

    try:
        producer = asyncio.create_task(produce())
        await asyncio.sleep(0.5)
        s.clear()
        played = s.queue.played_ms("item_b")
        await asyncio.wait_for(producer, 1)
        await asyncio.sleep(0.3)
    finally:
        s.close()
        await clock.close()
    audio = [pkt for _, pkt in p.got if pkt.payload != b"\xff" * 160]
    assert 300 <= played <= 600
    assert len(audio) * 20 == played, "exactly the frames that left the socket are reported as played"
    assert s.queue.played_ms("item_b") == played, "nothing queued before clear() was sent after it"


async def test_dtmf_out_and_in(rtp_peer: tuple[Peer, int]) -> None:
    p, port = rtp_peer
    s, clock = await session(port)
    digits: list[str] = []
    s.on_dtmf = lambda d: digits.append(d.digit)
    try:
        assert s.send_dtmf("5")
        await asyncio.sleep(0.4)
        assert p.transport is not None
        for i, pkt in enumerate(encode_digit("9")):  # the peer presses 9
            rtp = RtpPacket(101, 7 + i, 16000, 0x1234, pkt.payload, pkt.marker)
            p.transport.sendto(rtp.to_bytes(), ("127.0.0.1", s.port))
        await asyncio.sleep(0.1)
    finally:
        s.close()
        await clock.close()
    events = [TelephoneEvent.parse(pkt.payload) for _, pkt in p.got if pkt.payload_type == 101]
    assert {e.event for e in events} == {5}
    assert sum(e.end for e in events) == 3, "the end packet goes three times"
    assert len({pkt.timestamp for _, pkt in p.got if pkt.payload_type == 101}) == 1
    assert digits == ["9"]


async def test_port_pool_hands_out_even_ports_and_takes_them_back() -> None:
    pool = RtpPortPool("127.0.0.1", 43001, 43004)  # even ports: 43002, 43004
    clock = RtpClock()
    a, b, c = (RtpSession(pool, clock) for _ in range(3))
    ports = {await a.open(), await b.open()}
    assert ports == {43002, 43004}
    with pytest.raises(CapacityError):
        await c.open()
    a.close()
    assert pool.in_use == 1
    await asyncio.sleep(0.01)  # the socket closes on the next loop iteration
    assert await c.open() in ports
    b.close()
    c.close()
    assert pool.in_use == 0
    await clock.close()


async def test_media_from_the_signalling_address_latches_but_strangers_do_not() -> None:
    """A peer that advertises another interface in SDP sends from the address it signals from."""
    stream = RtpStream(StreamConfig(remote=("192.0.2.2", 10208), signalling_ip="127.0.0.1"))
    packet = RtpPacket(0, 1, 160, 0xABC, b"\xff" * 160).to_bytes()
    stream.receive_datagram(packet, ("127.0.0.2", 4000), 0.0)
    stream.receive_datagram(packet, ("127.0.0.1", 4002), 0.0)
    stream.receive_datagram(packet, ("127.0.0.1", 4004), 0.0)
    assert stream.peer == ("127.0.0.1", 4002)
    assert stream.stats["foreign"] == 2 and stream.stats["latched"] == 1


@pytest.mark.parametrize(("ptime", "chunk_ms", "chunk_samples"), [(20, 60, 480), (30, 100, 960)])
async def test_caller_audio_is_handed_over_in_chunks_and_keeps_its_bytes(
    rtp_peer: tuple[Peer, int], ptime: int, chunk_ms: int, chunk_samples: int
) -> None:
    """Chunks are whole frames of the stream's ptime, at least ``inbound_chunk_ms`` long."""
    p, port = rtp_peer
    clock = RtpClock()
    clock.start()
    s = RtpSession(RtpPortPool("127.0.0.1", 42000, 42999), clock, inbound_chunk_ms=chunk_ms)
    await s.open()
    s.start(NegotiatedMedia("PCMU", 0, "127.0.0.1", port, dtmf_payload_type=101, ptime=ptime))
    assert p.transport is not None
    frame = ptime * 8
    payloads = [bytes([0x7F, n]) * (frame // 2) for n in range(12)]  # 0x7F is µ-law's "-0"
    chunks: list[PcmChunk] = []

    async def read() -> None:
        async for chunk in s.frames():
            chunks.append(chunk)

    reader = asyncio.create_task(read())
    try:
        for seq, payload in enumerate(payloads):
            p.transport.sendto(
                RtpPacket(0, seq, seq * frame, 0x51, payload).to_bytes(), ("127.0.0.1", s.port)
            )
            await asyncio.sleep(ptime / 1000)
        await asyncio.sleep(0.4)
    finally:
        s.close()
        await clock.close()
        await asyncio.wait_for(reader, 1)
    assert chunks and all(c.num_samples == chunk_samples for c in chunks)
    received = b"".join(c.g711[1] for c in chunks if c.g711 is not None)
    assert len(received) == chunk_samples * len(chunks), "every chunk carries the caller's µ-law bytes"
    assert b"".join(payloads) in received, "the caller's bytes arrive unchanged and in order"


async def test_a_flood_on_one_port_is_read_in_bounded_slices_and_the_call_goes_on(
    rtp_peer: tuple[Peer, int],
) -> None:
    p, port = rtp_peer
    s, clock = await session(port)
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        flood.bind(("127.0.0.1", 0))
        junk = b"\x00" * 40
        for _ in range(3000):  # far more than one tick may read
            flood.sendto(junk, ("127.0.0.1", s.port))
        await asyncio.sleep(0.5)
    finally:
        flood.close()
        s.close()
        await clock.close()
    assert clock.stats["read_limit"] + s.stats["read_limit"] >= 1, "a tick stopped reading at its limit"
    assert s.stats["stream_junk"] + s.stats["stream_foreign"] >= 50
    assert 20 <= len(p.got) <= 30, "the call kept sending its 20 ms frames meanwhile"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")
async def test_rtp_over_ipv6_latches_and_exchanges_frames() -> None:
    peer = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    peer.bind(("::1", 0))
    peer.setblocking(False)
    clock = RtpClock()
    clock.start()
    s = RtpSession(RtpPortPool("::1", 42000, 42999), clock)
    try:
        await s.open()
        s.start(NegotiatedMedia("PCMU", 0, "::1", peer.getsockname()[1], dtmf_payload_type=101))
        for seq in range(10):
            peer.sendto(RtpPacket(0, seq, seq * 160, 0x66, b"\x01" * 160).to_bytes(), ("::1", s.port))
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        got = []
        with contextlib.suppress(BlockingIOError):
            while True:
                got.append(RtpPacket.parse(peer.recv(2048)))
    finally:
        s.close()
        await clock.close()
        peer.close()
    assert s.stats["stream_latched"] == 1 and s.stats["stream_foreign"] == 0
    assert s.stats["jitter_received"] == 10
    assert len(got) >= 8 and all(p.payload_type == 0 for p in got)
