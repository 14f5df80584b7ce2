"""RTP header parse/build (RFC 3550 §5.1)."""

from __future__ import annotations

import struct

import pytest

from voicebot.errors import ProtocolError
from voicebot.rtp.packet import RtpError, RtpPacket, is_rtcp


def test_plain_packet_wire_format() -> None:
    p = RtpPacket(0, 0x1234, 0xDEADBEEF, 0xCA110000, b"\xff" * 160, marker=True)
    data = p.to_bytes()
    assert data[:12] == bytes([0x80, 0x80, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF, 0xCA, 0x11, 0x00, 0x00])
    assert len(data) == 172
    assert RtpPacket.parse(data) == p


def test_csrc_extension_padding_round_trip() -> None:
    p = RtpPacket(8, 65535, 1, 2, b"abc", csrcs=(7, 8), extension=(0xBEDE, b"\x10\x01\x00\x00"), padding=5)
    data = p.to_bytes()
    assert data[0] == 0x80 | 0x20 | 0x10 | 2
    assert data[-1] == 5 and len(data) == 12 + 8 + 8 + 3 + 5
    back = RtpPacket.parse(data)
    assert back == p and back.payload == b"abc"


def test_parse_packet_built_independently() -> None:
    """A header packed by hand with struct (not with our builder)."""
    hdr = struct.pack("!BBHII", 0x91, 0x65, 7, 160, 42)  # X=1, CC=1, marker=0, PT 101
    data = hdr + struct.pack("!I", 99) + struct.pack("!HH", 1, 1) + b"wxyz" + b"\x01\x80\x00\xa0"
    p = RtpPacket.parse(data)
    assert (p.payload_type, p.sequence, p.timestamp, p.ssrc, p.csrcs) == (101, 7, 160, 42, (99,))
    assert p.extension == (1, b"wxyz") and p.payload == b"\x01\x80\x00\xa0" and not p.marker


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80\x00",
        bytes(12),  # version 0
        b"\x40" + bytes(11),  # version 1
        b"\x83" + bytes(11),  # 3 CSRCs announced, none present
        b"\x90" + bytes(11) + b"\x00\x01\x00\x05",  # extension longer than the packet
        b"\xa0" + bytes(11) + b"\x00",  # padding count 0
        b"\xa0" + bytes(11) + b"\x09",  # padding longer than the packet
        b"\x80\xc8" + bytes(10),  # RTCP sender report
    ],
)
def test_junk_is_an_rtp_error(data: bytes) -> None:
    with pytest.raises(RtpError):
        RtpPacket.parse(data)
    assert issubclass(RtpError, ProtocolError)


def test_is_rtcp() -> None:
    assert is_rtcp(b"\x81\xc9\x00\x07") and is_rtcp(b"\x80\xc8")
    assert not is_rtcp(RtpPacket(0, 1, 2, 3).to_bytes())
    assert not is_rtcp(RtpPacket(8, 1, 2, 3, marker=True).to_bytes())


def test_builder_rejects_out_of_range_fields() -> None:
    for kwargs in ({"payload_type": 128}, {"sequence": 65536}, {"timestamp": -1}):
        args = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0} | kwargs
        with pytest.raises(ValueError):
            RtpPacket(**args)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        RtpPacket(0, 0, 0, 0, extension=(1, b"abc"))


def test_fast_lane_agrees_with_the_full_parser() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from voicebot.rtp.packet import build_plain, parse_plain

    @settings(max_examples=400, deadline=None)
    @given(
        pt=st.integers(0, 127),
        seq=st.integers(0, 65535),
        ts=st.integers(0, 2**32 - 1),
        ssrc=st.integers(0, 2**32 - 1),
        payload=st.binary(max_size=400),
        marker=st.booleans(),
    )
    def check(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool) -> None:
        packet = RtpPacket(pt, seq, ts, ssrc, payload, marker)
        data = packet.to_bytes()
        assert build_plain(pt, seq, ts, ssrc, payload, marker) == data
        fast = parse_plain(data)
        if is_rtcp(data):
            assert fast is None  # RFC 5761: the full path refuses it as RTCP
        else:
            assert fast == (pt, seq, ts, ssrc, payload)

    check()


def test_fast_lane_leaves_anything_unusual_to_the_full_parser() -> None:
    from voicebot.rtp.packet import parse_plain

    plain = RtpPacket(0, 1, 2, 3, b"\xff" * 160).to_bytes()
    for data in (
        RtpPacket(0, 1, 2, 3, b"x", csrcs=(9,)).to_bytes(),
        RtpPacket(0, 1, 2, 3, b"x", padding=3).to_bytes(),
        RtpPacket(0, 1, 2, 3, b"x", extension=(1, b"abcd")).to_bytes(),
        bytes([0x40]) + plain[1:],  # version 1
        plain[:11],
        b"",
    ):
        assert parse_plain(data) is None
