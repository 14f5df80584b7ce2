"""OPTIONS, re-INVITE (hold/resume), error statuses (405/415/420/481/488/500/501), INFO, REFER/NOTIFY."""

from __future__ import annotations

import pytest

from tests.sip.helpers import BOT_MEDIA, Harness, load, requests, statuses
from voicebot.errors import BadRequest
from voicebot.sip.events import CallHeld, CallResumed, DtmfFromSip, IncomingCall, MediaChanged, TransferUpdate
from voicebot.sip.message import SipResponse, build_response
from voicebot.sip.sdp import parse_sdp
from voicebot.sip.uas import EndpointConfig

CALL = "1-4242@127.0.0.1"


def _one(h: Harness, data: bytes) -> SipResponse:
    (resp,) = h.responses(data)
    return resp


def test_options_out_of_dialog_has_to_tag_allow_accept() -> None:
    """Pitfall 1: an OPTIONS 200 must carry a To tag (§8.2.6.2)."""
    resp = _one(Harness(), load("options_sipsak.sip"))
    assert resp.status == 200 and resp.to.tag
    assert "INVITE" in (resp.headers.get("Allow") or "") and "OPTIONS" in (resp.headers.get("Allow") or "")
    assert resp.headers.get("Accept") == "application/sdp"
    assert resp.top_via.param("received") == "127.0.0.1"


def test_options_in_dialog_uses_the_dialog_tag() -> None:
    h = Harness()
    tag = h.establish()
    raw = h.in_dialog("bye.sip", tag).replace(b"BYE", b"OPTIONS")
    resp = _one(h, raw)
    assert resp.status == 200 and resp.to.tag == tag


def test_unknown_method_is_501_with_allow() -> None:
    resp = _one(Harness(), load("message_unknown_method.sip"))
    assert resp.status == 501 and resp.headers.get("Allow") and resp.to.tag


def test_register_to_a_uas_is_405() -> None:
    raw = load("options_sipsak.sip").replace(b"OPTIONS", b"REGISTER")
    resp = _one(Harness(), raw)
    assert resp.status == 405 and "BYE" in (resp.headers.get("Allow") or "")


def test_require_unknown_extension_is_420_with_unsupported() -> None:
    h = Harness()
    resp = _one(h, load("invite_require_100rel.sip"))
    assert resp.status == 420 and resp.headers.get("Unsupported") == "100rel"
    assert h.ep.active_calls == 0 and h.events() == []


@pytest.mark.parametrize(
    ("name", "status"),
    [("invite_no_common_codec.sip", 488), ("invite_bad_content_type.sip", 415), ("invite_junk_sdp.sip", 400)],
)
def test_bad_offers_are_refused_before_any_call_state(name: str, status: int) -> None:
    h = Harness()
    resp = _one(h, load(name))
    assert resp.status == status and resp.to.tag
    if status == 488:
        assert (resp.headers.get("Warning") or "").startswith("305 ")
    if status == 415:
        assert resp.headers.get("Accept") == "application/sdp"
    assert h.ep.active_calls == 0 and h.events() == []
    assert statuses(h.advance(0.5)) == [status]  # a non-2xx final to INVITE is retransmitted (Timer G)


def test_bye_for_unknown_dialog_is_481() -> None:
    h = Harness()
    resp = _one(h, h.in_dialog("bye.sip", "nosuchtag"))
    assert resp.status == 481 and resp.to.tag == "nosuchtag"


def test_bye_with_wrong_from_tag_is_481() -> None:
    h = Harness()
    tag = h.establish()
    raw = h.in_dialog("bye.sip", tag).replace(b"tag=4242SIPpTag001", b"tag=intruder")
    assert _one(h, raw).status == 481


def test_lower_cseq_in_dialog_is_500() -> None:
    h = Harness()
    tag = h.establish()
    h.cseq = 10
    assert _one(h, h.in_dialog("info_dtmf_relay.sip", tag)).status == 200
    stale = h.in_dialog("info_dtmf_relay.sip", tag, cseq=5, branch="stale")
    assert _one(h, stale).status == 500


def test_retransmitted_bye_gets_the_cached_200() -> None:
    h = Harness()
    tag = h.establish()
    bye = h.in_dialog("bye.sip", tag)
    assert _one(h, bye).status == 200
    assert _one(h, bye).status == 200
    assert h.ep.stats["retransmission"] == 1


def _reinvite(h: Harness, tag: str, name: str) -> SipResponse:
    resp = _one(h, h.in_dialog(name, tag))
    if resp.status == 200:
        h.send(h.in_dialog("ack.sip", tag, cseq=h.cseq))
    return resp


def test_hold_and_resume_invert_direction_and_emit_events() -> None:
    """Pitfall 2: sendonly → recvonly in the answer and an event telling the adapter to stop sending."""
    h = Harness()
    tag = h.establish()
    h.events()
    hold = _reinvite(h, tag, "reinvite_sendonly.sip")
    assert hold.status == 200 and hold.to.tag == tag
    answer = parse_sdp(hold.body)
    assert answer.media[0].direction == "recvonly"
    assert answer.origin.split()[2] == str(BOT_MEDIA.session_version + 1)  # o= version bumped
    (held,) = h.events()
    assert isinstance(held, CallHeld) and not held.media.sending
    resume = _reinvite(h, tag, "reinvite_resume.sip")
    assert parse_sdp(resume.body).media[0].direction == "sendrecv"
    (resumed,) = h.events()
    assert isinstance(resumed, CallResumed) and resumed.media.sending


@pytest.mark.parametrize("name", ["reinvite_inactive.sip", "reinvite_c0_hold.sip"])
def test_other_hold_forms(name: str) -> None:
    h = Harness()
    tag = h.establish()
    h.events()
    resp = _reinvite(h, tag, name)
    assert resp.status == 200
    assert parse_sdp(resp.body).media[0].direction in ("inactive", "recvonly")
    assert [type(e) for e in h.events()] == [CallHeld]


def test_reinvite_with_new_port_is_media_changed() -> None:
    h = Harness()
    tag = h.establish()
    h.events()
    _reinvite(h, tag, "reinvite_new_port.sip")
    (ev,) = h.events()
    assert isinstance(ev, MediaChanged) and ev.media.remote_port == 6002


def test_reinvite_2xx_is_retransmitted_until_ack() -> None:
    h = Harness()
    tag = h.establish()
    assert _one(h, h.in_dialog("reinvite_sendonly.sip", tag)).status == 200
    assert statuses(h.advance(h.now + 0.5)) == [200]
    h.send(h.in_dialog("ack.sip", tag, cseq=h.cseq))
    assert h.advance(h.now + 10) == []


def test_reinvite_while_one_is_pending_is_500_with_retry_after() -> None:
    h = Harness()
    tag = h.establish()
    _one(h, h.in_dialog("reinvite_sendonly.sip", tag))  # not ACKed yet
    resp = _one(h, h.in_dialog("reinvite_resume.sip", tag))
    assert resp.status == 500 and resp.headers.get("Retry-After")


def test_reinvite_without_sdp_offers_and_reads_answer_from_ack() -> None:
    h = Harness()
    tag = h.establish()
    h.events()
    resp = _one(h, h.in_dialog("reinvite_no_sdp.sip", tag))
    assert resp.status == 200 and parse_sdp(resp.body).media[0].formats == ["0", "8", "101"]
    h.send(h.in_dialog("ack_with_answer.sip", tag, cseq=h.cseq))
    (ev,) = h.events()
    assert isinstance(ev, MediaChanged) and ev.media.codec == "PCMA"


def test_reinvite_with_unusable_offer_is_488_and_call_survives() -> None:
    h = Harness()
    tag = h.establish()
    raw = h.in_dialog("reinvite_resume.sip", tag).replace(b"RTP/AVP 0 8 101", b"RTP/AVP 9   101")
    assert _one(h, raw).status == 488
    assert h.ep.call_state(CALL) == "confirmed"


def test_info_dtmf_relay_becomes_an_event() -> None:
    h = Harness()
    tag = h.establish()
    h.events()
    assert _one(h, h.in_dialog("info_dtmf_relay.sip", tag)).status == 200
    assert h.events() == [DtmfFromSip(CALL, "5", 160)]


def test_send_dtmf_and_transfer_build_in_dialog_requests() -> None:
    h = Harness(EndpointConfig(port=5080, transfer_targets=("sip:desk@127.0.0.1:5070",)))
    tag = h.establish()
    h.events()
    assert h.ep.send_dtmf(CALL, "1#", 1.0)
    infos = requests(h.drain())
    assert [r.method for r in infos] == ["INFO", "INFO"] and infos[1].body.startswith(b"Signal=#")
    assert infos[1].cseq[0] == infos[0].cseq[0] + 1
    with pytest.raises(BadRequest):
        h.ep.transfer(CALL, "sip:+19005550100@premium.example", 1.0)
    with pytest.raises(BadRequest):
        h.ep.send_dtmf(CALL, "x", 1.0)
    assert h.ep.transfer(CALL, "sip:desk@127.0.0.1:5070", 1.0)
    (refer,) = requests(h.drain())
    assert refer.method == "REFER" and refer.headers.get("Refer-To") == "<sip:desk@127.0.0.1:5070>"
    assert refer.from_.tag == tag
    h.send(build_response(refer, 202, to_tag="4242SIPpTag001").to_bytes())
    assert h.events() == [TransferUpdate(CALL, 202, False, "Accepted")]
    assert _one(h, h.in_dialog("notify_refer_200.sip", tag)).status == 200
    assert h.events() == [TransferUpdate(CALL, 200, True, "OK")]


def test_refer_timeout_is_reported() -> None:
    h = Harness(EndpointConfig(port=5080, transfer_targets=("sip:desk@127.0.0.1",)))
    h.establish()
    h.events()
    h.ep.transfer(CALL, "sip:desk@127.0.0.1", h.now)
    h.advance(h.now + 40)
    assert TransferUpdate(CALL, 408, True, "REFER timed out") in h.events()


def test_notify_outside_a_dialog_is_481() -> None:
    h = Harness()
    assert _one(h, h.in_dialog("notify_refer_200.sip", "nope")).status == 481


def test_commands_on_unknown_calls_return_false() -> None:
    ep = Harness().ep
    assert not ep.answer("nope", BOT_MEDIA, 0.0)
    assert not ep.ring("nope", 0.0)
    assert not ep.reject("nope", 0.0)
    assert not ep.hangup("nope", 0.0)
    assert not ep.send_dtmf("nope", "1", 0.0)


def test_incoming_call_event_carries_user_agent() -> None:
    h = Harness()
    h.send(load("invite_baresip.sip"), ("127.0.0.1", 5090))
    (ev,) = h.events()
    assert isinstance(ev, IncomingCall) and ev.user_agent.startswith("baresip")
