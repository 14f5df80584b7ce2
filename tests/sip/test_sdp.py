"""SDP parsing and offer/answer (RFC 4566, RFC 3264): offer order, telephone-event, ptime, hold."""

from __future__ import annotations

import pytest

from tests.sip.helpers import load
from voicebot.errors import ProtocolError
from voicebot.sip.message import parse_message
from voicebot.sip.sdp import (
    LocalMedia,
    SdpError,
    SdpNegotiationError,
    SessionDescription,
    accept_answer,
    build_offer,
    negotiate,
    parse_sdp,
)

LOCAL = LocalMedia("127.0.0.1", 20000, session_id=99, session_version=3)


def _offer(name: str, **subs: object) -> SessionDescription:
    return parse_sdp(parse_message(load(name, **subs)).body)


def _sdp(*media_lines: str, c: str = "127.0.0.1") -> SessionDescription:
    text = "\r\n".join(["v=0", "o=- 1 1 IN IP4 127.0.0.1", "s=-", f"c=IN IP4 {c}", "t=0 0", *media_lines])
    return parse_sdp((text + "\r\n").encode())


DIALOG = {"to_tag": "t", "call_id": "c", "cseq": 2, "branch": "b"}


def test_pcmu_first_offer_gets_pcmu_and_echoed_dtmf() -> None:
    answer, media = negotiate(_offer("invite_sipp_pcmu.sip"), LOCAL)
    assert (media.codec, media.payload_type, media.dtmf_payload_type) == ("PCMU", 0, 101)
    assert (media.remote_address, media.remote_port, media.ptime) == ("127.0.0.1", 6000, 20)
    assert media.local_direction == "sendrecv" and media.sending and media.receiving
    m = answer.media[0]
    assert m.formats == ["0", "101"] and m.port == 20000
    assert m.attrs("rtpmap") == ["0 PCMU/8000", "101 telephone-event/8000"]
    assert m.attr("sendrecv") == ""
    text = answer.to_bytes().decode()
    assert text.startswith("v=0\r\no=voicebot 99 3 IN IP4 127.0.0.1\r\n")
    assert "c=IN IP4 127.0.0.1\r\n" in text


def test_offerers_order_wins_over_ours() -> None:
    """Pitfall 3: PCMA first in the offer → PCMA, even though our list prefers PCMU."""
    _, media = negotiate(_offer("invite_pcma_first.sip"), LOCAL)
    assert (media.codec, media.payload_type) == ("PCMA", 8)


def test_baresip_offer_skips_opus_and_g722() -> None:
    answer, media = negotiate(_offer("invite_baresip.sip"), LOCAL)
    assert (media.codec, media.remote_address, media.remote_port) == ("PCMU", "192.0.2.2", 10208)
    assert answer.media[0].formats == ["0", "101"]


def test_dynamic_payload_types_and_nonstandard_dtmf_type() -> None:
    offer = _sdp(
        "m=audio 7000 RTP/AVP 96 97",
        "a=rtpmap:96 pcma/8000",
        "a=rtpmap:97 telephone-event/8000",
        "a=ptime:30",
    )
    answer, media = negotiate(offer, LOCAL)
    assert (media.codec, media.payload_type, media.dtmf_payload_type, media.ptime) == ("PCMA", 96, 97, 30)
    assert answer.media[0].attr("ptime") == "30"
    assert "a=rtpmap:97 telephone-event/8000" in answer.to_bytes().decode()


def test_ptime_out_of_range_falls_back_to_ours() -> None:
    _, media = negotiate(_sdp("m=audio 7000 RTP/AVP 0", "a=ptime:7"), LOCAL)
    assert media.ptime == 20


@pytest.mark.parametrize(
    ("offered", "answered", "sending", "receiving"),
    [
        ("sendrecv", "sendrecv", True, True),
        ("sendonly", "recvonly", False, True),
        ("recvonly", "sendonly", True, False),
        ("inactive", "inactive", False, False),
    ],
)
def test_direction_is_inverted(offered: str, answered: str, sending: bool, receiving: bool) -> None:
    answer, media = negotiate(_sdp("m=audio 7000 RTP/AVP 0", f"a={offered}"), LOCAL)
    assert media.local_direction == answered
    assert answer.media[0].direction == answered
    assert (media.sending, media.receiving, media.on_hold) == (sending, receiving, not sending)


def test_session_level_direction_applies() -> None:
    head = b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
    offer = parse_sdp(head + b"a=sendonly\r\nm=audio 7000 RTP/AVP 8\r\n")
    _, media = negotiate(offer, LOCAL)
    assert media.local_direction == "recvonly"


def test_rfc2543_hold_with_zero_address() -> None:
    _, media = negotiate(_offer("reinvite_c0_hold.sip", **DIALOG), LOCAL)
    assert media.on_hold and media.local_direction == "recvonly"


def test_nothing_matches_is_488() -> None:
    with pytest.raises(SdpNegotiationError) as err:
        negotiate(_offer("invite_no_common_codec.sip"), LOCAL)
    assert err.value.sip_status == 488 and err.value.warning == 305


def test_only_video_or_rejected_audio_is_488_with_304() -> None:
    with pytest.raises(SdpNegotiationError) as err:
        negotiate(_sdp("m=video 7000 RTP/AVP 31", "m=audio 0 RTP/AVP 0"), LOCAL)
    assert err.value.warning == 304


def test_every_offered_stream_gets_an_answer_line() -> None:
    answer, media = negotiate(
        _sdp("m=video 7002 RTP/AVP 31", "m=audio 7000 RTP/AVP 0", "m=audio 7004 RTP/AVP 8"), LOCAL
    )
    assert [(m.media, m.port) for m in answer.media] == [("video", 0), ("audio", 20000), ("audio", 0)]
    assert media.remote_port == 7000


def test_srtp_profile_is_not_usable() -> None:
    with pytest.raises(SdpNegotiationError):
        negotiate(_sdp("m=audio 7000 RTP/SAVP 0"), LOCAL)


def test_media_level_connection_wins() -> None:
    _, media = negotiate(_sdp("m=audio 7000 RTP/AVP 0", "c=IN IP4 10.1.2.3"), LOCAL)
    assert media.remote_address == "10.1.2.3"


def test_no_connection_at_all_is_a_protocol_error() -> None:
    offer = parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\n")
    with pytest.raises(SdpError):
        negotiate(offer, LOCAL)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"hello",
        b"v=1\r\n",
        b"v=0\r\nm=audio\r\n",
        b"v=0\r\nm=audio port RTP/AVP 0\r\n",
        b"v=0\r\nc=IN IP4\r\n",
        b"v=0\r\nc=XX IP4 1.2.3.4\r\n",
        b"v=0\r\no=too few\r\n",
        b"v=0\r\nxx=1\r\n",
        b"v=0\r\n\xff\xfe",
        b"v=0\r\n" + b"a=x\r\n" * 300,
    ],
)
def test_junk_sdp_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_sdp(body)


def test_parse_serialise_round_trip_keeps_streams() -> None:
    offer = _offer("invite_baresip.sip")
    again = parse_sdp(offer.to_bytes())
    assert [m.formats for m in again.media] == [m.formats for m in offer.media]
    assert again.media[0].other == ["b=AS:128"]
    assert again.media[0].rtpmap()[111] == ("OPUS", 48000)


def test_delayed_offer_and_answer_in_ack() -> None:
    offer = build_offer(LOCAL)
    assert offer.media[0].formats == ["0", "8", "101"]
    answer = _offer("ack_with_answer.sip", **DIALOG)
    media = accept_answer(offer, answer)
    assert (media.codec, media.payload_type, media.dtmf_payload_type) == ("PCMA", 8, 101)
    assert media.local_direction == "sendrecv"
    with pytest.raises(SdpNegotiationError):
        accept_answer(offer, _sdp("m=audio 7000 RTP/AVP 9", "a=rtpmap:9 G722/8000"))
