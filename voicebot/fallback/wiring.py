"""How the server gets the fallback: a failover model session per call, and the post-call tasks.

``create_failover_session`` has the signature of ``voicebot.server.sessions.create_model_session`` and returns
a ``FailoverModelSession`` (Realtime first, the cascade as the spare) when ``Settings.fallback_enabled``,
else the plain Realtime session. ``finish_call`` runs the post-call tasks (summary, storage in
``Settings.calls_dir``) for a finished call.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from voicebot.call import Call
from voicebot.fallback.cascade import CascadeConfig, CascadeModelSession
from voicebot.fallback.failover import FailoverModelSession, FailoverPolicy
from voicebot.fallback.history import History
from voicebot.fallback.openai_http import client_for
from voicebot.fallback.tasks import post_call
from voicebot.ports import ModelSession
from voicebot.realtime.client import RealtimeModelSession
from voicebot.realtime.wire import AudioFormat, wire_rate
from voicebot.tools import ToolRunner


def create_failover_session(
    app: web.Application,
    *,
    caller: str,
    audio_format: AudioFormat = "audio/pcm",
    runner: ToolRunner | None = None,
) -> ModelSession:
    """The model session for one call: Realtime with automatic failover to the cascade (and back)."""
    from voicebot.server.app import SETTINGS, upstream_of
    from voicebot.server.sessions import AGENT, create_realtime_session

    settings = app[SETTINGS]
    agent = runner or ToolRunner(app[AGENT])
    if not settings.fallback_enabled:
        return create_realtime_session(app, audio_format=audio_format, runner=agent)

    def primary() -> RealtimeModelSession:
        # built anew for each attempt, from the active agent (handoffs change it during the call)
        return create_realtime_session(app, audio_format=audio_format, runner=agent)

    def fallback(history: History) -> CascadeModelSession:
        pieces = agent.session_config()
        rate = wire_rate(audio_format)
        config = CascadeConfig.from_settings(
            settings,
            instructions=pieces["instructions"],
            tools=tuple(pieces["tools"]),
            voice=pieces["voice"] or settings.voice,
            input_rate=rate,
            output_rate=rate,
        )
        client = client_for(settings, upstream_of(app))
        return CascadeModelSession(client, config, history=history, close_client=True)

    return FailoverModelSession(primary, fallback, FailoverPolicy.from_settings(settings))


async def finish_call(app: web.Application, call: Call) -> dict[str, Any]:
    """Post-call tasks for a finished call: the summary, and the record stored in ``calls_dir`` if set."""
    from voicebot.server.app import SETTINGS, upstream_of

    settings = app[SETTINGS]
    async with client_for(settings, upstream_of(app)) as client:
        return await post_call(call, client, model=settings.summary_model, calls_dir=settings.calls_dir)
