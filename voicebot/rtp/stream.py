"""One RTP media stream (pure): receive side (latching, jitter buffer, DTMF) and a paced send side.

Receive: packets are accepted only from the peer signalled in SDP (same IP; the port may differ behind a
NAT) and the stream *latches once* to the first such source ip:port (symmetric RTP, RFC 4961); everything
from elsewhere is dropped and counted (RTP bleed/injection). ``signalling_ip`` (the address the INVITE came
from) may latch too: a peer behind NAT, or one that advertises another interface, sends from the address it
signals from. ``latch_any_source=True`` lets the first valid packet from any address latch.

Send: the schedule is anchored at ``start(now)``: frame n is due at ``t0 + n·ptime`` and carries timestamp
``ts0 + n·samples``, so pacing never drifts however late the adapter wakes. If it falls more than
``max_lag_frames`` behind, the missed slots are skipped (timestamps still advance with wall time) instead of
sent in a burst. Silence is sent when nothing is queued; nothing is sent while on hold.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

from voicebot.rtp.dtmf import DtmfDigit, DtmfPacket, DtmfReceiver, encode_digit
from voicebot.rtp.jitter import Frame, JitterBuffer
from voicebot.rtp.packet import RtpError, RtpPacket, build_plain, is_rtcp, parse_plain

Addr = tuple[str, int]
Datagram = tuple[bytes, Addr]
SILENCE = {0: 0xFF, 8: 0xD5}  # PCMU, PCMA
COMFORT_NOISE = 13


@dataclass(frozen=True, slots=True)
class StreamConfig:
    remote: Addr  # from the SDP (c= and m= port)
    payload_type: int = 0
    ssrc: int = 0
    initial_sequence: int = 0
    initial_timestamp: int = 0
    dtmf_payload_type: int | None = 101
    clock_rate: int = 8000
    ptime_ms: int = 20
    latch_any_source: bool = False
    signalling_ip: str | None = None  # the SIP peer's source address: media from it may latch as well
    max_lag_frames: int = 5
    max_queue_frames: int = 3000  # one minute of 20 ms frames
    jitter_prefetch: int = 2
    jitter_max_packets: int = 8

    @property
    def samples_per_frame(self) -> int:
        return self.clock_rate * self.ptime_ms // 1000


class RtpStream:
    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        frame_bytes = config.samples_per_frame  # G.711: one byte per sample
        self._silence_byte = SILENCE.get(config.payload_type, 0xFF)
        self.jitter = JitterBuffer(
            frame_bytes, self._silence_byte, config.jitter_prefetch, config.jitter_max_packets
        )
        self._dtmf_rx = DtmfReceiver(config.clock_rate)
        self._audio_pt = config.payload_type
        self._silence_frame = bytes([self._silence_byte]) * config.samples_per_frame
        self._frame_s = config.ptime_ms / 1000
        self._remote = config.remote
        self._latched: Addr | None = None
        self._remote_ssrc: int | None = None
        self._events: deque[DtmfDigit] = deque()
        self._out: list[Datagram] = []
        self._queue: deque[bytes] = deque()
        self._partial = b""
        self._dtmf_queue: deque[tuple[str, int]] = deque()
        self._dtmf_packets: deque[DtmfPacket] = deque()
        self._dtmf_ts = 0
        self._t0: float | None = None
        self._slot = 0
        self._seq = config.initial_sequence
        self._marker = True
        self.sending = True
        self.stats: Counter[str] = Counter()

    # -- receive -----------------------------------------------------------------------------------
    @property
    def peer(self) -> Addr:
        """Where we send: the latched source once latched, the signalled address before."""
        return self._latched or self._remote

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Feed one datagram from the RTP socket. Never raises."""
        del now
        plain = parse_plain(data)
        packet: RtpPacket | None = None
        if plain is None:
            if is_rtcp(data):
                self.stats["rtcp"] += 1
                return
            try:
                packet = RtpPacket.parse(data)
            except RtpError:
                self.stats["junk"] += 1
                return
            plain = (packet.payload_type, packet.sequence, packet.timestamp, packet.ssrc, packet.payload)
        pt, seq, _ts, ssrc, payload = plain
        if addr != self._latched and not self._source_ok(addr):
            self.stats["foreign"] += 1
            return
        if ssrc != self._remote_ssrc:
            if self._remote_ssrc is not None:
                self.stats["ssrc_change"] += 1
                self.jitter.reset()
            self._remote_ssrc = ssrc
        if pt == self._audio_pt:
            self.jitter.push_payload(seq, payload)
        elif pt == self.config.dtmf_payload_type:
            try:
                self._events.extend(self._dtmf_rx.feed(packet or RtpPacket.parse(data)))
            except RtpError:
                self.stats["junk"] += 1
        else:
            self.stats["comfort_noise" if pt == COMFORT_NOISE else "other_payload"] += 1

    def _source_ok(self, addr: Addr) -> bool:
        if self._latched is not None:
            return addr == self._latched
        if self.config.latch_any_source or addr[0] in (self._remote[0], self.config.signalling_ip):
            self._latched = addr
            self.stats["latched"] += 1
            return True
        return False

    def pop_frame(self) -> Frame:
        """One 20 ms frame of the caller's audio (silence on gaps); call once per tick."""
        return self.jitter.pop()

    def next_event(self) -> DtmfDigit | None:
        return self._events.popleft() if self._events else None

    def update_remote(self, remote: Addr) -> None:
        """A re-INVITE moved the peer: send there and latch afresh."""
        if remote != self._remote:
            self._remote = remote
            self._latched = None

    # -- send --------------------------------------------------------------------------------------
    def start(self, now: float) -> None:
        if self._t0 is None:
            self._t0 = now

    def set_sending(self, sending: bool) -> None:
        """False on hold: the schedule keeps running (timestamps advance) but nothing is sent."""
        if sending and not self.sending:
            self._marker = True
        self.sending = sending

    def queue_audio(self, payload: bytes) -> None:
        """Append encoded audio (any length); it is cut into frames. The oldest is dropped when full."""
        data = self._partial + payload
        size = self.config.samples_per_frame
        whole = len(data) - len(data) % size
        for i in range(0, whole, size):
            self._queue.append(data[i : i + size])
        self._partial = data[whole:]
        while len(self._queue) > self.config.max_queue_frames:
            self._queue.popleft()
            self.stats["queue_overflow"] += 1

    def clear_audio(self) -> int:
        """Barge-in: drop everything queued; returns the number of frames dropped."""
        dropped = len(self._queue) + (1 if self._partial else 0)
        self._queue.clear()
        self._partial = b""
        return dropped

    @property
    def queued_frames(self) -> int:
        return len(self._queue)

    def send_dtmf(self, digits: str, duration_ms: int = 160) -> None:
        for digit in digits:
            encode_digit(digit, duration_ms)  # validates now, raises ValueError on a non-digit
            self._dtmf_queue.append((digit, duration_ms))

    def next_send_time(self) -> float | None:
        if self._t0 is None:
            return None
        return self._t0 + self._slot * self._frame_s

    def get_timer(self) -> float | None:
        return self.next_send_time()

    def handle_timer(self, now: float) -> None:
        """Send every frame due by ``now`` (skipping slots if more than ``max_lag_frames`` behind)."""
        if self._t0 is None:
            return
        due = int((now - self._t0) / self._frame_s + 1e-9)
        if due - self._slot > self.config.max_lag_frames:
            self.stats["skipped_slots"] += due - self._slot
            self._slot = due
            self._marker = True
        while self._slot <= due:
            self._send_slot()
            self._slot += 1

    def datagrams_to_send(self) -> list[Datagram]:
        out, self._out = self._out, []
        return out

    def _timestamp(self) -> int:
        return (self.config.initial_timestamp + self._slot * self.config.samples_per_frame) % 2**32

    def _send_slot(self) -> None:
        if not self.sending:
            return
        if not self._dtmf_packets and self._dtmf_queue:
            digit, duration = self._dtmf_queue.popleft()
            self._dtmf_packets.extend(encode_digit(digit, duration, ptime_ms=self.config.ptime_ms))
            self._dtmf_ts = self._timestamp()
        if self._dtmf_packets and self.config.dtmf_payload_type is not None:
            dp = self._dtmf_packets.popleft()
            self._emit(self.config.dtmf_payload_type, self._dtmf_ts, dp.payload, dp.marker)
            self.stats["dtmf_sent"] += 1
            return
        if self._queue:
            payload = self._queue.popleft()
            self.stats["audio_sent"] += 1
        else:
            payload = self._silence_frame
            self.stats["silence_sent"] += 1
        self._emit(self._audio_pt, self._timestamp(), payload, self._marker)
        self._marker = False

    def _emit(self, pt: int, ts: int, payload: bytes, marker: bool) -> None:
        data = build_plain(pt, self._seq, ts, self.config.ssrc, payload, marker)
        self._seq = (self._seq + 1) % 65536
        self._out.append((data, self._latched or self._remote))
