"""RFC 4733 telephone-events (DTMF over RTP) (pure).

Payload: event (8 bits), E (end), R, volume (6 bits), duration (16 bits, in timestamp units). All packets
of one event share the RTP timestamp; the end packet is sent three times. The receiver reports a digit on
the first end packet and drops the repeats by (timestamp, event); if an event's end packets are all lost
and a new event starts, the old one is reported then.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from voicebot.rtp.packet import RtpError, RtpPacket

EVENTS = "0123456789*#ABCD"
_PAYLOAD = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    event: int
    end: bool
    volume: int
    duration: int

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise RtpError(f"telephone-event payload of {len(payload)} bytes, need 4")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)

    def to_bytes(self) -> bytes:
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | (self.volume & 0x3F), self.duration)


@dataclass(frozen=True, slots=True)
class DtmfDigit:
    digit: str
    duration_ms: int
    timestamp: int


class DtmfReceiver:
    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self._current: tuple[int, int] | None = None  # (timestamp, event) not yet reported
        self._duration = 0
        self._reported: deque[tuple[int, int]] = deque(maxlen=16)

    def feed(self, packet: RtpPacket) -> list[DtmfDigit]:
        """Digits completed by this packet (usually none or one). Raises ``RtpError`` on a short payload."""
        ev = TelephoneEvent.parse(packet.payload)
        if ev.event >= len(EVENTS):
            return []  # flash and tones are not digits
        key = (packet.timestamp, ev.event)
        if key in self._reported:
            return []
        out: list[DtmfDigit] = []
        if self._current is not None and self._current != key:
            out.append(self._report(self._current, self._duration))  # its end packets were lost
        self._current, self._duration = key, ev.duration
        if ev.end:
            out.append(self._report(key, ev.duration))
        return out

    def _report(self, key: tuple[int, int], duration: int) -> DtmfDigit:
        self._reported.append(key)
        self._current = None
        return DtmfDigit(EVENTS[key[1]], duration * 1000 // self.clock_rate, key[0])


@dataclass(frozen=True, slots=True)
class DtmfPacket:
    payload: bytes
    marker: bool
    end: bool


def encode_digit(
    digit: str, duration_ms: int = 160, *, volume: int = 10, ptime_ms: int = 20, clock_rate: int = 8000
) -> list[DtmfPacket]:
    """The packets for one digit, one per ``ptime_ms``: growing durations, marker on the first, and the
    final (end) packet three times. All of them go out with the same RTP timestamp (the event start)."""
    event = EVENTS.find(digit.upper()) if len(digit) == 1 else -1
    if event < 0:
        raise ValueError(f"not a DTMF digit: {digit!r}")
    step = ptime_ms * clock_rate // 1000
    total = max(step, min(duration_ms * clock_rate // 1000, 0xFFFF))
    count = -(-total // step)
    out: list[DtmfPacket] = []
    for i in range(count):
        dur = min((i + 1) * step, total)
        end = i == count - 1
        out.append(DtmfPacket(TelephoneEvent(event, end, volume, dur).to_bytes(), i == 0, end))
    out += [out[-1], out[-1]] if count > 1 else [DtmfPacket(out[-1].payload, False, True)] * 2
    return out
