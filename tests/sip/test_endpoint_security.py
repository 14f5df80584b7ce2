"""Security and robustness of the endpoint: allow-list, scanners, rate limits, malformed input (§7)."""

from __future__ import annotations

from tests.sip.helpers import SIPP, Harness, load, statuses
from voicebot.sip.message import SipResponse
from voicebot.sip.security import SecurityConfig, SecurityPolicy
from voicebot.sip.uas import EndpointConfig


def test_scanner_user_agent_is_dropped_silently() -> None:
    h = Harness()
    assert h.send(load("options_friendly_scanner.sip")) == []
    assert h.ep.stats["drop_scanner"] == 1
    assert statuses(h.send(load("options_sipsak.sip"))) == [200]


def test_non_allow_listed_source_gets_nothing() -> None:
    h = Harness(EndpointConfig(port=5080, security=SecurityConfig(allowed_sources=("127.0.0.0/8", "::1"))))
    assert h.send(load("invite_sipp_pcmu.sip"), ("203.0.113.9", 5060)) == []
    assert h.ep.stats["drop_source"] == 1 and h.ep.active_calls == 0 and h.events() == []
    assert statuses(h.send(load("invite_sipp_pcmu.sip"), SIPP)) == [100]


def test_per_source_invite_rate_limit() -> None:
    cfg = EndpointConfig(port=5080, max_calls=100, security=SecurityConfig(invites_per_s=5, invite_burst=3))
    h = Harness(cfg)
    answered = 0
    for i in range(10):
        raw = load("invite_sipp_pcmu.sip").replace(b"1-4242@", f"r{i}-4242@".encode())
        raw = raw.replace(b"z9hG4bK-4242-1-0", f"z9hG4bK-r{i}".encode())
        answered += len(h.send(raw))
    assert answered == 3 and h.ep.stats["drop_rate"] == 7
    h.now = 1.0  # five more tokens a second later
    raw = load("invite_sipp_pcmu.sip").replace(b"z9hG4bK-4242-1-0", b"z9hG4bK-later")
    assert statuses(h.send(raw)) == [100]
    assert statuses(h.send(load("options_sipsak.sip"), ("127.0.0.2", 5070))) == [200]  # other source


def test_token_bucket_memory_is_bounded() -> None:
    policy = SecurityPolicy(SecurityConfig(max_tracked_sources=10))
    for i in range(1000):
        assert policy.rate_ok(f"10.0.{i // 250}.{i % 250}", "OPTIONS", 0.0)
    assert len(policy._buckets) <= 10


def test_malformed_but_answerable_gets_400_with_to_tag_at_source() -> None:
    h = Harness()
    out = h.send(load("invite_cseq_mismatch.sip"), ("127.0.0.1", 5999))
    (resp, addr) = out[0]
    assert (
        isinstance(resp, SipResponse) and resp.status == 400 and resp.to.tag and addr == ("127.0.0.1", 5999)
    )
    assert (resp.headers.get("Warning") or "").startswith("399 ")
    assert h.ep.active_calls == 0


def test_version_and_size_errors_are_answered() -> None:
    h = Harness(EndpointConfig(port=5080))
    assert statuses(h.send(load("invite_sip3.sip"))) == [505]
    assert statuses(h.send(load("invite_content_length_too_big.sip"))) == [400]


def test_unanswerable_junk_is_dropped_and_counted() -> None:
    h = Harness()
    for raw in (b"\x16\x03\x01\x02\x00", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", load("invite_no_call_id.sip")):
        assert h.send(raw) == []
    assert h.ep.stats["malformed"] == 3 and h.ep.stats["drop_malformed"] == 3
    assert h.ep.stats["internal_error"] == 0


def test_crlf_keepalive_is_a_no_op() -> None:
    h = Harness()
    assert h.send(b"\r\n\r\n") == [] and h.send(b"\r\n") == []
    assert h.ep.stats["keepalive"] == 2


def test_stray_responses_are_ignored() -> None:
    h = Harness()
    resp = load("register_401_sipp.sip", branch="z9hG4bKnotours", from_tag="x", call_id="y", cseq=1)
    assert h.send(resp) == []
    assert h.ep.stats["stray_response"] == 1


def test_transaction_table_is_bounded() -> None:
    h = Harness(EndpointConfig(port=5080, max_transactions=5, security=SecurityConfig(request_burst=1000)))
    for i in range(20):
        h.send(load("options_sipsak.sip").replace(b"z9hG4bK.5a2e6f1d", f"z9hG4bKo{i}".encode()))
    assert h.ep.stats["drop_overload"] == 15
    h.advance(40.0)  # Timer J frees them
    assert statuses(h.send(load("options_sipsak.sip").replace(b"z9hG4bK.5a2e6f1d", b"z9hG4bKnew"))) == [200]
