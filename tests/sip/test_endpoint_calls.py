"""UAS call flows through the pure endpoint (reference §3 checklist), with captured sipp/baresip messages."""

from __future__ import annotations

from tests.sip.helpers import BOT_MEDIA, SIPP, Harness, load, requests, statuses
from voicebot.sip.events import CallEnded, CallEstablished, IncomingCall
from voicebot.sip.message import SipRequest, SipResponse
from voicebot.sip.sdp import parse_sdp
from voicebot.sip.uas import CallState

CALL = "1-4242@127.0.0.1"


def test_invite_100_180_200_ack_bye() -> None:
    h = Harness()
    out = h.send(load("invite_sipp_pcmu.sip"))
    assert statuses(out) == [100]
    trying = out[0][0]
    assert isinstance(trying, SipResponse) and trying.to.tag is None and out[0][1] == SIPP
    assert trying.top_via.param("rport") == "5070" and trying.top_via.param("received") == "127.0.0.1"
    (event,) = h.events()
    assert isinstance(event, IncomingCall)
    assert (event.call_id, event.caller, event.caller_name, event.source) == (
        CALL,
        "sip:sipp@127.0.0.1:5070",
        "sipp",
        SIPP,
    )
    assert event.offer is not None and event.offer.media[0].port == 6000
    assert h.ep.ring(CALL, 0.1)
    ringing = h.drain()[0][0]
    assert isinstance(ringing, SipResponse) and ringing.status == 180 and ringing.to.tag
    assert h.ep.answer(CALL, BOT_MEDIA, 0.2)
    ok = h.drain()[0][0]
    assert isinstance(ok, SipResponse) and ok.status == 200
    assert ok.to.tag == ringing.to.tag
    assert ok.headers.get("Contact") == "<sip:voicebot@127.0.0.1:5080>"
    assert ok.content_type == "application/sdp"
    answer = parse_sdp(ok.body)
    assert answer.media[0].formats == ["0", "101"] and answer.media[0].port == 20000
    assert h.ep.call_state(CALL) is CallState.ANSWERED
    media = h.ep.call_media(CALL)
    assert media is not None and (media.remote_address, media.remote_port) == ("127.0.0.1", 6000)
    h.send(h.in_dialog("ack.sip", ok.to.tag or "", cseq=1))
    (est,) = h.events()
    assert isinstance(est, CallEstablished) and est.media.codec == "PCMU" and est.media.sending
    out = h.send(h.in_dialog("bye.sip", ok.to.tag or ""))
    assert statuses(out) == [200]
    bye_ok = out[0][0]
    assert isinstance(bye_ok, SipResponse) and bye_ok.to.tag == ok.to.tag
    assert h.events() == [CallEnded(CALL, "remote_bye")]
    assert h.ep.active_calls == 0 and h.ep.stats["internal_error"] == 0


def test_retransmitted_invite_gets_last_response_and_no_second_call() -> None:
    h = Harness()
    h.send(load("invite_sipp_pcmu.sip"))
    h.ep.ring(CALL, 0.0)
    h.drain()
    out = h.send(load("invite_sipp_pcmu.sip"))
    assert statuses(out) == [180]
    assert len([e for e in h.events() if isinstance(e, IncomingCall)]) == 1
    assert h.ep.stats["retransmission"] == 1


def test_2xx_retransmitted_until_ack_then_bye_after_64_t1() -> None:
    """§13.3.1.4: T1, 2·T1, ... capped at T2; no ACK in 32 s → BYE."""
    h = Harness()
    h.send(load("invite_sipp_pcmu.sip"))
    h.ep.answer(CALL, BOT_MEDIA, 0.0)
    h.drain()
    times: list[float] = []
    for t in (0.5, 1.5, 3.5, 7.5, 11.5, 15.5):
        out = h.advance(t)
        assert statuses(out) == [200], t
        times.append(h.now)
    out = h.advance(40.0)
    assert statuses(out).count(200) == 4  # 19.5, 23.5, 27.5, 31.5
    byes = [r for r in requests(out) if r.method == "BYE"]
    assert len(byes) >= 1
    ended = [e for e in h.events() if isinstance(e, CallEnded)]
    assert ended == [CallEnded(CALL, "no_ack")]


def test_ack_stops_2xx_retransmission() -> None:
    h = Harness()
    tag = h.establish()
    assert h.advance(10.0) == []
    assert h.ep.call_state(CALL) is CallState.CONFIRMED
    assert tag


def test_retransmitted_ack_and_200_for_unknown_are_harmless() -> None:
    h = Harness()
    tag = h.establish()
    assert h.send(h.in_dialog("ack.sip", tag, cseq=1)) == []
    assert h.ep.stats["stray_ack"] == 1


def test_local_hangup_sends_bye_to_remote_target() -> None:
    h = Harness()
    tag = h.establish()
    h.events()
    assert h.ep.hangup(CALL, 1.0)
    (bye,) = requests(h.drain())
    assert bye.method == "BYE" and bye.uri == "sip:sipp@127.0.0.1:5070"
    assert bye.from_.tag == tag and bye.to.tag == "4242SIPpTag001"
    assert bye.cseq[1] == "BYE" and bye.top_via.branch and bye.top_via.branch.startswith("z9hG4bK")
    assert h.events() == [CallEnded(CALL, "local_bye")]
    retrans = h.advance(1.6)
    assert [r.method for r in requests(retrans)] == ["BYE"]  # Timer E
    from voicebot.sip.message import build_response

    h.send(build_response(bye, 200, to_tag="4242SIPpTag001").to_bytes())
    assert requests(h.advance(40.0)) == []


def test_hangup_before_ack_waits_for_the_ack() -> None:
    """§15.1.1: the callee may not send BYE until the ACK arrives."""
    h = Harness()
    h.send(load("invite_sipp_pcmu.sip"))
    h.ep.answer(CALL, BOT_MEDIA, 0.0)
    ok = h.drain()[0][0]
    assert isinstance(ok, SipResponse)
    assert h.ep.hangup(CALL, 0.1)
    assert requests(h.drain()) == []
    out = h.send(h.in_dialog("ack.sip", ok.to.tag or "", cseq=1))
    assert [r.method for r in requests(out)] == ["BYE"]
    evs = h.events()
    assert isinstance(evs[-1], CallEnded) and evs[-1].reason == "local_bye"


def test_hangup_before_answer_is_480() -> None:
    h = Harness()
    h.send(load("invite_sipp_pcmu.sip"))
    assert h.ep.hangup(CALL, 0.0)
    assert statuses(h.drain()) == [480]


def test_cancel_while_ringing_gives_200_and_487() -> None:
    h = Harness()
    h.send(load("invite_sipp_pcmu.sip"))
    h.ep.ring(CALL, 0.0)
    ringing = h.drain()[0][0]
    assert isinstance(ringing, SipResponse)
    out = h.send(load("cancel.sip"))
    assert statuses(out) == [200, 487]
    cancel_ok, terminated = out[0][0], out[1][0]
    assert isinstance(cancel_ok, SipResponse) and cancel_ok.cseq == (1, "CANCEL")
    assert isinstance(terminated, SipResponse) and terminated.cseq == (1, "INVITE")
    assert cancel_ok.to.tag == terminated.to.tag == ringing.to.tag
    assert [e for e in h.events() if isinstance(e, CallEnded)] == [CallEnded(CALL, "cancelled", 487)]
    assert statuses(h.advance(0.5)) == [487]  # Timer G until the ACK
    ack = load("ack.sip", to_tag=terminated.to.tag, call_id=CALL, cseq=1, branch="4242-1-0")  # same branch
    assert h.send(ack) == []
    assert h.advance(40.0) == []
    assert not h.ep.answer(CALL, BOT_MEDIA, 41.0)


def test_cancel_after_200_has_no_effect() -> None:
    h = Harness()
    h.send(load("invite_sipp_pcmu.sip"))
    h.ep.answer(CALL, BOT_MEDIA, 0.0)
    h.drain()
    assert statuses(h.send(load("cancel.sip"))) == [200]
    assert h.ep.call_state(CALL) is CallState.ANSWERED


def test_cancel_for_unknown_invite_is_481() -> None:
    assert statuses(Harness().send(load("cancel.sip"))) == [481]


def test_delayed_offer_offer_in_200_answer_in_ack() -> None:
    h = Harness()
    h.send(load("invite_delayed_offer.sip"))
    (ev,) = h.events()
    assert isinstance(ev, IncomingCall) and ev.offer is None
    h.ep.answer(ev.call_id, BOT_MEDIA, 0.0)
    ok = h.drain()[0][0]
    assert isinstance(ok, SipResponse)
    offer = parse_sdp(ok.body)
    assert offer.media[0].formats == ["0", "8", "101"]
    ack = h.in_dialog("ack_with_answer.sip", ok.to.tag or "", ev.call_id, cseq=1)
    h.send(ack)
    (est,) = h.events()
    assert isinstance(est, CallEstablished) and est.media.codec == "PCMA" and est.media.remote_port == 6000


def test_delayed_offer_with_ack_lacking_answer_ends_with_bye() -> None:
    h = Harness()
    h.send(load("invite_delayed_offer.sip"))
    (ev,) = h.events()
    h.ep.answer(ev.call_id, BOT_MEDIA, 0.0)
    ok = h.drain()[0][0]
    assert isinstance(ok, SipResponse)
    out = h.send(h.in_dialog("ack.sip", ok.to.tag or "", ev.call_id, cseq=1))
    assert [r.method for r in requests(out)] == ["BYE"]
    assert h.events() == [CallEnded(ev.call_id, "bad_ack")]


def test_baresip_invite_responses_go_to_the_source_not_the_via() -> None:
    h = Harness()
    out = h.send(load("invite_baresip.sip"), ("127.0.0.1", 5090))
    assert out[0][1] == ("127.0.0.1", 5090)
    resp = out[0][0]
    assert isinstance(resp, SipResponse) and resp.top_via.param("received") == "127.0.0.1"


def test_torture_invite_is_understood() -> None:
    """It carries a To tag, so it is an in-dialog request for a dialog we do not have: 481. Without the
    tag it becomes a call, with a pre-RFC 3261 branch matched the §17.2.3 fallback way."""
    h = Harness()
    out = h.send(load("torture_whitespace.sip"), ("192.0.2.2", 5060))
    assert statuses(out) == [481]
    untagged = load("torture_whitespace.sip").replace(b";   tag    = 1918181833n", b"")
    assert statuses(h.send(untagged, ("192.0.2.2", 5060))) == [100]
    assert statuses(h.send(untagged, ("192.0.2.2", 5060))) == [100]  # retransmission
    (ev,) = h.events()
    assert isinstance(ev, IncomingCall) and ev.caller_name == 'J Rosenberg \\"'


def test_reject_busy_and_full_cap() -> None:
    from voicebot.sip.uas import EndpointConfig

    h = Harness(EndpointConfig(port=5080, max_calls=1, retry_after_s=7))
    h.send(load("invite_sipp_pcmu.sip"))
    out = h.send(load("invite_pcma_first.sip"))
    assert statuses(out) == [503]
    full = out[0][0]
    assert isinstance(full, SipResponse) and full.headers.get("Retry-After") == "7" and full.to.tag
    assert h.ep.reject(CALL, 0.0, 486)
    assert statuses(h.drain()) == [486]


def test_max_call_duration_sends_bye() -> None:
    from voicebot.sip.uas import EndpointConfig

    h = Harness(EndpointConfig(port=5080, max_call_duration_s=60.0))
    h.establish()
    h.events()
    out = h.advance(61.0)
    assert [r.method for r in requests(out)][:1] == ["BYE"]
    assert h.events() == [CallEnded(CALL, "max_duration")]


def test_unanswered_call_times_out_with_480() -> None:
    from voicebot.sip.uas import EndpointConfig

    h = Harness(EndpointConfig(port=5080, max_ring_s=10.0))
    h.send(load("invite_sipp_pcmu.sip"))
    h.events()
    assert statuses(h.advance(10.0)) == [480]
    assert h.events() == [CallEnded(CALL, "no_answer", 480)]


def test_merged_invite_with_same_call_id_is_482() -> None:
    h = Harness()
    h.send(load("invite_sipp_pcmu.sip"))
    other_branch = load("invite_sipp_pcmu.sip").replace(b"z9hG4bK-4242-1-0", b"z9hG4bK-other")
    assert statuses(h.send(other_branch)) == [482]
    assert isinstance(h.send(other_branch)[0][0], SipResponse)  # the 482 is retransmitted, not recomputed


def test_request_methods_are_sip_requests() -> None:
    assert all(isinstance(r, SipRequest) for r in requests([]))
