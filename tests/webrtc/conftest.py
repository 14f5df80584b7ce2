"""Every WebRTC test runs in a private network namespace with loopback-only ICE (see netns.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from tests.webrtc.netns import netns_unavailable_reason, private_netns
from tests.webrtc.peers import ToneModel
from voicebot.config import Settings
from voicebot.server.app import BASE_URL, SETTINGS
from voicebot.server.routes_calls import CALLS, MODEL_FACTORY, CallRegistry, setup_call_routes


@pytest.fixture(autouse=True)
def _loopback_only_netns() -> Iterator[str]:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(f"WebRTC tests need a private network namespace: {reason}")
    with private_netns() as ns:
        yield ns


@dataclass
class Broker:
    """The call routes on a real HTTP server, with ToneModels as the model side."""

    app: web.Application
    base: str
    http: ClientSession
    model_kwargs: dict[str, Any]
    models: list[ToneModel] = field(default_factory=list)

    @property
    def calls(self) -> CallRegistry:
        return self.app[CALLS]


def make_app(
    settings: Settings, broker_models: list[ToneModel], model_kwargs: dict[str, Any]
) -> web.Application:
    app = web.Application()
    app[SETTINGS] = settings
    app[BASE_URL] = "http://127.0.0.1:0"

    def factory(app: web.Application, *, caller: str, phone_quality: bool = False) -> tuple[ToneModel, None]:
        model = ToneModel(**model_kwargs)
        broker_models.append(model)
        return model, None

    app[MODEL_FACTORY] = factory
    setup_call_routes(app)
    return app


@pytest.fixture
def broker_settings() -> Settings:
    return Settings(ice_host_addresses=["127.0.0.1"], max_calls=4, webrtc_connect_timeout_s=10)


@pytest.fixture
def model_kwargs() -> dict[str, Any]:
    return {}


@pytest.fixture
async def broker(broker_settings: Settings, model_kwargs: dict[str, Any]) -> AsyncIterator[Broker]:
    models: list[ToneModel] = []
    app = make_app(broker_settings, models, model_kwargs)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with ClientSession() as http:
            yield Broker(app, str(server.make_url("/")), http, model_kwargs, models)
    finally:
        await server.close()
