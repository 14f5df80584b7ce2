"""parse_offer: what a browser offer must carry before anything is allocated (pure)."""

from __future__ import annotations

import pytest

from voicebot.errors import BadRequest
from voicebot.webrtc.sdp import MAX_SDP_BYTES, answer_codec, check_sdp, parse_offer

CHROME_LIKE = "\r\n".join(
    [
        "v=0",
        "o=- 8219 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        "c=IN IP4 0.0.0.0",
        "a=ice-ufrag:Ab12",
        "a=ice-pwd:0123456789abcdefghijklmn",
        "a=fingerprint:sha-256 AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99",
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:63 red/48000/2",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:13 CN/8000",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:126 telephone-event/8000",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=sctp-port:5000",
        "",
    ]
)


def test_a_browser_offer_passes_and_reports_codecs_and_data_channel() -> None:
    sdp, info = parse_offer({"sdp": CHROME_LIKE, "type": "offer"})
    assert sdp == CHROME_LIKE
    assert info.audio_codecs == ("opus", "red", "g722", "pcmu", "pcma", "cn", "telephone-event")
    assert info.has_datachannel
    assert info.offers("PCMU") and not info.offers("g729")


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("v=0", "JSON object"),
        ({"sdp": CHROME_LIKE}, "'type' must be 'offer'"),
        ({"sdp": CHROME_LIKE, "type": "answer"}, "'type' must be 'offer'"),
        ({"sdp": 42, "type": "offer"}, "non-empty string"),
        ({"sdp": "   ", "type": "offer"}, "non-empty string"),
        ({"sdp": "v=0\r\n" + "a=x\r\n" * (MAX_SDP_BYTES // 5), "type": "offer"}, "larger than"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(payload: object, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason) as info:
        parse_offer(payload)
    assert info.value.http_status == 400


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda s: "hello" + s, "must start with 'v=0'"),
        (lambda s: s.replace("s=-\r\n", "s=-\r\nnonsense\r\n"), "malformed line"),
        (lambda s: s.replace("o=- 8219 2 IN IP4 127.0.0.1\r\n", ""), "no 'o=' line"),
        (lambda s: s.replace("m=audio 9 ", "m=audio 0 "), "no audio m-line"),
        (lambda s: s.replace("m=audio 9 UDP/TLS/RTP/SAVPF", "m=audio x"), "malformed m-line"),
        (lambda s: s.replace("a=ice-ufrag:Ab12\r\n", ""), "ICE credentials"),
        (lambda s: s.replace("a=fingerprint:", "a=fingerprintx:"), "DTLS fingerprint"),
        (lambda s: s.replace("a=sendrecv", "a=recvonly"), "not sent"),
        (
            lambda s: s.replace("111 63 9 0 8 13 110 126", "9 13").replace(
                "a=rtpmap:111 opus/48000/2\r\n", ""
            ),
            "no audio codec this server can use",
        ),
    ],
)
def test_broken_offers_name_the_problem(edit: object, reason: str) -> None:
    assert callable(edit)
    with pytest.raises(BadRequest, match=reason):
        check_sdp(edit(CHROME_LIKE))


def test_static_payload_types_count_without_rtpmap() -> None:
    sdp = CHROME_LIKE.replace("111 63 9 0 8 13 110 126", "0").replace("a=rtpmap:0 PCMU/8000\r\n", "")
    assert check_sdp(sdp).audio_codecs == ("pcmu",)


def test_answer_codec_is_the_first_payload_of_the_audio_section() -> None:
    assert answer_codec(CHROME_LIKE) == "opus"
    assert answer_codec(CHROME_LIKE.replace("111 63 9 0 8", "0 8")) == "pcmu"
    assert answer_codec("garbage") is None
