"""Transaction timers (RFC 3261 §17, RFC 6026) with a fake clock: no sockets, exact instants."""

from __future__ import annotations

from tests.sip.helpers import load
from voicebot.sip.message import SipRequest, build_response, parse_message
from voicebot.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    server_key,
)

ADDR = ("127.0.0.1", 5070)


def _invite() -> SipRequest:
    msg = parse_message(load("invite_sipp_pcmu.sip"))
    assert isinstance(msg, SipRequest)
    return msg


def _options() -> SipRequest:
    msg = parse_message(load("options_sipsak.sip"))
    assert isinstance(msg, SipRequest)
    return msg


def _run(
    tx: ServerInviteTransaction | ClientNonInviteTransaction | ClientInviteTransaction, until: float
) -> list[float]:
    """Fire the transaction's timers up to ``until``; returns the instants at which it sent something."""
    sent: list[float] = []
    for _ in range(1000):
        due = tx.get_timer()
        if due is None or due > until:
            break
        if tx.handle_timer(due):
            sent.append(due)
    return sent


def test_non_2xx_final_retransmits_with_timer_g_until_timer_h() -> None:
    tx = ServerInviteTransaction(_invite(), ADDR, 0.0)
    tx.send_response(build_response(tx.request, 486, to_tag="t"), 0.0)
    sent = _run(tx, 40.0)
    assert sent[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]  # T1, doubling, capped at T2 = 4 s
    assert all(t < 32.0 for t in sent)
    assert tx.terminated and tx.timed_out  # Timer H = 64·T1 without an ACK


def test_ack_stops_timer_g_and_timer_i_absorbs() -> None:
    tx = ServerInviteTransaction(_invite(), ADDR, 0.0)
    tx.send_response(build_response(tx.request, 486, to_tag="t"), 0.0)
    assert _run(tx, 1.0) == [0.5]
    ack = parse_message(load("ack.sip", to_tag="t", call_id="1-4242@127.0.0.1", cseq=1, branch="4242-1-0"))
    assert isinstance(ack, SipRequest)
    assert tx.receive_request(ack, 1.2) == []
    assert tx.state == "confirmed" and tx.get_timer() == 1.2 + 5.0
    assert _run(tx, 10.0) == []
    assert tx.terminated and not tx.timed_out


def test_retransmitted_invite_gets_the_last_response_again() -> None:
    tx = ServerInviteTransaction(_invite(), ADDR, 0.0)
    trying = tx.send_response(build_response(tx.request, 100), 0.0)
    assert tx.receive_request(tx.request, 0.3) == trying
    ringing = tx.send_response(build_response(tx.request, 180, to_tag="t"), 0.4)
    assert tx.receive_request(tx.request, 0.5) == ringing


def test_2xx_moves_to_accepted_and_absorbs_retransmissions() -> None:
    tx = ServerInviteTransaction(_invite(), ADDR, 0.0)
    tx.send_response(build_response(tx.request, 200, to_tag="t"), 0.0)
    assert tx.state == "accepted"
    assert tx.receive_request(tx.request, 0.6) == []  # the UAS core retransmits 2xx, not the transaction
    assert _run(tx, 31.9) == []
    assert not tx.terminated
    _run(tx, 32.0)
    assert tx.terminated and not tx.timed_out  # Timer L


def test_non_invite_server_caches_final_until_timer_j() -> None:
    tx = ServerNonInviteTransaction(_options(), ADDR, 0.0)
    assert tx.receive_request(tx.request, 0.0) == []  # trying: absorbed
    final = tx.send_response(build_response(tx.request, 200, to_tag="t"), 0.1)
    assert tx.receive_request(tx.request, 5.0) == final
    assert tx.send_response(build_response(tx.request, 500, to_tag="t"), 5.0) == []
    assert tx.get_timer() == 0.1 + 32.0
    tx.handle_timer(32.1)
    assert tx.terminated


def test_client_non_invite_timer_e_doubles_to_t2_and_f_gives_up() -> None:
    tx = ClientNonInviteTransaction(_options(), ADDR, 0.0)
    assert tx.start()[0][1] == ADDR
    sent = _run(tx, 40.0)
    assert sent[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]
    assert tx.terminated and tx.timed_out
    assert max(sent) < 32.0


def test_client_non_invite_provisional_switches_to_t2_and_final_completes() -> None:
    tx = ClientNonInviteTransaction(_options(), ADDR, 0.0)
    trying = build_response(tx.request, 100)
    assert tx.matches(trying)
    assert tx.receive_response(trying, 0.2) is trying
    assert _run(tx, 5.0) == [0.5, 4.5]  # E fires once at T1, then every T2 in Proceeding
    ok = build_response(tx.request, 200, to_tag="x")
    assert tx.receive_response(ok, 5.0) is ok
    assert tx.receive_response(ok, 5.1) is None  # retransmitted final absorbed (Timer K)
    _run(tx, 10.1)
    assert tx.terminated and not tx.timed_out


def test_client_transaction_ignores_other_branches() -> None:
    tx = ClientNonInviteTransaction(_options(), ADDR, 0.0)
    other = build_response(_invite(), 200, to_tag="x")
    assert not tx.matches(other)


def test_client_invite_timer_a_b_and_ack_for_non_2xx() -> None:
    tx = ClientInviteTransaction(_invite(), ADDR, 0.0)
    assert _run(tx, 4.0) == [0.5, 1.5, 3.5]  # Timer A doubles without a cap
    busy = build_response(tx.request, 486, to_tag="callee")
    resp, acks = tx.receive_response(busy, 4.0)
    assert resp is busy and len(acks) == 1
    ack = parse_message(acks[0][0])
    assert isinstance(ack, SipRequest) and ack.method == "ACK"
    assert ack.top_via.branch == tx.branch  # pitfall 5: the ACK for a non-2xx reuses the INVITE branch
    assert ack.cseq == (1, "ACK") and ack.to.tag == "callee"
    again, acks2 = tx.receive_response(busy, 4.5)
    assert again is None and acks2 == acks
    _run(tx, 40.0)
    assert tx.terminated and not tx.timed_out


def test_client_invite_timeout_after_64_t1() -> None:
    tx = ClientInviteTransaction(_invite(), ADDR, 0.0)
    _run(tx, 40.0)
    assert tx.terminated and tx.timed_out


def test_server_key_matches_ack_and_separates_cancel() -> None:
    invite = _invite()
    cancel = parse_message(load("cancel.sip"))
    assert isinstance(cancel, SipRequest)
    assert server_key(cancel) != server_key(invite)
    assert server_key(cancel, "INVITE") == server_key(invite)
    legacy = parse_message(load("torture_whitespace.sip"))
    assert isinstance(legacy, SipRequest)
    assert server_key(legacy)[0] == "2543"
