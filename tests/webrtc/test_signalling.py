"""POST /api/calls, DELETE /api/calls/{id}, GET /api/config: answers, errors, and the call cap."""

from __future__ import annotations

import gc

import pytest
from aiortc import RTCPeerConnection

from tests.webrtc.conftest import Broker
from tests.webrtc.netns import interfaces
from tests.webrtc.peers import Caller
from voicebot.config import IceServer, Settings

JUNK = [
    ("not sdp at all", "must start with 'v=0'"),
    ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nthis is not a line\r\n", "malformed line"),
]

NO_AUDIO = (
    "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef0123456789\r\n"
    "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n"
    "a=setup:actpass\r\na=sctp-port:5000\r\n"
)


def live_peer_connections() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection))


async def test_runs_in_a_private_loopback_only_namespace(broker: Broker) -> None:
    assert interfaces() == ["lo"]


@pytest.mark.parametrize(("sdp", "reason"), JUNK)
async def test_junk_sdp_is_400_and_allocates_nothing(broker: Broker, sdp: str, reason: str) -> None:
    before = live_peer_connections()
    async with broker.http.post(f"{broker.base}api/calls", json={"sdp": sdp, "type": "offer"}) as r:
        assert r.status == 400
        body = await r.json()
    assert reason in body["error"]["message"]
    assert live_peer_connections() == before
    assert broker.models == []
    assert len(broker.calls) == 0


async def test_offer_without_audio_is_400(broker: Broker) -> None:
    before = live_peer_connections()
    async with broker.http.post(f"{broker.base}api/calls", json={"sdp": NO_AUDIO, "type": "offer"}) as r:
        assert r.status == 400
        body = await r.json()
    assert "no audio m-line" in body["error"]["message"]
    assert live_peer_connections() == before
    assert broker.models == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "must be JSON"),
        ('{"sdp": "v=0", "type": "answer"}', "'type' must be 'offer'"),
        ('["sdp"]', "JSON object"),
    ],
)
async def test_malformed_bodies_are_400(broker: Broker, body: str, reason: str) -> None:
    async with broker.http.post(
        f"{broker.base}api/calls", data=body, headers={"Content-Type": "application/json"}
    ) as r:
        assert r.status == 400
        assert reason in (await r.json())["error"]["message"]


async def test_offer_is_answered_and_call_can_be_hung_up(broker: Broker) -> None:
    caller = Caller(broker.http, broker.base)
    try:
        data = await caller.connect()
        assert data["type"] == "answer"
        assert data["call_id"].startswith("call_")
        assert "m=audio" in data["sdp"]
        # loopback-only ICE: every candidate the server offers is 127.0.0.1
        cands = [ln for ln in data["sdp"].splitlines() if ln.startswith("a=candidate")]
        assert cands and all(" 127.0.0.1 " in c for c in cands)
        await caller.wait_connected()
        async with broker.http.get(f"{broker.base}api/calls") as r:
            listed = (await r.json())["calls"]
        assert [c["call_id"] for c in listed] == [data["call_id"]]
        assert await caller.hang_up() == 204
        assert len(broker.calls) == 0
        assert broker.models[0].closed
    finally:
        await caller.close()


async def test_unknown_call_id_is_404(broker: Broker) -> None:
    async with broker.http.delete(f"{broker.base}api/calls/call_nope") as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "call_not_found"


@pytest.fixture
def broker_settings() -> Settings:
    return Settings(ice_host_addresses=["127.0.0.1"], max_calls=1, webrtc_connect_timeout_s=10)


async def test_call_cap_is_503_with_a_clear_message(broker: Broker) -> None:
    first = Caller(broker.http, broker.base)
    second = Caller(broker.http, broker.base)
    try:
        await first.connect()
        before = live_peer_connections()
        async with broker.http.post(f"{broker.base}api/calls", json=await second.offer()) as r:
            assert r.status == 503
            assert r.headers["Retry-After"].isdigit()
            body = await r.json()
        assert body["error"]["code"] == "capacity_exceeded"
        assert "full" in body["error"]["message"]
        assert live_peer_connections() == before
        assert len(broker.models) == 1
        # once the first call is gone, there is room again
        assert await first.hang_up() == 204
        third = Caller(broker.http, broker.base)
        try:
            await third.connect()
        finally:
            await third.hang_up()
    finally:
        await first.close()
        await second.close()


async def test_model_upstream_down_is_502(broker: Broker) -> None:
    broker.model_kwargs["fail_start"] = ConnectionRefusedError("connect to 127.0.0.1:9 refused")
    caller = Caller(broker.http, broker.base)
    try:
        before = live_peer_connections()
        async with broker.http.post(f"{broker.base}api/calls", json=await caller.offer()) as r:
            assert r.status == 502
            body = await r.json()
        assert body["error"]["code"] == "upstream_unavailable"
        assert "unavailable" in body["error"]["message"]
        assert live_peer_connections() == before
        assert broker.models[0].closed
        assert len(broker.calls) == 0
    finally:
        await caller.close()


async def test_config_hands_the_page_its_ice_servers(broker: Broker) -> None:
    async with broker.http.get(f"{broker.base}api/config") as r:
        assert r.status == 200
        cfg = await r.json()
    assert cfg["ice_servers"] == []
    assert cfg["max_calls"] == 1


def test_ice_server_settings_parse_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "VOICEBOT_ICE_SERVERS",
        '[{"urls": "stun:stun.example.org:3478"}, '
        '{"urls": ["turn:turn.example.org:3478"], "username": "u", "credential": "p"}]',
    )
    s = Settings()
    assert s.ice_servers == [
        IceServer(urls="stun:stun.example.org:3478"),
        IceServer(urls=["turn:turn.example.org:3478"], username="u", credential="p"),
    ]
