"""RTP packets (RFC 3550 §5.1) (pure): parse and build, with CSRCs, header extension, padding and marker.

``RtpPacket.parse(data)`` raises ``RtpError`` (a ``ProtocolError``) on anything that is not a valid RTP
packet; ``is_rtcp(data)`` spots RTCP multiplexed on the RTP port (RFC 5761) so it can be ignored.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from voicebot.errors import ProtocolError

_HEADER = struct.Struct("!BBHII")
_SEQ_TS_SSRC = struct.Struct("!HII")
MAX_PACKET = 65535


class RtpError(ProtocolError):
    """Not a valid RTP packet."""


@dataclass(frozen=True, slots=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None  # (profile-defined id, data; a multiple of 4 bytes)
    padding: int = 0  # padding bytes to append when building (the last one holds the count)

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type < 128:
            raise ValueError(f"payload type {self.payload_type} out of range")
        if not 0 <= self.sequence < 65536 or not 0 <= self.timestamp < 2**32 or not 0 <= self.ssrc < 2**32:
            raise ValueError("sequence, timestamp or SSRC out of range")
        if len(self.csrcs) > 15 or not 0 <= self.padding < 256:
            raise ValueError("at most 15 CSRCs and 255 padding bytes")
        if self.extension is not None and len(self.extension[1]) % 4:
            raise ValueError("header extension data must be a multiple of 4 bytes")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < 12:
            raise RtpError(f"RTP packet of {len(data)} bytes is shorter than its header")
        if len(data) > MAX_PACKET:
            raise RtpError(f"RTP packet of {len(data)} bytes is larger than {MAX_PACKET}")
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        if b0 >> 6 != 2:
            raise RtpError(f"RTP version {b0 >> 6}, expected 2")
        if is_rtcp(data):
            raise RtpError("this is RTCP, not RTP")
        pt = b1 & 0x7F
        offset = 12
        cc = b0 & 0x0F
        if len(data) < offset + 4 * cc:
            raise RtpError("truncated CSRC list")
        csrcs = struct.unpack_from(f"!{cc}I", data, offset) if cc else ()
        offset += 4 * cc
        extension: tuple[int, bytes] | None = None
        if b0 & 0x10:
            if len(data) < offset + 4:
                raise RtpError("truncated header extension")
            profile, words = struct.unpack_from("!HH", data, offset)
            offset += 4
            if len(data) < offset + 4 * words:
                raise RtpError("truncated header extension data")
            extension = (profile, bytes(data[offset : offset + 4 * words]))
            offset += 4 * words
        end = len(data)
        padding = 0
        if b0 & 0x20:
            padding = data[-1]
            if padding == 0 or offset + padding > end:
                raise RtpError(f"bad padding count {padding}")
            end -= padding
        return cls(
            pt, seq, ts, ssrc, bytes(data[offset:end]), bool(b1 & 0x80), tuple(csrcs), extension, padding
        )

    def to_bytes(self) -> bytes:
        b0 = 0x80 | len(self.csrcs)
        if self.padding:
            b0 |= 0x20
        if self.extension is not None:
            b0 |= 0x10
        b1 = (0x80 if self.marker else 0) | self.payload_type
        parts = [_HEADER.pack(b0, b1, self.sequence, self.timestamp, self.ssrc)]
        if self.csrcs:
            parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
        if self.extension is not None:
            profile, data = self.extension
            parts.append(struct.pack("!HH", profile, len(data) // 4) + data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: RTCP packet types 192–223 sit where RTP's marker + payload type would be."""
    return len(data) >= 2 and data[0] >> 6 == 2 and 192 <= data[1] <= 223


def parse_plain(data: bytes) -> tuple[int, int, int, int, bytes] | None:
    """(payload type, sequence, timestamp, SSRC, payload) of a plain RTP packet: version 2 with no padding,
    extension or CSRCs, as nearly every phone sends. None for anything else, which ``RtpPacket.parse``
    handles (or refuses). This skips building an ``RtpPacket`` on the per-packet path."""
    if data[:1] != b"\x80" or not 12 <= len(data) <= MAX_PACKET or 192 <= data[1] <= 223:
        return None
    seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
    return data[1] & 0x7F, seq, ts, ssrc, data[12:]


def build_plain(
    payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, marker: bool
) -> bytes:
    """The bytes of a plain RTP packet (no padding, extension or CSRCs); the fields must be in range."""
    return _HEADER.pack(0x80, payload_type | (0x80 if marker else 0), sequence, timestamp, ssrc) + payload
