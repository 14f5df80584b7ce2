"""A passive RTP capture on the loopback interface (AF_PACKET; needs root or CAP_NET_RAW).

sipp 3.6.1 cannot record the audio it receives, and the bot latches its RTP to sipp's media socket, so the
test watches the wire instead: every UDP datagram sent to sipp's media port is kept with its arrival time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from dataclasses import dataclass, field

import numpy as np

from voicebot.audio.g711 import alaw_decode, ulaw_decode
from voicebot.rtp.packet import RtpError, RtpPacket

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def capture_unavailable() -> str | None:
    if not hasattr(socket, "AF_PACKET"):
        return "no AF_PACKET sockets on this platform"
    try:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    except PermissionError:
        return f"RTP capture needs root or CAP_NET_RAW (uid {os.getuid()})"
    s.close()
    return None


@dataclass
class Captured:
    at: float  # time.monotonic() when captured
    src: tuple[str, int]
    packet: RtpPacket


@dataclass
class RtpCapture:
    """Datagrams to 127.0.0.1:``dst_port`` seen on ``lo`` while running (use ``async with``)."""

    dst_port: int
    packets: list[Captured] = field(default_factory=list)
    _sock: socket.socket | None = None

    async def __aenter__(self) -> RtpCapture:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind(("lo", 0))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._read)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sock is not None:
            self._read()
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _read(self) -> None:
        assert self._sock is not None
        for _ in range(10000):
            try:
                frame, addr = self._sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if addr[2] == PACKET_OUTGOING:  # loopback shows each packet twice: keep the delivered copy
                continue
            self._parse(frame)

    def _parse(self, frame: bytes) -> None:
        if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
            return
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        if ip[9] != 17:  # UDP
            return
        src_ip = socket.inet_ntoa(ip[12:16])
        sport, dport, length = struct.unpack("!HHH", ip[ihl : ihl + 6])
        if dport != self.dst_port:
            return
        payload = ip[ihl + 8 : ihl + length]
        with contextlib.suppress(RtpError):
            self.packets.append(Captured(time.monotonic(), (src_ip, sport), RtpPacket.parse(payload)))

    # analysis ---------------------------------------------------------------------------------------
    def from_port(self, src_port: int) -> list[Captured]:
        return [c for c in self.packets if c.src[1] == src_port]

    @staticmethod
    def audio(packets: list[Captured]) -> np.ndarray:
        """The decoded PCM (8 kHz int16) of the PCMU/PCMA packets, in sequence order."""
        ordered = sorted(
            (c.packet for c in packets if c.packet.payload_type in (0, 8)), key=_seq_key(packets)
        )
        parts = [ulaw_decode(p.payload) if p.payload_type == 0 else alaw_decode(p.payload) for p in ordered]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


def _seq_key(packets: list[Captured]):  # type: ignore[no-untyped-def]
    first = packets[0].packet.sequence if packets else 0
    return lambda p: (p.sequence - first) % 65536


def loud_ms(pcm: np.ndarray, threshold: float = 500.0) -> int:
    """Milliseconds of 20 ms frames whose RMS is above ``threshold``."""
    frames = pcm[: len(pcm) - len(pcm) % 160].reshape(-1, 160).astype(np.float64)
    if not len(frames):
        return 0
    rms = np.sqrt((frames**2).mean(axis=1))
    return int((rms > threshold).sum()) * 20
