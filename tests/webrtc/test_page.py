"""The demo page in headless Chromium tells the user what went wrong: no microphone, server full, model down."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.webrtc.conftest import Broker
from tests.webrtc.peers import Caller
from voicebot.config import Settings

CHROMIUM = "/usr/bin/chromium"
BASE_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None, reason="pip package playwright is missing"
    ),
]


@pytest.fixture
def broker_settings() -> Settings:
    return Settings(ice_host_addresses=["127.0.0.1"], max_calls=1, webrtc_connect_timeout_s=10)


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        yield p.chromium


async def alert_after_connect(chromium: Any, base: str, *, grant_mic: bool) -> str:
    flags = [*BASE_FLAGS, "--use-fake-ui-for-media-stream"] if grant_mic else BASE_FLAGS
    browser = await chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
    try:
        page = await browser.new_page()
        await page.goto(base)
        await page.click("#connect")
        await page.wait_for_selector("#alert:not([hidden])", timeout=15_000)
        text: str = await page.inner_text("#alert")
        assert await page.inner_text("#status-text") == "Problem"
        assert await page.inner_text("#connect") == "Start call"  # ready to try again
        return text
    finally:
        await browser.close()


async def test_denied_microphone_is_explained(broker: Broker, chromium: Any) -> None:
    text = await alert_after_connect(chromium, broker.base, grant_mic=False)
    assert "Microphone access was denied" in text
    assert broker.models == []  # nothing reached the server


async def test_full_server_is_explained(broker: Broker, chromium: Any) -> None:
    occupant = Caller(broker.http, broker.base)
    try:
        await occupant.connect()
        text = await alert_after_connect(chromium, broker.base, grant_mic=True)
        assert "All lines are busy." in text
        assert "the server is full (1 calls in progress)" in text
        assert len(broker.calls) == 1
    finally:
        await occupant.hang_up()


async def test_model_upstream_down_is_explained(broker: Broker, chromium: Any) -> None:
    broker.model_kwargs["fail_start"] = ConnectionRefusedError("connect call failed ('127.0.0.1', 9)")
    text = await alert_after_connect(chromium, broker.base, grant_mic=True)
    assert "The voice model is unavailable right now." in text
    assert "upstream is unavailable" in text
    assert len(broker.calls) == 0
