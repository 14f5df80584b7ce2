"""RTP on asyncio (adapter): per-call UDP sockets from a port range, one shared 20 ms clock, G.711 frames.

::

    RtpPortPool      even ports from [rtp_port_min, rtp_port_max]; a socket is bound only for a validated call
    RtpClock         one task for every call: an absolute monotonic schedule (deadline += 20 ms, resync
                     after a stall), so pacing never drifts; each tick lets every session read and make its
                     packets, then sends them all in one tight loop
    RtpSession       one call's media: socket → RtpStream (latching, jitter buffer, RFC 4733) → G.711 chunks
                     of ``inbound_chunk_ms`` decoded to PcmChunk (``frames()``); OutputQueue → RtpStream →
                     socket

The sockets are not registered with the event loop: every tick asks the clock's own epoll which call sockets
have datagrams waiting and reads them (one per ready socket per round, at most ``_MAX_READS`` rounds), right
before the jitter buffers give up that tick's frames, so the caller's audio is no later than with a read per
packet, and the per-packet cost is one ``recvfrom`` instead of a selector event and a loop callback. A flood
against one port costs a bounded read per tick. Without epoll (not Linux) each session drains its socket.

The sender takes a frame from the ``OutputQueue`` only in the tick that sends it, so ``played_ms`` counts
exactly what left the socket and a barge-in ``clear()`` drops everything not yet sent. When the agent is
quiet the stream sends silence; on hold it sends nothing (the schedule keeps running).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import select
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

from voicebot.audio.chunk import PcmChunk
from voicebot.audio.g711 import alaw_to_chunk, chunk_to_alaw, chunk_to_ulaw, ulaw_to_chunk
from voicebot.errors import CapacityError
from voicebot.playout import OutputQueue
from voicebot.rtp.dtmf import DtmfDigit
from voicebot.rtp.stream import RtpStream, StreamConfig
from voicebot.sip.sdp import NegotiatedMedia

log = logging.getLogger("voicebot.rtp")

Addr = tuple[str, int]
RATE = 8000
TICK_S = 0.02
_EARLY_S = 0.002  # a tick may wake this much before a slot and still send it
_MAX_INBOUND_FRAMES = 50  # 1 s of caller audio waiting for the call; older audio is dropped
_EPOLL = hasattr(select, "epoll")
_MAX_READS = 50  # datagrams read from one call's socket per tick (1 s of 20 ms packets)
_READ_SIZE = 2048  # larger datagrams are cut (and then refused as junk): RTP for G.711 is 172 bytes


class SendIntervals:
    """Histogram of the gaps between consecutive packets of each stream (0.1 ms buckets up to 100 ms)."""

    BUCKET_MS = 0.1

    def __init__(self) -> None:
        self.buckets = [0] * 1001
        self.count = 0

    def add(self, gap_s: float) -> None:
        i = min(int(gap_s * 1000 / self.BUCKET_MS), len(self.buckets) - 1)
        self.buckets[i] += 1
        self.count += 1

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile in milliseconds (0 when empty)."""
        if not self.count:
            return 0.0
        target = p / 100 * self.count
        seen = 0
        for i, n in enumerate(self.buckets):
            seen += n
            if seen >= target:
                return (i + 1) * self.BUCKET_MS
        return len(self.buckets) * self.BUCKET_MS

    def reset(self) -> None:
        self.buckets = [0] * len(self.buckets)
        self.count = 0


class RtpClock:
    """The one pacing task behind every RTP session of a server; it sleeps while no session is active."""

    def __init__(self, interval_s: float = TICK_S, max_lag_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.max_lag_s = max_lag_s
        self._sessions: set[RtpSession] = set()
        self._wake = asyncio.Event()
        # which sockets have datagrams waiting: one epoll_wait per tick instead of a recvfrom that fails
        # on every quiet socket (Linux; elsewhere every socket is simply read until it is empty)
        self._epoll: select.epoll | None = None
        self._readers: dict[int, RtpSession] = {}
        self._task: asyncio.Task[None] | None = None
        self._next: float | None = None
        self.intervals = SendIntervals()
        self.stats: Counter[str] = Counter()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rtp-clock")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
            self._readers.clear()

    def next_slot(self) -> float:
        """The loop time of the next tick (a new stream starts there, aligned with the others)."""
        now = asyncio.get_running_loop().time()
        if self._next is None or self._next < now:
            return now
        return self._next

    def add(self, session: RtpSession) -> None:
        self._sessions.add(session)
        fd = session.fileno()
        if _EPOLL and fd >= 0 and fd not in self._readers:
            if self._epoll is None:
                self._epoll = select.epoll()
            self._epoll.register(fd, select.EPOLLIN)
            self._readers[fd] = session
        self._wake.set()

    def discard(self, session: RtpSession) -> None:
        """Stop ticking ``session`` (before its socket is closed: the descriptor number may be reused)."""
        self._sessions.discard(session)
        fd = session.fileno()
        if self._readers.get(fd) is session:
            del self._readers[fd]
            if self._epoll is not None:
                self._epoll.unregister(fd)

    @property
    def polled(self) -> bool:
        """Sockets are read as epoll reports them (else each session drains its own in its tick)."""
        return self._epoll is not None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._sessions:
                self._next = None
                self._wake.clear()
                await self._wake.wait()
            deadline = loop.time()
            while self._sessions:
                self._next = deadline
                self._tick(loop.time())
                deadline += self.interval_s
                now = loop.time()
                if now - deadline > self.max_lag_s:
                    self.stats["resync"] += 1
                    deadline = now
                await asyncio.sleep(max(0.0, deadline - now))

    def _tick(self, now: float) -> None:
        """Every session makes its packets for this tick, then they all leave in one tight loop: the
        per-packet Python between two ``sendto`` calls is a few attribute loads, and a peer that sleeps
        between packets is woken once per burst rather than once per packet."""
        self.stats["ticks"] += 1
        if self._epoll is not None:
            self._read(self._epoll)
        outbox: list[tuple[RtpSession, bytes, Addr]] = []
        for session in list(self._sessions):
            try:
                session.tick(now, outbox)
            except Exception:  # one call's bug must not stop every other call's audio
                self.stats["session_error"] += 1
                log.exception("RTP session %s failed in a tick; closing it", session.name)
                session.fail()
        if outbox:
            self._send(outbox)

    def _read(self, epoll: select.epoll) -> None:
        """One datagram per ready socket per round, until none is ready (at most ``_MAX_READS`` rounds:
        a flood against one port costs a bounded read per tick and overflows the kernel's buffer)."""
        readers = self._readers
        for _ in range(_MAX_READS):
            ready = epoll.poll(0)
            if not ready:
                return
            for fd, _events in ready:
                session = readers.get(fd)
                if session is not None:
                    try:
                        session.read_one()
                    except Exception:  # one call's bug must not stop every other call's audio
                        self.stats["session_error"] += 1
                        log.exception("RTP session %s failed reading; closing it", session.name)
                        session.fail()
        self.stats["read_limit"] += 1

    def _send(self, outbox: list[tuple[RtpSession, bytes, Addr]]) -> None:
        intervals = self.intervals
        monotonic = time.monotonic
        for session, data, addr in outbox:
            sock = session._sock
            if sock is None:  # closed by an earlier session's failure in this tick
                continue
            sent_at = monotonic()
            if session._last_send is not None:
                intervals.add(sent_at - session._last_send)
            session._last_send = sent_at
            try:
                sock.sendto(data, addr)
            except OSError as exc:  # a full socket buffer or an unreachable peer: this packet is lost
                session.stats["send_error"] += 1
                log.debug("RTP %s: send to %s failed: %r", session.name, addr, exc)


class RtpPortPool:
    """Even RTP ports (RTCP would be port+1) from ``[port_min, port_max]`` on ``host``."""

    def __init__(self, host: str, port_min: int, port_max: int, *, rng: random.Random | None = None) -> None:
        first = port_min + (port_min % 2)
        self.host = host
        self.ports = list(range(first, port_max + 1, 2))
        if not self.ports:
            raise ValueError(f"no even port in the RTP range {port_min}-{port_max}")
        self._rng = rng or random.SystemRandom()
        self._used: set[int] = set()

    @property
    def in_use(self) -> int:
        return len(self._used)

    async def bind(self) -> tuple[socket.socket, int]:
        """A non-blocking UDP socket bound to a free port (random order); ``CapacityError`` when none is
        free. The socket is not registered with the event loop: the RTP clock reads it every tick."""
        free = [p for p in self.ports if p not in self._used]
        self._rng.shuffle(free)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for port in free[:64]:
            self._used.add(port)
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.bind((self.host, port))
            except OSError:
                sock.close()
                self._used.discard(port)  # taken by another process: try the next one
                continue
            return sock, port
        raise CapacityError("no free RTP port in the configured range")

    def release(self, port: int) -> None:
        self._used.discard(port)


class RtpSession:
    """One call's media. ``open`` binds the socket; ``start(media)`` begins the 20 ms exchange."""

    def __init__(
        self,
        pool: RtpPortPool,
        clock: RtpClock,
        *,
        name: str = "rtp",
        queue_ms: int = 60,
        inbound_chunk_ms: int = 20,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.name = name
        # the caller's audio is handed over in chunks of at least this many samples (whole frames of the
        # stream's ptime; one per frame when 0): fewer wake-ups of the call per second
        self.inbound_samples = max(1, inbound_chunk_ms * RATE // 1000)
        self._max_inbound = max(1, _MAX_INBOUND_FRAMES * 20 // max(20, inbound_chunk_ms))
        self._inbound_parts: list[bytes] = []
        self._inbound_len = 0
        self.queue = OutputQueue(RATE, max_ms=queue_ms)
        self.port = 0
        self.stream: RtpStream | None = None
        self.media: NegotiatedMedia | None = None
        self.on_dtmf: Callable[[DtmfDigit], None] | None = None
        self.on_failure: Callable[[], None] | None = None
        self.signalling_ip: str | None = None  # where the INVITE came from; media from there may latch
        self.stats: Counter[str] = Counter()
        self._sock: socket.socket | None = None
        self._ipv6 = False
        self._inbound: asyncio.Queue[PcmChunk | None] = asyncio.Queue()
        self._rng = random.SystemRandom()
        self._last_send: float | None = None
        self._closed = False

    async def open(self) -> int:
        self._sock, self.port = await self.pool.bind()
        self._ipv6 = self._sock.family == socket.AF_INET6
        return self.port

    # media control ----------------------------------------------------------------------------------
    def start(self, media: NegotiatedMedia) -> None:
        """The call is established: send to (and accept from) the peer in ``media``."""
        if self._closed:
            return
        if self.stream is None or self.media is None or media.payload_type != self.media.payload_type:
            self._new_stream(media)
        else:
            self.stream.update_remote((media.remote_address, media.remote_port))
            self.stream.set_sending(media.sending)
        self.media = media
        self.clock.add(self)

    def _new_stream(self, media: NegotiatedMedia) -> None:
        config = StreamConfig(
            remote=(media.remote_address, media.remote_port),
            payload_type=media.payload_type,
            ssrc=self._rng.getrandbits(32),
            initial_sequence=self._rng.getrandbits(16),
            initial_timestamp=self._rng.getrandbits(32),
            dtmf_payload_type=media.dtmf_payload_type,
            ptime_ms=media.ptime,
            signalling_ip=self.signalling_ip,
        )
        old, self.stream = self.stream, RtpStream(config)
        if old is not None:  # a re-INVITE changed the codec: keep the latch target
            self.stream.update_remote(old.peer)
            if self._inbound_parts:  # audio of the old codec not handed over yet
                decode = alaw_to_chunk if old.config.payload_type == 8 else ulaw_to_chunk
                self._deliver(decode(b"".join(self._inbound_parts)))
                self._inbound_parts.clear()
                self._inbound_len = 0
        self.stream.set_sending(media.sending)
        self.stream.start(self.clock.next_slot())

    def update(self, media: NegotiatedMedia) -> None:
        """Hold, resume, a new address or codec (re-INVITE)."""
        self.start(media)

    def send_dtmf(self, digits: str, duration_ms: int = 160) -> bool:
        """RFC 4733 out; False when no telephone-event type was negotiated (use SIP INFO instead)."""
        if self.stream is None or self.media is None or self.media.dtmf_payload_type is None:
            return False
        self.stream.send_dtmf(digits, duration_ms)
        return True

    def clear(self) -> None:
        """Barge-in: nothing queued before this call is sent."""
        self.queue.clear()
        if self.stream is not None:
            self.stream.clear_audio()

    # the caller's audio -------------------------------------------------------------------------------
    async def frames(self) -> AsyncIterator[PcmChunk]:
        while True:
            chunk = await self._inbound.get()
            if chunk is None:
                return
            yield chunk

    def _deliver(self, chunk: PcmChunk | None) -> None:
        if chunk is not None and self._inbound.qsize() >= self._max_inbound:
            with contextlib.suppress(asyncio.QueueEmpty):
                self._inbound.get_nowait()
            self.stats["inbound_dropped"] += 1
        self._inbound.put_nowait(chunk)

    def fileno(self) -> int:
        return self._sock.fileno() if self._sock is not None else -1

    def read_one(self) -> bool:
        """Read one datagram from the socket into the stream; False when none was waiting."""
        sock = self._sock
        if sock is None:
            return False
        try:
            data, addr = sock.recvfrom(_READ_SIZE)
        except BlockingIOError:
            return False
        except OSError as exc:
            # an ICMP error for an earlier send (port unreachable): the peer may come back
            self.stats["socket_error"] += 1
            log.debug("RTP %s: %r", self.name, exc)
            return True
        stream = self.stream
        if stream is None:
            self.stats["early_packet"] += 1
            return True
        stream.receive_datagram(data, (addr[0], addr[1]) if self._ipv6 else addr, 0.0)
        while (digit := stream.next_event()) is not None:
            self.stats["dtmf_received"] += 1
            if self.on_dtmf is not None:
                self.on_dtmf(digit)
        return True

    def _drain(self) -> None:
        """Read everything waiting (at most ``_MAX_READS`` datagrams), where the clock has no epoll."""
        for _ in range(_MAX_READS):
            if not self.read_one():
                return
        self.stats["read_limit"] += 1

    # the clock -------------------------------------------------------------------------------------
    def tick(self, now: float, outbox: list[tuple[RtpSession, bytes, Addr]]) -> None:
        """Send the frames due by ``now`` (appended to ``outbox``; the clock sends them) and hand the
        caller's audio for the same slots to the call."""
        stream = self.stream
        if stream is None or self._closed:
            return
        if not self.clock.polled:
            self._drain()
        due = stream.next_send_time()
        if due is not None and now - due > stream.config.max_lag_frames * TICK_S:
            stream.handle_timer(now)  # far behind: the stream skips the missed slots
            self._collect(stream, outbox)
            due = stream.next_send_time()
        while due is not None and due <= now + _EARLY_S:
            self._pop_inbound(stream)
            if stream.sending and stream.queued_frames == 0:
                self._feed(stream)
            stream.handle_timer(due)
            self._collect(stream, outbox)
            due = stream.next_send_time()

    def _pop_inbound(self, stream: RtpStream) -> None:
        parts = self._inbound_parts
        frame = stream.pop_frame().payload
        parts.append(frame)
        self._inbound_len += len(frame)  # G.711: one byte per sample
        if self._inbound_len < self.inbound_samples:
            return
        payload = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        self._inbound_len = 0
        decode = alaw_to_chunk if stream.config.payload_type == 8 else ulaw_to_chunk
        self._deliver(decode(payload))

    def _feed(self, stream: RtpStream) -> None:
        taken = self.queue.take()
        if taken is None:
            return
        chunk, _item = taken
        encode = chunk_to_alaw if stream.config.payload_type == 8 else chunk_to_ulaw
        stream.queue_audio(encode(chunk))

    def _collect(self, stream: RtpStream, outbox: list[tuple[RtpSession, bytes, Addr]]) -> None:
        datagrams = stream.datagrams_to_send()
        if datagrams and self._sock is not None:
            for data, addr in datagrams:
                outbox.append((self, data, addr))
            self.stats["sent"] += len(datagrams)
        if not stream.sending:
            self._last_send = None  # a hold gap is not a pacing error

    # teardown --------------------------------------------------------------------------------------
    def fail(self) -> None:
        self.close()
        if self.on_failure is not None:
            self.on_failure()

    def close(self) -> None:
        """Stop sending, release the port and end ``frames()``. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.clock.discard(self)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.port:
            self.pool.release(self.port)
        if self.stream is not None:
            self.stats.update({f"stream_{k}": v for k, v in self.stream.stats.items()})
            self.stats.update({f"jitter_{k}": v for k, v in self.stream.jitter.stats.items()})
        self._deliver(None)

    @property
    def closed(self) -> bool:
        return self._closed
