"""A small reorder/jitter buffer for the phone leg (pure).

Packets are keyed on their sequence number extended past the 16-bit wrap. ``pop()`` is called once per
20 ms tick and returns exactly one frame: audio when the next packet is there, silence for a gap (a packet
counted lost once ``prefetch`` later packets are waiting) or an underrun. Late and duplicate packets are
dropped; the depth is bounded, and a sequence jump far outside the window resynchronises the buffer.
Payloads of any length (for example 30 ms PCMA) are re-cut into ``frame_bytes`` frames.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from voicebot.rtp.packet import RtpPacket

RESYNC_DISTANCE = 1000  # packets: further than this behind or ahead means the sender restarted


class Frame(NamedTuple):  # a tuple: one is made per call every 20 ms
    payload: bytes
    silence: bool  # True when the buffer had nothing for this tick (gap or underrun)


class JitterBuffer:
    def __init__(
        self, frame_bytes: int = 160, silence_byte: int = 0xFF, prefetch: int = 2, max_packets: int = 8
    ) -> None:
        if prefetch < 1 or max_packets < prefetch:
            raise ValueError("need 1 <= prefetch <= max_packets")
        self.frame_bytes = frame_bytes
        self.silence = bytes([silence_byte]) * frame_bytes
        self.prefetch = prefetch
        self.max_packets = max_packets
        self._packets: dict[int, bytes] = {}
        self._highest: int | None = None
        self._next: int | None = None  # extended seq to play next; None until prefetched
        self._pending = b""
        self.stats: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._packets)

    def reset(self) -> None:
        self._packets.clear()
        self._highest = self._next = None
        self._pending = b""

    def _extend(self, seq: int) -> int:
        if self._highest is None:
            return seq + 65536  # headroom so a reordered first packet stays positive
        delta = ((seq - self._highest) + 32768) % 65536 - 32768
        return self._highest + delta

    def push(self, packet: RtpPacket) -> bool:
        """Store one packet; False when it was late, a duplicate or pushed out of the window."""
        return self.push_payload(packet.sequence, packet.payload)

    def push_payload(self, sequence: int, payload: bytes) -> bool:
        """``push`` for a packet already taken apart (the receive path's fast lane)."""
        ext = self._extend(sequence)
        if self._next is not None and ext < self._next:
            if self._next - ext > RESYNC_DISTANCE:
                self._resync(ext)
            else:
                self.stats["late"] += 1
                return False
        if self._highest is not None and ext - self._highest > RESYNC_DISTANCE:
            self._resync(ext)
        if ext in self._packets:
            self.stats["duplicate"] += 1
            return False
        self._packets[ext] = payload
        if self._highest is None or ext > self._highest:
            self._highest = ext
        self.stats["received"] += 1
        if len(self._packets) > self.max_packets:
            self._bound()
        return True

    def _resync(self, ext: int) -> None:
        self.stats["resync"] += 1
        self._packets.clear()
        self._next = None
        self._highest = ext

    def _bound(self) -> None:
        while len(self._packets) > self.max_packets:
            oldest = min(self._packets)
            del self._packets[oldest]
            self.stats["overflow"] += 1
            if self._next is not None and self._next <= oldest:
                self._next = oldest + 1

    def pop(self) -> Frame:
        """One frame for this tick."""
        if len(self._pending) >= self.frame_bytes:
            return self._take(False)
        if self._next is None:
            if len(self._packets) < self.prefetch:
                return self._fill()
            self._next = min(self._packets)
        payload = self._packets.pop(self._next, None)
        if payload is None:
            if len(self._packets) >= self.prefetch:  # waited long enough: this one is lost
                self.stats["lost"] += 1
                self._next += 1
            else:
                self.stats["underrun"] += 1
            return self._fill()
        self._next += 1
        if not self._pending and len(payload) == self.frame_bytes:
            return Frame(payload, False)  # the usual case: one packet is one frame
        self._pending += payload
        if len(self._pending) >= self.frame_bytes:
            return self._take(False)
        return self._fill()

    def _take(self, silence: bool) -> Frame:
        frame, self._pending = self._pending[: self.frame_bytes], self._pending[self.frame_bytes :]
        return Frame(frame, silence)

    def _fill(self) -> Frame:
        """Whatever partial audio is pending, completed with silence."""
        if self._pending:
            frame = self._pending + self.silence[len(self._pending) :]
            self._pending = b""
            return Frame(frame, False)
        self.stats["silence"] += 1
        return Frame(self.silence, True)
