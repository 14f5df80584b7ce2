"""The reorder/jitter buffer: one frame per tick, gaps → silence, wraparound, late/duplicate drops."""

from __future__ import annotations

from voicebot.rtp.jitter import JitterBuffer
from voicebot.rtp.packet import RtpPacket


def _pkt(seq: int, fill: int | None = None, size: int = 160) -> RtpPacket:
    return RtpPacket(
        0, seq % 65536, (seq * 160) % 2**32, 1, bytes([(seq if fill is None else fill) % 256]) * size
    )


def _drain(jb: JitterBuffer, ticks: int) -> list[int | None]:
    """The first byte of each frame, None for silence frames."""
    out: list[int | None] = []
    for _ in range(ticks):
        f = jb.pop()
        assert len(f.payload) == 160
        out.append(None if f.silence else f.payload[0])
    return out


def test_in_order_after_prefetch() -> None:
    jb = JitterBuffer(prefetch=2)
    jb.push(_pkt(10))
    assert _drain(jb, 1) == [None]  # still prefetching
    jb.push(_pkt(11))
    jb.push(_pkt(12))
    assert _drain(jb, 3) == [10, 11, 12]


def test_reordering_is_undone() -> None:
    jb = JitterBuffer(prefetch=3)
    for s in (5, 3, 4, 7, 6):
        jb.push(_pkt(s))
    assert _drain(jb, 5) == [3, 4, 5, 6, 7]


def test_gap_becomes_silence_and_late_packet_is_dropped() -> None:
    jb = JitterBuffer(prefetch=2)
    for s in (1, 2, 4, 5):
        jb.push(_pkt(s))
    assert _drain(jb, 4) == [1, 2, None, 4]
    assert jb.stats["lost"] == 1
    assert not jb.push(_pkt(3))  # arrived after its slot
    assert jb.stats["late"] == 1
    assert _drain(jb, 1) == [5]


def test_duplicates_are_dropped() -> None:
    jb = JitterBuffer(prefetch=1)
    assert jb.push(_pkt(1))
    assert not jb.push(_pkt(1))
    assert jb.stats["duplicate"] == 1
    assert _drain(jb, 2) == [1, None]


def test_sequence_wraparound() -> None:
    jb = JitterBuffer(prefetch=2)
    for s in (65534, 65535, 65536, 65537):
        jb.push(_pkt(s, fill=s - 65530))
    assert _drain(jb, 4) == [4, 5, 6, 7]
    jb.push(_pkt(65539, fill=9))
    jb.push(_pkt(65538, fill=8))
    assert _drain(jb, 2) == [8, 9]


def test_depth_is_bounded() -> None:
    jb = JitterBuffer(prefetch=2, max_packets=4)
    for s in range(20):
        jb.push(_pkt(s))
    assert len(jb) == 4 and jb.stats["overflow"] == 16
    assert _drain(jb, 4) == [16, 17, 18, 19]


def test_sender_restart_resynchronises() -> None:
    jb = JitterBuffer(prefetch=1)
    jb.push(_pkt(30000))
    assert _drain(jb, 1) == [30000 % 256]
    jb.push(_pkt(100, fill=1))  # far behind: a restarted sender, not a late packet
    assert jb.stats["resync"] == 1
    assert _drain(jb, 1) == [1]


def test_underrun_keeps_position_for_a_slow_packet() -> None:
    jb = JitterBuffer(prefetch=1)
    jb.push(_pkt(1))
    assert _drain(jb, 2) == [1, None]
    jb.push(_pkt(2))
    assert _drain(jb, 1) == [2]
    assert jb.stats["underrun"] == 1 and jb.stats["lost"] == 0


def test_30ms_packets_are_recut_into_20ms_frames() -> None:
    jb = JitterBuffer(prefetch=1)
    for s in range(4):
        jb.push(_pkt(s, size=240))
    frames = [jb.pop() for _ in range(6)]
    assert b"".join(f.payload for f in frames) == b"".join(bytes([s]) * 240 for s in range(4))
