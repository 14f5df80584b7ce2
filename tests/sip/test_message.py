"""SIP message parsing and building (RFC 3261 §7, §8.2.6, §18.3, §20) with captured messages."""

from __future__ import annotations

import pytest

from tests.sip.helpers import load
from voicebot.errors import ProtocolError
from voicebot.sip.headers import SipUri, parse_cseq, parse_name_addr, parse_via, split_list
from voicebot.sip.message import (
    Headers,
    Limits,
    SipParseError,
    SipRequest,
    SipResponse,
    build_response,
    can_answer,
    parse_message,
    stamp_received,
)


def _req(name: str) -> SipRequest:
    msg = parse_message(load(name))
    assert isinstance(msg, SipRequest)
    return msg


def test_sipp_invite_parses_with_body_and_headers() -> None:
    req = _req("invite_sipp_pcmu.sip")
    assert (req.method, req.uri) == ("INVITE", "sip:service@127.0.0.1:5080")
    assert req.call_id == "1-4242@127.0.0.1"
    assert req.cseq == (1, "INVITE")
    assert req.from_.tag == "4242SIPpTag001"
    assert req.to.tag is None
    assert req.top_via.branch == "z9hG4bK-4242-1-0"
    assert req.body.startswith(b"v=0\r\n") and req.body.endswith(b"a=sendrecv\r\n")
    assert len(req.body) == int(req.headers.get("content-length") or 0)


def test_compact_forms_folding_and_multiple_via() -> None:
    req = _req("invite_compact.sip")
    assert req.call_id == "compact-1@example.test"
    assert req.headers.get("Content-Type") == "application/sdp"
    assert req.headers.get("SUBJECT") == "a folded subject line"
    vias = req.headers.get_list("via")
    assert [parse_via(v).branch for v in vias] == ["z9hG4bKcompact1", "z9hG4bKproxy9", "z9hG4bKedge10"]
    assert req.from_.display == "Alice, the caller" and req.from_.tag == "al1ce"
    assert parse_name_addr(req.headers.get_list("Contact")[0]).uri == "sip:alice@127.0.0.1:5070"
    assert req.cseq == (7, "INVITE")
    assert req.body.startswith(b"v=0")


def test_torture_whitespace_message_is_understood() -> None:
    req = _req("torture_whitespace.sip")
    assert req.to.tag == "1918181833n"
    assert req.from_.tag == "98asjd8"
    assert req.cseq == (9, "INVITE")
    vias = [parse_via(v) for v in req.headers.get_list("Via")]
    assert [(v.transport, v.host) for v in vias] == [
        ("UDP", "192.0.2.2"),
        ("TCP", "spindle.example.com"),
        ("UDP", "192.168.255.111"),
    ]
    assert vias[1].branch == "z9hG4bK9ikj8" and vias[2].branch == "z9hG4bK30239"
    assert req.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert req.headers.get("Max-Forwards") == "0068"


def test_content_length_shorter_than_body_truncates() -> None:
    raw = load("options_sipsak.sip").replace(b"Content-Length: 0", b"Content-Length: 2") + b"abcdef"
    msg = parse_message(raw)
    assert msg.body == b"ab"


def test_missing_content_length_on_udp_takes_the_rest() -> None:
    raw = load("options_sipsak.sip").replace(b"Content-Length: 0\r\n", b"") + b"xyz"
    assert parse_message(raw).body == b"xyz"


def test_content_length_larger_than_body_is_400_with_partial_request() -> None:
    with pytest.raises(SipParseError) as err:
        parse_message(load("invite_content_length_too_big.sip"))
    assert err.value.sip_status == 400
    assert can_answer(err.value.partial)


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "99999999999"])
def test_bad_content_length_is_400(value: str) -> None:
    raw = load("options_sipsak.sip").replace(b"Content-Length: 0", f"Content-Length: {value}".encode())
    with pytest.raises(SipParseError) as err:
        parse_message(raw)
    assert err.value.sip_status == 400


def test_conflicting_content_lengths_are_400() -> None:
    raw = load("options_sipsak.sip").replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 3") + b"abc"
    with pytest.raises(SipParseError):
        parse_message(raw)


def test_message_size_cap_is_513() -> None:
    raw = load("invite_sipp_pcmu.sip")
    with pytest.raises(SipParseError) as err:
        parse_message(raw, Limits(max_message=len(raw) - 1))
    assert err.value.sip_status == 513


def test_body_cap_is_413() -> None:
    with pytest.raises(SipParseError) as err:
        parse_message(load("invite_sipp_pcmu.sip"), Limits(max_body=100))
    assert err.value.sip_status == 413
    assert can_answer(err.value.partial)


def test_header_count_and_line_length_caps() -> None:
    many = load("options_sipsak.sip").replace(b"Accept:", b"X-A: 1\r\n" * 100 + b"Accept:")
    with pytest.raises(SipParseError, match="more than"):
        parse_message(many)
    long_line = load("options_sipsak.sip").replace(b"Accept: text/plain", b"Accept: " + b"a" * 5000)
    with pytest.raises(SipParseError, match="longer than"):
        parse_message(long_line)


def test_wrong_version_is_505() -> None:
    with pytest.raises(SipParseError) as err:
        parse_message(load("invite_sip3.sip"))
    assert err.value.sip_status == 505 and can_answer(err.value.partial)


def test_cseq_method_mismatch_is_400_answerable() -> None:
    with pytest.raises(SipParseError) as err:
        parse_message(load("invite_cseq_mismatch.sip"))
    assert err.value.sip_status == 400 and can_answer(err.value.partial)


def test_missing_call_id_cannot_be_answered() -> None:
    with pytest.raises(SipParseError) as err:
        parse_message(load("invite_no_call_id.sip"))
    assert err.value.partial is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01\x02",
        b"INVITE\r\n\r\n",
        b"SIP/2.0 99 Nope\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\nbad header line\r\n\r\n",
        b" \r\nVia: x\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\n\xff\xfe: \xc3\x28\r\n\r\n",
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n",
    ],
)
def test_junk_raises_only_protocol_error(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_message(raw)


def test_response_parse() -> None:
    resp = parse_message(load("register_401_sipp.sip", branch="z9hG4bKr1", from_tag="f", call_id="c", cseq=1))
    assert isinstance(resp, SipResponse)
    assert (resp.status, resp.reason) == (401, "Unauthorized")
    assert resp.cseq == (1, "REGISTER")
    assert resp.headers.get("www-authenticate") is not None


def test_build_response_copies_and_tags_per_8_2_6() -> None:
    req = _req("invite_compact.sip")
    req.headers.add("Timestamp", "54")
    ok = build_response(req, 200, to_tag="ourtag", headers=[("Contact", "<sip:x@y>")])
    assert ok.headers.get_all("Via") == req.headers.get_all("Via")
    assert ok.headers.get("From") == req.headers.get("From")
    assert ok.call_id == req.call_id and ok.cseq == req.cseq
    assert ok.to.tag == "ourtag" and ok.reason == "OK"
    assert ok.headers.get("Timestamp") is None
    trying = build_response(req, 100, to_tag="ourtag")
    assert trying.to.tag is None
    assert trying.headers.get("Timestamp") == "54"


def test_build_response_keeps_an_existing_to_tag() -> None:
    req = _req("torture_whitespace.sip")
    resp = build_response(req, 481, to_tag="other")
    assert resp.to.tag == "1918181833n"


def test_serialise_round_trip_sets_content_length() -> None:
    req = _req("invite_compact.sip")
    again = parse_message(req.to_bytes())
    assert isinstance(again, SipRequest)
    assert again.body == req.body and again.call_id == req.call_id
    assert again.headers.get("Content-Length") == str(len(req.body))
    assert b"\r\nCall-ID: compact-1@example.test\r\n" in req.to_bytes()


def test_stamp_received_fills_rport_and_received() -> None:
    req = _req("invite_sipp_pcmu.sip")
    stamp_received(req, ("127.0.0.1", 40000))
    top = req.top_via
    assert top.param("rport") == "40000" and top.param("received") == "127.0.0.1"
    nat = _req("invite_baresip.sip")
    stamp_received(nat, ("198.51.100.7", 5090))
    assert nat.top_via.param("received") == "198.51.100.7"


def test_stamp_received_without_rport_only_when_host_differs() -> None:
    req = _req("torture_whitespace.sip")  # top Via 192.0.2.2 with rport
    plain = load("message_unknown_method.sip")
    msg = parse_message(plain)
    assert isinstance(msg, SipRequest)
    stamp_received(msg, ("127.0.0.1", 5070))
    assert msg.top_via.param("received") is None
    stamp_received(req, ("192.0.2.99", 1234))
    assert req.top_via.param("received") == "192.0.2.99"


def test_headers_set_replaces_all_and_keeps_position() -> None:
    h = Headers([("Via", "a"), ("X-Foo", "1"), ("v", "b"), ("x", "600")])
    h.set("VIA", "c")
    assert list(h) == [("Via", "c"), ("X-Foo", "1"), ("Session-Expires", "600")]  # x is a compact form
    h.remove("x-foo")
    assert list(h) == [("Via", "c"), ("Session-Expires", "600")]


def test_sip_uri_parse() -> None:
    uri = SipUri.parse("sips:+1555;phone-context=x@[2001:db8::1]:5061;transport=tls;lr?subject=hi")
    assert uri.scheme == "sips" and uri.user == "+1555;phone-context=x"
    assert uri.host == "[2001:db8::1]" and uri.port == 5061
    assert uri.param("lr") == "" and uri.param("transport") == "tls"
    assert uri.address == ("2001:db8::1", 5061)
    assert str(SipUri.parse("sip:alice:pw@host.test")) == "sip:alice:pw@host.test"
    assert SipUri.parse("sip:host.test").address == ("host.test", 5060)
    for bad in ("tel:+1555", "sip:", "sip:@host", "sip:a@host:99999", "sip:a@ho st"):
        with pytest.raises(ProtocolError):
            SipUri.parse(bad)


def test_name_addr_forms() -> None:
    na = parse_name_addr('"Bob \\"B\\" <x>" <sip:bob@h>;tag=1;x')
    assert na.display == 'Bob "B" <x>' and na.uri == "sip:bob@h" and na.tag == "1" and na.param("x") == ""
    spec = parse_name_addr("sip:carol@h;tag=9")  # addr-spec: the params belong to the header
    assert spec.uri == "sip:carol@h" and spec.tag == "9"
    assert str(na.with_param("tag", "2")) == '"Bob \\"B\\" <x>" <sip:bob@h>;x;tag=2'
    assert parse_name_addr(str(na)) == na
    assert parse_name_addr(str(spec)).tag == "9"
    for bad in ("<sip:a@b", "no-scheme", "<sip:a@b> junk"):
        with pytest.raises(ProtocolError):
            parse_name_addr(bad)


def test_via_and_cseq_helpers() -> None:
    via = parse_via("SIP/2.0/udp [::1]:5070;branch=z9hG4bKx;rport;received=1.2.3.4")
    assert via.transport == "UDP" and via.host == "[::1]" and via.port == 5070
    assert via.has_param("rport") and via.param("rport") == ""
    assert (
        str(via.with_param("rport", "9")) == "SIP/2.0/UDP [::1]:5070;branch=z9hG4bKx;rport=9;received=1.2.3.4"
    )
    assert parse_cseq(" 12   bye ") == (12, "BYE")
    for bad in ("SIP/1.0/UDP h", "SIP/2.0/UDP", "junk"):
        with pytest.raises(ProtocolError):
            parse_via(bad)
    with pytest.raises(ProtocolError):
        parse_cseq("x INVITE")
    assert split_list('a, "b,c" <sip:x>, <sip:y,z>') == ["a", '"b,c" <sip:x>', "<sip:y,z>"]
