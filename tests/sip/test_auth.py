"""Digest auth against RFC 2617/7616 vectors and an independent hashlib check; the REGISTER client."""

from __future__ import annotations

import hashlib
import random

import pytest

from tests.sip.helpers import load
from voicebot.errors import ProtocolError
from voicebot.sip.auth import (
    Challenge,
    RegisterClient,
    Registered,
    RegistrationConfig,
    RegistrationEvent,
    RegistrationFailed,
    Unregistered,
    authorization,
    digest_response,
    parse_challenge,
    pick_challenge,
)
from voicebot.sip.message import SipRequest, SipResponse, build_response, parse_message

RFC7616 = {
    "realm": "http-auth@example.org",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
}


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_example(algorithm: str, expected: str) -> None:
    ch = Challenge(RFC7616["realm"], RFC7616["nonce"], algorithm, ("auth",))
    got = digest_response(
        ch, username="Mufasa", password="Circle of Life", method="GET", uri="/dir/index.html",
        cnonce=RFC7616["cnonce"], nc=1, qop="auth",
    )  # fmt: skip
    assert got == expected


def test_rfc2617_example() -> None:
    ch = Challenge("testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "MD5", ("auth", "auth-int"))
    _, header = authorization(
        ch,
        username="Mufasa",
        password="Circle Of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce="0a4f113b",
    )
    assert 'response="6629fae49393a05397450978507c4ef1"' in header
    assert "qop=auth," in header and "nc=00000001" in header


def _independent(p: dict[str, str], password: str, method: str, hash_name: str) -> str:
    def h(s: str) -> str:
        return hashlib.new(hash_name, s.encode()).hexdigest()

    ha1 = h(f"{p['username']}:{p['realm']}:{password}")
    ha2 = h(f"{method}:{p['uri']}")
    if "qop" not in p:
        return h(f"{ha1}:{p['nonce']}:{ha2}")
    return h(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{p['qop']}:{ha2}")


def _params(header: str) -> dict[str, str]:
    out = {}
    for part in header.removeprefix("Digest ").split(", "):
        k, _, v = part.partition("=")
        out[k] = v.strip('"')
    return out


@pytest.mark.parametrize(("algorithm", "hash_name"), [("MD5", "md5"), ("SHA-256", "sha256")])
def test_authorization_matches_an_independent_computation(algorithm: str, hash_name: str) -> None:
    ch = parse_challenge(
        f'Digest realm="trunk.test", nonce="n0nce", qop="auth", algorithm={algorithm}, opaque="op"'
    )
    name, header = authorization(
        ch, username="bot", password="s3cret", method="REGISTER", uri="sip:trunk.test", cnonce="c1", nc=3
    )
    p = _params(header)
    assert name == "Authorization" and p["nc"] == "00000003" and p["opaque"] == "op"
    assert p["response"] == _independent(p, "s3cret", "REGISTER", hash_name)


def test_no_qop_and_sess_variants() -> None:
    ch = parse_challenge('Digest realm="r", nonce="n"')
    _, header = authorization(ch, username="u", password="p", method="BYE", uri="sip:x", cnonce="c")
    p = _params(header)
    assert "qop" not in p and p["response"] == _independent(p, "p", "BYE", "md5")
    sess = Challenge("r", "n", "MD5-sess", ("auth",))
    ha1 = hashlib.md5(f"{hashlib.md5(b'u:r:p').hexdigest()}:n:c".encode()).hexdigest()
    ha2 = hashlib.md5(b"BYE:sip:x").hexdigest()
    expected = hashlib.md5(f"{ha1}:n:00000001:c:auth:{ha2}".encode()).hexdigest()
    assert (
        digest_response(
            sess, username="u", password="p", method="BYE", uri="sip:x", cnonce="c", nc=1, qop="auth"
        )
        == expected
    )


def test_challenge_parsing_and_preference() -> None:
    ch = parse_challenge('Digest realm="a, b", nonce="x", stale=TRUE, qop="auth,auth-int"', proxy=True)
    assert ch.realm == "a, b" and ch.stale and ch.qop == ("auth", "auth-int") and ch.proxy
    for bad in ("Basic realm=x", 'Digest realm="r"', "Digest junk"):
        with pytest.raises(ProtocolError):
            parse_challenge(bad)
    resp = parse_message(load("register_401_sipp.sip", branch="z9hG4bKa", from_tag="f", call_id="c", cseq=1))
    assert isinstance(resp, SipResponse)
    resp.headers.add(
        "WWW-Authenticate", 'Digest realm="trunk.test", nonce="s", qop="auth", algorithm=SHA-256'
    )
    resp.headers.add("WWW-Authenticate", 'Digest realm="trunk.test", nonce="z", algorithm=UNKNOWN')
    picked = pick_challenge(resp)
    assert picked is not None and picked.algorithm == "SHA-256"  # RFC 8760: the stronger one


# -- REGISTER client against a small registrar written here -------------------------------------

CFG = RegistrationConfig(
    registrar=("127.0.0.1", 5062), registrar_uri="sip:trunk.test", aor="sip:bot@trunk.test",
    contact="sip:bot@127.0.0.1:5060", sent_by="127.0.0.1:5060", username="bot", password="s3cret",
    expires=120, retry_s=30.0,
)  # fmt: skip


class Registrar:
    """Challenges with qop=auth and checks the answer with hashlib, like sipp's verifyauth."""

    def __init__(self, password: str = "s3cret", algorithm: str = "MD5") -> None:
        self.password = password
        self.algorithm = algorithm
        self.nonce = "n1"
        self.stale_next = False

    def handle(self, data: bytes) -> SipResponse:
        req = parse_message(data)
        assert isinstance(req, SipRequest) and req.method == "REGISTER"
        header = req.headers.get("Authorization")
        if header is None or self.stale_next:
            stale = ", stale=true" if self.stale_next else ""
            self.stale_next = False
            challenge = f'Digest realm="trunk.test", nonce="{self.nonce}", qop="auth"'
            challenge += f", algorithm={self.algorithm}{stale}"
            return build_response(req, 401, to_tag="r", headers=[("WWW-Authenticate", challenge)])
        p = _params(header)
        hash_name = "md5" if self.algorithm == "MD5" else "sha256"
        if p["nonce"] != self.nonce or p["response"] != _independent(p, self.password, "REGISTER", hash_name):
            return build_response(req, 403, to_tag="r")
        expires = req.headers.get("Expires") or "0"
        return build_response(
            req, 200, to_tag="r", headers=[("Contact", f"<{CFG.contact}>;expires={expires}")]
        )


def _exchange(client: RegisterClient, registrar: Registrar, now: float, rounds: int = 4) -> None:
    for _ in range(rounds):
        out = client.datagrams_to_send()
        if not out:
            return
        for data, addr in out:
            assert addr == CFG.registrar
            client.receive_datagram(registrar.handle(data).to_bytes(), addr, now)


def _events(client: RegisterClient) -> list[RegistrationEvent]:
    out: list[RegistrationEvent] = []
    while (ev := client.next_event()) is not None:
        out.append(ev)
    return out


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_register_401_then_200_and_refresh_before_expiry(algorithm: str) -> None:
    client, registrar = RegisterClient(CFG, rng=random.Random(1)), Registrar(algorithm=algorithm)
    client.start(0.0)
    _exchange(client, registrar, 0.0)
    assert _events(client) == [Registered(120)] and client.state == "registered"
    assert client.get_timer() == 60.0  # expires − min(expires/2, 60)
    client.handle_timer(60.0)
    ((data, _),) = client.datagrams_to_send()
    assert b"Authorization: Digest" in data and b"nc=00000002" in data  # preemptive, same nonce
    client.receive_datagram(registrar.handle(data).to_bytes(), CFG.registrar, 60.0)
    assert _events(client) == [Registered(120)]


def test_wrong_password_fails_once_then_retries_later() -> None:
    client, registrar = RegisterClient(CFG, rng=random.Random(2)), Registrar(password="other")
    client.start(0.0)
    _exchange(client, registrar, 0.0)
    (failed,) = _events(client)
    assert isinstance(failed, RegistrationFailed) and failed.status == 403 and client.state == "failed"
    assert client.get_timer() == 30.0


def test_repeated_401_is_not_answered_forever() -> None:
    client = RegisterClient(CFG, rng=random.Random(3))
    client.start(0.0)
    for _ in range(3):
        for data, _ in client.datagrams_to_send():
            req = parse_message(data)
            assert isinstance(req, SipRequest)
            ch = 'Digest realm="trunk.test", nonce="fresh", qop="auth"'
            client.receive_response(
                build_response(req, 401, to_tag="r", headers=[("WWW-Authenticate", ch)]), 0.0
            )
    (failed,) = _events(client)
    assert isinstance(failed, RegistrationFailed) and failed.reason == "credentials rejected"


def test_stale_nonce_is_answered_again() -> None:
    client, registrar = RegisterClient(CFG, rng=random.Random(4)), Registrar()
    client.start(0.0)
    _exchange(client, registrar, 0.0)
    _events(client)
    registrar.nonce, registrar.stale_next = "n2", True
    client.handle_timer(60.0)
    _exchange(client, registrar, 60.0)
    assert _events(client) == [Registered(120)]


def test_timeout_and_unregister() -> None:
    client = RegisterClient(CFG, rng=random.Random(5))
    client.start(0.0)
    sends = 0
    for _ in range(100):
        due = client.get_timer()
        if due is None or due > 40:
            break
        client.handle_timer(due)
        sends += len(client.datagrams_to_send())
    assert sends >= 1 + 5
    (failed,) = _events(client)
    assert isinstance(failed, RegistrationFailed) and failed.status == 408
    ok_client, registrar = RegisterClient(CFG, rng=random.Random(6)), Registrar()
    ok_client.start(0.0)
    _exchange(ok_client, registrar, 0.0)
    ok_client.stop(1.0)
    ((data, _),) = ok_client.datagrams_to_send()
    assert b"Expires: 0" in data
    ok_client.receive_datagram(registrar.handle(data).to_bytes(), CFG.registrar, 1.0)
    assert _events(ok_client)[-1] == Unregistered()


def test_interval_too_brief_uses_min_expires() -> None:
    client = RegisterClient(CFG, rng=random.Random(7))
    client.start(0.0)
    ((data, _),) = client.datagrams_to_send()
    req = parse_message(data)
    assert isinstance(req, SipRequest)
    client.receive_response(build_response(req, 423, to_tag="r", headers=[("Min-Expires", "600")]), 0.0)
    ((again, _),) = client.datagrams_to_send()
    assert b"Expires: 600" in again


def test_password_never_appears_on_the_wire() -> None:
    client, registrar = RegisterClient(CFG, rng=random.Random(8)), Registrar()
    client.start(0.0)
    first = client.datagrams_to_send()
    client.receive_datagram(registrar.handle(first[0][0]).to_bytes(), CFG.registrar, 0.0)
    ((second, _),) = client.datagrams_to_send()
    assert b"s3cret" not in first[0][0] and b"s3cret" not in second
