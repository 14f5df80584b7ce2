"""OpenAI-native SIP: ``POST /webhooks/openai`` accepts calls that OpenAI's SIP edge received, and a sideband
Realtime session (``/v1/realtime?call_id=...``) runs the agent's tools for each of them.

::

    trunk ──SIP/TLS──▶ OpenAI ──webhook realtime.call.incoming──▶ POST /webhooks/openai (signature checked)
                                 ◀── POST /v1/realtime/calls/{id}/accept (the agent's session config, SDK)
    voicebot ──WebSocket /v1/realtime?call_id={id}──▶ tools, hang-up (…/hangup), transfer (…/refer)

Audio never touches voicebot in this mode. The route exists when ``openai_webhook_secret`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web
from openai import AsyncOpenAI, OpenAIError

from voicebot.audio.chunk import PcmChunk
from voicebot.call import Call
from voicebot.errors import BadRequest, VoicebotError
from voicebot.realtime.client import ConnectOptions, RealtimeModelSession
from voicebot.realtime.wire import SessionConfig, session_payload
from voicebot.server.app import SETTINGS, upstream_of
from voicebot.server.sessions import create_tool_runner
from voicebot.sip.webhook import (
    IncomingSipCall,
    WebhookError,
    parse_event,
    parse_incoming_call,
    verify_webhook,
)
from voicebot.tools import ToolRunner

log = logging.getLogger("voicebot.sip.openai")

HANGUP_WAIT_S = 5.0


class SidebandPort:
    """The call side of an OpenAI-SIP call: no audio here (it flows between the trunk and OpenAI); hanging up
    and transferring are REST calls on the call id."""

    input_rate = 8000
    output_rate = 8000

    def __init__(self, client: AsyncOpenAI, call_id: str, transfer_targets: dict[str, str]) -> None:
        self.client = client
        self.call_id = call_id
        self.transfer_targets = transfer_targets
        self._closed = asyncio.Event()

    async def frames(self) -> AsyncIterator[PcmChunk]:
        await self._closed.wait()
        return
        yield  # an async generator that yields nothing

    async def play(self, chunk: PcmChunk, item_id: str) -> None:
        return None  # audio deltas do not come over the sideband; drop any that do

    def clear(self) -> None:
        return None

    def played_ms(self, item_id: str) -> int:
        return 0  # OpenAI truncates server-side for SIP calls

    async def close(self) -> None:
        """The call is over: hang up the SIP leg (unless it already ended) and close the HTTP client."""
        try:
            if not self._closed.is_set():
                self._closed.set()
                with contextlib.suppress(OpenAIError):
                    await self.client.realtime.calls.hangup(self.call_id)
        finally:
            await self.client.close()

    def end(self) -> None:
        """The SIP call is over (or the server stops): let the call finish."""
        self._closed.set()

    async def transfer(self, target: str) -> None:
        uri = self.transfer_targets.get(target, target)
        if uri not in self.transfer_targets.values():
            raise BadRequest(f"transfer target {target!r} is not in the allow-list (sip_transfer_targets)")
        await self.client.realtime.calls.refer(self.call_id, target_uri=uri)

    async def send_dtmf(self, digits: str) -> None:
        raise BadRequest("sending DTMF is not available on OpenAI-native SIP calls")


class OpenAiSipCalls:
    """The sideband sessions in progress, one task each; ``close_all`` on shutdown."""

    def __init__(self) -> None:
        self.calls: dict[str, tuple[Call, SidebandPort, asyncio.Task[None]]] = {}
        self.accepted: list[str] = []

    def start(self, call: Call, port: SidebandPort) -> None:
        async def run() -> None:
            try:
                await call.run()
            finally:
                self.calls.pop(port.call_id, None)

        task = asyncio.get_running_loop().create_task(run(), name=f"openai-sip:{port.call_id}")
        self.calls[port.call_id] = (call, port, task)

    async def close_all(self) -> None:
        entries = list(self.calls.values())
        for _, port, _ in entries:
            port.end()
        tasks = [t for _, _, t in entries]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=HANGUP_WAIT_S)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


OPENAI_SIP = web.AppKey("openai_sip_calls", OpenAiSipCalls)


def _session_config(app: web.Application, runner: ToolRunner) -> SessionConfig:
    settings = app[SETTINGS]
    pieces = runner.session_config()
    return SessionConfig(
        model=settings.model,
        voice=pieces["voice"] or settings.voice,
        instructions=pieces["instructions"],
        tools=tuple(pieces["tools"]),
        input_format="audio/pcmu",
        output_format="audio/pcmu",
    )


async def webhook(request: web.Request) -> web.Response:
    app = request.app
    secret = app[SETTINGS].openai_webhook_secret
    assert secret is not None
    body = await request.read()
    try:
        verify_webhook(secret.get_secret_value(), request.headers, body, time.time())
        event = parse_event(body)
        if event["type"] != "realtime.call.incoming":
            return web.json_response({"status": "ignored"})
        incoming = parse_incoming_call(event)
    except WebhookError as exc:
        log.warning("refused a webhook: %s", exc.message)
        return web.json_response({"error": {"message": exc.message, "code": exc.code}}, status=400)
    try:
        await _accept(app, incoming)
    except (OpenAIError, VoicebotError) as exc:
        log.warning("could not take OpenAI SIP call %s: %r", incoming.call_id, exc)
        return web.json_response({"error": {"message": str(exc), "code": "accept_failed"}}, status=502)
    return web.json_response({"status": "accepted", "call_id": incoming.call_id})


async def _accept(app: web.Application, incoming: IncomingSipCall) -> None:
    settings = app[SETTINGS]
    upstream = upstream_of(app)
    client = AsyncOpenAI(api_key=upstream.api_key, base_url=upstream.base_url, max_retries=1)
    runner = create_tool_runner(app)
    config = _session_config(app, runner)
    payload = session_payload(config)
    payload.pop("type")
    payload["model"] = config.model
    try:
        await client.realtime.calls.accept(incoming.call_id, type="realtime", extra_body=payload)
    except BaseException:
        await client.close()
        raise
    app[OPENAI_SIP].accepted.append(incoming.call_id)
    options = ConnectOptions(
        upstream.websocket_base_url, upstream.api_key, extra_query={"call_id": incoming.call_id}
    )
    model = RealtimeModelSession(
        options,
        config,
        reconnect_attempts=settings.reconnect_attempts,
        reconnect_backoff_s=settings.reconnect_backoff_s,
    )
    port = SidebandPort(client, incoming.call_id, dict(settings.sip_transfer_targets))
    call = Call(
        port,
        model,
        call_id=incoming.call_id,
        caller=incoming.caller,
        tools=runner,
        max_duration_s=settings.sip_max_call_duration_s,
    )
    app[OPENAI_SIP].start(call, port)
    log.info("OpenAI SIP call %s from %s accepted", incoming.call_id, incoming.caller)


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    app[OPENAI_SIP] = OpenAiSipCalls()
    try:
        yield
    finally:
        await app[OPENAI_SIP].close_all()


def setup_openai_sip(app: web.Application) -> None:
    """Register ``POST /webhooks/openai`` when ``openai_webhook_secret`` is set."""
    if app[SETTINGS].openai_webhook_secret is not None:
        app.cleanup_ctx.append(_lifetime)
        app.router.add_post("/webhooks/openai", webhook)
