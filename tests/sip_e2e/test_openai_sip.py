"""OpenAI-native SIP mode: the signed realtime.call.incoming webhook, accept with the agent's session, a
sideband Realtime session by call_id, hang-up through the REST endpoint (the local engine emulates OpenAI)."""

from __future__ import annotations

import asyncio
import base64
import time

import aiohttp
import pytest

from tests.sip_e2e.conftest import BotFactory
from voicebot.local.sip_calls import SIP_CALLS, ring, send_incoming_call
from voicebot.server.sip_webhook import OPENAI_SIP
from voicebot.sip.webhook import WebhookError, sign_webhook, verify_webhook

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "whsec_" + base64.b64encode(b"voicebot-test-webhook-secret-32b").decode()
BODY = b'{"type": "realtime.call.incoming"}'


async def test_signature_verification_follows_standard_webhooks() -> None:
    now = int(time.time())
    headers = sign_webhook(SECRET, "wh_1", now, BODY)
    verify_webhook(SECRET, headers, BODY, now)
    several = dict(headers, **{"webhook-signature": "v1,bm9wZQ== " + headers["webhook-signature"]})
    verify_webhook(SECRET, several, BODY, now + 299)
    for bad_headers, body, at in [
        (headers, BODY + b" ", now),  # body changed
        (headers, BODY, now + 301),  # too old
        (headers, BODY, now - 301),  # from the future
        ({**headers, "webhook-id": "wh_2"}, BODY, now),
        ({**headers, "webhook-signature": "v2," + headers["webhook-signature"][3:]}, BODY, now),
        ({k: v for k, v in headers.items() if k != "webhook-timestamp"}, BODY, now),
    ]:
        with pytest.raises(WebhookError):
            verify_webhook(SECRET, bad_headers, body, at)
    with pytest.raises(WebhookError):
        verify_webhook("whsec_" + base64.b64encode(b"another secret").decode(), headers, BODY, now)


async def test_incoming_call_is_accepted_and_served_by_a_sideband_session(make_bot: BotFactory) -> None:
    bot = await make_bot(openai_webhook_secret=SECRET)
    url = f"{bot.base_url}/webhooks/openai"
    call_id = ring(bot.engine)
    forged = ring(bot.engine)
    calls = bot.engine[SIP_CALLS]
    async with aiohttp.ClientSession() as http:
        assert (
            await send_incoming_call(
                http, url, "whsec_" + base64.b64encode(b"x" * 32).decode(), calls[forged]
            )
            == 400
        )
        stale = int(time.time()) - 3600
        assert await send_incoming_call(http, url, SECRET, calls[forged], timestamp=stale) == 400
        assert await send_incoming_call(http, url, SECRET, calls[call_id]) == 200
    assert calls[forged].state == "ringing", "an unsigned or stale webhook accepts nothing"
    accepted = calls[call_id]
    assert accepted.state == "accepted"
    assert accepted.session["model"] == "gpt-realtime"
    assert {t["name"] for t in accepted.session["tools"]} == {"end_call", "record_digits"}
    assert accepted.session["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    sideband = bot.app[OPENAI_SIP]
    assert call_id in sideband.calls
    call, _port, task = sideband.calls[call_id]
    async with asyncio.timeout(10):
        while call.model.connections == 0:  # type: ignore[attr-defined]
            await asyncio.sleep(0.02)
    await call.hang_up("test over", drain_s=0)
    await asyncio.wait_for(task, 10)
    assert accepted.state == "hung_up", "ending the call hangs up the SIP leg through the REST endpoint"
