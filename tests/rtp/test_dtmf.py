"""RFC 4733 telephone-events: decode with end-bit dedupe, encode with shared timestamp and 3 end packets."""

from __future__ import annotations

import struct

import pytest

from voicebot.rtp.dtmf import DtmfDigit, DtmfReceiver, TelephoneEvent, encode_digit
from voicebot.rtp.packet import RtpError, RtpPacket


def _ev(seq: int, ts: int, event: int, end: bool, duration: int) -> RtpPacket:
    payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
    return RtpPacket(101, seq, ts, 5, payload, marker=seq == 0)


def _sipp_like(digit_event: int, ts: int, seq0: int) -> list[RtpPacket]:
    """The shape of sipp's dtmf_2833_*.pcap: 7 growing packets, then the end packet 3 times."""
    pkts = [_ev(seq0 + i, ts, digit_event, False, 160 * (i + 1)) for i in range(7)]
    return pkts + [_ev(seq0 + 7 + i, ts, digit_event, True, 1280) for i in range(3)]


def test_sipp_digits_one_and_pound() -> None:
    rx = DtmfReceiver()
    digits: list[DtmfDigit] = []
    for p in _sipp_like(1, 1000, 0) + _sipp_like(11, 9000, 10):
        digits += rx.feed(p)
    assert [(d.digit, d.duration_ms) for d in digits] == [("1", 160), ("#", 160)]


def test_same_digit_twice_is_two_events() -> None:
    rx = DtmfReceiver()
    digits = [d.digit for p in _sipp_like(5, 100, 0) + _sipp_like(5, 2000, 10) for d in rx.feed(p)]
    assert digits == ["5", "5"]


def test_lost_end_packets_reported_when_next_event_starts() -> None:
    rx = DtmfReceiver()
    out: list[DtmfDigit] = []
    for p in _sipp_like(2, 100, 0)[:5] + _sipp_like(3, 3000, 10):
        out += rx.feed(p)
    assert [d.digit for d in out] == ["2", "3"]


def test_non_digit_events_and_short_payloads() -> None:
    rx = DtmfReceiver()
    assert rx.feed(_ev(0, 1, 16, True, 800)) == []  # flash
    with pytest.raises(RtpError):
        rx.feed(RtpPacket(101, 1, 1, 1, b"\x01"))


def test_encode_digit_packets() -> None:
    pkts = encode_digit("9", 160)
    assert len(pkts) == 10
    events = [TelephoneEvent.parse(p.payload) for p in pkts]
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 960, 1120, 1280, 1280, 1280]
    assert [e.end for e in events] == [False] * 7 + [True] * 3
    assert {e.event for e in events} == {9} and {e.volume for e in events} == {10}
    assert [p.marker for p in pkts] == [True] + [False] * 9
    assert pkts[0].payload == bytes([9, 10, 0, 160])


def test_encode_then_decode() -> None:
    rx = DtmfReceiver()
    out = [
        d for i, p in enumerate(encode_digit("*", 100)) for d in rx.feed(RtpPacket(101, i, 777, 1, p.payload))
    ]
    assert out == [DtmfDigit("*", 100, 777)]


def test_encode_rejects_non_digits() -> None:
    with pytest.raises(ValueError):
        encode_digit("x")
